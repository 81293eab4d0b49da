"""The answer-driven steps, with scripted answers (no server): every path a live server
reaches only by accident -- a 409 naming a contact, a 404 on the consent read or on a
PATCH, a retryable 409, a halt between two requests of one row, the two-contacts
conflict in a dry run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from synckit.errors import APIError, AuthError, Conflict, NotFound
from synckit.sync.flows import (
    Ask,
    Claim,
    Find,
    FlowOptions,
    Get,
    Patch,
    Post,
    drive,
    lookup_flow,
    step_flow,
)
from synckit.sync.outcome import Outcome
from synckit.sync.plan import UNKNOWN, Create, Known, PlanOptions, RowIn, Update, plan_row

BODY = {"email": "ada@example.com", "phone_number": "+447400000001", "first_name": "Ada"}


class Script:
    """Answers asks in order from a list; each item is an answer or an APIError to raise.

    Records every ask, and fails the test on an ask it did not expect.
    """

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.asked: list[Ask] = []

    def __call__(self, ask: Ask) -> Any:
        self.asked.append(ask)
        assert self.answers, f"unexpected ask {ask!r}"
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def kinds(self) -> list[str]:
        return [type(a).__name__ for a in self.asked]


def conflict(existing: str | None = "ct_9", *, retryable: bool = False) -> Conflict:
    code = "request_in_progress" if retryable else "conflict"
    return Conflict("taken", status=409, code=code, existing_id=existing, retryable=retryable,
                    request_id="req_409")  # fmt: skip


def gone() -> NotFound:
    return NotFound("not found", status=404, code="not_found")


def run(step: Create | Update, script: Script, **opts: Any) -> Outcome:
    out = drive(step_flow(step, FlowOptions(**opts)), script)
    assert not script.answers, f"answers left over: {script.answers}"
    assert isinstance(out, Outcome)
    return out


# --------------------------------------------------------------------------- creates


def test_create() -> None:
    script = Script({"id": "ct_1"})
    out = run(Create(BODY), script)
    assert (out.status, out.contact_id, out.confirmed) == ("created", "ct_1", BODY)
    assert script.asked == [Post(BODY, "create", "")]


def test_409_on_a_create_updates_the_named_contact_with_what_differs() -> None:
    current = {"id": "ct_9", **BODY, "first_name": "Old", "last_name": "Kept"}
    script = Script(conflict(), None, current, {"id": "ct_9"})
    out = run(Create(BODY), script)
    assert script.kinds() == ["Post", "Claim", "Get", "Patch"]
    assert script.asked[1] == Claim("ct_9") and script.asked[2] == Get("ct_9")
    assert script.asked[3] == Patch("ct_9", {"first_name": "Ada"})
    assert (out.status, out.contact_id, out.changes) == ("updated", "ct_9", "first_name")


def test_409_naming_an_identical_contact_is_unchanged_without_a_patch() -> None:
    script = Script(conflict(), None, {"id": "ct_9", **BODY})
    out = run(Create(BODY), script)
    assert out.status == "unchanged" and script.kinds() == ["Post", "Claim", "Get"]


def test_409_naming_a_contact_another_row_writes_is_a_duplicate_and_changes_nothing() -> None:
    script = Script(conflict(), 17)  # the claim: row 17 holds ct_9
    out = run(Create(BODY), script)
    assert (out.status, out.error_code) == ("skipped", "duplicate_contact")
    assert "row 17" in (out.error_message or "") and "nothing was changed" in (
        out.error_message or ""
    )
    assert script.kinds() == ["Post", "Claim"]


def test_second_409_on_the_patch_is_the_two_contacts_failure() -> None:
    current = {"id": "ct_a", "email": BODY["email"], "phone_number": "+447400000099"}
    script = Script(conflict("ct_a"), None, current, conflict("ct_b"))
    out = run(Create(BODY), script)
    assert (out.status, out.http_status, out.error_code) == ("failed", 409, "conflict")
    text = out.error_message or ""
    assert "ct_a" in text and "ct_b" in text and "nothing was changed" in text
    assert out.contact_id == "ct_a" and out.request_id == "req_409"


def test_retryable_409_on_a_create_fails_the_row() -> None:
    out = run(Create(BODY), Script(conflict(retryable=True)))
    assert (out.status, out.error_code) == ("failed", "request_in_progress")
    assert isinstance(out.error, Conflict)


# --------------------------------------------------------------------------- updates


def update(**kw: Any) -> Update:
    diff = kw.pop("diff", {"first_name": "Ada"})
    return Update("ct_1", BODY, diff, dict(BODY), **kw)


def test_update_is_one_patch_when_the_contact_is_known() -> None:
    script = Script({"id": "ct_1"})
    out = run(update(current={"id": "ct_1"}), script)
    assert script.asked == [Patch("ct_1", {"first_name": "Ada"})]
    assert (out.status, out.changes, out.confirmed) == ("updated", "first_name", BODY)


def test_404_on_a_patch_becomes_a_create() -> None:
    script = Script(gone(), {"id": "ct_2"})
    out = run(update(current={"id": "ct_1"}), script)
    assert script.asked[1] == Post(BODY, "recreate", "ct_1")  # its own idempotency key
    assert (out.status, out.contact_id) == ("created", "ct_2")


def test_a_create_after_a_404_that_meets_a_409_fails_rather_than_chase() -> None:
    out = run(update(current={"id": "ct_1"}), Script(gone(), conflict("ct_3")))
    assert (out.status, out.error_code) == ("failed", "conflict")


def test_retryable_409_on_a_patch_fails_the_row_with_its_code() -> None:
    out = run(update(current={"id": "ct_1"}), Script(conflict(retryable=True)))
    assert (out.status, out.http_status, out.error_code) == ("failed", 409, "request_in_progress")
    assert out.request_id == "req_409" and out.errors[0]["code"] == "request_in_progress"
    # the server's own words: a retryable 409 is not a conflict between two contacts
    assert out.error_message == "taken" and isinstance(out.error, Conflict)


def test_opt_in_with_unknown_consents_reads_first_and_keeps_an_opt_out() -> None:
    step = update(diff={"email_consent": "subscribed", "first_name": "Ada"})
    current = {"id": "ct_1", "email_consent": "unsubscribed"}
    script = Script(current, {"id": "ct_1"})
    out = run(step, script)
    assert script.asked == [Get("ct_1"), Patch("ct_1", {"first_name": "Ada"})]
    assert out.status == "updated" and out.changes == "first_name"
    assert [w["code"] for w in out.errors] == ["consent_protected"]
    assert out.confirmed is not None and out.confirmed["email_consent"] == "unsubscribed"


def test_only_a_protected_field_left_sends_nothing() -> None:
    step = update(diff={"sms_consent": "single_opt_in"})
    script = Script({"id": "ct_1", "sms_consent": "unsubscribed"})
    out = run(step, script)
    assert out.status == "unchanged" and script.kinds() == ["Get"]


def test_404_on_the_consent_read_becomes_a_create() -> None:
    step = update(diff={"email_consent": "subscribed"})
    script = Script(gone(), {"id": "ct_new"})
    out = run(step, script)
    assert script.asked == [Get("ct_1"), Post(BODY, "recreate", "ct_1")]
    assert (out.status, out.contact_id) == ("created", "ct_new")


def test_no_read_without_an_opt_in_or_with_allow_resubscribe() -> None:
    assert run(update(), Script({"id": "ct_1"})).status == "updated"
    step = update(diff={"email_consent": "subscribed"})
    script = Script({"id": "ct_1"})
    assert run(step, script, allow_resubscribe=True).status == "updated"
    assert script.kinds() == ["Patch"]


# --------------------------------------------------------------------------- dry run


def test_dry_run_never_writes() -> None:
    assert run(Create(BODY), Script(), dry_run=True).status == "would_create"
    out = run(update(current={"id": "ct_1"}), Script(), dry_run=True)
    assert (out.status, out.changes) == ("would_update", "first_name")
    # a read that consent protection needs still happens; the write does not
    script = Script({"id": "ct_1", "email_consent": "subscribed"})
    out = run(update(diff={"email_consent": "subscribed"}), script, dry_run=True)
    assert out.status == "unchanged" and script.kinds() == ["Get"]


def test_two_contacts_conflict_in_a_dry_run() -> None:
    # Look-ups: the email's contact holds another phone, so the phone is looked up too,
    # and it belongs to a second contact: the plan fails the row without any write.
    a = {"id": "ct_a", "email": BODY["email"], "phone_number": "+447400000099"}
    b = {"id": "ct_b", "email": "b@example.com", "phone_number": BODY["phone_number"]}
    script = Script([a], [b])
    known = drive(lookup_flow(BODY["email"], BODY["phone_number"], phone_after_miss=True), script)
    assert script.asked == [Find(email=BODY["email"]), Find(phone_number=BODY["phone_number"])]
    planned = plan_row(RowIn(0, 2, BODY, "email:ada@example.com"), known, None,
                       PlanOptions(dry_run=True))  # fmt: skip
    assert isinstance(planned.step, Outcome)
    assert (planned.step.status, planned.step.error_code) == ("failed", "conflict")
    assert (planned.step.error_message or "").endswith("the update would be refused")


# --------------------------------------------------------------------------- halting and errors


def halt_after(n: int) -> Callable[[], Outcome | None]:
    calls = {"n": 0}

    def halted() -> Outcome | None:
        calls["n"] += 1
        if calls["n"] >= n:
            return Outcome("skipped", error_code="interrupted", error_message="not sent")
        return None

    return halted


def test_a_run_halted_between_two_requests_of_one_row() -> None:
    # POST -> 409, the claim is granted, then the run stops before the GET: the row is
    # skipped, and its message says truly that nothing was changed for it.
    script = Script(conflict(), None)
    out = drive(step_flow(Create(BODY), FlowOptions()), script, halted=halt_after(1))
    assert script.kinds() == ["Post", "Claim"]
    assert (out.status, out.error_code) == ("skipped", "interrupted")
    assert out.error_message == "not sent (nothing was changed for this row)"


def test_halt_is_never_asked_before_the_first_request() -> None:
    script = Script({"id": "ct_1"})
    out = drive(step_flow(Create(BODY), FlowOptions()), script, halted=halt_after(1))
    assert out.status == "created"


def test_api_errors_end_the_row_as_failed_and_keep_the_error() -> None:
    err = AuthError("expired", status=401, code="unauthorized", request_id="req_a")
    out = run(Create(BODY), Script(err))
    assert (out.status, out.http_status, out.error_code) == ("failed", 401, "unauthorized")
    assert out.error is err  # the executor stops the run on it


@pytest.mark.parametrize(
    ("email", "phone", "after_miss", "answers", "asked", "known"),
    [
        # email found with the same phone: one request answers both
        ("a@x.io", "+441", False, [[{"id": "c1", "phone_number": "+441"}]], 1, ("c1", "c1")),
        # email miss: the create is the phone check (real run) ...
        ("a@x.io", "+441", False, [[]], 1, (None, UNKNOWN)),
        # ... but a dry run sends no create, so it asks
        ("a@x.io", "+441", True, [[], [{"id": "c2"}]], 2, (None, "c2")),
        # no email: the phone
        (None, "+441", False, [[]], 1, (UNKNOWN, None)),
    ],
)
def test_lookup_flow_asks_only_what_can_change_the_plan(
    email: str | None,
    phone: str | None,
    after_miss: bool,
    answers: list[Any],
    asked: int,
    known: tuple[Any, Any],
) -> None:
    script = Script(*answers)
    got = drive(lookup_flow(email, phone, phone_after_miss=after_miss), script)
    assert isinstance(got, Known) and len(script.asked) == asked

    def ident(x: Any) -> Any:
        return x["id"] if isinstance(x, dict) else x

    assert (ident(got.by_email), ident(got.by_phone)) == known


def test_lookup_error_is_kept_with_what_was_known() -> None:
    err = APIError("boom", status=500, code="internal_error")
    got = drive(lookup_flow("a@x.io", "+441", phone_after_miss=False), Script(err))
    assert got.error is err and got.by_email is UNKNOWN
