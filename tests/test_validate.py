# ruff: noqa: E501  (test data reads better unwrapped)
"""validate(): every rule and message, normalisation, duplicates, payloads, and the
differential check against rules.check_contact (generated corpus + hypothesis)."""

from __future__ import annotations

import contextlib
import html
import json
import math
import random
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import synckit
from synckit import _phone, rules
from synckit._phone import slow_normalize_one
from synckit.errors import ConfigError
from synckit.sandbox import Sandbox
from synckit.validation import ERROR_COLUMNS, Validation, find_duplicates, to_payloads, validate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _phone_corpus import corpus


def codes(check: Validation) -> list[tuple[int, str, str]]:
    return [tuple(x) for x in check.errors[["row", "field", "code"]].values.tolist()]  # type: ignore[misc]


# ---------------------------------------------------------------------------
# each rule, with the contract's message


def test_valid_row_is_normalised() -> None:
    df = pd.DataFrame(
        {
            "email": ["  Ada@Example.COM "],
            "phone_number": ["(415) 555-2671"],
            "first_name": ["  Ada "],
            "last_name": ["Lovelace"],
            "email_consent": [" Subscribed "],
            "sms_consent": ["Single Opt-In"],
            "custom_fields": ['{"plan": "pro", "seats": 3}'],
        }
    )
    check = validate(df)
    assert check.errors.empty and check.ok
    assert check.valid.loc[2].to_dict() == {
        "email": "ada@example.com",
        "phone_number": "+14155552671",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email_consent": "subscribed",
        "sms_consent": "single_opt_in",
        "custom_fields": {"plan": "pro", "seats": 3},
    }
    assert list(check.valid.columns) == list(rules.FIELDS)
    assert check.valid.index.name == "row"


@pytest.mark.parametrize(
    ("row", "field", "code"),
    [
        ({"first_name": "Ada"}, rules.REQUIRED_FIELD, "required"),
        ({"email": " ", "phone_number": ""}, rules.REQUIRED_FIELD, "required"),
        ({"email": "ada@@example.com"}, "email", "invalid_email"),
        ({"email": "ada@localhost"}, "email", "invalid_email"),
        ({"email": "a" * 250 + "@example.com"}, "email", "invalid_email"),
        ({"phone_number": "555-1234"}, "phone_number", "invalid_phone"),
        ({"phone_number": "+1 555 555 0123"}, "phone_number", "invalid_phone"),
        ({"phone_number": "N/A"}, "phone_number", "invalid_phone"),
        ({"email": "a@example.com", "email_consent": "yes"}, "email_consent", "invalid_choice"),
        (
            {"phone_number": "+14155552671", "sms_consent": "suppressed"},
            "sms_consent",
            "invalid_choice",
        ),
        ({"email": "a@example.com", "sms_consent": "subscribed"}, "sms_consent", "sms_country"),
        (
            {"phone_number": "+44 7911 123456", "sms_consent": "single_opt_in"},
            "sms_consent",
            "sms_country",
        ),
        (
            {"phone_number": "+1 809 555 1234", "sms_consent": "unsubscribed"},
            "sms_consent",
            "sms_country",
        ),
        ({"email": "a@example.com", "first_name": "x" * 101}, "first_name", "too_long"),
        ({"email": "a@example.com", "last_name": "y" * 101}, "last_name", "too_long"),
        (
            {"email": "a@example.com", "custom_fields": {"a": [1]}},
            "custom_fields",
            "nested_custom_fields",
        ),
        (
            {"email": "a@example.com", "custom_fields": "not json"},
            "custom_fields",
            "nested_custom_fields",
        ),
        (
            {"email": "a@example.com", "custom_fields": "[1, 2]"},
            "custom_fields",
            "nested_custom_fields",
        ),
        (
            {"email": "a@example.com", "custom_fields": {"k" * 65: 1}},
            "custom_fields",
            "nested_custom_fields",
        ),
    ],
)
def test_each_rule_and_its_message(row: dict[str, Any], field: str, code: str) -> None:
    check = validate(pd.DataFrame([row], dtype=object))
    assert check.errors["code"].tolist() == [code]
    err = check.errors.iloc[0]
    assert err["field"] == field
    assert err["message"] == rules.message(code, field if code == "invalid_choice" else None)
    assert err["row"] == 2
    assert check.valid.empty and check.invalid.index.tolist() == [2]
    # the value column shows the cell as given
    given = row.get(field) if field in row else None
    if given is None:  # "email / phone_number": no cell of its own
        assert err["value"] is None or pd.isna(err["value"])
    else:  # text and dicts alike
        assert err["value"] == given


def test_sms_consent_in_supported_country_and_custom_list() -> None:
    df = pd.DataFrame({"phone_number": ["+44 7400 123456"], "sms_consent": ["single_opt_in"]})
    assert validate(df).ok
    assert codes(validate(df, sms_countries=["US"])) == [(2, "sms_consent", "sms_country")]


@pytest.mark.parametrize(
    ("row", "want"),
    [
        # set with no phone at all: the number is from no supported country
        ({"email": "a@example.com", "sms_consent": "subscribed"}, [("sms_consent", "sms_country")]),
        # set with an invalid phone: both rules are broken, both reported at once
        (
            {"email": "a@example.com", "phone_number": "555-1234", "sms_consent": "subscribed"},
            [("phone_number", "invalid_phone"), ("sms_consent", "sms_country")],
        ),
        # a value outside the enum is still "set"
        (
            {"email": "a@example.com", "sms_consent": "yes"},
            [("sms_consent", "invalid_choice"), ("sms_consent", "sms_country")],
        ),
        (
            {"phone_number": "+44 7911 123456", "sms_consent": "yes"},
            [("sms_consent", "invalid_choice"), ("sms_consent", "sms_country")],
        ),
        # a valid number from a supported country: only the enum rule
        (
            {"phone_number": "+44 7400 123456", "sms_consent": "yes"},
            [("sms_consent", "invalid_choice")],
        ),
        # not set: no SMS rule, whatever the phone
        ({"phone_number": "555-1234", "sms_consent": " "}, [("phone_number", "invalid_phone")]),
    ],
)
def test_sms_country_rule_as_the_contract_writes_it(
    row: dict[str, Any], want: list[tuple[str, str]]
) -> None:
    """The contract: "sms_consent: when set, the phone number is from a supported SMS country"."""
    check = validate(pd.DataFrame([row], dtype=object))
    assert [(f, c) for _, f, c in codes(check)] == want
    # the one copy of the rule, as the sandbox applies it to the normalised body
    body = {k: v for k, v in row.items() if v.strip()}
    if "phone_number" in body:
        found = slow_normalize_one(body["phone_number"], "US")
        body["phone_number"] = found[0] if found else body["phone_number"]
    assert [(e.field, e.code) for e in rules.check_contact(body)] == want


def test_sms_country_rule_on_update_follows_the_merged_contact() -> None:
    current = {
        "email": "a@example.com",
        "phone_number": "+14155552671",
        "sms_consent": "subscribed",
    }
    # clearing the number under a consent the contact holds breaks the rule
    got = rules.check_contact({"phone_number": None}, current=current)
    assert [(e.field, e.code) for e in got] == [("sms_consent", "sms_country")]
    # so does an invalid number, alongside invalid_phone
    got = rules.check_contact({"phone_number": "+1555"}, current=current)
    assert [(e.field, e.code) for e in got] == [
        ("phone_number", "invalid_phone"),
        ("sms_consent", "sms_country"),
    ]
    # clearing the consent too is fine; a body touching neither is not judged by it
    assert rules.check_contact({"phone_number": None, "sms_consent": None}, current=current) == []
    assert (
        rules.check_contact({"first_name": "Ada"}, current={**current, "phone_number": None}) == []
    )


def test_errors_of_one_row_in_contract_order() -> None:
    df = pd.DataFrame(
        [{"email": "bad", "phone_number": "12", "email_consent": "x", "sms_consent": "y",
          "first_name": "z" * 200, "custom_fields": "[]"}]
    )  # fmt: skip
    assert [c for _, _, c in codes(validate(df))] == [
        "invalid_email", "invalid_phone", "invalid_choice", "invalid_choice", "sms_country",
        "too_long", "nested_custom_fields",
    ]  # fmt: skip
    assert list(validate(df).errors.columns) == list(ERROR_COLUMNS)


def test_custom_prefix_columns_of_a_users_frame() -> None:
    df = pd.DataFrame(
        {
            "email": ["a@example.com", "b@example.com", "c@example.com"],
            "custom.plan": [" pro ", None, ""],
            "custom.seats": [3, 4, float("nan")],
            "custom_fields": [None, '{"vip": true}', None],
            "Company": ["x", "y", "z"],
        }
    )
    check = validate(df)
    # valid keeps custom fields as columns (normalised); bodies are built when sent
    assert list(check.valid.columns) == ["email", "custom_fields", "custom.plan", "custom.seats"]
    assert check.valid["custom.plan"].tolist()[0] == "pro"
    assert [body.get("custom_fields") for _, body in to_payloads(check.valid)] == [
        {"plan": "pro", "seats": 3.0},
        {"vip": True, "seats": 4.0},
        None,
    ]
    assert check.ignored_columns == ("Company",)
    assert to_payloads(check.valid)[2] == (4, {"email": "c@example.com"})


def test_ignored_columns_are_not_errors() -> None:
    check = validate(pd.DataFrame({"email": ["a@example.com"], "nickname": ["x"], "id": ["ct_1"]}))
    assert check.ok and check.ignored_columns == ("nickname", "id")
    assert list(check.valid.columns) == ["email"]


# ---------------------------------------------------------------------------
# normalisation choices


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+44 7400 123456", "US", "+447400123456"),
        ("07400 123456", "GB", "+447400123456"),
        ("0044 7400 123456", "US", "+447400123456"),  # 00 prefix retried as +
        ("011 44 7400 123456", "US", "+447400123456"),  # the US's own prefix
        ("1-800-FLOWERS", "US", "+18003569377"),  # vanity letters convert
        ("1 415 555 2671", "US", "+14155552671"),
        ("+44 (0) 7400 123456", "US", "+447400123456"),
        ("tel:+1-415-555-2671", "US", "+14155552671"),
        ("+１ ４１５ ５５５ ２６７１", "US", "+14155552671"),
    ],
)
def test_phone_normalisation(text: str, region: str, expected: str) -> None:
    check = validate(pd.DataFrame({"phone_number": [text]}), default_region=region)
    assert check.valid["phone_number"].tolist() == [expected]
    # and the normalised number validates again, unchanged
    again = validate(check.valid.reset_index(drop=True), default_region=region)
    assert again.valid["phone_number"].tolist() == [expected]


def test_national_number_needs_the_right_region() -> None:
    df = pd.DataFrame({"phone_number": ["07400 123456"]})
    # invalid in US; the message names the region where it is valid, and the fixes
    check = validate(df)
    assert codes(check) == [(2, "phone_number", "phone_other_region")]
    message = check.errors["message"].iloc[0]
    assert "in US (default_region)" in message and "valid in GB as +44 7400 123456" in message
    check = validate(df, default_region=None)
    assert check.errors["code"].tolist() == ["phone_other_region"]
    assert "with no region" in check.errors["message"].iloc[0]
    assert validate(df, default_region="GB").ok


@pytest.mark.parametrize(
    ("given", "expected"),
    [(" Subscribed ", "subscribed"), ("NEVER SUBSCRIBED", "never_subscribed"),
     ("never-subscribed", "never_subscribed"), ("Single  Opt-In", "single_opt_in")],
)  # fmt: skip
def test_consent_spellings(given: str, expected: str) -> None:
    field = "sms_consent" if "opt" in given.lower() else "email_consent"
    df = pd.DataFrame({"phone_number": ["+14155552671"], field: [given]})
    assert validate(df).valid[field].tolist() == [expected]


def test_non_string_cells_from_a_users_frame() -> None:
    df = pd.DataFrame(
        {
            "phone_number": [4155552671, 4155552672.0, float("nan"), 1.5],
            "first_name": [1, None, "Ann", True],
            "email": [None, None, "a@example.com", "b@example.com"],
        }
    )
    check = validate(df)
    assert check.valid.loc[2, "phone_number"] == "+14155552671"
    assert check.valid.loc[2, "first_name"] == "1"
    assert check.valid.loc[3, "phone_number"] == "+14155552672"
    assert check.valid.loc[4, "phone_number"] is None
    assert codes(check) == [(5, "phone_number", "invalid_phone")]
    assert check.invalid.loc[5, "phone_number"] == 1.5  # as given


def test_lone_surrogate_is_a_row_error_not_a_crash(sandbox: Sandbox) -> None:
    """'test@\\ud800' in an object column: invalid_text on that cell, through validate and upsert."""
    df = pd.DataFrame(
        {
            "email": ["test@\ud800", "ok@example.com", "ada@example.com"],
            "phone_number": [None, None, "+1 415 555 2671\udcff"],
            "first_name": ["Ada", "B\udc80", None],
        },
        dtype=object,
    )
    check = validate(df)
    assert codes(check) == [
        (2, "email", "invalid_text"),
        (3, "first_name", "invalid_text"),
        (4, "phone_number", "invalid_text"),
    ]  # an unreadable identifier is not "required": the cell is there
    assert check.errors["value"].tolist() == ["test@\\ud800", "B\\udc80", "+1 415 555 2671\\udcff"]
    assert check.errors["message"].str.contains("not valid Unicode").all()
    assert check.valid.empty
    # the rows as given, with the surrogates escaped so that a report or CSV can hold them
    assert check.invalid.loc[2, "email"] == "test@\\ud800"
    assert check.invalid.loc[3, "first_name"] == "B\\udc80"
    with synckit.Client(sandbox.url, token=sandbox.token) as client:
        report = synckit.upsert(df, client, progress=False)
    assert report.rows["status"].tolist() == ["invalid"] * 3
    assert report.rows["error_code"].tolist() == ["invalid_text"] * 3


def test_row_numbers_for_other_indexes() -> None:
    df = pd.DataFrame({"email": ["a@example.com", "bad", "c@example.com"]})
    assert codes(validate(df)) == [(3, "email", "invalid_email")]
    assert codes(validate(df.iloc[1:])) == [(3, "email", "invalid_email")]
    assert codes(validate(df.set_index(pd.Index(["x", "y", "z"])))) == [
        (3, "email", "invalid_email")
    ]
    named = df.set_axis(pd.Index([10, 11, 12], name="row"))
    assert codes(validate(named)) == [(11, "email", "invalid_email")]
    assert validate(named).valid.index.tolist() == [10, 12]


def test_empty_frame() -> None:
    check = validate(pd.DataFrame({"email": pd.Series([], dtype="str")}))
    assert check.ok and check.valid.empty and check.errors.empty


def test_bad_duplicates_option() -> None:
    with pytest.raises(ConfigError):
        validate(pd.DataFrame({"email": ["a@b.co"]}), duplicates="first")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# duplicates


def dup_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "email": ["a@example.com", "A@Example.com ", "b@example.com", None, "c@example.com", "bad"],
            "phone_number": [None, "+1 415 555 2671", None, "(415) 555-2671", "+1 415 555 2672", "+1 415 555 2672"],
        }
    )  # fmt: skip


def test_duplicates_last_keeps_last_of_each_group_transitively() -> None:
    check = validate(dup_frame())
    # rows 2,3 share an email; 3,5 share a phone: one group {2,3,5}, row 5 kept
    dups = check.errors[check.errors["code"] == "duplicate_in_file"]
    assert dups["row"].tolist() == [2, 3]
    assert dups["message"].tolist() == [
        "duplicate of row 5 (same email as row 3, which is linked to row 5)",
        "duplicate of row 5 (same phone_number)",
    ]
    assert dups["field"].tolist() == [rules.REQUIRED_FIELD, "phone_number"]
    # invalid rows do not take part: row 7's phone equals row 6's, but row 7 is invalid
    assert check.valid.index.tolist() == [4, 5, 6]


def test_duplicates_error_and_keep() -> None:
    err = validate(dup_frame(), duplicates="error")
    assert err.errors[err.errors["code"] == "duplicate_in_file"]["row"].tolist() == [2, 3, 5]
    keep = validate(dup_frame(), duplicates="keep")
    assert "duplicate_in_file" not in keep.errors["code"].tolist()
    assert keep.valid.index.tolist() == [2, 3, 4, 5, 6]


def test_find_duplicates_long_chain() -> None:
    n = 2000
    keys = pd.DataFrame(
        {
            "row": np.arange(2, n + 2),
            "email": [f"e{i // 2}@x.io" for i in range(n)],
            "phone_number": [f"+1{(i + 1) // 2}" for i in range(n)],
        }
    )
    dup = find_duplicates(keys)
    assert len(dup) == n - 1 and set(dup["message"].str.extract(r"row (\d+)")[0]) == {str(n + 1)}


# ---------------------------------------------------------------------------
# payloads, results


def test_to_payloads_omits_missing_and_empty() -> None:
    df = pd.DataFrame(
        {
            "email": ["a@example.com", None],
            "phone_number": [None, "+14155552671"],
            "first_name": ["Ada", "  "],
            "custom_fields": [{}, '{"plan": "pro"}'],
        }
    )
    payloads = to_payloads(validate(df).valid)
    assert payloads == [
        (2, {"email": "a@example.com", "first_name": "Ada"}),
        (3, {"phone_number": "+14155552671", "custom_fields": {"plan": "pro"}}),
    ]
    json.dumps(payloads)  # plain JSON types only
    assert to_payloads(validate(pd.DataFrame({"email": ["bad"]})).valid) == []


def test_summary_repr_and_html() -> None:
    df = pd.DataFrame(
        {"email": ["bad1", "bad2", "ok@example.com"], "sms_consent": ["x", None, None]}
    )
    check = validate(df)
    summary = check.summary()
    assert summary[["field", "code", "count"]].values.tolist() == [
        ["email", "invalid_email", 2],
        ["sms_consent", "invalid_choice", 1],
        ["sms_consent", "sms_country", 1],
    ]
    assert summary.loc[0, "rows"] == [2, 3] and summary.loc[0, "examples"] == ["bad1", "bad2"]
    text = str(check)
    assert "3 rows: 1 valid, 2 invalid (4 errors)" in text and "invalid_email" in text
    assert "Validation" in repr(check)
    page = check._repr_html_()
    assert "<table>" in page and "invalid_email" in page and "bad1" in page


def test_summary_with_dict_values() -> None:
    df = pd.DataFrame({"email": ["a@example.com"] * 2, "custom_fields": [{"a": [1]}, {"a": [1]}]})
    check = validate(df)
    assert check.summary()["examples"].tolist() == [[{"a": [1]}]]
    assert "nested_custom_fields" in str(check) and "<table>" in check._repr_html_()


def test_synckit_validate_is_the_function_after_importing_the_module() -> None:
    # The function and its module have different names, so importing the
    # module can never rebind ``synckit.validate``.
    import synckit.validation as module

    result = synckit.validate(pd.DataFrame({"email": ["a@example.com"]}))
    assert isinstance(result, Validation)
    assert synckit.validate is module.validate
    assert module.to_payloads is to_payloads


def test_pure_per_chunk() -> None:
    df = pd.DataFrame({"email": [f"p{i}@example.com" for i in range(10)] + ["bad"]})
    whole = validate(df)
    parts = [validate(df.iloc[:5]), validate(df.iloc[5:])]
    joined = pd.concat([p.errors for p in parts], ignore_index=True)
    assert joined.values.tolist() == whole.errors.values.tolist()
    assert pd.concat([p.valid for p in parts]).equals(whole.valid)


# ---------------------------------------------------------------------------
# differential: validate() == check_contact on the normalised row


def ref_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    return text or None


# A cell of several values keeps its first valid one: Google's ":::" always
# separates; ";", "," (and whitespace in emails, "|" and line breaks in phones) only
# when two parts look like values (an "@"; six digits).
REF_SPLIT = {"email": r"\s*:::\s*|[;,\s]+", "phone_number": r"\s*:::\s*|\s*[;,|\r\n]+\s*"}
REF_LOOKS = {"email": r"[^@\s]+@[^@\s]+", "phone_number": r"(?:\D*\d){6}"}


def ref_first_valid(text: str, field: str, valid: Any) -> str:
    if valid(text):
        return text
    parts = [p for p in re.split(REF_SPLIT[field], text) if p.strip()]
    if len(parts) < 2:
        return text
    if ":::" not in text and sum(bool(re.match(REF_LOOKS[field], p)) for p in parts) < 2:
        return text
    return next((p for p in parts if valid(p)), text)


#: synckit's finer codes for a broken contract rule
REFINES = {
    "phone_scientific": "invalid_phone",
    "phone_extension": "invalid_phone",
    "phone_other_region": "invalid_phone",
}


def ref_normalise(cells: dict[str, Any], region: str) -> dict[str, Any]:
    """A scalar, independent re-statement of validate()'s normalisation."""
    out: dict[str, Any] = {}
    for field, value in cells.items():
        if field == "custom_fields":
            if isinstance(value, str):
                value = value.strip() or None
                if value is not None:
                    with contextlib.suppress(ValueError):
                        value = json.loads(value)
            if value is not None:
                out[field] = value
            continue
        text = ref_text(value)
        if text is None:
            continue
        if field == "email":
            text = ref_first_valid(text, field, lambda t: rules.is_valid_email(t.lower())).lower()
        elif field == "phone_number":

            def phone(t: str) -> str | None:
                found = slow_normalize_one(t, region)
                return found[0] if found and rules.phone_region(found[0]) else None

            text = ref_first_valid(text, field, lambda t: phone(t) is not None)
            text = phone(text) or text
        elif field in rules.CHOICES:
            text = text.lower()
            alt = re.sub(r"[ \t\-]+", "_", text)
            if alt in rules.CHOICES[field] and text not in rules.CHOICES[field]:
                text = alt
        out[field] = text
    return out


@contextlib.contextmanager
def phone_path(small_input: int) -> Iterator[None]:
    """Force validate's phone numbers through one path: 0 vectorised, huge per-number."""
    saved = _phone.SMALL_INPUT
    _phone.SMALL_INPUT = small_input
    try:
        yield
    finally:
        _phone.SMALL_INPUT = saved


def assert_agrees(df: pd.DataFrame, region: str = "US") -> None:
    check = validate(df, default_region=region, duplicates="keep")
    got: dict[int, set[tuple[str, str]]] = {}
    doubted: set[int] = set()
    errors = check.errors[check.errors["severity"] == "error"]
    for row, field, code in errors[["row", "field", "code"]].itertuples(index=False):
        if code == "phone_default_region":  # valid for the API, doubted by synckit
            doubted.add(int(row))
            continue
        got.setdefault(int(row), set()).add((field, REFINES.get(code, code)))
    valid = check.valid.to_dict("index")
    for pos, record in enumerate(df.to_dict("records")):
        body = ref_normalise(record, region)
        want = {(e.field, e.code) for e in rules.check_contact(body)}
        assert got.get(pos + 2, set()) == want, (record, body)
        if pos + 2 in doubted:
            assert rules.phone_region(body["phone_number"]) is not None
            continue
        if not want:
            # valid rows come out exactly as normalised
            out = {k: v for k, v in valid[pos + 2].items() if v is not None}
            assert out == body


CONSENTS = ["subscribed", " Subscribed", "UNSUBSCRIBED", "never subscribed", "never-subscribed",
            "suppressed", "single_opt_in", "Single Opt-In", "single opt in", "yes", "", "  ", None,
            "opted_out", "subscribed!"]  # fmt: skip
EMAILS = ["ada@example.com", " Ada@Example.COM ", "ada@@example.com", "ada@example", "ada@localhost",
          "a.b+c@mail.example.org", "ada..b@example.com", ".ada@example.com", "ada@exa_mple.com",
          "zoë@example.com", "ada@例え.jp", "ada@xn--e1afmkfd.org", "a b@example.com", "@example.com",
          "ada@-example.com", "ada@example.123", "x" * 65 + "@example.com", "ada@example.test",
          "ada@sub.example.local", "ΑΣ@example.com", "İnci@example.com", None, "",
          "Ada <ada@example.com>", '"ada"@example.com']  # fmt: skip


def test_differential_generated_corpus() -> None:
    rng = random.Random(3)
    phones = corpus(1000, seed=11)
    rows = []
    for i, phone in enumerate(phones):
        rows.append(
            {
                "email": rng.choice(EMAILS) if rng.random() < 0.8 else f"p{i}@example.com",
                "phone_number": phone if rng.random() < 0.9 else None,
                "first_name": rng.choice(["Ada", " Ada ", "x" * 101, " " + "y" * 100 + " ", None]),
                "last_name": rng.choice(["Lovelace", None, "", "z" * 150]),
                "email_consent": rng.choice(CONSENTS),
                "sms_consent": rng.choice(CONSENTS),
                "custom_fields": rng.choice(
                    [None, {"plan": "pro"}, '{"a": 1}', '{"a": {"b": 1}}', "[1]", "nope", {}, " "]
                ),
            }
        )
    df = pd.DataFrame(rows, dtype=object)
    for region in ("US", "GB"):
        for small_input in (0, 10**9):  # the vectorised and the per-number phone paths
            with phone_path(small_input):
                assert_agrees(df, region)


cell = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.sampled_from(EMAILS[:-4] + CONSENTS[:-2] + ["+44 7400 123456", "(415) 555-2671", "0"]),
    st.builds(
        lambda s, pad: pad + s + pad,
        st.sampled_from(CONSENTS[:9]),
        st.sampled_from(["", " ", "\t"]),
    ),
)
row = st.fixed_dictionaries({f: cell for f in rules.FIELDS if f != "custom_fields"})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, min_size=1, max_size=8), st.sampled_from(["US", "GB", "FR"]))
def test_hypothesis_never_raises_and_agrees(rows: list[dict[str, Any]], region: str) -> None:
    df = pd.DataFrame(rows, dtype=object)
    for small_input in (0, 10**9):
        with phone_path(small_input):
            assert_agrees(df, region)


# Arbitrary text is almost never a valid number: mix in real ones in many formats (the
# E.164 checks below would otherwise hardly ever run), plus a character of junk around them.
phone_text = st.one_of(
    st.text(max_size=25),
    st.sampled_from(corpus(300, seed=31)),
    st.builds(lambda a, p, b: a + p + b, st.text(max_size=2), st.sampled_from(corpus(60, seed=32)),
              st.text(max_size=2)),
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.lists(phone_text, min_size=1, max_size=6))
def test_hypothesis_valid_phone_is_e164_and_stable(texts: list[str]) -> None:
    check = validate(pd.DataFrame({"phone_number": texts}, dtype=object))
    for phone in check.valid["phone_number"].dropna():
        assert rules.E164_PATTERN.fullmatch(phone) and rules.phone_region(phone)
    again = validate(check.valid.reset_index(drop=True))
    assert again.valid["phone_number"].tolist() == check.valid["phone_number"].tolist()


def test_summary_and_html_show_the_message() -> None:
    # The allowed values of invalid_choice and the kept row of duplicate_in_file are in
    # the message: a notebook reader must see them, not only the code.
    df = pd.DataFrame(
        {
            "email": ["a@example.com", "b@example.com", "A@example.com", "c@example.com"],
            "sms_consent": [None, "opt-in", None, None],
        }
    )
    check = validate(df)
    summary = check.summary().set_index("code")
    assert summary.loc["invalid_choice", "message"] == rules.message(
        "invalid_choice", "sms_consent"
    )
    assert summary.loc["duplicate_in_file", "message"] == "duplicate of row 4 (same email)"
    page = check._repr_html_()
    assert html.escape(rules.message("invalid_choice", "sms_consent")) in page
    assert "duplicate of row 4 (same email)" in page
    assert "<th>message</th>" in page
    assert "background:" in page  # coloured badges, as SyncReport's
    assert rules.message("invalid_choice", "sms_consent") in str(check)


def test_truncated_examples_keep_their_quotes() -> None:
    long = "x" * 80 + "@"
    check = validate(pd.DataFrame({"email": [long]}))
    line = next(ln for ln in str(check).splitlines() if "invalid_email" in ln)
    assert "'" + "x" * 10 in line and line.rstrip().endswith("…'")
    page = check._repr_html_()
    assert "…&#x27;" in page


def test_missing_example_values_are_not_shown_as_nan() -> None:
    # row 3 is linked to the kept row only through row 2: it has no value of its own
    df = pd.DataFrame(
        {
            "email": ["A@example.com", "a@example.com", "c@example.com"],
            "phone_number": ["+14155552671", None, "(415) 555-2671"],
        }
    )
    check = validate(df)
    assert "nan" not in str(check) and "nan" not in check._repr_html_()


@pytest.mark.parametrize("small_input", [0, 10**9])
def test_default_region_any_case(small_input: int) -> None:
    with phone_path(small_input):
        check = validate(pd.DataFrame({"phone_number": ["07400 123456"]}), default_region="gb")
    assert check.valid["phone_number"].tolist() == ["+447400123456"]


def test_unknown_default_region_is_a_config_error() -> None:
    # "UK" is not a region (GB is): every national number would silently be invalid
    with pytest.raises(ConfigError, match=r"'UK'.*GB"):
        validate(pd.DataFrame({"phone_number": ["07400 123456"]}), default_region="UK")


def test_not_a_dataframe_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DataFrame"):
        validate(pd.Series(["a@example.com"]))  # type: ignore[arg-type]


def test_repr_names_the_ignored_columns() -> None:
    # "Email" is not a contract field name: every row lacks an identifier, and the
    # reader must see why without digging into .ignored_columns
    check = validate(pd.DataFrame({"Email": ["a@example.com"], "Notes": ["x"]}))
    assert check.ignored_columns == ("Email", "Notes")
    assert "ignored columns (not sent): 'Email', 'Notes'" in str(check)
    assert "&#x27;Email&#x27;, &#x27;Notes&#x27;" in check._repr_html_()
    assert "ignored" not in str(validate(pd.DataFrame({"email": ["a@example.com"]})))
