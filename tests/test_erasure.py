"""Erasure and retention: ``Ledger.forget`` / ``prune`` and their commands.

"Gone" is checked the hard way: the bytes of the state file, its ``-wal`` and
its ``-shm`` are scanned for the person's email, phone number and names, the
current ones and those an earlier update replaced.
"""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from synckit.cli import main
from synckit.errors import ConfigError, InputError, StateLockedError, SynckitError
from synckit.ledger import Ledger, LedgerOutcome, erasure_terms, parse_age

ADA = {"email": "ada.lovelace@example.com", "phone_number": "+447911123456",
       "first_name": "Yolanda-" + "y" * 60}  # fmt: skip
ADA_NOW = {**ADA, "first_name": "Zebedee"}
# Bytes that must not survive Ada's erasure (the old first name is in free space).
ADA_TRACES = [b"ada.lovelace@example.com", b"+447911123456", b"Yolanda", b"Zebedee"]
CLEO = "phone:+447400123456"


def files(path: Path) -> dict[str, bytes]:
    out = {}
    for suffix in ("", "-wal", "-shm"):
        f = Path(f"{path}{suffix}")
        if f.exists():
            out[suffix or "db"] = f.read_bytes()
    return out


def traces(path: Path, needles: list[bytes]) -> list[str]:
    return [
        f"{name}:{n.decode()}" for name, data in files(path).items() for n in needles if n in data
    ]


def build(path: Path, *, close: bool = True) -> Ledger:
    """Ada created, checkpointed into the main file, then updated (her old name stays in the
    page's free space); Bob and others around her; Cleo a failed row that names Ada in a
    custom field; Dan, who must survive."""
    led = Ledger(path)
    with led.lock():
        run = led.begin_run(source="contacts.csv")
        led.record(run, [LedgerOutcome("email:" + ADA["email"], 2, "created", "ct_ada", ADA)])
        led.record(run, [
            LedgerOutcome(f"email:p{i}@example.com", 3 + i, "created", f"ct_{i}",
                          {"email": f"p{i}@example.com", "first_name": "P" * 40})
            for i in range(120)
        ])  # fmt: skip
        led.end_run(run, counts={"created": 121}, exit_code=0)
    led.close()  # the last close checkpoints: Ada's first payload is now in the main file
    led = Ledger(path)
    with led.lock():
        run = led.begin_run(source="contacts.csv")
        led.record(run, [
            LedgerOutcome("email:" + ADA["email"], 2, "updated", "ct_ada", ADA_NOW),
            LedgerOutcome(CLEO, 3, "failed", None, None, "server_error"),
            LedgerOutcome("email:dan@example.com", 4, "created", "ct_dan",
                          {"email": "dan@example.com", "custom_fields": {"ref": "x"}}),
            LedgerOutcome("email:eve@example.com", 5, "created", "ct_eve",
                          {"email": "eve@example.com",
                           "custom_fields": {"referred_by": ADA["email"]}}),
        ])  # fmt: skip
        led.end_run(run, counts={"updated": 1}, exit_code=1)
    if close:
        led.close()
    return led


def test_forget_removes_every_trace_from_the_file_wal_included(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    led = build(path, close=False)
    reader = sqlite3.connect(path)  # another process looking at the file, between reads
    reader.execute("SELECT COUNT(*) FROM contacts").fetchone()
    assert traces(path, ADA_TRACES)  # before: everywhere
    try:
        erased = led.forget([" Ada.Lovelace@Example.COM "])
        # Ada's own entry and Eve's, whose custom field named her.
        assert (erased.contacts, erased.runs, erased.other) == (2, 0, 0)
        assert traces(path, ADA_TRACES) == []
        assert set(led.get(["email:dan@example.com", CLEO])) == {"email:dan@example.com", CLEO}
        assert len(led) == 120 + 2  # the others, Dan and Cleo
        # The phone number Ada's entry held is gone with it; a phone alone works too.
        assert led.forget(["+44 7400 123456"]).contacts == 1
        assert led.get([CLEO]) == {}
        assert traces(path, [b"+447400123456"]) == []
    finally:
        reader.close()
        led.close()


def test_forget_by_phone_in_national_format(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    build(path)
    with Ledger(path) as led:
        assert led.forget(["07911 123456"], default_region="GB").contacts == 1  # Ada's entry
    assert traces(path, ADA_TRACES[1:2]) == []


def test_forget_only_whole_values(tmp_path: Path) -> None:
    with Ledger(tmp_path / "s.db") as led:
        led.record("r", [LedgerOutcome("phone:+12015551208", 2, "created", "ct_1",
                                       {"phone_number": "+12015551208"})])  # fmt: skip
        assert led.forget(["+1201555120"]).contacts == 0  # a prefix of someone else's number
        assert led.forget(["da@example.com"]).contacts == 0
        assert len(led) == 1


def test_forget_refuses_what_is_neither_email_nor_phone(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="value 2 is neither") as info:
        erasure_terms(["a@example.com", "12"])
    assert "12" not in str(info.value).replace("value 2", "")
    assert erasure_terms(["+44 7700 900123"]) == ["+447700900123"]  # drama range, not "valid"


def test_forget_waits_for_a_running_sync(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Ledger(path) as running, running.lock(), Ledger(path) as other:
        with pytest.raises(StateLockedError):
            other.forget(["ada@example.com"])
        assert running.forget(["ada@example.com"]).contacts == 0  # the holder itself may


def test_a_reader_mid_transaction_is_reported_not_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import synckit.ledger

    monkeypatch.setattr(synckit.ledger, "_SCRUB_WAIT_MS", 50)
    path = tmp_path / "s.db"
    build(path)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM contacts").fetchone()  # holds a read snapshot
    try:
        with Ledger(path) as led, pytest.raises(SynckitError, match="run the command again"):
            led.forget([ADA["email"]])
    finally:
        reader.execute("COMMIT")
        reader.close()
    with Ledger(path) as led:
        led.forget([ADA["email"]])  # once the reader is done, a second run finishes the job
    assert traces(path, ADA_TRACES) == []


# ------------------------------------------------------------------ prune


def test_prune_removes_old_runs_and_entries_and_their_bytes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    build(path)
    old = (datetime.now(UTC) - timedelta(days=200)).isoformat(timespec="milliseconds")
    with sqlite3.connect(path) as db:  # Ada and the first run are from 200 days ago
        db.execute("UPDATE contacts SET updated_at=? WHERE key=?", (old, "email:" + ADA["email"]))
        db.execute("UPDATE runs SET started_at=? WHERE rowid=1", (old,))
    with Ledger(path) as led:
        erased = led.prune("90d")
        assert (erased.contacts, erased.runs) == (1, 1)
        assert len(led.runs()) == 1 and len(led) == 120 + 3
    # Her own entry's bytes are gone (Eve's recent entry still names her email: prune is
    # about age, forget about people).
    assert traces(path, ADA_TRACES[1:]) == []


def test_parse_age() -> None:
    assert parse_age("90d") == timedelta(days=90)
    assert parse_age(" 2W ") == timedelta(weeks=2)
    assert parse_age("36h") == timedelta(hours=36)
    for bad in ("90", "d", "-1d", "0d", "90 days"):
        with pytest.raises(ConfigError):
            parse_age(bad)


# ------------------------------------------------------------------ commands


def test_forget_and_prune_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.db"
    build(path)
    assert main(["forget", "--state", str(path), ADA["email"], "+447400123456"]) == 0
    out = capsys.readouterr().out
    assert "forgot 2 values: removed 3 ledger entries" in out and "@" not in out
    assert traces(path, ADA_TRACES) == []
    # Values from standard input stay out of the process list.
    monkeypatch.setattr("sys.stdin", io.StringIO("dan@example.com\n\n"))
    assert main(["forget", "--state", str(path), "--from-file", "-"]) == 0
    assert "removed 1 ledger entries" in capsys.readouterr().out
    assert main(["prune", "--state", str(path), "--older-than", "30d"]) == 0
    assert "removed 0 ledger entries, 0 runs" in capsys.readouterr().out


def test_commands_never_create_a_state_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(InputError):
        from synckit.cli._forget import run as forget

        forget(_ns(values=["a@example.com"], state=str(missing), from_file=None, region="US"))
    assert main(["prune", "--state", str(missing), "--older-than", "1d"]) == 2
    assert main(["prune", "--state", str(missing), "--older-than", "soon"]) == 2
    assert main(["forget", "--state", str(missing)]) == 2  # no values
    assert not missing.exists()


def _ns(**kw: object) -> object:
    import argparse

    return argparse.Namespace(**kw)
