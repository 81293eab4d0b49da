"""The ledger's answers pinned by hand (issue 16: what its mutants showed was unchecked).

Durability (WAL, synchronous, closed handles, the columns of every entry) is
pinned in test_behaviour_pinned.py; this file holds the rest: what a payload
looks like once canonical, ages, erasure terms, and that results are values.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import stat
import threading
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from synckit.errors import ConfigError, StateLockedError, SynckitError
from synckit.ledger import (
    Erasure,
    Ledger,
    LedgerEntry,
    LedgerOutcome,
    canonical_payload,
    erasure_terms,
    parse_age,
)


def test_a_payload_is_canonical_plain_json_values() -> None:
    """numpy scalars become Python numbers, tuples lists, custom keys strings; NA at the
    top is dropped, a None inside custom_fields is kept (it removes that key)."""
    got = canonical_payload(
        {
            "email": " Ada@Example.COM ",
            "last_name": pd.NA,
            "custom_fields": {"seats": np.int64(3), "score": np.float64(1.5), "gone": None},
            "tags": ("a", np.int64(2)),
            7: True,
        }
    )
    assert got == {
        "email": "ada@example.com",
        "custom_fields": {"seats": 3, "score": 1.5, "gone": None},
        "tags": ["a", 2],
        "7": True,
    }
    seats, score = got["custom_fields"]["seats"], got["custom_fields"]["score"]
    assert (type(seats), type(score), type(got["tags"][1])) == (int, float, int)


def test_a_value_with_an_item_method_that_is_not_numpy_is_kept_as_it_is() -> None:
    class Box:
        def item(self) -> str:
            return "unboxed"

    box = Box()
    assert canonical_payload({"custom_fields": {"x": box}})["custom_fields"]["x"] is box


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),  # under a day: still an age
        ("90d", timedelta(days=90)),
        ("2w", timedelta(days=14)),
        (" 1.5 H ", timedelta(minutes=90)),
        (timedelta(seconds=1), timedelta(seconds=1)),
    ],
)
def test_ages_by_hand(text: Any, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["0s", "0d", timedelta(0), timedelta(seconds=-1), "90", "d"])
def test_an_age_must_be_a_number_a_unit_and_more_than_zero(text: Any) -> None:
    with pytest.raises(ConfigError):
        parse_age(text)


@pytest.mark.parametrize("value", ["@example.com", "ada@", "@"])
def test_an_email_needs_both_sides_of_the_at(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^value 2 is not an email address$"):
        erasure_terms(["bob@example.com", value])


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (LedgerEntry("email:a@b.c", "ct_1", {}, "", "created", "r1"), "status"),
        (LedgerOutcome("email:a@b.c", 2, "created"), "status"),
        (Erasure(contacts=1, runs=0, other=0, bytes_after=0), "contacts"),
    ],
)
def test_ledger_results_cannot_be_changed_once_made(value: Any, field: str) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)


# --------------------------------------------------------------------------- opening


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_by_default_normal_sync_and_a_30_s_wait_for_a_busy_file(
    tmp_path: Path, connections: list[sqlite3.Connection]
) -> None:
    path = tmp_path / "state.db"
    with Ledger(path) as led:  # durable not given: NORMAL (1), see the module docs
        led.record("r1", [LedgerOutcome("email:a@example.com", 2, "created", "ct_1", {})])
        (conn,) = connections
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
        led.forget(["a@example.com"])  # the erasure waits 5 s at most, then 30 s again
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    reader = Ledger.open_existing(path)
    assert reader is not None
    with reader:
        assert connections[1].execute("PRAGMA busy_timeout").fetchone()[0] == 30_000
    assert repr(reader) == f"Ledger({str(path)!r})"


def test_a_read_only_ledger_reads_from_any_thread_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Ledger(path) as led:
        led.record("r1", [LedgerOutcome("email:a@example.com", 2, "created", "ct_1", {})])
    os.chmod(path, 0o640)  # e.g. shared with a group on purpose
    before = path.stat().st_mtime_ns
    reader = Ledger.open_existing(path)
    assert reader is not None
    got: list[Any] = []
    try:
        worker = threading.Thread(target=lambda: got.append(reader.get(["email:a@example.com"])))
        worker.start()
        worker.join()
        assert got[0]["email:a@example.com"].contact_id == "ct_1"
        with pytest.raises(SynckitError, match="readonly"):
            reader.record("r2", [LedgerOutcome("email:b@example.com", 3, "created", "ct_2", {})])
    finally:
        reader.close()
    assert _mode(path) == 0o640 and path.stat().st_mtime_ns == before


def test_a_file_that_is_no_ledger_is_refused_when_opened(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(SynckitError, match=r"cannot open state file .*no such table: contacts"):
        Ledger.open_existing(other)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database, just text " * 100)
    with pytest.raises(SynckitError, match=r"cannot open state file .*not a database"):
        Ledger.open_existing(junk)


def test_an_in_memory_ledger_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Ledger(":memory:") as led:
        led.record("r1", [LedgerOutcome("email:a@example.com", 2, "created", "ct_1", {})])
        assert len(led) == 1
    assert list(tmp_path.iterdir()) == []


def _open_fds_to(path: Path) -> int:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc")
    count = 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd) == str(path)
        except OSError:
            continue
    return count


def test_a_refused_lock_leaves_no_handle_open_and_names_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / "state.db.lock"
    lock.write_text("1234567890")  # left by a run that was killed: longer than any pid here
    with Ledger(tmp_path / "state.db") as first, first.lock():
        second = Ledger(tmp_path / "state.db")
        held_by = rf"another synckit run \(process {os.getpid()}\)"
        with pytest.raises(StateLockedError, match=held_by):
            second.lock().__enter__()
        assert _open_fds_to(first.lock_path) == 1  # the holder's own
        assert first.lock_path.read_text() == str(os.getpid())
        second.close()
    assert _open_fds_to(first.lock_path) == 0
    assert lock.read_text() == ""  # released: no holder named any more


def test_releasing_the_lock_closes_its_file_explicitly(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with Ledger(tmp_path / "state.db") as led:
            with led.lock():
                pass
            with led.lock():  # and it can be taken again
                pass
    assert [w for w in seen if issubclass(w.category, ResourceWarning)] == []


def test_a_runs_options_are_stored_in_key_order_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with Ledger(path) as led:
        run = led.begin_run(
            options={"workers": 8, "api_token": "sk_live_x", "batch": 100, "note": "josé"}
        )
    with sqlite3.connect(path) as db:
        (stored,) = db.execute("SELECT options_json FROM runs WHERE run_id = ?", (run,)).fetchone()
    db.close()
    assert stored == '{"batch": 100, "note": "josé", "workers": 8}'


def test_runs_times_are_utc_even_before_the_first_run(tmp_path: Path) -> None:
    with Ledger(tmp_path / "state.db") as led:
        empty = led.runs()
        run = led.begin_run(source="a.csv")
        one = led.runs()
    assert len(empty) == 0 and str(empty["started_at"].dt.tz) == "UTC"
    assert str(empty["finished_at"].dt.tz) == "UTC"
    assert one["run_id"].tolist() == [run] and str(one["started_at"].dt.tz) == "UTC"


def test_outcomes_without_a_key_or_from_a_dry_run_are_skipped_not_the_rest(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "state.db") as led:
        led.record(
            "r1",
            [
                LedgerOutcome("", 2, "failed", error_code="invalid_email"),  # no key: no entry
                LedgerOutcome("email:a@example.com", 3, "would_create"),  # a dry run's
                LedgerOutcome("email:b@example.com", 4, "created", "ct_b", {}),
            ],
        )
        assert sorted(led.get(["email:a@example.com", "email:b@example.com"])) == [
            "email:b@example.com"
        ]
        assert len(led) == 1


# --------------------------------------------------------------------------- erasure


def test_forget_finds_a_person_in_every_table_and_column_and_counts_where(tmp_path: Path) -> None:
    """josé@example.com is held by: its own entry, bob's payload (a custom field), a run's
    options (written now, and by an older synckit with \\u escapes), and a table added
    by hand whose columns are declared NUMERIC (SQLite keeps the text as text there)."""
    path = tmp_path / "state.db"
    jose = "josé@example.com"
    with Ledger(path) as led:
        led.record(
            "r1",
            [
                LedgerOutcome("email:" + jose, 2, "created", "ct_1", {"email": jose}),
                LedgerOutcome(
                    "email:bob@example.com",
                    3,
                    "created",
                    "ct_2",
                    {"email": "bob@example.com", "custom_fields": {"referrer": jose}},
                ),
                LedgerOutcome("email:cy@example.com", 4, "created", "ct_3", {}),
            ],
        )
        led.begin_run(options={"note": jose})
        kept_run = led.begin_run(options={"note": "nobody"})
        with sqlite3.connect(path) as db:
            db.execute(
                "INSERT INTO runs(run_id, started_at, options_json) VALUES (?, ?, ?)",
                ("old", "2020-01-01T00:00:00.000+00:00", json.dumps({"note": jose})),
            )
            db.execute("CREATE TABLE notes (who NUMERIC, n INTEGER)")
            db.execute("INSERT INTO notes VALUES (?, 1), ('cy@example.com', 2)", (jose,))
        db.close()
        gone = led.forget(["JOSÉ@example.com".replace("É", "é")])
        assert (gone.contacts, gone.runs, gone.other) == (2, 2, 1)
        assert sorted(led.get(["email:cy@example.com", "email:bob@example.com"])) == [
            "email:cy@example.com"
        ]
        assert led.runs()["run_id"].tolist() == [kept_run]
        assert led.prune("3650d").other == 0  # prune touches only runs and entries
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT who FROM notes").fetchall() == [("cy@example.com",)]
    db.close()
    assert jose.encode() not in path.read_bytes()
