"""The sync engine against a real sandbox over loopback (issue 5)."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

import synckit
from synckit import rules
from synckit.client import Client
from synckit.errors import ConfigError, PermissionDenied
from synckit.sandbox import Sandbox
from synckit.sync import last_report, upsert
from synckit.sync.plan import diff as _diff

WRITES = {"POST", "PATCH", "DELETE"}


def contacts_frame(n: int, *, start: int = 0, seed: int = 1) -> pd.DataFrame:
    """``n`` valid, distinct contacts with every kind of field; index = spreadsheet rows."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for i in range(start, start + n):
        row: dict[str, Any] = {
            "email": f"Person{i}@Example.com",
            "phone_number": f"+447400{i:06d}" if i % 3 else None,
            "first_name": f"First{i}",
            "last_name": rng.choice(["Lovelace", "Hopper", None, "Turing"]),
            "email_consent": rng.choice(["subscribed", "never_subscribed", None]),
            "sms_consent": "single_opt_in" if i % 3 else None,
            "custom_fields": {"plan": rng.choice(["pro", "free"]), "seats": i % 7}
            if i % 2
            else None,
        }
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.index = pd.RangeIndex(2 + start, 2 + start + n, name="row")
    return frame


def stored_by_email(sb: Sandbox) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for c in sb.contacts():
        assert c["email"] not in out, f"duplicate contact for {c['email']}"
        out[c["email"]] = c
    return out


def assert_matches(stored: dict[str, Any], row: pd.Series) -> None:
    """The stored contact has exactly the row's (normalised) fields."""
    assert stored["email"] == str(row["email"]).lower()
    for name in ("phone_number", "first_name", "last_name", "email_consent", "sms_consent"):
        value = row[name]
        assert stored[name] == (None if pd.isna(value) else value), name
    custom = row["custom_fields"]
    assert (stored["custom_fields"] or None) == (custom if isinstance(custom, dict) else None)


def writes(sb: Sandbox) -> list[Any]:
    return [r for r in sb.request_log() if r.method in WRITES]


@pytest.fixture
def client_for() -> Any:
    made: list[Client] = []

    def make(sb: Sandbox, **kwargs: Any) -> Client:
        kwargs.setdefault("token", sb.token)
        # Short waits: the tests' faults are many, their latency tiny.
        kwargs.setdefault("backoff_base", 0.02)
        kwargs.setdefault("backoff_cap", 0.2)
        kwargs.setdefault("max_retries", 10)
        c = Client(sb.url, **kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def test_end_to_end_with_every_fault(
    sandbox_factory: Callable[..., Sandbox], client_for: Any
) -> None:
    sb = sandbox_factory(
        fail_rate=0.15, drop_rate=0.1, latency_ms=3, token_ttl=2, error_style="platform", seed=7
    )
    client = client_for(sb, token=None, client_id=sb.client_id, client_secret=sb.client_secret)
    frame = contacts_frame(240)
    # A few rows already in the platform, with stale fields: they go the 409 -> PATCH way.
    seed_client = client_for(sb)
    for i in range(0, 240, 20):
        seed_client.create_contact({"email": f"person{i}@example.com", "first_name": "Stale"})
    bad = pd.DataFrame(
        {"email": ["not-an-email", None], "phone_number": [None, "12"], "first_name": ["X", "Y"]},
        index=pd.Index([300, 301], name="row"),
    )
    data = pd.concat([frame, bad])
    sb.request_log()  # the seeding is not part of what we check below
    report = upsert(data, client, batch_size=25, workers=6, progress=False)

    rows = report.rows
    assert len(rows) == len(data) and list(rows.index) == list(data.index)
    assert rows.loc[[300, 301], "status"].tolist() == ["invalid", "invalid"]
    valid = rows.drop(index=[300, 301])
    assert set(valid["status"]) <= {"created", "updated"}, valid["status"].value_counts()
    assert (valid["status"] == "updated").sum() == 12
    stored = stored_by_email(sb)
    assert len(stored) == 240  # exactly one contact per valid key, no duplicates from retries
    for row_no, row in frame.iterrows():
        contact = stored[row["email"].lower()]
        assert_matches(contact, row)
        assert rows.loc[row_no, "contact_id"] == contact["id"]
        assert rows.loc[row_no, "email"] == row["email"].lower()
    assert (valid["attempts"] >= 1).all()
    assert valid["request_id"].notna().all()
    # Faults really happened and were absorbed.
    log = sb.request_log()
    assert any(r.status >= 500 for r in log) and any(r.dropped for r in log)
    assert report.ok is False and report.exit_code() == 1  # the two invalid rows
    local = report.errors[report.errors["stage"] == "validate"]
    assert set(local["row"]) == {300, 301}


def test_known_contact_gets_one_patch_of_only_what_differs(
    sandbox: Sandbox, client_for: Any
) -> None:
    client = client_for(sandbox)
    existing = client.create_contact(
        {"email": "ada@example.com", "first_name": "Old", "last_name": "Lovelace"}
    )
    frame = pd.DataFrame(
        {"email": ["ADA@example.com", "bob@example.com"], "first_name": ["Ada", "Bob"],
         "last_name": ["Lovelace", None]},
        index=pd.Index([2, 3], name="row"),
    )  # fmt: skip
    mark = len(sandbox.request_log())
    report = upsert(frame, client, progress=False)
    assert report.rows.loc[2, "status"] == "updated"
    assert report.rows.loc[2, "contact_id"] == existing["id"]
    assert report.rows.loc[2, "changes"] == "first_name"
    assert report.rows.loc[2, "attempts"] == 1  # the PATCH: the listing already showed it
    assert report.rows.loc[3, "status"] == "created"
    stored = stored_by_email(sandbox)
    assert stored["ada@example.com"]["first_name"] == "Ada" and len(stored) == 2
    sent = [(r.method, r.path.rsplit("/", 1)[-1], r.status) for r in sandbox.request_log()[mark:]]
    # One listing page (the whole account), then one write per row needing one.
    assert sorted(sent) == [
        ("GET", "contacts", 200), ("PATCH", existing["id"], 200), ("POST", "contacts", 201)
    ]  # fmt: skip
    assert report.discovery == {"pages": 1, "lookups": 0, "listing_complete": True}

    # The same rows again: nothing differs, so nothing is written at all.
    mark = len(sandbox.request_log())
    again = upsert(frame, client, progress=False)
    assert again.rows["status"].tolist() == ["unchanged", "unchanged"]
    assert [r.method for r in sandbox.request_log()[mark:]] == ["GET"]  # the listing page


def test_409_on_a_create_updates_the_contact_it_names(sandbox: Sandbox, client_for: Any) -> None:
    # 200 contacts and one row: listing would cost 2 pages, looking the row up 1, so the
    # engine lists one page and looks the rest up. The row's email is new but its phone
    # belongs to a contact on the second page: the create's 409 names that contact, which
    # is read (for the diff and consent) and patched.
    client = client_for(sandbox)
    for i in range(199):
        client.create_contact({"email": f"filler{i}@example.com"})
    owner = client.create_contact(
        {"email": "old@example.com", "phone_number": "+447400000001", "first_name": "Old"}
    )
    frame = pd.DataFrame(
        {"email": ["new@example.com"], "phone_number": ["+447400000001"], "first_name": ["New"]},
        index=pd.Index([2], name="row"),
    )
    mark = len(sandbox.request_log())
    report = upsert(frame, client, progress=False)
    row = report.rows.loc[2]
    assert (row["status"], row["contact_id"], row["changes"]) == (
        "updated", owner["id"], "email,first_name"
    )  # fmt: skip
    assert row["attempts"] == 3  # POST 409, GET, PATCH
    sent = [(r.method, r.status) for r in sandbox.request_log()[mark:]]
    # page 1, the email look-up (a miss), then POST 409 -> GET -> PATCH
    assert sent == [("GET", 200), ("GET", 200), ("POST", 409), ("GET", 200), ("PATCH", 200)]
    assert report.discovery == {"pages": 1, "lookups": 1, "listing_complete": False}
    stored = stored_by_email(sandbox)
    assert stored["new@example.com"]["id"] == owner["id"] and len(stored) == 200


def test_two_contacts_conflict_fails_the_row_and_changes_nothing(
    sandbox: Sandbox, client_for: Any
) -> None:
    client = client_for(sandbox)
    a = client.create_contact({"email": "a@example.com", "phone_number": "+447400000001"})
    b = client.create_contact({"email": "b@example.com", "phone_number": "+447400000002"})
    frame = pd.DataFrame(
        {"email": ["a@example.com"], "phone_number": ["+447400000002"], "first_name": ["New"]},
        index=pd.Index([2], name="row"),
    )
    mark = len(sandbox.request_log())
    report = upsert(frame, client, progress=False)
    row = report.rows.loc[2]
    assert row["status"] == "failed"
    assert a["id"] in row["error_message"] and b["id"] in row["error_message"]
    assert "nothing was sent" in row["error_message"]
    assert pd.isna(row["http_status"])  # found in the listing, before any write
    assert [r.method for r in sandbox.request_log()[mark:]] == ["GET"]
    stored = stored_by_email(sandbox)
    assert stored["a@example.com"]["phone_number"] == "+447400000001"
    assert stored["a@example.com"]["first_name"] is None  # nothing was changed
    assert stored["b@example.com"]["phone_number"] == "+447400000002"
    err = report.errors[report.errors["row"] == 2]
    assert len(err) == 1 and err["stage"].iloc[0] == "api"


def test_permission_denied_stops_the_run(sandbox: Sandbox, client_for: Any) -> None:
    sandbox.add_token("read-only-token")  # contacts:read only
    client = client_for(sandbox, token="read-only-token")
    frame = contacts_frame(200)
    report = upsert(frame, client, batch_size=10, workers=4, progress=False)
    assert report.aborted is not None and report.aborted.code == "permission_denied"
    assert report.exit_code() == 3 == report.aborted.exit_code
    counts = report.rows["status"].value_counts()
    assert counts.get("failed", 0) + counts.get("skipped", 0) == 200
    posts = [r for r in sandbox.request_log() if r.method == "POST"]
    # At most what was already in flight when the first 403 came back.
    assert 1 <= len(posts) <= 4 + 10
    skipped = report.rows[report.rows["status"] == "skipped"]
    assert len(skipped) >= 180
    assert (skipped["error_code"] == "permission_denied").all()
    assert sandbox.contacts() == []
    assert len(report.failed_rows()) == 200

    with pytest.raises(PermissionDenied) as info:
        upsert(frame.head(5), client, progress=False, raise_on_error=True, workers=1)
    assert info.value.report.aborted.code == "permission_denied"  # type: ignore[attr-defined]


def test_invalid_client_aborts_with_exit_code_3(sandbox: Sandbox, client_for: Any) -> None:
    client = client_for(sandbox, token=None, client_id="nobody", client_secret="wrong")
    report = upsert(contacts_frame(30), client, batch_size=5, workers=2, progress=False)
    assert report.exit_code() == 3
    assert report.aborted is not None
    assert sandbox.contacts() == []
    assert report.aborted.code == "invalid_client"
    assert "wrong" not in str(report.aborted)  # never the secret


def test_quota_fails_creates_and_updates_go_on(
    sandbox_factory: Callable[..., Sandbox], client_for: Any
) -> None:
    sb = sandbox_factory(contact_limit=3)
    client = client_for(sb)
    client.create_contact({"email": "person0@example.com"})
    client.create_contact({"email": "person1@example.com"})
    frame = contacts_frame(6)
    report = upsert(frame, client, workers=1, progress=False)
    status = report.rows["status"]
    assert status.loc[[2, 3]].tolist() == ["updated", "updated"]
    assert (status == "created").sum() == 1
    failed = report.rows[status == "failed"]
    assert len(failed) == 3 and set(failed["error_code"]) == {"quota_exceeded"}
    assert len(sb.contacts()) == 3


def test_dry_run_sends_no_write(sandbox: Sandbox, client_for: Any) -> None:
    client = client_for(sandbox)
    client.create_contact({"email": "person0@example.com", "first_name": "First0"})
    client.create_contact({"email": "person1@example.com", "first_name": "Someone"})
    client.create_contact({"email": "other@example.com", "phone_number": "+447400000004"})
    frame = contacts_frame(6)[["email", "phone_number", "first_name"]]
    frame.loc[7, "email"] = "broken@"
    before = len(writes(sandbox))
    plan = upsert(frame, client, dry_run=True, progress=False)
    assert len(writes(sandbox)) == before
    status = plan.rows["status"].astype(str).tolist()
    # row 2: same fields; row 3: first_name differs (+ phone); row 6: phone belongs to
    # "other" while the email is new -> update of that contact; 4, 5 new; 7 invalid.
    assert status == ["unchanged", "would_update", "would_create", "would_create",
                      "would_update", "invalid"], status  # fmt: skip
    assert plan.rows.loc[3, "changes"] == "phone_number,first_name"
    assert plan.dry_run and plan.ok is False
    assert set(plan.summary().index) >= {"would_create", "would_update", "unchanged"}


def test_streamed_chunks_report_every_row_once(sandbox: Sandbox, client_for: Any) -> None:
    client = client_for(sandbox)
    frame = contacts_frame(95)
    frame.loc[50, "email"] = "bad@@example.com"
    chunks = (frame.iloc[i : i + 20] for i in range(0, len(frame), 20))
    report = upsert(chunks, client, batch_size=7, workers=3, progress=False)
    assert list(report.rows.index) == list(frame.index)
    assert Counter(report.rows["status"].astype(str)) == {"created": 94, "invalid": 1}
    assert report.failed_input is not None and list(report.failed_input.index) == [50]
    assert len(sandbox.contacts()) == 94


def test_accepts_a_validation(sandbox: Sandbox, client_for: Any) -> None:
    client = client_for(sandbox)
    frame = contacts_frame(4)
    frame.loc[3, "email_consent"] = "maybe"
    check = synckit.validate(frame)
    report = upsert(check, client, progress=False)
    assert report.rows["status"].astype(str).tolist() == [
        "created",
        "invalid",
        "created",
        "created",
    ]
    assert report.errors.loc[0, "code"] == "invalid_choice"


def test_ctrl_c_returns_report_on_the_exception(
    sandbox_factory: Callable[..., Sandbox], client_for: Any
) -> None:
    sb = sandbox_factory(latency_ms=20)
    client = client_for(sb)

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if sum(r.method == "POST" for r in sb.request_log()) >= 10:
                break
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            upsert(contacts_frame(60), client, batch_size=10, workers=2, progress=False)
    finally:
        presser.join()
    report = info.value.report  # type: ignore[attr-defined]
    assert report is last_report()
    assert report.aborted.code == "interrupted" and report.exit_code() == 130  # the CLI exit code
    assert len(report.rows) == 60
    status = report.rows["status"].astype(str)
    created = set(status[status == "created"].index)
    assert len(created) >= 10
    skipped = report.rows[status == "skipped"]
    assert len(skipped) >= 10 and (skipped["error_code"] == "interrupted").all()
    assert set(status) == {"created", "skipped"}
    stored = stored_by_email(sb)
    assert len(stored) == len(created)  # every contact created is reported created


def test_options_are_checked(sandbox: Sandbox, client_for: Any) -> None:
    client = client_for(sandbox)
    frame = contacts_frame(1)
    with pytest.raises(ConfigError):
        upsert(frame, client, batch_size=0)
    with pytest.raises(ConfigError):
        upsert(frame, client, duplicates="first")
    with pytest.raises(ConfigError):
        upsert(frame, client, retry_failed=True)
    with pytest.raises(ConfigError):
        upsert(42, client)


def test_diff_sends_only_changed_custom_keys() -> None:
    current = {"email": "a@x.com", "first_name": "A", "custom_fields": {"plan": "pro", "seats": 3}}
    body = {"email": "A@x.com", "first_name": "A", "custom_fields": {"plan": "pro", "seats": 4}}
    assert _diff(body, current) == {"custom_fields": {"seats": 4}}
    assert _diff({"email": "a@x.com"}, current) == {}
    assert _diff({"custom_fields": {"vip": True}}, {"custom_fields": None}) == {
        "custom_fields": {"vip": True}
    }


def test_failed_rows_join_back_to_a_plain_frame(
    sandbox_factory: Callable[..., Sandbox], client_for: Any
) -> None:
    sb = sandbox_factory(contact_limit=2)
    client = client_for(sb)
    frame = contacts_frame(5).reset_index(drop=True)  # a plain 0..4 index
    frame.loc[1, "email"] = "nope"
    frame["notes"] = [f"note {i}" for i in range(5)]  # not a contract field: kept as given
    report = upsert(frame, client, workers=1, progress=False)
    assert list(report.rows.index) == [0, 1, 2, 3, 4]  # like the input: df.join lines up
    assert report.rows["row"].tolist() == [2, 3, 4, 5, 6]  # spreadsheet rows: index + 2
    joined = frame.join(report.rows[["status"]])
    assert joined.loc[1, "status"] == "invalid" and joined.loc[1, "email"] == "nope"
    problems = report.rows.index[report.rows["status"].isin(["invalid", "failed"])]
    failed = report.failed_rows()
    assert list(failed.index) == list(problems) == [1, 3, 4]
    assert failed.loc[1, "email"] == "nope"  # as given
    assert failed.loc[3, "first_name"] == frame.loc[3, "first_name"]
    assert list(failed.columns) == list(frame.columns)  # every input column, "notes" too


def test_progress_bar_only_on_a_terminal(
    sandbox: Sandbox,
    client_for: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = client_for(sandbox)
    upsert(contacts_frame(30), client, batch_size=10)  # stderr is not a TTY under pytest
    assert capsys.readouterr().err == ""
    from synckit.sync import run

    monkeypatch.setattr(run, "_is_tty", lambda: True)
    upsert(contacts_frame(30, start=30), client, batch_size=10)
    err = capsys.readouterr().err
    assert "30/30" in err and "row" in err
    upsert(contacts_frame(30, start=60), client, batch_size=10, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("style", ["contacts", "platform"])
def test_remote_validation_errors_are_one_row_per_field(
    sandbox_factory: Callable[..., Sandbox], client_for: Any, style: str
) -> None:
    # Local rules allow SMS to Brazil here; the API's list does not: only the server objects.
    sb = sandbox_factory(error_style=style)
    client = client_for(sb)
    frame = pd.DataFrame(
        {"email": ["br@example.com", "ok@example.com"],
         "phone_number": ["+5511961233999", None], "sms_consent": ["subscribed", None]},
        index=pd.Index([2, 3], name="row"),
    )  # fmt: skip
    countries = {"US", "GB", "BR"}
    report = upsert(frame, client, sms_countries=countries, progress=False)
    row = report.rows.loc[2]
    assert row["status"] == "failed"
    assert row["http_status"] == (422 if style == "contacts" else 400)
    assert row["error_code"] == "validation_failed"
    api = report.errors[report.errors["stage"] == "api"]
    assert api["field"].astype(str).tolist() == ["sms_consent"]
    assert api["message"].astype(str).tolist() == [rules.message("sms_country")]
    assert api["request_id"].iloc[0] == row["request_id"] and pd.notna(row["request_id"])
    assert api["value"].iloc[0] == "subscribed"
    assert report.rows.loc[3, "status"] == "created"


def test_rejected_token_aborts_and_skips_the_rest(sandbox: Sandbox, client_for: Any) -> None:
    client = client_for(sandbox, token="not-a-valid-token")
    report = upsert(contacts_frame(40), client, batch_size=5, workers=2, progress=False)
    assert report.aborted is not None and report.aborted.code == "auth_error"
    assert report.exit_code() == 3
    assert "not-a-valid-token" not in repr(report) + str(report.aborted)
    # The first request (the listing) is refused: nothing is written, every row skipped.
    assert (report.rows["status"] == "skipped").sum() == 40
    assert [r.method for r in sandbox.request_log()] == ["GET"]
