"""``synckit runs --state PATH``: the past runs a state ledger remembers.

Example:
    $ synckit runs --state nightly.db
    RUN                      STARTED (UTC)        FINISHED (UTC)       CREATED  UPDATED ...  EXIT
    20261121T020000Z-1a2b3c  2026-11-21 02:00:00  2026-11-21 02:03:12     1200       31 ...     0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from synckit.errors import InputError, SynckitError

# Count columns always shown; the dry-run ones only when a run has them.
_ALWAYS = ("created", "updated", "unchanged", "invalid", "failed", "skipped")
_IF_USED = ("would_create", "would_update")


def register(subparsers: Any) -> None:
    """Add the ``runs`` subcommand."""
    parser = subparsers.add_parser(
        "runs",
        help="list the past runs recorded in a state ledger",
        description="List past runs recorded in a state file (start, end, counts by status, "
        "exit code), oldest first. EXIT is the code the process returned; a run without an "
        "end shows 'running' while its process holds the state file's lock, else 'killed'.",
    )
    parser.add_argument("--state", required=True, metavar="PATH", help="the state file (SQLite)")
    parser.add_argument("--last", type=int, metavar="N", help="show only the N most recent runs")
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    parser.set_defaults(func=run)


def _when(value: Any) -> str:
    if value is None or pd.isna(value):
        return "-"
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{int(value):,}"


def _exit(rec: Mapping[Any, Any]) -> str:
    """The EXIT cell: the code the process returned, or ``killed`` / ``running``."""
    state = rec.get("state")
    if state in ("killed", "running") and (rec["exit_code"] is None or pd.isna(rec["exit_code"])):
        return str(state)
    return _num(rec["exit_code"])


def format_runs(runs: pd.DataFrame) -> str:
    """The runs frame (from :meth:`synckit.ledger.Ledger.runs`) as a fixed-width table."""
    statuses = [*_ALWAYS]
    for s in _IF_USED:
        if s in runs and runs[s].fillna(0).astype("int64").any():
            statuses.insert(_ALWAYS.index("invalid"), s)
    extra = [
        c
        for c in runs.columns
        if c not in ("run_id", "started_at", "finished_at", "source", "exit_code", "state")
        and c not in statuses
        and c not in _IF_USED
        and runs[c].fillna(0).astype("int64").any()
    ]
    statuses += extra
    header = ["RUN", "STARTED (UTC)", "FINISHED (UTC)", *(s.upper() for s in statuses), "EXIT",
              "SOURCE"]  # fmt: skip
    table = [header]
    for rec in runs.to_dict("records"):
        source = rec.get("source")
        table.append(
            [
                str(rec["run_id"]),
                _when(rec["started_at"]),
                _when(rec["finished_at"]),
                *(_num(rec.get(s)) for s in statuses),
                _exit(rec),
                ""
                if source is None or (isinstance(source, float) and math.isnan(source))
                else str(source),
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    left = {0, 1, 2, len(header) - 1}
    lines = []
    for row in table:
        cells = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the runs; exit 2 if the state file is missing or unreadable."""
    from synckit.ledger import Ledger

    path = Path(args.state)
    if not path.is_file():
        raise InputError("state file does not exist (nothing has run with it yet?)", path=str(path))
    if not _is_ledger(path):
        raise InputError("not a synckit state file (it has no runs table)", path=str(path))
    try:
        with Ledger(path) as ledger:
            runs = ledger.runs()
    except SynckitError as exc:
        raise InputError(f"cannot read the state file: {exc}", path=str(path)) from exc
    if args.last is not None:
        runs = runs.tail(max(args.last, 0))
    if args.json:
        for rec in runs.to_dict("records"):
            print(json.dumps({k: _plain(v) for k, v in rec.items()}))
        return 0
    if runs.empty:
        print(f"no runs recorded in {path}")
        return 0
    print(format_runs(runs))
    return 0


def _is_ledger(path: Path) -> bool:
    """True if ``path`` is a SQLite file with a runs table, looked at read-only.

    Opening it as a Ledger first would create the schema (and switch on WAL)
    in whatever file was named: a listing must change nothing.
    """
    try:
        uri = path.resolve().as_uri() + "?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
            ).fetchone()
    except sqlite3.DatabaseError:
        return True  # not SQLite at all: the Ledger says so in its own words
    return found is not None


def _plain(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value
