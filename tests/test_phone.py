# ruff: noqa: E501  (test data reads better unwrapped)
"""The phone fast path gives exactly phonenumbers' verdicts (differential + hypothesis)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synckit import _phone, rules
from synckit._phone import _slow_once, fast_normalize, normalize_phones, slow_normalize_one

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _phone_corpus import JUNK, REGIONS, corpus, with_extensions

# default regions to parse national formats with: the big ones, shared country
# codes (+1, +44, +7, +61, +39), complex national prefixes (AR, BR, JP, AU, CN)
DEFAULT_REGIONS = ["US", "GB", "DE", "CA", "AU", "FR", "IN", "BR", "AR", "JP", "GG", "AG", "IT",
                   "RU", "KZ", "CN", "MX", "NG"]  # fmt: skip


def reference(texts: list[str], region: str | None) -> list[tuple[str, str] | None]:
    return [_slow_once(t, region) for t in texts]


def check_decided_equal(texts: list[str], region: str | None) -> int:
    e164, reg, decided = fast_normalize(pd.Series(texts, dtype="str"), region)
    mismatches = []
    for i in np.flatnonzero(decided):
        want = _slow_once(texts[i], region)
        got = None if e164[i] is None else (e164[i], reg[i])
        if want != got:
            mismatches.append((texts[i], region, want, got))
    assert not mismatches, mismatches[:10]
    return int(decided.sum())


def run_corpus(n: int, regions: list[str], seed: int) -> None:
    texts = corpus(n, seed=seed)
    texts = list(dict.fromkeys(texts + with_extensions(texts[::6], seed=seed + 1)))
    decided = 0
    for region in regions:
        decided += check_decided_equal(texts, region)
    # the fast path must actually carry most of the load
    assert decided > 0.6 * len(texts) * len(regions)


def test_fast_path_equals_phonenumbers_on_generated_corpus() -> None:
    run_corpus(2500, ["US", "GB", "AR", "CA", "DE", "JP"], seed=1)


@pytest.mark.slow
def test_fast_path_equals_phonenumbers_on_large_corpus() -> None:
    # ~7k texts x 18 default regions: about 126k reference parses
    run_corpus(6000, DEFAULT_REGIONS, seed=7)


def test_every_region_example_in_every_format() -> None:
    texts = []
    for region in REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            for fmt in (
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.NATIONAL,
            ):
                texts.append(phonenumbers.format_number(number, fmt))
    texts = list(dict.fromkeys(texts))
    for region in ("US", "GB", "AR"):
        check_decided_equal(texts, region)
    # E.164 examples of every region are decided by the fast path, and valid
    e164 = [t for t in texts if t.startswith("+") and " " not in t]
    got, _reg, decided = fast_normalize(pd.Series(e164, dtype="str"), "US")
    assert decided.mean() > 0.9
    assert all(g == t for g, t, d in zip(got, e164, decided, strict=True) if d)


def test_junk_and_edge_cases() -> None:
    for region in ["US", "GB", "DE", "AR", "BR", "AU", "JP", "GG", None]:
        check_decided_equal(list(dict.fromkeys(JUNK)), region)


@pytest.mark.parametrize("small_input", [0, 10**9], ids=["vectorised", "per-number"])
def test_normalize_phones_end_to_end_matches_slow_path(
    small_input: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_phone, "SMALL_INPUT", small_input)
    texts = list(dict.fromkeys(corpus(800, seed=5)))
    for region in ("US", "AR"):
        e164, _ = normalize_phones(pd.Series(texts * 2, dtype="str"), region)
        got = e164.tolist()[: len(texts)]
        for text, out in zip(texts, got, strict=True):
            found = slow_normalize_one(text, region)
            if found is not None and rules.phone_region(found[0]) is None:
                found = None  # the contract wants E.164 that re-parses to itself
            assert (None if pd.isna(out) else out) == (found[0] if found else None), text


def test_extensions_are_invalid_but_vanity_converts() -> None:
    e164, region = normalize_phones(
        pd.Series(
            ["+1 415 555 2671 x12", "415-555-2671 ext. 45", "1-800-FLOWERS", "+1 415 555 2671"]
        ),
        "US",
    )
    assert e164.isna().tolist() == [True, True, False, False]
    assert e164.iloc[2] == "+18003569377" and region.iloc[3] == "US"


def test_double_zero_prefix_is_retried_as_plus() -> None:
    e164, region = normalize_phones(pd.Series(["0044 7400 123456", "0049 30 1234567"]), "US")
    assert e164.tolist() == ["+447400123456", "+49301234567"]
    assert region.tolist() == ["GB", "DE"]


@pytest.mark.parametrize("small_input", [0, 10**9], ids=["vectorised", "per-number"])
def test_double_zero_retry_never_rereads_the_regions_own_prefix(
    small_input: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AU dials out with 0011: "0011-650-253-0000" is not +1 650 253 0000 read through "00"."""
    monkeypatch.setattr(_phone, "SMALL_INPUT", small_input)
    texts = pd.Series(["0011-650-253-0000", "0011 44 7400 123456", "0044 7400 123456"])
    e164, _ = normalize_phones(texts, "AU")
    # 0011 is AU's own prefix: the first is +65 0253 0000 to libphonenumber (invalid), the
    # second +44 7400 123456; "0044" is not an AU prefix, so the retry reads it as +44
    assert e164.tolist()[1:] == ["+447400123456", "+447400123456"] and pd.isna(e164.iloc[0])
    assert slow_normalize_one("0011-650-253-0000", "AU") is None
    # where 00 is not the region's own prefix the retry still helps (US dials out with 011)
    assert normalize_phones(pd.Series(["0044 7400 123456"]), "US")[0].tolist() == ["+447400123456"]
    # the prefix comes from libphonenumber's metadata, not from a list of ours
    assert _phone._own_idd("0011 650", "AU") and not _phone._own_idd("0044 7400", "AU")
    assert _phone._own_idd("011 44 7400", "US") and not _phone._own_idd("0044 7400", "US")


def test_regions_of_shared_country_codes() -> None:
    texts = ["+44 7911 123456", "+44 7400 123456", "+44 7624 123456", "+1 809 555 1234",
             "+1 416 555 0100", "+1 787 555 0100", "+7 701 234 5678", "+7 912 345 6789"]  # fmt: skip
    _, region = normalize_phones(pd.Series(texts), "US")
    want = [phonenumbers.region_code_for_number(phonenumbers.parse(t)) for t in texts]
    assert region.tolist() == want
    assert "GG" in want and "IM" in want and "DO" in want and "KZ" in want


digits = st.text(alphabet="0123456789", min_size=1, max_size=16)
separators = st.sampled_from(["", " ", "-", ".", "(", ")", " (", ") "])
shaped = st.builds(
    lambda plus, parts: plus + "".join(parts),
    st.sampled_from(["", "+", "+", "00", "011 ", "1 "]),
    st.lists(st.one_of(digits, separators), min_size=1, max_size=8),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.one_of(shaped, st.text(max_size=20)), min_size=1, max_size=20),
       st.sampled_from(["US", "GB", "DE", "AR", "BR", "AU", "IN", "JP"]))  # fmt: skip
def test_hypothesis_fast_path_equals_phonenumbers(texts: list[str], region: str) -> None:
    check_decided_equal(list(dict.fromkeys(texts)), region)


@settings(max_examples=50, deadline=None)
@given(st.lists(shaped, min_size=1, max_size=10), st.sampled_from(["US", "GB", "FR"]))
def test_hypothesis_results_are_e164_and_stable(texts: list[str], region: str) -> None:
    e164, _ = normalize_phones(pd.Series(texts, dtype="str"), region)
    out = [x for x in e164.tolist() if isinstance(x, str)]
    for number in out:
        assert rules.E164_PATTERN.fullmatch(number) and rules.phone_region(number)
    again, _ = normalize_phones(pd.Series(out, dtype="str"), region)
    assert again.tolist() == out


def test_small_input_uses_phonenumbers_per_number(monkeypatch: pytest.MonkeyPatch) -> None:
    # a handful of numbers must not pay the vectorised path's fixed cost
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("vectorised path used for a small input")

    monkeypatch.setattr(_phone, "_fast_normalize", refuse)
    e164, region = normalize_phones(
        pd.Series(
            [
                "(415) 555-2671",
                "+44 (0)7911 123456",
                "0049 30 1234567",
                "1-800-FLOWERS",
                "415-555-2671 ext. 45",
                None,
            ]
        ),
        "US",
    )
    assert [None if pd.isna(x) else x for x in e164.tolist()[:5]] == ["+14155552671", "+447911123456", "+49301234567",
                                 "+18003569377", None]  # fmt: skip
    assert region.tolist()[:4] == ["US", "GG", "DE", "US"]
    assert pd.isna(e164.iloc[5]) and pd.isna(region.iloc[4])


@pytest.mark.parametrize("hashed", [True, False], ids=["hashed-first", "as-they-come"])
@pytest.mark.parametrize("region", ["US", "GB", "AR", "DE", None])
def test_both_paths_give_identical_results(
    region: str | None, hashed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = corpus(1500, seed=21)
    texts = list(dict.fromkeys(texts + with_extensions(texts[::5], seed=22) + JUNK))
    values = pd.Series([*texts, None, *texts[:50]], dtype="str")
    # a column of mostly different numbers is not hashed first (repeats and gaps
    # are then handled where they stand): a small sample makes this one such a column
    monkeypatch.setattr(_phone, "_SAMPLE", 100 if not hashed else 10**9)
    assert _phone._mostly_distinct(_phone._arrow(values)) is not hashed
    monkeypatch.setattr(_phone, "SMALL_INPUT", 0)
    fast = normalize_phones(values, region)
    # the reference: phonenumbers per distinct value, hashed first (the path of
    # small inputs, tested against phonenumbers above)
    monkeypatch.setattr(_phone, "SMALL_INPUT", 10**9)
    monkeypatch.setattr(_phone, "_SAMPLE", 10**9)
    slow = normalize_phones(values, region)
    for a, b in zip(fast, slow, strict=True):
        mismatch = [(t, x, y) for t, x, y in zip(values, a, b, strict=True)
                    if not (x == y or (pd.isna(x) and pd.isna(y)))]  # fmt: skip
        assert not mismatch, mismatch[:10]
    assert fast[0].notna().sum() > 0.3 * len(texts)  # the corpus is mostly valid numbers


def test_a_column_of_different_numbers_is_not_hashed_first() -> None:
    """The choice :func:`_phone._normalize` makes from the first 2,000 values (answers
    are the same either way: tested above; this pins when the cheaper one is taken)."""
    import pyarrow as pa

    def column(values: list[str | None], n: int = 8000) -> pa.Array:
        rest = [f"+4420{7000000 + i}" for i in range(n - len(values))]
        return pa.array([*values, *rest], pa.large_string())

    distinct = [f"+1415555{i:04d}" for i in range(2000)]
    assert _phone._mostly_distinct(column(distinct)) is True
    # under four samples' worth of values, hashing first is cheap: always done
    assert _phone._mostly_distinct(column(distinct, n=7999)) is False
    # 90 % of the sample distinct is enough; one fewer is not
    assert _phone._mostly_distinct(column(distinct[:1800] + distinct[:200])) is True
    assert _phone._mostly_distinct(column(distinct[:1799] + distinct[:201])) is False
    # missing values are left out of the sample; half of it present is enough
    assert (
        _phone._mostly_distinct(column([v if i % 2 else None for i, v in enumerate(distinct)]))
        is True
    )
    third = [v if i % 3 == 0 else None for i, v in enumerate(distinct)]
    assert _phone._mostly_distinct(column(third)) is False


def test_type_check_follows_libphonenumber_on_made_up_metadata() -> None:
    """``_type_known`` as ``_number_type_helper(...) != UNKNOWN``, on metadata written
    here so each rule shows: the general desc's length gate, its pattern matched in
    full, then the type patterns whose lengths admit the number."""
    import pyarrow as pa

    from synckit._phone import _Desc, _Meta, _type_known

    def meta(general: _Desc, *types: _Desc) -> _Meta:
        none = np.zeros(0, dtype=np.int64)
        return _Meta("ZZ", "999", general, types, None, None, None, False, None, none, 2, 17, none)

    # the general pattern admits 10 or 11 digits, its possible lengths only 10
    m = meta(_Desc(r"\d{10,11}", frozenset({10})), _Desc(r"[2-9]\d{9,10}", None))
    numbers = ["2015550123", "0015550123", "20155501234", "2015550123", "201555012"]
    lengths = np.array([len(t) for t in numbers])  # runs of lengths, not sorted
    got = _type_known(pa.array(numbers, pa.large_string()), lengths, m)
    assert got.tolist() == [True, False, False, True, False]
    # the general pattern must match the whole number, not a prefix of it
    m = meta(_Desc(r"\d{10}", frozenset({10, 11})), _Desc(r"\d{11}", frozenset({11})))
    got = _type_known(pa.array(["20155501234"], pa.large_string()), np.array([11]), m)
    assert got.tolist() == [False]
    # a type pattern takes part only for its own lengths
    m = meta(_Desc(r"\d{10,11}", None), _Desc(r"\d{10,11}", frozenset({11})))
    got = _type_known(
        pa.array(["2015550123", "20155501234"], pa.large_string()), np.array([10, 11]), m
    )
    assert got.tolist() == [False, True]
    # no general desc: nothing is known; no numbers: nothing to say
    assert _type_known(
        pa.array(["2015550123"], pa.large_string()), np.array([10]), meta(None)
    ).tolist() == [False]  # type: ignore[arg-type]
    assert _type_known(pa.array([], pa.large_string()), np.zeros(0, np.int64), m).tolist() == []
