"""``synckit demo``: the whole story in one command, against an in-process sandbox.

Starts the sandbox on a free loopback port, syncs ``sample_data/contacts.csv``
(a messy export: some rows are invalid on purpose), then
``sample_data/contacts_updated.csv`` (the same people a day later) with a state
ledger, and prints both summaries. Nothing leaves the machine.

Example:
    >>> from synckit.demo import run_demo
    >>> reports = run_demo(out=lambda *a, **k: None)          # doctest: +SKIP
    >>> [r.aborted for r in reports]                          # doctest: +SKIP
    [None, None]
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synckit.errors import InputError
from synckit.report import SyncReport

__all__ = ["DEMO_FILES", "find_sample_data", "run_demo"]

#: The two files the demo syncs, in order.
DEMO_FILES = ("contacts.csv", "contacts_updated.csv")


def find_sample_data(data_dir: str | Path | None = None) -> Path:
    """The folder with the sample CSVs: ``data_dir``, else the repository's ``sample_data``.

    Falls back to ``./sample_data`` when the package is not run from a checkout.

    Example:
        >>> find_sample_data().name                           # doctest: +SKIP
        'sample_data'
    """
    candidates: list[Path] = []
    if data_dir is not None:
        candidates.append(Path(data_dir))
    else:
        # The package is installed editable from the repository: sample_data sits beside it.
        candidates.append(Path(__file__).resolve().parent.parent / "sample_data")
        candidates.append(Path.cwd() / "sample_data")
    for path in candidates:
        if all((path / name).is_file() for name in DEMO_FILES):
            return path
    where = ", ".join(str(p) for p in candidates)
    raise InputError(
        f"sample data not found (looked for {' and '.join(DEMO_FILES)} in {where}); "
        "pass --data-dir DIR"
    )


def run_demo(
    data_dir: str | Path | None = None,
    *,
    out: Callable[..., Any] = print,
    progress: bool = False,
    workers: int | None = None,
) -> list[SyncReport]:
    """Sync the two sample files into a fresh in-process sandbox; returns both reports.

    The second run uses a state ledger (in a temporary directory), so it shows
    the nightly behaviour: unchanged rows are not sent, changed ones are
    PATCHed, new ones created.

    Example:
        >>> first, second = run_demo(out=lambda *a, **k: None)  # doctest: +SKIP
        >>> second.summary()["unchanged"] > 0                   # doctest: +SKIP
        True
    """
    from synckit.client import Client
    from synckit.io import SAMPLE_COLUMNS, read_csv
    from synckit.sandbox import serve_sandbox
    from synckit.sync import upsert

    folder = find_sample_data(data_dir)
    reports: list[SyncReport] = []
    with (
        serve_sandbox() as sb,
        Client(sb.url, token=sb.token) as client,
        tempfile.TemporaryDirectory(prefix="synckit-demo-") as tmp,
    ):
        out(f"sandbox running at {sb.url} (in this process, loopback only)")
        state = Path(tmp) / "state.db"
        for step, name in enumerate(DEMO_FILES, start=1):
            path = folder / name
            frame = read_csv(path, columns=SAMPLE_COLUMNS)
            started = time.perf_counter()
            report = upsert(frame, client, state=state, progress=progress, workers=workers)
            took = time.perf_counter() - started
            reports.append(report)
            out("")
            out(
                f"[{step}/{len(DEMO_FILES)}] synckit sync {path.name}: "
                f"{len(report.rows)} rows in {took:.2f} s"
            )
            out(_summary_lines(report))
        out("")
        out(f"the sandbox now holds {len(sb.contacts())} contacts")
    return reports


def _summary_lines(report: SyncReport) -> str:
    counts = report.counts()
    width = max(len(k) for k in counts)
    lines = [f"  {k:<{width}}  {v:>6,}" for k, v in counts.items()]
    sent = int(report.rows["attempts"].fillna(0).sum())
    lines.append(f"  ({sent:,} HTTP requests; unchanged rows known to the ledger are not sent)")
    if report.aborted:
        lines.append(f"  aborted: {report.aborted}")
    if len(report.errors):
        codes = report.errors["code"].value_counts()
        shown = ", ".join(f"{k} ×{int(v)}" for k, v in codes.items() if v)
        lines.append(f"  problems: {shown}")
    return "\n".join(lines)


def demo_exit_code(reports: list[SyncReport]) -> int:
    """0 when the demo ran as intended: no run aborted and no row failed or skipped.

    Invalid rows are part of the messy sample and do not count against it.

    Example:
        >>> demo_exit_code([SyncReport.empty()])
        0
    """
    for report in reports:
        if report.aborted:
            return 3
        counts = report.counts()
        if counts.get("failed", 0) or counts.get("skipped", 0):
            return 1
    return 0
