"""Nightly runs (issue 6): the state ledger, incremental sends, resume, retry, lock, consent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _servers import wait_for_posts

from synckit.client import Client
from synckit.errors import StateLockedError
from synckit.ledger import Ledger
from synckit.sandbox import Sandbox
from synckit.sync import upsert

WRITES = {"POST", "PATCH", "DELETE"}


def people(n: int, *, start: int = 0) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "email": [f"p{i}@example.com" for i in range(start, start + n)],
            "phone_number": [f"+447400{i:06d}" for i in range(start, start + n)],
            "first_name": [f"F{i}" for i in range(start, start + n)],
            "email_consent": ["subscribed"] * n,
        }
    )
    frame.index = pd.RangeIndex(2 + start, 2 + start + n, name="row")
    return frame


def requests_since(sb: Sandbox, mark: int) -> list[Any]:
    return sb.request_log()[mark:]


@pytest.fixture
def client(sandbox: Sandbox) -> Any:
    with Client(sandbox.url, token=sandbox.token, backoff_base=0.02, backoff_cap=0.2) as c:
        yield c


def test_incremental_runs_send_only_what_changed(
    sandbox: Sandbox, client: Client, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    frame = people(40)
    first = upsert(frame, client, state=state, progress=False)
    assert first.counts()["created"] == 40

    mark = len(sandbox.request_log())
    second = upsert(frame, client, state=state, progress=False)
    assert second.counts()["unchanged"] == 40
    assert requests_since(sandbox, mark) == []  # nothing sent at all

    # In the platform, someone fixes a last name; in the file, two first names change
    # and one person is new.
    cid = first.rows.loc[5, "contact_id"]
    client.update_contact(cid, {"last_name": "Fixed"})
    changed = pd.concat([people(40), people(1, start=40)])
    changed.loc[5, "first_name"] = "Renamed"
    changed.loc[9, "first_name"] = "Other"
    mark = len(sandbox.request_log())
    third = upsert(changed, client, state=state, progress=False)
    counts = third.counts()
    assert (counts["updated"], counts["created"], counts["unchanged"]) == (2, 1, 38)
    sent = requests_since(sandbox, mark)
    # The ledger knows 40 rows: two changed ones go straight to PATCH; the new row is
    # discovered (one request: a listing page here, as cheap as a look-up) and created.
    assert sorted(r.method for r in sent) == ["GET", "PATCH", "PATCH", "POST"]
    assert third.discovery == {"pages": 1, "lookups": 0, "listing_complete": True}
    stored = {c["email"]: c for c in sandbox.contacts()}
    assert stored["p3@example.com"]["first_name"] == "Renamed"
    assert stored["p3@example.com"]["last_name"] == "Fixed"  # unchanged values never re-sent
    assert third.rows.loc[5, "changes"] == "first_name"

    with Ledger(state) as ledger:
        runs = ledger.runs()
    assert len(runs) == 3


def test_patch_404_falls_back_to_create(sandbox: Sandbox, client: Client, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    frame = people(3)
    first = upsert(frame, client, state=state, progress=False)
    old_id = first.rows.loc[3, "contact_id"]
    client.delete_contact(old_id)
    frame.loc[3, "first_name"] = "Back"
    second = upsert(frame, client, state=state, progress=False)
    row = second.rows.loc[3]
    assert row["status"] == "created" and row["contact_id"] != old_id
    stored = {c["email"]: c for c in sandbox.contacts()}
    assert stored["p1@example.com"]["first_name"] == "Back" and len(stored) == 3
    # A later change goes to the new contact id.
    frame.loc[3, "first_name"] = "Again"
    third = upsert(frame, client, state=state, progress=False)
    assert third.rows.loc[3, "status"] == "updated"
    assert third.rows.loc[3, "contact_id"] == row["contact_id"]


def test_retry_failed_resends_only_failed_rows(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(contact_limit=5)
    state = tmp_path / "state.db"
    frame = people(8)
    with Client(sb.url, token=sb.token) as c:
        first = upsert(frame, c, state=state, workers=1, progress=False)
        assert first.counts()["failed"] == 3
        failed_rows = set(first.rows.index[first.rows["status"] == "failed"])
        sb.config.contact_limit = None
        frame.loc[2, "first_name"] = "Changed but not failed"
        mark = len(sb.request_log())
        retry = upsert(frame, c, state=state, retry_failed=True, progress=False)
    status = retry.rows["status"].astype(str)
    assert set(status[status == "created"].index) == failed_rows
    assert status.loc[2] == "skipped" and retry.rows.loc[2, "error_code"] == "not_retried"
    sent = [r for r in sb.request_log()[mark:] if r.method in WRITES]
    assert len(sent) == 3
    assert len(sb.contacts()) == 8


def test_second_run_on_the_same_state_is_refused(
    sandbox: Sandbox, client: Client, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    with Ledger(state) as ledger, ledger.lock(), pytest.raises(StateLockedError):
        upsert(people(2), client, state=state, progress=False)
    assert sandbox.contacts() == []
    report = upsert(people(2), client, state=state, progress=False)  # the lock is free again
    assert report.counts()["created"] == 2


@pytest.mark.parametrize("use_state", [False, True], ids=["409-path", "ledger-path"])
def test_consent_protection(
    sandbox: Sandbox, client: Client, tmp_path: Path, use_state: bool
) -> None:
    state = tmp_path / "state.db" if use_state else None
    frame = pd.DataFrame(
        {
            "email": ["u@example.com", "s@example.com", "n@example.com"],
            "phone_number": ["+447400000001", "+447400000002", "+447400000003"],
            "first_name": ["U", "S", "N"],
            "email_consent": ["unsubscribed", "suppressed", "never_subscribed"],
            "sms_consent": ["unsubscribed", "unsubscribed", "never_subscribed"],
        },
        index=pd.RangeIndex(2, 5, name="row"),
    )
    if use_state:
        upsert(frame, client, state=state, progress=False)
    else:
        for rec in frame.to_dict("records"):
            client.create_contact(rec)
    later = frame.copy()
    later["email_consent"] = "subscribed"
    later["sms_consent"] = "single_opt_in"
    later.loc[2, "first_name"] = "U2"
    mark = len(sandbox.request_log())
    report = upsert(later, client, state=state, progress=False)
    stored = {c["email"]: c for c in sandbox.contacts()}
    assert stored["u@example.com"]["email_consent"] == "unsubscribed"
    assert stored["u@example.com"]["sms_consent"] == "unsubscribed"
    assert stored["u@example.com"]["first_name"] == "U2"
    assert stored["s@example.com"]["email_consent"] == "suppressed"
    # never_subscribed is not an opt-out: that person may be subscribed.
    assert stored["n@example.com"]["email_consent"] == "subscribed"
    assert stored["n@example.com"]["sms_consent"] == "single_opt_in"
    status = report.rows["status"].astype(str)
    assert status.loc[2] == "updated" and report.rows.loc[2, "changes"] == "first_name"
    assert status.loc[3] == "unchanged"  # only protected fields differed: nothing sent
    assert status.loc[4] == "updated"
    warnings = report.errors[report.errors["code"] == "consent_protected"]
    assert set(warnings["severity"]) == {"warning"}
    assert sorted(zip(warnings["row"], warnings["field"], strict=True)) == [
        (2, "email_consent"), (2, "sms_consent"), (3, "email_consent"), (3, "sms_consent"),
    ]  # fmt: skip
    assert report.exit_code() == 0  # warnings are not failures
    if use_state:
        # The ledger path reads the contact only because an opt-in value would be set.
        gets = [r for r in sandbox.request_log()[mark:] if r.method == "GET"]
        assert len(gets) == 3

    again = later.copy()
    again.loc[2, "first_name"] = "U3"
    resub = upsert(again, client, state=state, progress=False, allow_resubscribe=True)
    stored = {c["email"]: c for c in sandbox.contacts()}
    assert stored["u@example.com"]["email_consent"] == "subscribed"
    assert stored["s@example.com"]["email_consent"] == "subscribed"
    assert stored["u@example.com"]["sms_consent"] == "single_opt_in"
    assert not (resub.errors["code"] == "consent_protected").any()


def test_update_without_opt_in_pays_no_read(
    sandbox: Sandbox, client: Client, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    frame = people(5)
    upsert(frame, client, state=state, progress=False)
    frame["first_name"] = "New"
    mark = len(sandbox.request_log())
    report = upsert(frame, client, state=state, progress=False)
    assert report.counts()["updated"] == 5
    assert [r.method for r in sandbox.request_log()[mark:]] == ["PATCH"] * 5


def _sync_cmd(path: Path, state: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "synckit", "sync", str(path), "--state", str(state),
        "--no-progress", "--batch-size", "10", "--workers", "4", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_sigkill_then_resume_leaves_no_duplicates(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(drop_rate=0.2, latency_ms=15, seed=3)
    frame = people(300)
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    state = tmp_path / "state.db"
    env = {**os.environ, "SYNCKIT_BASE_URL": sb.url, "SYNCKIT_TOKEN": sb.token}
    proc = subprocess.Popen(
        _sync_cmd(path, state), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_posts(sb, proc, 120, timeout=60)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    partial = len(sb.contacts())
    assert 0 < partial < 300

    done = subprocess.run(
        _sync_cmd(path, state), env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    stored = {c["email"]: c for c in sb.contacts()}
    assert len(sb.contacts()) == 300 == len(stored)  # zero duplicates
    for rec in frame.to_dict("records"):
        c = stored[rec["email"]]
        assert (c["phone_number"], c["first_name"], c["email_consent"]) == (
            rec["phone_number"], rec["first_name"], rec["email_consent"],
        )  # fmt: skip
    report = pd.read_csv(tmp_path / "export.report.csv", dtype=str)
    assert set(report["status"]) <= {"created", "unchanged", "updated"}
    # Rows confirmed before the kill were not sent again.
    assert (report["status"] == "unchanged").sum() > 0
