"""Sync engine v2 against a real sandbox: know before you send, one write per contact,
and the defects of issue 10 (duplicates across chunks, --retry-failed of a fixed row, a
phantom run on a bad option, a dry run creating the state file, a report that did not
line up with its input, failed rows that did not read back)."""

from __future__ import annotations

import json
import os
import signal
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import synckit
from synckit.cli import main
from synckit.client import Client
from synckit.ledger import Ledger
from synckit.sandbox import Sandbox
from synckit.sync import upsert

WRITES = {"POST", "PATCH", "DELETE"}


@pytest.fixture
def client(sandbox: Sandbox) -> Any:
    with Client(sandbox.url, token=sandbox.token, backoff_base=0.02, backoff_cap=0.2) as c:
        yield c


def people(n: int, start: int = 0, **extra: Any) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "email": [f"p{i}@example.com" for i in range(start, start + n)],
            "phone_number": [f"+447400{i:06d}" for i in range(start, start + n)],
            "first_name": [f"F{i}" for i in range(start, start + n)],
            **extra,
        }
    )
    frame.index = pd.RangeIndex(2 + start, 2 + start + n, name="row")
    return frame


def sent(sb: Sandbox, mark: int) -> list[str]:
    return [r.method for r in sb.request_log()[mark:]]


# --------------------------------------------------------------------------- know before you send


def test_a_resend_costs_only_the_listing_and_its_dry_run_too(
    sandbox: Sandbox, client: Client
) -> None:
    frame = people(150)
    upsert(frame, client, progress=False)
    for dry_run in (False, True):
        mark = len(sandbox.request_log())
        report = upsert(frame, client, progress=False, dry_run=dry_run)
        assert report.counts()["unchanged"] == 150
        assert sent(sandbox, mark) == ["GET", "GET"]  # 150 contacts: two listing pages
        assert report.discovery == {"pages": 2, "lookups": 0, "listing_complete": True}


def test_two_rows_resolving_to_one_contact_write_it_once(sandbox: Sandbox, client: Client) -> None:
    held = client.create_contact({"email": "ada@example.com", "phone_number": "+447400000001"})
    frame = pd.DataFrame(
        {"email": ["ada@example.com", None], "phone_number": [None, "+447400000001"],
         "first_name": ["Ada", "Augusta"]},
    )  # fmt: skip
    mark = len(sandbox.request_log())
    report = upsert(frame, client, progress=False)
    first, second = report.rows.iloc[0], report.rows.iloc[1]
    assert (first["status"], first["contact_id"]) == ("updated", held["id"])
    assert (second["status"], second["error_code"]) == ("skipped", "duplicate_contact")
    assert held["id"] in second["error_message"] and "row 2" in second["error_message"]
    assert [m for m in sent(sandbox, mark) if m in WRITES] == ["PATCH"]
    problem = report.errors[report.errors["code"] == "duplicate_contact"]
    assert problem["row"].tolist() == [3] and problem["stage"].tolist() == ["plan"]
    assert len(report.failed_rows()) == 1


def test_in_flight_limit_is_read_as_rows_are_dispatched(sandbox: Sandbox, client: Client) -> None:
    calls: list[int] = []

    def one_at_a_time() -> int:
        calls.append(1)
        return 1

    frame = people(30)
    upsert(frame, client, workers=8, in_flight_limit=one_at_a_time, progress=False)
    assert len(calls) >= 30
    # One request in flight at a time, dispatched in row order: the server saw the rows
    # in file order (8 threads, but the limit held them to one).
    posts = [r for r in sandbox.request_log() if r.method == "POST"]
    order = [c["email"] for c in sandbox.contacts()]
    assert len(posts) == 30 and order == frame["email"].tolist()


def test_the_clients_concurrency_controller_is_the_default_limit(
    sandbox: Sandbox, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The executor reads client.concurrency.limit as rows are dispatched. Seen through
    # the property only (the client's own gate keeps its real, higher limit), a limit
    # of 1 must hold the 8 threads to one row at a time, in row order.
    seen = types.SimpleNamespace(limit=1, ceiling=8)
    monkeypatch.setattr(type(client), "concurrency", property(lambda self: seen))
    frame = people(20)
    upsert(frame, client, workers=8, progress=False)
    assert [c["email"] for c in sandbox.contacts()] == frame["email"].tolist()


# --------------------------------------------------------------------------- one write per contact


def test_duplicates_more_than_one_chunk_apart_are_found_by_the_cli(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [f"p{i}@example.com,+447400{i:06d},F{i}\n" for i in range(30)]
    # Row 25 repeats row 3's email with another phone and name: the last copy wins.
    lines[23] = "p1@example.com,+447400999999,Later\n"
    src = tmp_path / "people.csv"
    src.write_text("email,phone_number,first_name\n" + "".join(lines))
    state = tmp_path / "state.db"
    monkeypatch.setenv("SYNCKIT_BASE_URL", sandbox.url)
    monkeypatch.setenv("SYNCKIT_TOKEN", sandbox.token)
    args = ["sync", str(src), "--no-progress", "--chunk-size", "10", "--state", str(state)]
    assert main(args) == 1  # the duplicate is reported
    report = pd.read_csv(tmp_path / "people.report.csv", dtype=str, keep_default_na=False)
    dup = report[report["row"] == "3"].iloc[0]
    assert (dup["status"], dup["error_code"]) == ("invalid", "duplicate_in_file")
    assert "duplicate of row 25" in dup["error_message"]
    stored = {c["email"]: c for c in sandbox.contacts()}
    assert stored["p1@example.com"]["phone_number"] == "+447400999999"
    assert len(stored) == 29
    # The next night: nothing flips back and forth, nothing is written.
    mark = len(sandbox.request_log())
    assert main(args) == 1
    assert [m for m in sent(sandbox, mark) if m in WRITES] == []


def test_a_one_pass_stream_sends_the_first_copy(sandbox: Sandbox, client: Client) -> None:
    first = people(3)
    later = people(3, start=10)
    later.iloc[1, 0] = "p0@example.com"  # row 13 repeats row 2's email, a chunk later
    report = upsert(iter([first, later]), client, progress=False)
    row = report.rows.loc[13]
    assert (row["status"], row["error_code"]) == ("invalid", "duplicate_in_file")
    assert "duplicate of row 2" in row["error_message"]
    stored = {c["email"]: c for c in sandbox.contacts()}
    assert stored["p0@example.com"]["first_name"] == "F0" and len(stored) == 5


# --------------------------------------------------------------------------- defects 2-4


def test_retry_failed_sends_a_row_that_was_invalid_and_is_fixed(
    sandbox: Sandbox, client: Client, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    frame = people(3)
    frame.loc[3, "phone_number"] = "12"  # invalid
    assert upsert(frame, client, state=state, progress=False).counts()["invalid"] == 1
    frame.loc[3, "phone_number"] = "+447400000001"  # fixed
    frame.loc[4, "first_name"] = "Changed, but it did not fail"
    retry = upsert(frame, client, state=state, retry_failed=True, progress=False)
    status = retry.rows["status"].astype(str)
    assert status.loc[3] == "created"
    assert status.loc[4] == "skipped" and retry.rows.loc[4, "error_code"] == "not_retried"
    assert len(sandbox.contacts()) == 3


def test_a_bad_region_leaves_no_run_and_no_state_file(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "p.csv"
    src.write_text("email\nada@example.com\n")
    state = tmp_path / "state.db"
    monkeypatch.setenv("SYNCKIT_BASE_URL", sandbox.url)
    monkeypatch.setenv("SYNCKIT_TOKEN", sandbox.token)
    assert main(["sync", str(src), "--no-progress", "--region", "XX", "--state", str(state)]) == 2
    assert not state.exists() and sandbox.request_log() == []
    assert main(["sync", str(src), "--no-progress", "--state", str(state)]) == 0
    assert main(["sync", str(src), "--no-progress", "--region", "XX", "--state", str(state)]) == 2
    with Ledger(state) as ledger:
        assert len(ledger.runs()) == 1  # only the run that happened


def test_a_dry_run_never_creates_the_state_file(
    sandbox: Sandbox, client: Client, tmp_path: Path
) -> None:
    state = tmp_path / "new.db"
    report = upsert(people(2), client, state=state, dry_run=True, progress=False)
    assert report.counts()["would_create"] == 2
    assert list(tmp_path.iterdir()) == []
    # With a ledger from a real run, a dry run reads it and leaves it as it was.
    upsert(people(2), client, state=state, progress=False)
    before = Ledger(state)
    runs = len(before.runs())
    before.close()
    changed = people(2)
    changed.loc[2, "first_name"] = "New"
    mark = len(sandbox.request_log())
    plan = upsert(changed, client, state=state, dry_run=True, progress=False)
    assert plan.rows["status"].astype(str).tolist() == ["would_update", "unchanged"]
    assert sent(sandbox, mark) == []  # the ledger knew both rows: no request at all
    with Ledger(state) as after:
        assert len(after.runs()) == runs


# --------------------------------------------------------------------------- defects 5-6


def test_the_report_lines_up_with_the_input_and_keeps_its_source(
    sandbox: Sandbox, client: Client
) -> None:
    df = pd.DataFrame(
        {"email": ["a@example.com", "bad@", "c@example.com"], "first_name": ["A", "B", "C"]},
        index=[10, 20, 30],
    )
    report = upsert(df, client, progress=False)
    assert report.rows.index.tolist() == [10, 20, 30]
    assert report.rows["row"].tolist() == [12, 22, 32]  # validate's numbering, as errors use
    joined = df.join(report.rows[["status"]])
    assert joined["status"].tolist() == ["created", "invalid", "created"]
    assert report.errors["row"].tolist() == [22]
    # Rows carrying their own file and row number (e.g. from Dask partitions) keep both.
    parts = pd.DataFrame(
        {"email": ["d@example.com", "nope"], "source": ["a.csv", "b.csv"], "row": [7, 7]}
    )
    tagged = upsert(parts, client, progress=False)
    assert tagged.rows["source"].astype(str).tolist() == ["a.csv", "b.csv"]
    assert tagged.errors["source"].astype(str).tolist() == ["b.csv"]


def test_failed_rows_read_back_with_read_csv(client: Client, tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "email": ["ok@example.com", "broken@", "also@example.com"],
            "phone_number": [None, "+447400000002", "12"],
            "custom_fields": [{"plan": "pro"}, {"plan": "team", "seats": 3}, None],
            "custom.tier": [None, "gold", None],
            "notes": ["x", "call back", "y"],
        }
    )
    report = upsert(df, client, progress=False)
    failed = report.failed_rows()
    assert list(failed.columns) == list(df.columns) and failed.index.tolist() == [1, 2]
    path = tmp_path / "to_fix.csv"
    failed.to_csv(path)
    back = synckit.read_csv(path)
    # custom fields stay columns until sent (issue 14): the JSON as written, and custom.tier
    assert json.loads(back.loc[2, "custom_fields"]) == {"plan": "team", "seats": 3}
    assert back.loc[2, "custom.tier"] == "gold"
    check = synckit.validate(back)
    assert not (check.errors["code"] == "nested_custom_fields").any()
    assert sorted(check.errors["code"]) == ["invalid_email", "invalid_phone"]


def test_ctrl_c_while_the_input_is_read_sends_nothing_and_reports_every_row(
    sandbox: Sandbox, client: Client
) -> None:
    reads: list[int] = []

    def chunks() -> Any:
        for k in range(3):
            reads.append(k)
            if reads == [0, 1]:  # Ctrl-C once, while the engine reads (scans) the input
                os.kill(os.getpid(), signal.SIGINT)
            yield people(10, start=10 * k)

    with pytest.raises(KeyboardInterrupt) as info:
        upsert(chunks, client, progress=False)
    report = info.value.report  # type: ignore[attr-defined]
    assert report.aborted.code == "interrupted"
    assert report.rows.index.tolist() == list(range(2, 32))  # every row, once
    assert set(report.rows["error_code"]) == {"interrupted"}
    assert sandbox.request_log() == []  # not even the listing
    # The scan stopped reading at once; the report then read the input through.
    assert reads == [0, 1, 0, 1, 2]
