"""Custom fields stay columns through validate; to_payloads builds each sent row's object."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from synckit import rules
from synckit.validation import to_payloads, validate


def bodies(df: pd.DataFrame) -> dict[int, Any]:
    """row -> the custom_fields object sent for it (None when the body has none)."""
    return {row: body.get("custom_fields") for row, body in to_payloads(validate(df).valid)}


def test_json_keys_first_then_columns_in_order_a_column_wins() -> None:
    df = pd.DataFrame(
        {
            "email": ["a@example.com"],
            "custom_fields": ['{"tier": "gold", "plan": "free"}'],
            "custom.plan": [" pro "],
            "custom.seats": ["3"],
        }
    )
    sent = bodies(df)[2]
    assert sent == {"tier": "gold", "plan": "pro", "seats": "3"}
    assert list(sent) == ["tier", "plan", "seats"]  # the override keeps the JSON key's place


def test_a_column_can_replace_a_nested_json_value() -> None:
    df = pd.DataFrame(
        {
            "email": ["a@example.com", "b@example.com"],
            "custom_fields": ['{"plan": {"x": 1}}'] * 2,
            "custom.plan": ["pro", ""],
        }
    )
    check = validate(df)
    assert bodies(df) == {2: {"plan": "pro"}}
    assert check.errors[["row", "code", "value"]].values.tolist() == [
        [3, "nested_custom_fields", {"plan": {"x": 1}}]
    ]


def test_key_count_counts_json_and_column_keys_once_each() -> None:
    many = json.dumps({f"k{i}": i for i in range(99)})
    df = pd.DataFrame(
        {
            "email": ["a@example.com", "b@example.com", "c@example.com"],
            "custom_fields": [many] * 3,
            "custom.k0": ["x", "x", None],  # already a JSON key: no new key
            "custom.new": [None, "y", "y"],
        }
    )
    check = validate(df)
    # row 2: 99 keys; row 3: 99 + new = 100 (the limit); row 4: 100 too
    assert check.ok and len(to_payloads(check.valid)[1][1]["custom_fields"]) == 100
    df["custom.other"] = ["z", "z", None]  # row 3: 101 keys
    check = validate(df)
    assert check.errors["row"].tolist() == [3]
    assert len(check.errors["value"].iat[0]) == 101  # the merged object, as it would be sent
    assert [row for row, _ in to_payloads(check.valid)] == [2, 4]


def test_key_too_long_only_where_the_column_has_a_value() -> None:
    key = "k" * (rules.CUSTOM_FIELD_KEY_MAX_LENGTH + 1)
    df = pd.DataFrame({"email": ["a@example.com", "b@example.com"], f"custom.{key}": ["v", " "]})
    check = validate(df)
    assert check.errors[["row", "code", "value"]].values.tolist() == [
        [2, "nested_custom_fields", {key: "v"}]
    ]
    assert bodies(df) == {3: None}


def test_numbers_booleans_and_missing_values_by_dtype() -> None:
    df = pd.DataFrame(
        {
            "email": [f"{c}@example.com" for c in "abcde"],
            "custom.score": [1.5, float("inf"), float("nan"), 2.0, -0.0],
            "custom.seats": pd.array([3, None, 5, 6, 7], dtype="Int64"),
            "custom.flag": [True, 1, None, 1.0, "  yes "],  # object: each kept as its own type
        }
    )
    check = validate(df)
    assert check.errors["row"].tolist() == [3]  # infinity is not JSON
    sent = bodies(df)
    assert sent == {
        2: {"score": 1.5, "seats": 3, "flag": True},
        4: {"seats": 5},
        5: {"score": 2.0, "seats": 6, "flag": 1.0},
        6: {"score": -0.0, "seats": 7, "flag": "yes"},
    }
    assert json.dumps(sent[2]) == '{"score": 1.5, "seats": 3, "flag": true}'
    assert json.dumps(sent[5]) == '{"score": 2.0, "seats": 6, "flag": 1.0}'


def test_json_cells_that_are_not_objects() -> None:
    df = pd.DataFrame(
        {
            "email": [f"{c}@example.com" for c in "abcd"],
            "custom_fields": ["null", "[1, 2]", "not json", '{"a": 1}'],
            "custom.plan": ["pro", "pro", None, None],
        }
    )
    check = validate(df)
    assert check.errors[["row", "value"]].values.tolist() == [[3, [1, 2]], [4, "not json"]]
    assert bodies(df) == {2: {"plan": "pro"}, 5: {"a": 1}}


def test_equal_json_texts_give_separate_objects() -> None:
    df = pd.DataFrame(
        {"email": ["a@example.com", "b@example.com"], "custom_fields": ['{"a": 1}'] * 2}
    )
    check = validate(df)
    first, second = (body["custom_fields"] for _, body in to_payloads(check.valid))
    first["a"] = 99
    assert second == {"a": 1} and to_payloads(check.valid)[0][1]["custom_fields"] == {"a": 1}


def test_more_custom_columns_than_mask_bits() -> None:
    df = pd.DataFrame({"email": ["a@example.com", "b@example.com"]})
    for i in range(80):
        df[f"custom.k{i}"] = [str(i), None if i % 2 else "x"]
    sent = bodies(df)
    assert sent[2] == {f"k{i}": str(i) for i in range(80)}
    assert sent[3] == {f"k{i}": "x" for i in range(0, 80, 2)}


# ---------------------------------------------------------------------------
# against the per-row definition


def reference(df: pd.DataFrame) -> tuple[dict[int, Any], dict[int, Any]]:
    """The rule row by row: parse the JSON cell, lay each custom.<key> cell over it, check.

    Returns (row -> error value, row -> object sent) for the custom fields alone.
    """

    def scalar(v: Any) -> Any:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, str):
            return v.strip() or None
        if isinstance(v, bool | np.bool_):
            return bool(v)
        if isinstance(v, int | np.integer):
            return int(v)
        if isinstance(v, float | np.floating):
            return float(v)
        return str(v)

    prefixed = [c for c in df.columns if c.startswith("custom.")]
    errors: dict[int, Any] = {}
    sent: dict[int, Any] = {}
    for i in range(len(df)):
        given = df["custom_fields"].iat[i] if "custom_fields" in df else None
        cell: Any = None
        if isinstance(given, str) and given.strip():
            try:
                cell = json.loads(given)
            except ValueError:
                cell = given
        for column in prefixed:
            item = scalar(df[column].iat[i])
            if item is None:
                continue
            if cell is None:
                cell = {}
            if isinstance(cell, dict):
                cell[column[len("custom.") :].strip()] = item
        if cell is not None and not rules.check_custom_fields(cell):
            errors[i + 2] = cell if prefixed else given
        else:
            sent[i + 2] = cell or None
    return errors, sent


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_columns_agree_with_the_per_row_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    wide = json.dumps({f"w{i}": i for i in range(99)})
    json_pool = [None, "", " ", '{"a": 1}', '{"b": [1]}', "[1]", "oops", "null", wide, '{"c": 1.5}']
    text_pool = [None, "", " x ", "y", "  ", "b"]

    def draw(pool: list[Any]) -> pd.Series:
        return pd.Series(rng.choice(np.array(pool, dtype=object), n), dtype="str")

    df = pd.DataFrame(
        {
            "email": [f"p{i}@example.com" for i in range(n)],
            "custom_fields": draw(json_pool),
            "custom.a": draw(text_pool),
            "custom.b": rng.choice([1.0, np.nan, np.inf, 2.5], n),
            "custom.w0": draw(text_pool),
            "custom.extra": draw(text_pool),
        }
    )
    errors, sent = reference(df)
    assert len(errors) > 20 and len(sent) > 20  # both outcomes are exercised
    check = validate(df)
    got = check.errors.query("code == 'nested_custom_fields'")
    assert dict(zip(got["row"], got["value"], strict=True)) == errors
    assert bodies(df) == sent
