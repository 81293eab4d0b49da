# ruff: noqa: E501  (test data reads better unwrapped)
"""Phone problems each get their own code and a message saying what to do; numbers read
with default_region are counted; the fast paths still equal phonenumbers and
email-validator on the new cases (country columns, multi-value parts, AU's 0011...)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import email_validator
import numpy as np
import pandas as pd
import phonenumbers
import pytest

import synckit
from synckit import _email, _phone, _steps, rules
from synckit.validation import Validation, validate_file


def codes(check: Validation) -> list[tuple[int, str]]:
    return [(int(r), str(c)) for r, c in check.errors[["row", "code"]].values.tolist()]


@contextlib.contextmanager
def phone_path(small_input: int) -> Iterator[None]:
    saved = _phone.SMALL_INPUT
    _phone.SMALL_INPUT = small_input
    try:
        yield
    finally:
        _phone.SMALL_INPUT = saved


# ---------------------------------------------------------------------------
# each code, its message, the fix it names


@pytest.mark.parametrize("small_input", [0, 10**9], ids=["vectorised", "per-number"])
def test_each_phone_problem_has_its_own_code_and_fix(small_input: int) -> None:
    df = pd.DataFrame(
        {
            "phone_number": [
                "4.47911E+11",  # Excel's scientific notation
                "(555) 123-4567 x12",  # an extension
                "+1 415 555 2671 ext. 45",
                "07400 123456",  # national, valid only in GB
                "555-1234",  # short: valid somewhere, but no region is proposed
                "N/A",
                "(415) 555-2671",  # fine
            ]
        }
    )
    with phone_path(small_input):
        check = synckit.validate(df)
    assert codes(check) == [
        (2, "phone_scientific"),
        (3, "phone_extension"),
        (4, "phone_extension"),
        (5, "phone_other_region"),
        (6, "invalid_phone"),
        (7, "invalid_phone"),
    ]
    messages = check.errors["message"].tolist()
    assert "scientific notation" in messages[0] and "format the column as text" in messages[0]
    assert "extension ('x12')" in messages[1] and "custom field" in messages[1]
    assert "extension ('ext. 45')" in messages[2]
    assert messages[3] == (
        "is not a valid number in US (default_region), but is valid in GB as +44 7400 123456: "
        "give the row its country (a country column), set default_region, or write the number "
        "with + and its country code"
    )
    assert messages[4] == messages[5] == rules.message("invalid_phone")
    assert check.errors["severity"].eq("error").all()
    assert check.valid["phone_number"].tolist() == ["+14155552671"]
    assert check.n_default_region == 1


def test_a_lost_leading_zero_under_the_wrong_default_region() -> None:
    """2072193000: Maine under US, London's 020 7219 3000 with its 0 put back."""
    alone = synckit.validate(pd.DataFrame({"phone_number": ["2072193000"]}))
    # nothing else to go by: accepted, and counted as relying on default_region
    assert alone.ok and alone.valid["phone_number"].tolist() == ["+12072193000"]
    assert alone.n_default_region == 1
    assert (
        "1 phone number in national format had no country of its own and was read with default_region US"
        in str(alone)
    )
    # in a list whose numbers are mostly British, the bare digits are doubted
    df = pd.DataFrame(
        {
            "phone_number": [
                "2072193000",
                "+44 7400 123456",
                "07400 123457",
                "+44 20 7946 0018",
                "(212) 555-0188",
            ],
            "sms_consent": ["single_opt_in", None, None, None, None],
        }
    )
    check = synckit.validate(df)
    assert codes(check)[0] == (2, "phone_default_region")
    assert check.errors["message"].iloc[0] == (
        "was read as +1 207-219-3000 with default_region US, but most numbers here are from GB, "
        "where it is +44 20 7219 3000 (a lost leading 0?): write it with + and its country code, "
        "give the row its country, or set default_region"
    )
    # its SMS opt-in is not sent with a guess, and no second error piles on
    assert 2 in check.invalid.index and "sms_country" not in set(check.errors["code"])
    # a formatted US number is clearly American: it counts for US and is not doubted
    assert 6 in check.valid.index
    # with the right region there is nothing to doubt
    assert synckit.validate(df.iloc[:4], default_region="GB").ok


def test_mostly_american_list_keeps_its_bare_digits() -> None:
    df = pd.DataFrame(
        {"phone_number": ["2072193000", "(212) 555-0188", "415-555-2671", "+44 7400 123456"]}
    )
    check = synckit.validate(df)
    assert check.ok and check.n_default_region == 3


def test_drop_policy_sends_the_row_without_a_diagnosed_phone() -> None:
    df = pd.DataFrame(
        {"email": ["a@example.com"], "phone_number": ["4.47911E+11"], "sms_consent": ["subscribed"]}
    )
    check = synckit.validate(df, invalid_fields="drop")
    assert check.ok and check.valid["phone_number"].tolist() == [None]
    assert check.valid["sms_consent"].tolist() == [None]
    assert check.errors[["code", "severity"]].values.tolist() == [
        ["phone_scientific", "warning"],
        ["sms_country", "warning"],
    ]


def test_counts_in_validate_file_and_html(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "c.csv"
    path.write_text(
        "Phone,Email\n(415) 555-2671,a@example.com\n+44 7400 123456,b@example.com\n4.47911E+11,c@example.com\n"
    )
    result = validate_file(path, chunksize=1)
    assert result.n_default_region == 1 and result.n_errors == 1
    assert "read with default_region US" in str(result)
    assert "phone_scientific" in result._repr_html_()


# ---------------------------------------------------------------------------
# differential: the fast paths against phonenumbers and email-validator


def reference_phone(text: str, region: str | None) -> str | None:
    """phonenumbers as the contract reads it, written out again (no fast path)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and not number.extension and phonenumbers.is_valid_number(number):
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return e164 if rules.phone_region(e164) else None
    stripped = text.lstrip()
    # the 00 retry, never over the region's own international prefix (AU: 0011)
    if stripped.startswith("00") and stripped[2:3].isdigit():
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region or "", None)
        idd = getattr(meta, "international_prefix", None)
        import re

        digits = phonenumbers.normalize_digits_only(stripped)
        own = (
            idd is not None
            and (m := re.match(idd, digits))
            and not digits[m.end() :].startswith("0")
        )
        if not own:
            return reference_phone("+" + stripped[2:], region)
    return None


NEW_CASES = [
    # national numbers of the exports' countries, in their own formats
    "07400 123456", "020 7946 0018", "0161 496 0000", "030 12345678", "0151 23456789",
    "06 12 34 56 78", "01 42 68 53 00", "612 345 678", "911 23 45 67", "0412 345 678",
    "(02) 9374 4000", "040 1234567", "087 123 4567", "079 123 45 67", "0470 12 34 56",
    "08-123 456 78", "070-123 45 67", "090-1234-5678", "(11) 96123-4567", "06 12345678",
    # Excel's text mark, leading zeros lost, scientific notation
    "'+16135550135", "'07400 123456", "2072193000", "7400123456", "4.47911E+11", "4,47911E+11",
    # dialling prefixes: AU's own 0011, 00 elsewhere, US 011
    "0011-650-253-0000", "0011 44 7400 123456", "0044 7400 123456", "011 44 7400 123456",
    # extensions and the parts of multi-value cells
    "(555) 123-4567 x12", "+1 415 555 2671 ext. 45", "+1 617 555 0142", "N/A", "555-1234",
]  # fmt: skip
REGIONS = ["US", "GB", "DE", "FR", "ES", "AU", "FI", "JP", "BR", "CH", None]


@pytest.mark.parametrize("small_input", [0, 10**9], ids=["vectorised", "per-number"])
def test_fast_path_equals_phonenumbers_with_per_row_regions(small_input: int) -> None:
    texts = [t for t in NEW_CASES for _ in REGIONS]
    regions = np.array([r for _ in NEW_CASES for r in REGIONS], dtype=object)
    with phone_path(small_input):
        e164, _, used = _phone.normalize_by_region(pd.Series(texts, dtype="str"), "US", regions)
    got = [None if pd.isna(v) else v for v in e164.tolist()]
    want = [
        reference_phone(t, "US" if (r is None or t.lstrip("'").startswith("+")) else r)
        for t, r in zip(texts, regions.tolist(), strict=True)
    ]
    assert got == want
    assert used.tolist() == [
        "US" if (r is None or t.lstrip("'").startswith("+")) else r
        for t, r in zip(texts, regions.tolist(), strict=True)
    ]


def reference_email(text: str) -> bool:
    try:
        email_validator.validate_email(text, **rules._EMAIL_OPTIONS)
    except email_validator.EmailNotValidError:
        return False
    return len(text) <= rules.EMAIL_MAX_LENGTH


def test_fast_email_path_equals_email_validator_on_multi_value_parts() -> None:
    cells = [
        "ada@example.com ::: ada.lovelace@example.org", "a@example.com; b@example.com",
        "a@example.com, b@example.com, c@example.com", "a b@example.com", "bad@ ::: b@example.com",
        "grace@navy.example.mil", "ada@engines.example.co.uk", "jürgen@example.de",
        "x@localhost ::: y@example.com", "UPPER@EXAMPLE.COM ::: lower@example.com",
    ]  # fmt: skip
    parts = sorted(
        {
            p.lower()
            for cell in cells
            for p in __import__("re").split(_steps.SEPARATORS["email"], cell)
            if p.strip()
        }
    )
    assert _email.valid_emails(pd.Series(parts, dtype="str")).tolist() == [
        reference_email(p) for p in parts
    ]


def test_every_local_code_has_its_documented_severity() -> None:
    from synckit import _diagnostics

    df = pd.DataFrame(
        {
            "email": [
                "a@example.com ::: b@example.com",
                "x@\ud800",
                None,
                "c@example.com",
                "d@example.com",
            ],
            "phone_number": [
                "4.47911E+11",
                None,
                "(555) 123-4567 x12",
                "07400 123456",
                "(415) 555-2671",
            ],
            "country": [None, None, None, None, "Narnia"],
        },
        dtype=object,
    )
    check = synckit.validate(df)
    local = check.errors[check.errors["code"].isin(list(_diagnostics.SEVERITY))]
    assert set(local["code"]) == {
        "multiple_values", "phone_scientific", "invalid_text", "phone_extension",
        "phone_other_region", "unknown_country",
    }  # fmt: skip
    assert all(
        _diagnostics.SEVERITY[c] == s for c, s in zip(local["code"], local["severity"], strict=True)
    )
