"""Behaviour the sync engine and the ledger promise, checked through public names only (issue 16).

These tests use ``upsert``, ``Ledger``, the sandbox's request log and plain
SQLite, never a private name, so they kept their meaning across the engine's
rewrite into a planner and the move of ``synckit.state`` to ``synckit.ledger``.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from synckit.client import Client
from synckit.ledger import Ledger, LedgerOutcome, match_key
from synckit.sandbox import Sandbox
from synckit.sync import last_report, upsert

WRITES = {"POST", "PATCH", "DELETE"}


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[Client]:
    with Client(sandbox.url, token=sandbox.token, backoff_base=0.02, backoff_cap=0.2) as c:
        yield c


def people(n: int, *, name: str = "F") -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "email": [f"p{i}@example.com" for i in range(n)],
            "first_name": [f"{name}{i}" for i in range(n)],
            "email_consent": ["subscribed"] * n,
        }
    )
    frame.index = pd.RangeIndex(2, 2 + n, name="row")
    return frame


def writes_since(sb: Sandbox, mark: int) -> list[Any]:
    return [r for r in sb.request_log()[mark:] if r.method in WRITES]


def statuses(report: Any) -> dict[str, int]:
    counts = report.rows["status"].astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


# --------------------------------------------------------------------------- idempotency keys


def _copy_state(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(src) + suffix)
        target = Path(str(dst) + suffix)
        if source.exists():
            shutil.copyfile(source, target)
        elif target.exists():
            target.unlink()


def test_a_resumed_run_sends_the_same_idempotency_keys(
    sandbox: Sandbox, client: Client, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    upsert(people(3), client, state=state, progress=False)  # run 0: three contacts confirmed
    before = tmp_path / "before-run-1.db"
    _copy_state(state, before)

    # Run 1: the three renamed. The ledger knows each contact, so each is one PATCH
    # straight to its id, with nothing to discover first.
    frame = people(3, name="G")
    mark = len(sandbox.request_log())
    first = upsert(frame, client, state=state, progress=False)
    assert statuses(first) == {"updated": 3}
    sent = writes_since(sandbox, mark)
    assert len(sandbox.request_log()) - mark == 3  # the three PATCHes, no discovery

    # As if run 1 had been killed before any of its outcomes reached the ledger: the
    # resumed run sends the same writes under the same keys, and the server replays
    # its stored answers instead of acting twice.
    _copy_state(before, state)
    mark = len(sandbox.request_log())
    again = upsert(frame, client, state=state, progress=False)
    resent = writes_since(sandbox, mark)

    keys = sorted((r.method, r.path, r.idempotency_key) for r in sent)
    assert [m for m, _, _ in keys] == ["PATCH"] * 3
    assert all(k for _, _, k in keys) and len({k for _, _, k in keys}) == 3
    assert sorted((r.method, r.path, r.idempotency_key) for r in resent) == keys
    assert all(r.replayed for r in resent)  # the server answered from its records
    assert statuses(again) == {"updated": 3}
    assert sorted(c["first_name"] for c in sandbox.contacts()) == ["G0", "G1", "G2"]


# --------------------------------------------------------------------------- unchanged = no PATCH


def numbers_frame() -> pd.DataFrame:
    frame = people(3)
    frame["custom.seats"] = [3, 0, 12]
    frame["custom.vip"] = [True, False, True]
    frame["custom.score"] = [1.5, 0.0, 2.25]
    return frame


def test_unchanged_numbers_and_booleans_send_nothing_the_second_time(
    sandbox: Sandbox, client: Client
) -> None:
    upsert(numbers_frame(), client, progress=False)
    stored = {c["email"]: c["custom_fields"] for c in sandbox.contacts()}
    assert stored == {
        "p0@example.com": {"seats": 3, "vip": True, "score": 1.5},
        "p1@example.com": {"seats": 0, "vip": False, "score": 0.0},
        "p2@example.com": {"seats": 12, "vip": True, "score": 2.25},
    }
    mark = len(sandbox.request_log())
    report = upsert(numbers_frame(), client, progress=False)  # no ledger: the listing tells
    assert statuses(report) == {"unchanged": 3}
    assert writes_since(sandbox, mark) == []  # 3 == 3.0, True is True: no PATCH (nor POST)
    assert [r.method for r in sandbox.request_log()[mark:]] == ["GET"]  # one listing page


def test_with_a_ledger_only_the_changed_field_is_patched(
    sandbox: Sandbox, client: Client, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    upsert(numbers_frame(), client, state=state, progress=False)
    frame = numbers_frame()
    frame.loc[3, "first_name"] = "Renamed"
    mark = len(sandbox.request_log())
    report = upsert(frame, client, state=state, progress=False)
    assert [r.method for r in writes_since(sandbox, mark)] == ["PATCH"]
    assert report.rows.loc[3, "status"] == "updated"
    assert report.rows.loc[3, "changes"] == "first_name"


def test_one_and_true_are_different_values(sandbox: Sandbox, client: Client) -> None:
    frame = people(1)
    frame["custom.flag"] = [1]
    upsert(frame, client, progress=False)
    frame["custom.flag"] = [True]  # JSON 1 and true differ, though 1 == True in Python
    mark = len(sandbox.request_log())
    report = upsert(frame, client, progress=False)
    assert report.rows.loc[2, "changes"] == "custom_fields.flag"
    assert [r.method for r in writes_since(sandbox, mark)] == ["PATCH"]  # known: no POST first
    assert sandbox.contacts()[0]["custom_fields"] == {"flag": True}


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_in_the_middle_reports_every_row_once(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT reaches only the main thread")
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("this process was started with Ctrl-C ignored")
    # An earlier upsert in this process must not have left its handler behind.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    sb = sandbox_factory(latency_ms=20)
    frame = people(120)
    guard = threading.Lock()
    state = {"running": True, "sent": False}

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if sum(r.method == "POST" for r in sb.request_log()) >= 10:
                with guard:
                    if state["running"]:
                        os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C does
                        state["sent"] = True
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=press_ctrl_c, daemon=True)
    with Client(sb.url, token=sb.token) as client:
        watcher.start()
        try:
            with pytest.raises(KeyboardInterrupt) as info:
                upsert(frame, client, batch_size=5, workers=2, progress=False)
        finally:
            with guard:
                state["running"] = False
            watcher.join()
    assert state["sent"]
    report = info.value.report  # type: ignore[attr-defined]
    assert report is last_report()
    assert report.aborted is not None and report.aborted.code == "interrupted"
    rows = report.rows
    assert sorted(rows.index) == list(frame.index)  # every row, exactly once
    status = rows["status"].astype(str)
    assert set(status) <= {"created", "skipped"}
    created = set(rows.loc[status == "created", "email"].astype(str))
    assert 10 <= len(created) < 120
    assert (rows.loc[status == "skipped", "error_code"] == "interrupted").all()
    assert {c["email"] for c in sb.contacts()} == created  # what was sent is what is reported
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --------------------------------------------------------------------------- ledger durability


def _open_files(path: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc")
    names = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(path)):
            names.append(target)
    return names


@pytest.mark.parametrize(("durable", "level"), [(False, 1), (True, 2)])
def test_the_ledger_is_wal_with_the_promised_sync_level(
    tmp_path: Path, connections: list[sqlite3.Connection], durable: bool, level: int
) -> None:
    path = tmp_path / "state.db"
    with Ledger(path, durable=durable) as led:
        led.record("r1", [LedgerOutcome("email:a@example.com", 2, "created", "ct_1", {})])
        (conn,) = connections
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == level  # 1 NORMAL, 2 FULL
    # WAL mode is stored in the file: any later connection sees it.
    with sqlite3.connect(path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_close_and_exit_release_every_handle(
    tmp_path: Path, connections: list[sqlite3.Connection]
) -> None:
    path = tmp_path / "state.db"
    led = Ledger(path)
    lock = led.lock()
    lock.__enter__()
    assert _open_files(tmp_path)  # the database and the lock file are open
    led.close()
    assert _open_files(tmp_path) == []
    with pytest.raises(sqlite3.ProgrammingError):
        connections[0].execute("SELECT 1")
    with Ledger(path) as again, again.lock():  # the lock was released by close()
        pass
    assert _open_files(tmp_path) == []
    with pytest.raises(sqlite3.ProgrammingError):
        connections[1].execute("SELECT 1")


def test_entries_read_every_column_into_the_right_field(tmp_path: Path) -> None:
    ada, bob = match_key({"email": "Ada@Example.com"}), match_key({"phone_number": "+447400123456"})
    assert (ada, bob) == ("email:ada@example.com", "phone:+447400123456")
    now = datetime.now().astimezone()
    before = now.replace(microsecond=now.microsecond // 1000 * 1000)  # stored to the millisecond
    with Ledger(tmp_path / "state.db") as led:
        led.record(
            "run-1",
            [
                LedgerOutcome(ada, 2, "created", "ct_ada", {"email": "ada@example.com"}),
                LedgerOutcome(bob, 3, "failed", "ct_bob", None, error_code="server_error"),
            ],
        )
        got = led.get([ada, bob, "email:nobody@example.com"])
    after = datetime.now().astimezone()
    a, b = got[ada], got[bob]
    assert set(got) == {ada, bob}
    assert (a.key, a.contact_id, a.status, a.run_id, a.error_code) == (
        ada, "ct_ada", "created", "run-1", None,
    )  # fmt: skip
    assert a.payload == {"email": "ada@example.com"}
    # sha256 of the canonical JSON, by hand: sha256sum <<< '{"email":"ada@example.com"}' (no \n)
    assert a.payload_hash == "e166e08e3b496ffb6a7469b8f6f573bdc14cdb25813e917b3605fdffd5332e40"
    assert (b.key, b.contact_id, b.status, b.run_id, b.error_code) == (
        bob, "ct_bob", "failed", "run-1", "server_error",
    )  # fmt: skip
    assert (b.payload, b.payload_hash) == ({}, "")
    for entry in (a, b):
        assert entry.updated_at is not None
        stamp = datetime.fromisoformat(entry.updated_at)
        assert before <= stamp <= after
