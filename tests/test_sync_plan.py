"""The planner, without a server: what each row needs, from what is known before sending."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest

from synckit.ledger import LedgerEntry, payload_hash
from synckit.sync.outcome import Outcome
from synckit.sync.plan import (
    UNKNOWN,
    Create,
    Known,
    Planned,
    PlanOptions,
    RowIn,
    Update,
    apply_owners,
    changes,
    diff,
    merge,
    needs_read,
    plan_row,
    protect,
)

ADA = {"email": "ada@example.com", "phone_number": "+447400000001", "first_name": "Ada"}


def row(body: dict[str, Any], pos: int = 0, number: int = 2) -> RowIn:
    key = "email:" + body["email"] if body.get("email") else "phone:" + body["phone_number"]
    return RowIn(pos=pos, row=number, body=body, key=key)


def held(cid: str, base: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"id": cid, **(base or {}), **fields}


def entry(body: dict[str, Any], cid: str = "ct_1", status: str = "created") -> LedgerEntry:
    return LedgerEntry(
        key="email:" + body["email"],
        contact_id=cid,
        payload=dict(body),
        payload_hash=payload_hash(body),
        status=status,
        run_id="run1",
    )


def plan(body: dict[str, Any], known: Known, e: LedgerEntry | None = None, **opts: Any) -> Planned:
    return plan_row(row(body), known, e, PlanOptions(**opts))


# --------------------------------------------------------------------------- no ledger


def test_new_row_is_one_create() -> None:
    p = plan(ADA, Known(by_email=None, by_phone=None))
    assert p.step == Create(ADA) and p.target is None


def test_identical_contact_is_unchanged_at_no_cost() -> None:
    p = plan(ADA, Known(by_email=held("ct_1", ADA, last_name="Kept"), by_phone=UNKNOWN))
    assert isinstance(p.step, Outcome)
    assert (p.step.status, p.step.contact_id, p.target) == ("unchanged", "ct_1", "ct_1")
    assert p.step.confirmed == ADA


def test_changed_contact_gets_only_the_fields_that_differ() -> None:
    body = {**ADA, "email": "ADA@example.com", "custom_fields": {"plan": "pro", "seats": "4"}}
    current = held("ct_1", ADA, first_name="Old", custom_fields={"plan": "pro", "seats": 3})
    p = plan(body, Known(by_email=current, by_phone=current))
    assert isinstance(p.step, Update)
    # email differs only in case; "plan" is the same; seats "4" (text) is not 3 (a number)
    assert p.step.diff == {"first_name": "Ada", "custom_fields": {"seats": "4"}}
    assert p.step.contact_id == "ct_1" and p.step.current is current and p.target == "ct_1"


def test_phone_match_when_the_email_is_free() -> None:
    current = held("ct_9", email="old@example.com", phone_number=ADA["phone_number"])
    p = plan(ADA, Known(by_email=None, by_phone=current))
    assert isinstance(p.step, Update) and p.step.contact_id == "ct_9"
    assert p.step.diff == {"email": "ada@example.com", "first_name": "Ada"}


def test_email_and_phone_on_two_contacts_fail_before_sending() -> None:
    a = held("ct_a", email=ADA["email"], phone_number="+447400000099")
    b = held("ct_b", email="b@example.com", phone_number=ADA["phone_number"])
    for dry_run, verdict in ((False, "nothing was sent"), (True, "the update would be refused")):
        p = plan(ADA, Known(by_email=a, by_phone=b), dry_run=dry_run)
        assert isinstance(p.step, Outcome) and p.step.status == "failed"
        assert p.step.error_code == "conflict" and p.target is None
        text = p.step.error_message or ""
        assert "ct_a" in text and "ct_b" in text and text.endswith(verdict)
        assert p.step.errors[0]["field"] == "email / phone_number"


def test_consent_protection_when_the_contact_is_known() -> None:
    body = {**ADA, "email_consent": "subscribed", "sms_consent": "single_opt_in"}
    current = held("ct_1", ADA, email_consent="unsubscribed", sms_consent="unsubscribed")
    p = plan(body, Known(by_email=current, by_phone=current))
    # Only the protected fields differed: nothing to send, two warnings, no read needed.
    assert isinstance(p.step, Outcome) and p.step.status == "unchanged"
    assert sorted(w["field"] for w in p.step.errors) == ["email_consent", "sms_consent"]
    assert {w["severity"] for w in p.step.errors} == {"warning"}
    assert p.step.confirmed is not None
    assert p.step.confirmed["email_consent"] == "unsubscribed"  # the ledger keeps the truth
    allowed = plan(body, Known(by_email=current, by_phone=current), allow_resubscribe=True)
    assert isinstance(allowed.step, Update)
    assert allowed.step.diff == {"email_consent": "subscribed", "sms_consent": "single_opt_in"}


def test_unknown_platform_goes_to_create_and_a_dry_run_reports_a_failed_lookup() -> None:
    from synckit.errors import ServerError

    err = ServerError("down", status=503, code="unavailable", request_id="req_1")
    assert plan(ADA, Known(error=err)).step == Create(ADA)  # the create's 409 is the check
    p = plan(ADA, Known(error=err), dry_run=True)
    assert isinstance(p.step, Outcome) and p.step.status == "failed"
    assert (p.step.http_status, p.step.request_id) == (503, "req_1")


# --------------------------------------------------------------------------- ledger


def test_ledger_same_payload_is_unchanged_without_a_ledger_write() -> None:
    p = plan(ADA, Known(), entry(ADA))
    assert isinstance(p.step, Outcome) and p.step.status == "unchanged"
    assert p.step.record is False and p.target == "ct_1"
    again = plan(ADA, Known(), entry(ADA, status="failed"))  # confirmed before, failed since
    assert isinstance(again.step, Outcome) and again.step.record is True


def test_ledger_sends_what_changed_since_it_was_confirmed() -> None:
    later = {**ADA, "first_name": "Augusta"}
    p = plan(later, Known(), entry(ADA))
    assert isinstance(p.step, Update)
    assert p.step.diff == {"first_name": "Augusta"} and p.step.current is None
    assert p.step.confirmed == later and p.base == "run1"


def test_ledger_with_the_contact_listed_leaves_out_what_the_platform_holds() -> None:
    later = {**ADA, "first_name": "Augusta", "last_name": "King"}
    listed = held("ct_1", ADA, first_name="Augusta", last_name="Lovelace")
    p = plan(later, Known(by_email=listed, by_phone=listed), entry(ADA))
    assert isinstance(p.step, Update) and p.step.diff == {"last_name": "King"}
    # An edit made in the platform to a field the file did not change is not overwritten.
    edited = held("ct_1", ADA, first_name="Ada (edited in the platform)")
    same = plan(ADA, Known(by_email=edited, by_phone=edited), entry(ADA))
    assert isinstance(same.step, Outcome) and same.step.status == "unchanged"


def test_ledger_contact_gone_from_a_complete_listing_is_created_again() -> None:
    later = {**ADA, "first_name": "Back"}
    p = plan(later, Known(by_email=None, by_phone=None), entry(ADA))
    assert p.step == Create(later, replaced="ct_1")
    phone_only = {"phone_number": "+447400000001", "first_name": "Back"}
    held_before = {"phone_number": "+447400000001"}
    gone = LedgerEntry(
        "phone:+447400000001", "ct_1", held_before, payload_hash(held_before), "created", "run1"
    )
    p = plan_row(row(phone_only), Known(by_email=UNKNOWN, by_phone=None), gone, PlanOptions())
    assert p.step == Create(phone_only, replaced="ct_1")


def test_ledger_id_held_by_another_contact_now_follows_the_platform() -> None:
    other = held("ct_new", ADA)
    p = plan(ADA | {"first_name": "X"}, Known(by_email=other, by_phone=other), entry(ADA))
    assert isinstance(p.step, Update) and p.step.contact_id == "ct_new"
    assert p.target == "ct_new"


def test_retry_failed_skips_what_succeeded_and_sends_the_rest() -> None:
    p = plan(ADA | {"first_name": "X"}, Known(), entry(ADA), retry_failed=True)
    assert isinstance(p.step, Outcome) and p.step.error_code == "not_retried"
    assert p.step.record is False
    failed = entry(ADA, status="failed")
    assert isinstance(
        plan(ADA | {"first_name": "X"}, Known(), failed, retry_failed=True).step, Update
    )
    invalid = LedgerEntry("email:ada@example.com", None, {}, "", "invalid", "run1", "invalid_phone")
    fixed = plan(ADA, Known(by_email=None, by_phone=None), invalid, retry_failed=True)
    assert fixed.step == Create(ADA)  # invalid last time, fixed since: sent
    never = plan(ADA, Known(by_email=None, by_phone=None), None, retry_failed=True)
    assert never.step == Create(ADA)  # never sent: sent


# --------------------------------------------------------------------------- one write per contact


def test_a_second_row_for_the_same_contact_is_a_duplicate_contact() -> None:
    first = Planned(row({"email": "ada@example.com"}, pos=0, number=2), Create({}), "ct_1")
    second = Planned(row({"phone_number": "+447400000001"}, pos=5, number=7), Create({}), "ct_1")
    other = Planned(row({"email": "bob@example.com"}, pos=6, number=8), Create({}), "ct_2")
    apply_owners([first, second, other], {"ct_1": (0, 2), "ct_2": (6, 8)})
    assert first.step == Create({}) and other.step == Create({})
    assert isinstance(second.step, Outcome)
    assert (second.step.status, second.step.error_code) == ("skipped", "duplicate_contact")
    assert "ct_1" in (second.step.error_message or "") and "row 2" in (
        second.step.error_message or ""
    )


def test_a_row_without_a_target_does_not_stop_the_rows_after_it() -> None:
    unsent = Planned(row({"email": "x@example.com"}, pos=0, number=2), Create({}), None)
    second = Planned(row({"phone_number": "+447400000001"}, pos=5, number=7), Create({}), "ct_1")
    apply_owners([unsent, second], {"ct_1": (1, 3)})
    assert unsent.step == Create({})
    assert isinstance(second.step, Outcome) and second.step.error_code == "duplicate_contact"


# --------------------------------------------------------------------------- pinned answers


def test_unknown_is_one_falsy_value_that_survives_copies() -> None:
    from synckit.sync.plan import _Unknown

    assert _Unknown() is UNKNOWN and repr(UNKNOWN) == "UNKNOWN"
    assert bool(UNKNOWN) is False  # `if contact:` treats "not known" like "no contact"
    # Known values cross copies and processes; `is UNKNOWN` must still hold there.
    assert copy.deepcopy(Known()).by_email is UNKNOWN
    assert pickle.loads(pickle.dumps(Known())).by_phone is UNKNOWN


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (RowIn(0, 2, {}, None), "key"),
        (Known(), "by_email"),
        (PlanOptions(), "dry_run"),
        (Create({}), "replaced"),
        (Update("ct_1", {}, {}, {}), "contact_id"),
    ],
)
def test_inputs_and_steps_cannot_be_changed_once_made(value: Any, field: str) -> None:
    # A planned step is what is sent and what the ledger records: nobody may edit it
    # on the way (apply_owners replaces a Planned's step, never a step's fields).
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)


def test_null_custom_fields_clear_them_as_patch_does() -> None:
    """Contract, PATCH semantics: null clears a field, custom_fields included."""
    held_fields = {"first_name": "Ada", "custom_fields": {"plan": "pro"}}
    assert diff({"custom_fields": None}, held_fields) == {"custom_fields": None}
    assert diff({"custom_fields": None}, {"first_name": "Ada"}) == {}  # already none
    cleared = merge(held_fields, {"custom_fields": None})
    assert cleared == {"first_name": "Ada", "custom_fields": None}
    assert changes({"custom_fields": None, "first_name": "A"}) == "first_name,custom_fields"


def test_consent_answers_by_hand() -> None:
    assert needs_read({"email_consent": "subscribed"}, True) is False  # allowed: no read
    assert needs_read({"sms_consent": "single_opt_in"}, False) is True
    assert needs_read({"email_consent": "unsubscribed"}, False) is False
    # No consent in the update, contact opted out: nothing to protect.
    assert protect({"first_name": "A"}, {"email_consent": "unsubscribed"}, False) == (
        {"first_name": "A"},
        [],
    )
    # An opt-in over an opt-in is no resubscription.
    assert protect({"email_consent": "subscribed"}, {"email_consent": "subscribed"}, False) == (
        {"email_consent": "subscribed"},
        [],
    )
    # An opt-out over an opt-out is kept as sent.
    assert protect({"sms_consent": "unsubscribed"}, {"sms_consent": "unsubscribed"}, False) == (
        {"sms_consent": "unsubscribed"},
        [],
    )


def test_a_dry_runs_failed_lookup_names_the_error_code_or_its_class() -> None:
    from synckit.errors import ServerError, TransportError

    down = ServerError("down", status=503, code="unavailable")
    coded = plan(ADA, Known(error=down), dry_run=True)
    assert isinstance(coded.step, Outcome)
    assert (coded.step.error_code, coded.step.errors[0]["code"]) == ("unavailable", "unavailable")
    bare = plan(ADA, Known(error=TransportError("connection refused")), dry_run=True)
    assert isinstance(bare.step, Outcome)
    assert bare.step.error_code == "TransportError"
    assert bare.step.errors[0]["code"] == "lookup_failed"
    assert bare.step.error_message == "could not look the contact up: connection refused"


def test_ledger_free_email_but_unlooked_phone_is_not_proof_the_contact_is_gone() -> None:
    later = {**ADA, "first_name": "Augusta"}
    p = plan(later, Known(by_email=None, by_phone=UNKNOWN), entry(ADA))
    assert isinstance(p.step, Update)
    assert (p.step.contact_id, p.step.diff) == ("ct_1", {"first_name": "Augusta"})


def test_ledger_a_field_emptied_in_the_file_sends_nothing() -> None:
    emptied = {"email": ADA["email"], "phone_number": ADA["phone_number"]}  # no first_name
    p = plan(emptied, Known(), entry(ADA))
    assert isinstance(p.step, Outcome)
    assert (p.step.status, p.step.contact_id) == ("unchanged", "ct_1")
    assert p.step.confirmed == ADA  # absent = kept: the platform still holds "Ada"
