"""The notebooks run top to bottom, twice in one kernel, leak no secret, and are stored clean.

Each notebook is executed once per test session (a module fixture) with
nbclient on a python3 kernel of this interpreter, working directory
``notebooks/``: every cell, then -- in the same kernel, from the top again --
every cell twice in a row (the "re-run any cell" promise), then a probe cell
(never stored) that reads the in-kernel sandbox's credentials so every output
can be scanned for them.

The kernel's environment carries ``SYNCKIT_BASE_URL`` / ``SYNCKIT_TOKEN`` of
a second sandbox started here, so the notebooks' "real deployment" section
really builds a client from the environment -- and its token must not show
up in any output either.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
NAMES = [p.name for p in NOTEBOOKS]
TIME_LIMIT = 120.0  # seconds per notebook, one pass
EXPECTED = {"01_quickstart.ipynb", "02_nightly_sync.ipynb"}

# Run in the kernel after the notebook: the in-kernel sandbox's credentials
# (the notebooks keep it in a global named ``sandbox``) and the interpreter.
PROBE = """
import json as _json, sys as _sys
_sb = globals().get("sandbox")
print("__PROBE__" + _json.dumps({
    "executable": _sys.executable,
    "secrets": [s for s in (getattr(_sb, "token", None), getattr(_sb, "client_secret", None)) if s],
}))
"""


@dataclass
class Execution:
    """What running one notebook produced."""

    cells: list[Any]  # code cells of the FIRST pass, with outputs
    rerun_cells: list[Any]  # the same cells after the second pass
    first_pass: float = 0.0
    second_pass: float = 0.0
    error: str | None = None
    probe: dict[str, Any] = field(default_factory=dict)


def _outputs_text(cells: list[Any]) -> str:
    """Every output of every cell, as one string (text, HTML, errors, JSON data)."""
    parts: list[str] = []
    for cell in cells:
        for out in cell.get("outputs", []):
            parts.append(json.dumps(out, default=str))
    return "\n".join(parts)


def _run_cells(client: NotebookClient, nb: Any, *, times: int = 1) -> None:
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            for _ in range(times):
                client.execute_cell(cell, index)


@pytest.fixture(scope="module")
def deployment_env() -> Iterator[dict[str, str]]:
    """A second sandbox whose URL and (random) token the kernel finds in its environment."""
    import synckit

    token = "sk_live_" + secrets.token_urlsafe(16)
    with synckit.serve_sandbox(port=0, token=token) as sb:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCKIT_")}
        env.update(SYNCKIT_BASE_URL=sb.url, SYNCKIT_TOKEN=token)
        env.pop("MPLBACKEND", None)  # the kernel's inline backend, as an analyst sees it
        yield env


@pytest.fixture(scope="module")
def executions(deployment_env: dict[str, str]) -> dict[str, Execution]:
    results: dict[str, Execution] = {}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb,
            kernel_name="python3",  # jupyter_client runs "python" kernels on sys.executable
            timeout=TIME_LIMIT,
            resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
        )
        result = Execution(cells=[], rerun_cells=[])
        try:
            with client.setup_kernel(env=deployment_env, cwd=str(NOTEBOOK_DIR)):
                start = time.perf_counter()
                _run_cells(client, nb)
                result.first_pass = time.perf_counter() - start
                result.cells = [
                    nbformat.from_dict(json.loads(json.dumps(c)))
                    for c in nb.cells
                    if c.cell_type == "code"
                ]
                # Again from the top, in the same kernel, every cell twice in a row.
                start = time.perf_counter()
                _run_cells(client, nb, times=2)
                result.second_pass = time.perf_counter() - start
                result.rerun_cells = [c for c in nb.cells if c.cell_type == "code"]
                probe = nbformat.v4.new_code_cell(PROBE)
                nb.cells.append(probe)  # nbclient writes the executed cell back by index
                client.execute_cell(probe, len(nb.cells) - 1)
                printed = "".join(
                    o.get("text", "") for o in probe.outputs if o.get("output_type") == "stream"
                )
                for line in printed.splitlines():
                    if line.startswith("__PROBE__"):
                        result.probe = json.loads(line.removeprefix("__PROBE__"))
        except CellExecutionError as exc:
            result.error = str(exc)[:4000]
        results[path.name] = result
    return results


def test_both_notebooks_exist() -> None:
    assert set(NAMES) >= EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell.outputs == [], f"stored outputs in cell: {cell.source[:60]!r}"
        assert cell.execution_count is None, f"stored execution count: {cell.source[:60]!r}"
    # Widget state would store rendered outputs by another door.
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_no_secret_in_source(path: Path) -> None:
    # The demo credentials are read from the sandbox object, never typed in.
    text = path.read_text(encoding="utf-8")
    from synckit.sandbox import SandboxConfig

    defaults = SandboxConfig()
    for secret in (defaults.token, defaults.client_secret):
        assert secret not in text


@pytest.mark.parametrize("name", NAMES)
def test_runs_top_to_bottom_and_again(name: str, executions: dict[str, Execution]) -> None:
    result = executions[name]
    assert result.error is None, result.error
    assert result.first_pass < TIME_LIMIT
    assert result.second_pass < 2 * TIME_LIMIT
    # Every code cell ran both times; nothing raised (nbclient raises on an error output).
    assert all(c.execution_count is not None for c in result.cells)
    assert not any(o.get("output_type") == "error" for c in result.rerun_cells for o in c.outputs)


def test_quickstart_shows_charts_progress_and_rich_tables(executions: dict[str, Execution]) -> None:
    outputs = [o for c in executions["01_quickstart.ipynb"].cells for o in c.outputs]
    kinds = {k for o in outputs for k in o.get("data", {})}
    assert "image/png" in kinds  # the problem chart and report.plot()
    assert "text/html" in kinds  # Validation / SyncReport / DataFrames
    assert "application/vnd.jupyter.widget-view+json" in kinds  # the upsert's progress bar
    text = _outputs_text(executions["01_quickstart.ipynb"].cells)
    assert "credential accepted" in text  # the deployment cell used the environment


@pytest.mark.parametrize("name", NAMES)
def test_kernel_is_this_interpreter(name: str, executions: dict[str, Execution]) -> None:
    probe = executions[name].probe
    assert probe, "the probe cell did not run"
    assert Path(probe["executable"]).resolve() == Path(sys.executable).resolve()


@pytest.mark.parametrize("name", NAMES)
def test_no_secret_in_any_output(
    name: str, executions: dict[str, Execution], deployment_env: dict[str, str]
) -> None:
    result = executions[name]
    assert result.probe.get("secrets"), "the notebook keeps no sandbox named 'sandbox'"
    from synckit.sandbox import SandboxConfig

    defaults = SandboxConfig()
    forbidden = {
        *result.probe["secrets"],
        deployment_env["SYNCKIT_TOKEN"],
        defaults.token,
        defaults.client_secret,
    }
    text = _outputs_text(result.cells) + _outputs_text(result.rerun_cells)
    assert text, "no outputs at all: the scan would prove nothing"
    # Name a leak by its first characters only: the test report must not leak it either.
    leaked = [secret[:4] + "..." for secret in forbidden if secret in text]
    assert not leaked, f"secrets in the outputs of {name}: {leaked}"


# --------------------------------------------------------------------------- docs

DOCS = ROOT / "docs"
# Contract section 4's error codes (shared/api/contacts-api.md), all of them.
CONTRACT_CODES = {
    "validation_failed", "payload_too_large", "bad_request", "unauthorized", "invalid_client",
    "invalid_scope", "insufficient_scope", "forbidden", "not_found", "conflict", "duplicate",
    "request_in_progress", "quota_exceeded", "idempotency_key_reused", "rate_limited",
    "internal_error", "provider_error", "unavailable",
}  # fmt: skip


def test_troubleshooting_covers_every_code() -> None:
    from synckit import errors, rules

    text = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    local = {*rules._MESSAGES, "invalid_choice", "duplicate_in_file"}
    codes = CONTRACT_CODES | set(errors._BY_CODE) | local | {"consent_protected"}
    missing = sorted(c for c in codes if f"`{c}`" not in text)
    assert not missing, f"troubleshooting.md does not explain: {missing}"
    for name in ("StateLockedError", "InputError", "ConfigError"):
        assert f"`{name}`" in text


def test_tour_notebook_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tour's Python block, as printed, against the sandbox (progress off, paths local)."""
    text = (DOCS / "tour.md").read_text(encoding="utf-8")
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    block = block.replace(
        "synckit.upsert(check, client)", "synckit.upsert(check, client, progress=False)"
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    scope: dict[str, Any] = {}
    exec(compile(block, "docs/tour.md", "exec"), scope)
    report = scope["report"]
    assert report.summary()["created"] == len(scope["check"].valid) > 0
    assert (tmp_path / "to_fix.csv").stat().st_size > 0
