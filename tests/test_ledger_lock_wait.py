"""What issue 12 added to the ledger, pinned in-process (the CLI tests run it in
subprocesses, which mutation testing's coverage cannot see): the run lock's short wait
for a holder that wrote no pid (``synckit runs`` looking, or a run about to write its
own), who holds the lock, each run's state (finished / running / killed), and the
upgrade of state files from before runs had a pid."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from synckit.errors import StateLockedError
from synckit.ledger import Ledger


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    with Ledger(path) as led, led.lock():
        pass  # the lock file exists, as after any run
    return path


@pytest.fixture
def holder(state: Path) -> Iterator[IO[str]]:
    """Another open file description on the lock file, holding the flock (no pid yet)."""
    handle = open(state.with_name("state.db.lock"), "r+")  # noqa: SIM115 - closed below
    handle.truncate(0)
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield handle
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def later(seconds: float, action: object) -> threading.Timer:
    timer = threading.Timer(seconds, action)  # type: ignore[arg-type]
    timer.start()
    return timer


def test_a_holder_without_a_pid_is_waited_for_briefly_then_the_lock_is_really_ours(
    state: Path, holder: IO[str]
) -> None:
    timer = later(0.05, lambda: fcntl.flock(holder.fileno(), fcntl.LOCK_UN))
    started = time.monotonic()
    with Ledger(state) as led, led.lock():
        waited = time.monotonic() - started
        # Ours in the kernel's eyes: another description cannot take it now.
        with pytest.raises(BlockingIOError):
            fcntl.flock(holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert led.lock_holder() == os.getpid()
    timer.join()
    assert 0.04 <= waited < 0.5  # polled every 5 ms: well under a second


def test_a_holder_without_a_pid_that_stays_is_refused_after_half_a_second(
    state: Path, holder: IO[str]
) -> None:
    started = time.monotonic()
    with Ledger(state) as led, pytest.raises(StateLockedError) as info, led.lock():
        pass
    waited = time.monotonic() - started
    assert "in use by another synckit run;" in str(info.value)  # no "(process ...)": none known
    assert 0.45 <= waited < 1.4


def test_the_pid_a_holder_writes_while_we_wait_is_read_from_the_start(
    state: Path, holder: IO[str]
) -> None:
    holder.write("x")  # not a pid (yet): worth a wait
    holder.flush()

    def writes_its_pid() -> None:
        holder.seek(0)
        holder.truncate(0)
        holder.write("4242")
        holder.flush()

    timer = later(0.05, writes_its_pid)
    with (
        Ledger(state) as led,
        pytest.raises(StateLockedError, match=r"\(process 4242\)"),
        led.lock(),
    ):
        pass
    timer.join()


def test_a_state_file_from_before_runs_had_a_pid_is_upgraded_on_open(state: Path) -> None:
    with sqlite3.connect(state) as db:
        db.execute("ALTER TABLE runs DROP COLUMN pid")
    with sqlite3.connect(state) as db:
        assert "pid" not in [row[1] for row in db.execute("PRAGMA table_info(runs)")]
    with Ledger(state) as led:
        run_id = led.begin_run(source="old.csv")
    with sqlite3.connect(state) as db:
        (pid,) = db.execute("SELECT pid FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    assert pid == os.getpid()


def test_lock_holder_says_who_holds_the_lock(state: Path) -> None:
    with Ledger(state) as led:
        assert led.lock_holder() is None  # nobody
        with led.lock():
            assert led.lock_holder() == os.getpid()  # a run: its pid
    handle = open(state.with_name("state.db.lock"), "r+")  # noqa: SIM115 - closed below
    with handle:
        handle.truncate(0)
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with Ledger(state) as led:
            assert led.lock_holder() == -1  # someone who wrote no pid (`runs` looking)


def set_pid(state: Path, run_id: str, pid: int | None) -> None:
    with sqlite3.connect(state) as db:
        db.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (pid, run_id))


def test_runs_tell_finished_running_and_killed_apart(state: Path) -> None:
    with Ledger(state) as led:
        done = led.begin_run(source="a.csv")
        led.end_run(done, counts={"created": 1}, exit_code=0)
        killed = led.begin_run(source="b.csv")  # no end; its process is gone
        set_pid(state, killed, 999_999_999)
        assert list(led.runs()["state"]) == ["finished", "killed"]  # no one holds the lock
        with led.lock():
            led.begin_run(source="c.csv")  # ours, holding the lock
            assert list(led.runs()["state"]) == ["finished", "killed", "running"]
        assert list(led.runs()["state"]) == ["finished", "killed", "killed"]


def test_runs_without_a_pid_only_the_latest_open_one_can_be_running(
    state: Path, holder: IO[str]
) -> None:
    # State files from before the pid column: runs take turns under the lock, so while
    # someone (who wrote no pid) holds it, only the latest run without an end is running.
    with Ledger(state) as led:
        first = led.begin_run(source="a.csv")
        second = led.begin_run(source="b.csv")
        third = led.begin_run(source="c.csv")
        led.end_run(third, counts={}, exit_code=0)
        for run in (first, second, third):
            set_pid(state, run, None)
        assert list(led.runs()["state"]) == ["killed", "running", "finished"]


def test_set_exit_code_of_an_unknown_run_is_an_error(state: Path) -> None:
    from synckit.errors import SynckitError

    with Ledger(state) as led, pytest.raises(SynckitError, match="unknown run id 'nope'"):
        led.set_exit_code("nope", 2)


def test_the_run_whose_pid_holds_the_lock_is_running_wherever_it_stands(state: Path) -> None:
    # Only open runs (none finished), and the holder's run is not the latest open one (a
    # later run's row whose process is gone): the pid decides, not the order.
    with Ledger(state) as led, led.lock():
        ours = led.begin_run(source="a.csv")
        later_one = led.begin_run(source="b.csv")
        set_pid(state, later_one, 999_999_999)
        assert ours != later_one
        assert list(led.runs()["state"]) == ["running", "killed"]
