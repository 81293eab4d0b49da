"""The byte-level shortcuts of the vectorised checks give the regex engine's verdicts.

Validation reads digits, phone shapes and separator characters straight from
the Arrow buffers with NumPy instead of RE2 (pyarrow's regex kernels, what the
same checks used before). Each shortcut is held here to RE2 itself, on every
ASCII character and on generated text with multi-byte characters, missing
values and empty strings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

import synckit
from synckit import _arrow, _phone, _steps

# text near the shapes the checks care about, with characters of 1 to 4 UTF-8 bytes
ALPHABET = "0123456789 ().-+x/#:;,|\t\n\r\f\vé٣\u00a0\u3000😀"
texts = st.lists(st.one_of(st.none(), st.text(alphabet=ALPHABET, max_size=12)), max_size=40)


def arrow(values: list[str | None]) -> pa.Array:
    return pa.array(values, type=pa.large_string())


@settings(max_examples=200, deadline=None)
@given(texts)
def test_digits_are_re2s_non_digits_removed(values: list[str | None]) -> None:
    arr = arrow(values)
    want = pc.replace_substring_regex(arr.fill_null(""), r"[^0-9]", "")
    assert _phone._Digits.of(arr).text().to_pylist() == want.to_pylist()


@settings(max_examples=200, deadline=None)
@given(texts, st.data())
def test_digits_of_some_rows_from_a_start(values: list[str | None], data: st.DataObject) -> None:
    # rows in order (most of them: one pass over a mask) or any order (a gather),
    # each from its own start digit; the reference is Python slicing RE2's digits
    digits = pc.replace_substring_regex(arrow(values).fill_null(""), r"[^0-9]", "").to_pylist()
    n = len(values)
    rows = data.draw(st.lists(st.integers(0, max(n - 1, 0)), unique=True, max_size=n)) if n else []
    if data.draw(st.booleans()):
        rows = sorted(rows)
    start = [data.draw(st.integers(0, len(digits[r]))) for r in rows]
    got = _phone._Digits.of(arrow(values)).text(
        np.array(rows, dtype=np.int64), np.array(start, dtype=np.int64)
    )
    assert got.to_pylist() == [digits[r][s:] for r, s in zip(rows, start, strict=True)]


@settings(max_examples=200, deadline=None)
@given(texts)
def test_phone_shape_is_re2s_full_match(values: list[str | None]) -> None:
    arr = arrow(values)
    assert _phone._shaped(arr).tolist() == _phone._re(arr, _phone._SHAPE, full=True).tolist()


def test_phone_shape_edge_cases() -> None:
    cases = {"": False, "+": False, "(": False, "1": True, "+1": True, "(1": True, "((1": False,
             "+(1": False, "1+": False, " 1": False, "1 ": True, "+ 1": False,
             "(415) 555-2671": True, "+44 7400 123456": True, "415/555": False}  # fmt: skip
    arr = arrow(list(cases))
    assert dict(zip(cases, _phone._shaped(arr).tolist(), strict=True)) == cases


def test_separator_bytes_are_re2s_character_classes() -> None:
    # RE2's \s is [\t\n\f\r ]: no \v, no Unicode spaces (Python's re differs)
    chars = [chr(i) for i in range(128)] + ["\u00a0", "\u2003", "\x85", "é", "\u3000"]
    arr = arrow(["a" + c + "b" for c in chars])
    for field in ("email", "phone_number"):
        regex = _arrow.bools(pc.match_substring_regex(arr, _steps._ANY_SEPARATOR[field]))
        scanned = _arrow.has_byte(arr, _steps._SEPARATOR_BYTES[field])
        assert scanned.tolist() == regex.tolist(), field
    assert _arrow.has_byte(arrow(["a;b", None, ""]), _arrow.byte_set(";")).tolist() == [
        True,
        False,
        False,
    ]


def test_spread_text_lays_values_over_rows() -> None:
    out = _phone._spread_text(arrow(["+1", "+44"]), np.array([False, True, False, True]))
    assert out.to_pylist() == [None, "+1", None, "+44"]
    assert _phone._spread_text(arrow([]), np.zeros(2, dtype=bool)).to_pylist() == [None, None]


def test_error_values_keep_pandas_inference() -> None:
    # every rule reports text: the value column is text, missing cells NaN
    text_only = synckit.validate(
        pd.DataFrame({"email": ["bad@", "ok@example.com"], "phone_number": ["12", None]})
    )
    assert text_only.errors["value"].dtype == "str"
    assert text_only.errors["value"].tolist() == ["bad@", "12"]
    # a nested custom field reports its dict: object values (None for "required")
    mixed = synckit.validate(
        pd.DataFrame(
            {
                "email": ["bad@", "a@example.com", None],
                "phone_number": [None, None, None],
                "custom_fields": [None, {"a": {"b": 1}}, None],
            }
        )
    )
    assert mixed.errors["value"].dtype == object
    assert mixed.errors["value"].tolist() == ["bad@", {"a": {"b": 1}}, None]
    assert mixed.errors["code"].tolist() == ["invalid_email", "nested_custom_fields", "required"]


SPACES = " \t\n\v\f\r\x1c\x1f\x85\u00a0\u2003\u3000"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet="ab" + SPACES, max_size=6)), max_size=30))
def test_trim_shortcut_equals_arrows_trim(values: list[str | None]) -> None:
    arr = arrow(values)
    assert _arrow.trimmed(arr).to_pylist() == pc.utf8_trim_whitespace(arr).to_pylist()
    blanks = _arrow.blank_to_null(pc.utf8_trim_whitespace(arr)).to_pylist()
    assert blanks == [None if v is None or not v.strip(SPACES) else v.strip(SPACES) for v in values]


def test_cells_that_are_not_text_are_read_as_pandas_str_reads_them() -> None:
    cells = pd.Series(["a", 1, None, 2.5], dtype=object)
    assert _arrow.text_array(cells).to_pylist() == ["a", "1", None, "2.5"]
    e164, _ = _phone.normalize_phones(pd.Series(["+14155552671", 4155552671], dtype=object), "US")
    assert e164.tolist() == ["+14155552671", "+14155552671"]
