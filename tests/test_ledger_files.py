"""The ledger's files and run records, pinned by hand (issue 16): how an erasure
rewrites the file (Ledger._scrub), the modes of companions an older version left
behind, a refused lock's file closed, and each run's start and end in their columns."""

from __future__ import annotations

import gc
import os
import sqlite3
import stat
import warnings
from pathlib import Path

import pytest

from synckit.ledger import Ledger, LedgerOutcome


def test_an_erasure_zeroes_rebuilds_in_memory_and_waits_5_s_then_30_s_again(
    tmp_path: Path, connections: list[sqlite3.Connection]
) -> None:
    """The steps _scrub documents, in order, as the connection ran them; afterwards the
    connection is as before (no zeroing on later writes, the 30 s busy wait back)."""
    path = tmp_path / "state.db"
    with Ledger(path) as led:
        led.record("r1", [LedgerOutcome("email:a@example.com", 2, "created", "ct_1", {})])
        (conn,) = connections
        ran: list[str] = []
        conn.set_trace_callback(ran.append)
        erased = led.forget(["a@example.com"])
        conn.set_trace_callback(None)
        pragmas = [s for s in ran if s.startswith(("PRAGMA", "VACUUM")) and "table_info" not in s]
        assert pragmas == [
            "PRAGMA secure_delete=ON",
            "PRAGMA temp_store=MEMORY",
            "VACUUM",
            "PRAGMA busy_timeout=5000",
            "PRAGMA wal_checkpoint(TRUNCATE)",
            "PRAGMA secure_delete=OFF",
            "PRAGMA busy_timeout=30000",
        ]
        assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 0
        assert conn.execute("PRAGMA temp_store").fetchone()[0] == 2  # MEMORY
        assert erased.bytes_after == path.stat().st_size > 0
        assert Path(str(path) + "-wal").stat().st_size == 0  # emptied by the checkpoint


def test_forget_works_on_a_table_too_wide_for_one_term_per_statement(tmp_path: Path) -> None:
    """300 text columns x 4 parameters is over 900 for even one term: one term per
    statement still, never zero (which would be no statement at all)."""
    path = tmp_path / "state.db"
    with Ledger(path) as led:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE wide (" + ", ".join(f"c{i} TEXT" for i in range(300)) + ")")
            db.execute("INSERT INTO wide (c299) VALUES ('a@example.com')")
            db.execute("INSERT INTO wide (c0) VALUES ('b@example.com')")
        db.close()
        assert led.forget(["a@example.com", "c@example.com"]).other == 1
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT c0 FROM wide").fetchall() == [("b@example.com",)]
    db.close()


def test_companions_left_readable_by_others_are_narrowed_when_opened(tmp_path: Path) -> None:
    """A lock file made 0644 by an older synckit: 0600 once a ledger opens the file, like
    the file itself (the -wal and -shm files are narrowed the same way)."""
    path = tmp_path / "state.db"
    with Ledger(path) as led, led.lock():
        pass
    lock = tmp_path / "state.db.lock"
    for f in (path, lock):
        os.chmod(f, 0o644)
    Ledger(path).close()
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in (path, lock)} == {
        "state.db": 0o600,
        "state.db.lock": 0o600,
    }


def test_a_refused_lock_closes_its_file_explicitly(tmp_path: Path) -> None:
    """Not left to the garbage collector (which CPython runs at once, PyPy much later)."""
    from synckit.errors import StateLockedError

    with Ledger(tmp_path / "state.db") as first, first.lock():
        second = Ledger(tmp_path / "state.db")
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with pytest.raises(StateLockedError):
                second.lock().__enter__()
            gc.collect()
        second.close()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []


def test_runs_start_and_end_in_their_own_columns(tmp_path: Path) -> None:
    from synckit.errors import SynckitError

    with Ledger(tmp_path / "state.db") as led:
        done = led.begin_run(source="a.csv")
        led.end_run(done, counts={"created": 2}, exit_code=0)
        running = led.begin_run(source="b.csv")
        with pytest.raises(SynckitError, match="unknown run id 'nope'"):
            led.end_run("nope", counts={}, exit_code=0)
        runs = led.runs().set_index("run_id")
    assert runs["started_at"].notna().all()
    assert runs.loc[done, "started_at"] <= runs.loc[done, "finished_at"]
    assert runs["finished_at"].isna().tolist() == [False, True]  # `running` has not ended
    assert (runs.loc[done, "created"], runs.loc[done, "exit_code"]) == (2, 0)
    assert runs.loc[running, "source"] == "b.csv"
