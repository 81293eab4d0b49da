"""`synckit runs --state PATH`."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from synckit.cli import main
from synckit.ledger import Ledger


def _ledger(path: Path) -> list[str]:
    with Ledger(path) as led:
        r1 = led.begin_run(source="contacts.csv")
        led.end_run(r1, counts={"created": 1200, "updated": 31, "failed": 2}, exit_code=1)
        r2 = led.begin_run(source="contacts.csv")
        led.end_run(r2, counts={"unchanged": 1233}, exit_code=0)
        r3 = led.begin_run(source="killed.csv")  # never finished: killed
        return [r1, r2, r3]


def test_runs_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _ledger(tmp_path / "s.db")
    assert main(["runs", "--state", str(tmp_path / "s.db")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["RUN", "STARTED", "(UTC)"]
    assert "CREATED" in lines[0] and "EXIT" in lines[0] and "WOULD_CREATE" not in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ids
    assert "1,200" in lines[1] and lines[1].split()[-2] == "1"
    assert lines[2].split()[-2] == "0"
    assert lines[3].split()[3:5] == ["-", "-"] and lines[3].endswith("killed.csv")


def test_runs_json_and_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _ledger(tmp_path / "s.db")
    assert main(["runs", "--state", str(tmp_path / "s.db"), "--json", "--last", "2"]) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["run_id"] for r in recs] == ids[1:]
    assert recs[0]["unchanged"] == 1233 and recs[0]["exit_code"] == 0
    assert recs[1]["finished_at"] is None and recs[1]["exit_code"] is None


def test_runs_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.db"
    assert main(["runs", "--state", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err
    assert not missing.exists()  # looking did not create it


def test_runs_not_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bogus = tmp_path / "bogus.db"
    bogus.write_text("this is not sqlite\n" * 100)
    assert main(["runs", "--state", str(bogus)]) == 2
    assert "cannot read the state file" in capsys.readouterr().err


def test_runs_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Ledger(tmp_path / "s.db").close()
    assert main(["runs", "--state", str(tmp_path / "s.db")]) == 0
    assert "no runs recorded" in capsys.readouterr().out


def test_runs_leaves_a_database_that_is_not_a_ledger_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a read-only listing must not add synckit's tables (nor WAL mode) to someone else's file
    other = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
        conn.commit()
    before = other.read_bytes()
    assert main(["runs", "--state", str(other)]) == 2
    assert "not a synckit state file" in capsys.readouterr().err
    assert other.read_bytes() == before
    empty = tmp_path / "empty.db"
    empty.touch()
    assert main(["runs", "--state", str(empty)]) == 2
    assert empty.read_bytes() == b""
