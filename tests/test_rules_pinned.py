"""The contract's field rules pinned to verdicts a person can check by hand (issue 16).

The differential tests compare the vectorised validator with ``rules`` and so
move together when a rule changes; these fix the expected answer itself. Each
address below changes verdict if one of email-validator's pinned options is
flipped, so the table pins every option. Every verdict is checked three ways:
``rules.is_valid_email``, ``rules.check_contact`` (what the sandbox applies)
and ``synckit.validate`` (the vectorised fast path).
"""

from __future__ import annotations

import pandas as pd
import pytest

import synckit
from synckit import rules

EMAIL_VERDICTS = [
    # (address, valid, why -- from the contract's "syntactically valid address" and the options)
    ("ada@example.com", True, "plain address"),
    ("josé@example.com", True, "internationalised local part (SMTPUTF8) is valid syntax"),
    ("ada@пример.рф", True, "internationalised domain"),
    ('"a b"@example.com', False, "quoted local part: refused"),
    ("ada@[192.0.2.1]", False, "domain literal: refused"),
    ("@example.com", False, "empty local part"),
    ("ada@example.test", False, "special-use domain .test"),
    ("ada@localhost", False, "special-use domain localhost"),
    ("ada@example", False, "a domain without a dot is not globally deliverable"),
    ("ada <ada@example.com>", False, "display name: refused"),
    ("ada@@example.com", False, "two @"),
    ("a..b@example.com", False, "two dots in a row"),
    ("ada@example.com.", False, "trailing dot"),
    ("", False, "empty"),
]


def _validate_one(address: str) -> pd.DataFrame:
    frame = pd.DataFrame({"email": [address]}, index=pd.RangeIndex(2, 3, name="row"))
    return synckit.validate(frame).errors


@pytest.mark.parametrize(("address", "valid", "why"), EMAIL_VERDICTS)
def test_email_verdicts(address: str, valid: bool, why: str) -> None:
    assert rules.is_valid_email(address) is valid, why
    body = {"email": address, "phone_number": "+447400123456"}
    codes = [e.code for e in rules.check_contact(body)]
    if address:
        assert codes == ([] if valid else ["invalid_email"]), why
    errors = _validate_one(address)
    local = [] if valid or not address else ["invalid_email"]
    assert [c for c in errors["code"] if c == "invalid_email"] == local, why


def _address(length: int) -> str:
    """A valid ASCII address of exactly ``length`` characters: 64-character local part,
    then labels of at most 63 characters and ``.com``."""
    local = "a" * 64
    rest = length - len(local) - 1 - len(".com")
    labels = []
    while rest > 0:
        take = min(63, rest)
        if 0 < rest - take < 2:  # leave room for a dot and one letter
            take -= 2
        labels.append("x" * take)
        rest -= take + 1
    address = local + "@" + ".".join(labels) + ".com"
    assert len(address) == length, (length, len(address))
    return address


def test_address_helper_builds_what_it_says() -> None:
    a = _address(254)
    assert a.startswith("a" * 64 + "@x") and a.endswith(".com") and len(a) == 254
    assert max(len(label) for label in a.split("@")[1].split(".")) == 63


@pytest.mark.parametrize(("length", "valid"), [(253, True), (254, True), (255, False)])
def test_the_254_character_limit(length: int, valid: bool) -> None:
    address = _address(length)
    assert rules.is_valid_email(address) is valid
    assert bool(rules.check_contact({"email": address})) is not valid
    # The vectorised fast path has its own length check.
    frame = pd.DataFrame({"email": [address, address.upper()]})
    codes = list(synckit.validate(frame, duplicates="keep").errors["code"])
    assert codes == ([] if valid else ["invalid_email", "invalid_email"])


@pytest.mark.parametrize(("length", "code"), [(100, None), (101, "too_long")])
def test_the_100_character_name_limit(length: int, code: str | None) -> None:
    body = {"email": "ada@example.com", "first_name": "n" * length, "last_name": "l" * length}
    codes = [e.code for e in rules.check_contact(body)]
    assert codes == ([] if code is None else [code, code])
    frame = pd.DataFrame({k: [v] for k, v in body.items()})
    assert list(synckit.validate(frame).errors["code"]) == codes


@pytest.mark.parametrize(
    ("custom", "ok"),
    [
        ({f"k{i}": i for i in range(100)}, True),  # 100 keys: the most allowed
        ({f"k{i}": i for i in range(101)}, False),
        ({"k" * 64: 1}, True),  # a 64-character key
        ({"k" * 65: 1}, False),
        ({"": 1}, False),  # keys are 1 to 64 characters
        ({"a": 1.5, "b": True, "c": None, "d": "x", "e": -3}, True),
        ({"a": float("nan")}, False),
        ({"a": float("inf")}, False),
        ({"a": [1]}, False),
        ({"a": {"b": 1}}, False),
        ({1: "x"}, False),
        (["a", 1], False),
        # a good value first does not excuse a bad one after it
        ({"a": 1, "b": [1]}, False),
        ({"a": 1.5, "b": {"c": 1}}, False),
        ({"a": "x", "k" * 65: 1}, False),
    ],
)
def test_custom_fields_limits(custom: object, ok: bool) -> None:
    assert rules.check_custom_fields(custom) is ok
    body = {"email": "a@example.com", "custom_fields": custom}
    codes = [e.code for e in rules.check_contact(body)]
    assert codes == ([] if ok else ["nested_custom_fields"])


def test_messages_are_the_contracts() -> None:
    assert rules.message("too_long") == "must be a string of at most 100 characters"
    assert rules.message("invalid_choice", "email_consent") == (
        "must be one of: subscribed, unsubscribed, never_subscribed, suppressed"
    )
    with pytest.raises(KeyError, match="invalid_choice needs a consent field, not None"):
        rules.message("invalid_choice")
    with pytest.raises(KeyError, match="invalid_choice needs a consent field, not 'first_name'"):
        rules.message("invalid_choice", "first_name")
    error = rules.FieldError.of("email", "invalid_email")
    assert (error.field, error.code, error.message) == (
        "email",
        "invalid_email",
        "must be a valid email address",
    )
    with pytest.raises(AttributeError):
        error.code = "x"  # type: ignore[misc]


def test_a_stored_number_that_is_not_text_never_raises() -> None:
    # The stored contact is data from elsewhere: a number kept as an integer is
    # simply not a phone the SMS rule can accept.
    errors = rules.check_contact(
        {"sms_consent": "subscribed"},
        current={"email": "ada@example.com", "phone_number": 447400123456},
    )
    assert [e.code for e in errors] == ["sms_country"]


def test_last_name_is_checked_without_a_first_name() -> None:
    errors = rules.check_contact({"email": "ada@example.com", "last_name": "l" * 101})
    assert [(e.field, e.code) for e in errors] == [("last_name", "too_long")]
