"""Phone numbers to E.164, many at once, with libphonenumber's verdicts.

:func:`normalize_phones` turns a Series of phone texts into E.164 strings
(missing where libphonenumber does not call the number valid) and their
regions (as ``region_code_for_number`` gives them; ``001`` for
non-geographic numbers). Each distinct value is handled once.

Most well-formed numbers never reach ``phonenumbers.parse``: a vectorised
fast path (:func:`fast_normalize`) re-implements, with pandas string
methods, the part of libphonenumber's parse and ``is_valid_number`` that
applies to text made only of digits, spaces, ``-``, ``.``, ``(`` ``)`` and an
optional leading ``+``, using libphonenumber's own metadata (the per-region
general and per-type ``national_number_pattern`` and ``possible_length``,
``national_prefix_for_parsing``, ``international_prefix`` and
``leading_digits`` for shared country codes such as +1 and +44). Whatever the
fast path is not sure about (other characters, international dialling
prefixes, national prefixes with capture groups or transform rules, unknown
country codes) goes to :func:`slow_normalize_one`, i.e. to phonenumbers
itself. The tests prove the two agree on a large generated corpus.

Decisions beyond libphonenumber (documented in :func:`synckit.validate`):

- an extension (``x123``, ``ext. 45``) makes the value invalid: E.164 cannot
  carry it and dropping it silently would send the wrong number;
- vanity letters (``1-800-FLOWERS``) are converted, as libphonenumber does;
- a number written with the ``00`` international prefix that is invalid in
  the default region is retried as ``+`` (``0044 7400 123456`` with region
  US is +447400123456): the default region's own dialling prefix (``011``
  for US) is already understood by libphonenumber, and a national number
  starting with ``00`` is never valid anyway. The retry never fires when the
  text starts with the region's own international prefix as libphonenumber's
  metadata writes it (AU's ``0011``, BR's ``0021``): libphonenumber has read
  that prefix already, and reading ``00`` instead would dial another number
  (``0011-650-253-0000`` in AU is not +1 650 253 0000).

Example:
    >>> import pandas as pd
    >>> texts = pd.Series(["(415) 555-2671", "+44 7400 123456", "12"])
    >>> e164, region = normalize_phones(texts, "US")
    >>> e164.tolist(), region.tolist()
    (['+14155552671', '+447400123456', nan], ['US', 'GB', nan])
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Final

import numpy as np
import pandas as pd
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import PhoneMetadata

from synckit import _diagnostics, rules
from synckit._arrow import TEXT as _TEXT
from synckit._arrow import bools as _bools
from synckit._arrow import buffers as _buffers
from synckit._arrow import byte_set as _byte_set
from synckit._arrow import filled as _filled
from synckit._arrow import rows_of as _rows_of
from synckit._arrow import series as _series
from synckit._arrow import text_array as _arrow

__all__ = [
    "CODES",
    "OTHER_REGIONS",
    "SMALL_INPUT",
    "PhoneCheck",
    "check_phones",
    "fast_normalize",
    "normalize_by_region",
    "normalize_phones",
    "slow_normalize_one",
]

_E164 = phonenumbers.PhoneNumberFormat.E164
_DOUBLE_ZERO = re.compile(r"00\d")


def _slow_once(text: str, region: str | None) -> tuple[str, str] | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if number.extension:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, _E164)
    return e164, phonenumbers.region_code_for_number(number) or "ZZ"


@cache
def _idd_pattern(region: str | None) -> re.Pattern[str] | None:
    """The region's international dialling prefix, from libphonenumber's metadata."""
    meta = PhoneMetadata.metadata_for_region(region.upper(), None) if region else None
    idd = getattr(meta, "international_prefix", None)
    return re.compile(idd) if idd else None


def _own_idd(text: str, region: str | None) -> bool:
    """True when ``text`` starts with ``region``'s own international prefix.

    The test libphonenumber applies while parsing (``_parse_prefix_as_idd``):
    the prefix matches the start of the digits, and what follows does not
    start with 0. The ``00`` retry must not re-read such a number.
    """
    pattern = _idd_pattern(region)
    if pattern is None:
        return False
    digits = phonenumbers.normalize_digits_only(text)
    found = pattern.match(digits)
    return found is not None and not digits[found.end() :].startswith("0")


def _own_idd_many(texts: pd.Series | pa.Array, region: str | None) -> np.ndarray:
    """:func:`_own_idd` for many texts: a vectorised prefilter on the digits, then the
    exact test (which needs the match's end) for the few that start like the prefix."""
    pattern = _idd_pattern(region)
    out = np.zeros(len(texts), dtype=bool)
    if pattern is None or not len(texts):
        return out
    arr = _arrow(texts) if isinstance(texts, pd.Series) else texts
    maybe = _re(_Digits.of(arr).text(), pattern.pattern, full=False)
    # digits beyond ASCII are normalised by libphonenumber only: test those exactly too
    maybe |= ~_bools(pc.fill_null(pc.string_is_ascii(arr), True))
    maybe &= _bools(arr.is_valid())
    idx = np.flatnonzero(maybe)
    for i, text in zip(idx.tolist(), arr.take(idx).to_pylist(), strict=True):
        out[i] = _own_idd(str(text), region)
    return out


def _double_zero_retry(text: str, region: str | None) -> str | None:
    """``+`` + the rest for a text starting with ``00`` (see the module docstring), else None."""
    stripped = text.lstrip()
    if not _DOUBLE_ZERO.match(stripped) or _own_idd(stripped, region):
        return None
    return "+" + stripped[2:]


def slow_normalize_one(text: str, region: str | None) -> tuple[str, str] | None:
    """(E.164, region) for one phone text, or ``None`` if it is not a valid number.

    The reference path: phonenumbers parse, extension check, is_valid_number,
    format E.164, then the ``00`` retry described in the module docstring.

    Example:
        >>> slow_normalize_one("0044 7400 123456", "US")
        ('+447400123456', 'GB')
    """
    found = _slow_once(text, region)
    if found is None:
        retry = _double_zero_retry(text, region)
        if retry is not None:
            found = _slow_once(retry, region)
    return found


# ---------------------------------------------------------------------------
# the fast path
#
# Everything below works on Arrow arrays of distinct texts: RE2 (pyarrow's
# regex kernels) for libphonenumber's patterns, numpy on the arrays' byte
# buffers for digits, country codes and prefixes. Texts are never turned into
# Python objects except the few the fast path leaves to phonenumbers, and a
# national number is never copied out by itself: it is the digits of its text
# from a start position (after the country code and national prefix), cut
# out of the digit buffer in one gather when a group of numbers needs it.

# Text the fast path understands: digits and the separators libphonenumber
# simply drops, optionally one leading plus. Anything else (letters, '#',
# ',', '/', unicode digits, a plus elsewhere) goes the slow way.
_SHAPE: Final = r"\+?[0-9][0-9 ().\-]*|\([0-9][0-9 ().\-]*"
# A number in that shape (at least 3 digits) then " x123": libphonenumber reads an
# extension, which we reject, so the value is invalid whatever the number is.
_EXT_SHAPE: Final = r"(?:\+?[0-9]|\([0-9])(?:[ ().\-]*[0-9]){2}[0-9 ().\-]*x ?[0-9]{1,9}"
_MIN_DIGITS: Final = 3
_MAX_DIGITS: Final = 17
_TYPE_DESCS: Final = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)
_PLUS: Final = ord("+")
_ZERO: Final = ord("0")
_PLUS_TEXT: Final = pa.scalar("+", _TEXT)
_EMPTY: Final = pa.scalar("", _TEXT)
#: "+<code>" for every calling code 0-999, looked up by code (a take from 1,000
#: short values costs a fraction of formatting each row's code as text)
_CODE_PREFIX: Final = pa.array([f"+{c}" for c in range(1000)], _TEXT)

#: Every region libphonenumber names (and ``001``, non-geographic), by a small
#: integer: results carry region codes, and text is made once per distinct region.
_REGION_NAMES: Final = tuple(
    dict.fromkeys(r for rs in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.values() for r in rs)
)
_REGION_CODE: Final = {r: i for i, r in enumerate(_REGION_NAMES)}
_REGION_ARROW: Final = pa.array(_REGION_NAMES, type=_TEXT)
#: ``_IS_CC[c]``: ``c`` is a country calling code (they are prefix-free, below 1000).
_IS_CC: Final = np.zeros(1000, dtype=bool)
_IS_CC[[c for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE if 0 < c < 1000]] = True


def _region_code(region: str | None) -> int:
    if region is None:
        return -1
    code = _REGION_CODE.get(region)
    if code is None:  # pragma: no cover - a region phonenumbers names is always listed
        raise ValueError(f"unknown region {region!r}")
    return code


def _region_text(codes: np.ndarray) -> pa.Array:
    """Region codes back to text (null for -1)."""
    return _REGION_ARROW.take(pa.array(codes, mask=codes < 0))


def _re(arr: pa.Array, pattern: str, *, full: bool) -> np.ndarray:
    """Anchored RE2 test per value (full match, or prefix match like ``re.match``).

    The differential tests prove the verdicts equal Python's ``re`` on
    libphonenumber's patterns.
    """
    if not len(arr):
        return np.zeros(0, dtype=bool)
    anchored = "^(?:" + pattern + (")$" if full else ")")
    return _bools(pc.match_substring_regex(arr, anchored))


def _regex(s: pd.Series | pa.Array, pattern: str, *, full: bool) -> np.ndarray:
    """:func:`_re` for pandas text too."""
    return _re(_arrow(s) if isinstance(s, pd.Series) else s, pattern, full=full)


def _startswith(arr: pa.Array, prefix: str) -> np.ndarray:
    if not len(arr):
        return np.zeros(0, dtype=bool)
    return _bools(pc.starts_with(arr, prefix))


def _from_buffers(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(
        _TEXT, len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


_BODY: Final = _byte_set("0123456789 ().-")


def _shaped(arr: pa.Array) -> np.ndarray:
    """``_SHAPE`` as a full match, in NumPy over the bytes: a digit, or ``+`` or ``(``
    and a digit, then digits and separators only (the tests hold it to RE2's verdict)."""
    arr = arr.fill_null("") if arr.null_count else arr
    offsets, data = _buffers(arr)
    n = len(arr)
    if not len(data):
        return np.zeros(n, dtype=bool)
    lo, hi = int(offsets[0]), int(offsets[-1])
    begin, end = offsets[:-1], offsets[1:]
    length = end - begin
    # bytes outside digits and separators (few in a phone column): where they are
    outside = np.flatnonzero(~_BODY[data[lo:hi]]) + lo
    owner = _rows_of(offsets, outside)
    rest_ok = np.ones(n, dtype=bool)
    rest_ok[owner[outside - begin[owner] >= 2]] = False
    last = len(data) - 1
    first = np.where(length >= 1, data[np.minimum(begin, last)], 0)
    second = np.where(length >= 2, data[np.minimum(begin + 1, last)], 0)
    digit0 = (first >= _ZERO) & (first <= _ZERO + 9)
    digit1 = (second >= _ZERO) & (second <= _ZERO + 9)
    body1 = (length < 2) | _BODY[second]
    opener = (first == _PLUS) | (first == ord("("))
    return np.asarray(rest_ok & (length >= 1) & ((digit0 & body1) | (opener & digit1)), dtype=bool)


@dataclass(frozen=True, eq=False)
class _Digits:
    """The ASCII digits of each text, in one buffer (what ``[^0-9]`` removal leaves).

    Bytes of other UTF-8 characters are never in ``0x30``-``0x39``, so this is
    exactly RE2's ``replace_substring_regex(texts, "[^0-9]", "")``, in a few
    numpy passes instead of one regex replacement per character.
    """

    offsets: np.ndarray  # int64, n + 1
    data: np.ndarray  # uint8, the digits one after another

    @classmethod
    def of(cls, arr: pa.Array) -> _Digits:
        arr = arr.fill_null("") if arr.null_count else arr
        offsets, data = _buffers(arr)
        lo, hi = int(offsets[0]), int(offsets[-1])
        seg = data[lo:hi]
        is_digit = (seg >= _ZERO) & (seg <= _ZERO + 9)
        # running count of digits (int32 when it fits: half the memory traffic)
        counts = np.zeros(len(seg) + 1, dtype=np.int32 if len(seg) < 2**31 else np.int64)
        np.cumsum(is_digit, out=counts[1:])
        return cls(counts[offsets - lo].astype(np.int64), seg[is_digit])

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def head(self, width: int) -> np.ndarray:
        """The first ``width`` digits as an integer (-1 where there are fewer)."""
        n = len(self.offsets) - 1
        ok = self.lengths >= width
        out = np.zeros(n, dtype=np.int64)
        if not len(self.data):
            return np.full(n, -1, dtype=np.int64)
        last = len(self.data) - 1
        for k in range(width):
            pos = np.minimum(self.offsets[:-1] + k, last)
            out = out * 10 + (self.data[pos].astype(np.int64) - _ZERO)
        out[~ok] = -1
        return out

    def may_strip(self, rows: np.ndarray, start: np.ndarray, meta: _Meta | None) -> np.ndarray:
        """Which numbers (digits of ``rows`` from ``start``) :func:`_strip_np` with
        ``meta`` can do anything with: True unless the prefix is a list of literals
        and the number starts with none of them (then it strips nothing, surely)."""
        if meta is None or not meta.npfp:
            return np.asarray(meta is None, dtype=bool).repeat(len(rows))
        if meta.npfp_literals is None or meta.has_transform:
            return np.ones(len(rows), dtype=bool)
        begin = self.offsets[rows] + start
        length = self.offsets[rows + 1] - begin
        last = max(len(self.data) - 1, 0)
        hit = np.zeros(len(rows), dtype=bool)
        for literal in meta.npfp_literals:
            match = length >= len(literal)
            for k, char in enumerate(literal.encode()):
                match &= self.data[np.minimum(begin + k, last)] == char
            hit |= match
        return hit

    def text(self, rows: np.ndarray | None = None, start: np.ndarray | int = 0) -> pa.Array:
        """The digits of ``rows`` from ``start`` (per row, or one for all) as Arrow text."""
        if rows is None:
            rows = np.arange(len(self.offsets) - 1)
        begin = self.offsets[rows] + start
        lengths = self.offsets[rows + 1] - begin
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if len(rows) * 8 >= len(self.offsets) and (len(rows) < 2 or (np.diff(rows) > 0).all()):
            # Many rows, in order: their runs are disjoint and in order in the buffer,
            # so a mask of the bytes to keep (+1 where a run starts, -1 where it
            # ends, summed) picks them in one pass; the gather below costs four
            # passes of 4-byte indices (a third of the phone check at 1M rows).
            # (empty runs are left out: one would share its start with the next run)
            edges = np.zeros(len(self.data) + 1, dtype=np.int8)
            runs = lengths > 0
            edges[begin[runs]] += 1
            edges[(begin + lengths)[runs]] -= 1
            keep = np.cumsum(edges[:-1], dtype=np.int8).view(bool)
            return _from_buffers(offsets, self.data[keep])
        # byte positions to copy: each value's run, one after another (int32 when it
        # fits: half the memory traffic of the gather)
        index = np.int32 if len(self.data) < 2**31 else np.int64
        gather = np.repeat((begin - offsets[:-1]).astype(index), lengths)
        gather += np.arange(offsets[-1], dtype=index)
        return _from_buffers(offsets, self.data[gather])


@dataclass(frozen=True, eq=False)
class _Desc:
    pattern: str
    length_set: frozenset[int] | None  # None: no length restriction


@dataclass(frozen=True, eq=False)
class _Meta:  # compared and hashed by identity: one per region (cached)
    region: str
    country_code: str
    general: _Desc | None
    types: tuple[_Desc, ...]
    leading_digits: str | None
    npfp: str | None  # national_prefix_for_parsing
    npfp_literals: tuple[str, ...] | None  # the prefix regex is just alternatives of digits
    has_transform: bool
    idd: str | None
    local_only: np.ndarray
    min_length: int
    max_length: int
    possible: np.ndarray


def _desc(raw: object) -> _Desc | None:
    pattern = getattr(raw, "national_number_pattern", None)
    if raw is None or not pattern:
        return None
    lengths = tuple(getattr(raw, "possible_length", ()) or ())
    if not lengths:
        return _Desc(pattern, None)
    return _Desc(pattern, frozenset(lengths))


@cache
def _meta(region: str, country_code: int) -> _Meta | None:
    if region == "001":
        raw = PhoneMetadata.metadata_for_nongeo_region(country_code, None)
    else:
        raw = PhoneMetadata.metadata_for_region(region, None)
    if raw is None:
        return None
    general_desc: Any = raw.general_desc
    general = _desc(general_desc)
    types = tuple(d for d in (_desc(getattr(raw, n, None)) for n in _TYPE_DESCS) if d is not None)
    possible = tuple(general_desc.possible_length or ())
    npfp = raw.national_prefix_for_parsing or None
    return _Meta(
        region=region,
        country_code=str(raw.country_code),
        general=general,
        types=types,
        leading_digits=raw.leading_digits,
        npfp=npfp,
        npfp_literals=(
            tuple(npfp.split("|")) if npfp and re.fullmatch(r"[0-9]+(?:\|[0-9]+)*", npfp) else None
        ),
        has_transform=bool(raw.national_prefix_transform_rule),
        idd=raw.international_prefix,
        local_only=np.array(tuple(general_desc.possible_length_local_only or ()), dtype=np.int64),
        min_length=possible[0] if possible else -1,
        max_length=possible[-1] if possible else -1,
        possible=np.array(possible, dtype=np.int64),
    )


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _main_meta(country_code: int) -> _Meta | None:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None
    return _meta(regions[0], country_code)


@lru_cache(maxsize=4096)
def _types_for_length(meta: _Meta, length: int) -> str | None:
    """One alternation of every type pattern whose possible lengths admit ``length``."""
    patterns = [d.pattern for d in meta.types if d.length_set is None or length in d.length_set]
    return "|".join(f"(?:{p})" for p in patterns) if patterns else None


def _general_viable(s: pa.Array, meta: _Meta) -> np.ndarray:
    """``_match_national_number(number, general_desc)``: the pattern alone, no length gate."""
    if meta.general is None:
        return np.zeros(len(s), dtype=bool)
    return _re(s, meta.general.pattern, full=True)


def _length_accepts(lengths: np.ndarray, meta: _Meta) -> np.ndarray:
    """``_test_number_length`` is neither TOO_SHORT, IS_POSSIBLE_LOCAL_ONLY nor INVALID_LENGTH."""
    if meta.min_length == -1:
        return np.zeros(len(lengths), dtype=bool)
    local = np.isin(lengths, meta.local_only)
    too_long = lengths > meta.max_length
    possible = np.isin(lengths, meta.possible)
    return np.array(~local & (possible | too_long))


def _strip_np(s: pa.Array, meta: _Meta) -> tuple[np.ndarray, np.ndarray]:
    """``_maybe_strip_national_prefix_carrier_code`` for literal prefixes.

    Returns how many leading digits to strip per number, and a mask of those
    the fast path cannot decide (the prefix is a regex that matches, or there
    is a transform rule).
    """
    n = len(s)
    width = np.zeros(n, dtype=np.int64)
    if not meta.npfp or n == 0:
        return width, np.zeros(n, dtype=bool)
    if meta.npfp_literals is None or meta.has_transform:
        # A regex prefix: only rows where it cannot match at all are certain.
        # (A pattern that matches the empty string matches everything.)
        matched = _re(s, meta.npfp, full=False)
        # An empty match that captured nothing strips nothing (Argentina's prefix
        # matches every number this way): those rows are certain. Python's re,
        # as phonenumbers uses it, judges each value.
        pattern = _compiled(meta.npfp)
        idx = np.flatnonzero(matched)
        for i, text in zip(idx.tolist(), s.take(idx).to_pylist(), strict=True):
            m = pattern.match(text)
            if m is not None and m.end() == 0 and all(g is None for g in m.groups()):
                matched[i] = False
        return width, matched
    # re.match on "a|b" takes the first alternative that matches, in order
    for literal in meta.npfp_literals:
        hit = _startswith(s, literal)
        width[hit & (width == 0)] = len(literal)
    has = width > 0
    if not has.any():
        return width, np.zeros(n, dtype=bool)
    for w in np.unique(width[has]).tolist():
        sel = np.flatnonzero(width == w)
        sub = s.take(sel)
        viable_orig = _general_viable(sub, meta)
        viable_cand = _general_viable(pc.utf8_slice_codeunits(sub, w), meta)
        keep = viable_orig & ~viable_cand  # stripping would spoil a viable number
        width[sel[keep]] = 0
    return width, np.zeros(n, dtype=bool)


def _strip_np_checked(
    s: pa.Array, lengths: np.ndarray, meta: _Meta
) -> tuple[np.ndarray, np.ndarray]:
    """parse()'s use of national-prefix stripping: kept only if the length test allows it."""
    width, unsure = _strip_np(s, meta)
    if width.any():
        width[~_length_accepts(lengths - width, meta)] = 0
    return width, unsure


def _classify(nsn: pa.Array, lengths: np.ndarray, cc: int) -> tuple[np.ndarray, np.ndarray]:
    """Region (code) and validity of national significant numbers of one country code.

    Mirrors ``region_code_for_number`` (leading digits, else full type check,
    region by region in metadata order) and ``is_valid_number``.
    """
    n = len(nsn)
    regions = np.full(n, -1, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    region_list = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc, ())
    todo = np.ones(n, dtype=bool)
    for region in region_list:
        meta = _meta(region, cc)
        if meta is None or not todo.any():
            continue
        idx = np.flatnonzero(todo)
        sub = nsn if len(idx) == n else nsn.take(idx)
        if len(region_list) > 1 and meta.leading_digits is not None:
            claimed = _re(sub, meta.leading_digits, full=False)
            idx = idx[claimed]
            type_ok = _type_known(nsn.take(idx), lengths[idx], meta)
        else:
            type_ok = _type_known(sub, lengths[idx], meta)
            if len(region_list) > 1:
                idx = idx[type_ok]
                type_ok = type_ok[type_ok]
        regions[idx] = _region_code(region)
        valid[idx] = type_ok
        todo[idx] = False
    return regions, valid


def _runs(keys: np.ndarray) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each run of equal neighbouring ``keys`` (none when empty).

    Example:
        >>> list(_runs(np.array([10, 10, 11, 10])))
        [(0, 2), (2, 3), (3, 4)]
    """
    edges = [0, *(np.flatnonzero(np.diff(keys)) + 1).tolist(), len(keys)]
    return itertools.pairwise(edges) if len(keys) else iter(())


def _type_known(s: pa.Array, lengths: np.ndarray, meta: _Meta) -> np.ndarray:
    """``_number_type_helper(...) != UNKNOWN``: the general desc and at least one type desc.

    The type descs are tried together, one alternation per number length
    (each desc's possible lengths decide whether it takes part), on each run
    of numbers of one length: a slice, no copy. :func:`_fast_normalize`
    orders the numbers by length, so each length is one run.
    """
    n = len(s)
    found = np.zeros(n, dtype=bool)
    general = meta.general
    if general is None or not n:
        return found
    for a, b in _runs(lengths):
        length = int(lengths[a])
        if general.length_set is not None and length not in general.length_set:
            continue  # the general desc's length gate: UNKNOWN
        pattern = _types_for_length(meta, length)
        if pattern is None:
            continue
        block = s.slice(a, b - a)
        ok = _re(block, general.pattern, full=True)
        if ok.any():
            # the types' pattern over the whole slice (a copy of the few the general
            # pattern refused would cost more than matching them)
            found[a:b] = ok & _re(block, pattern, full=True)
    return found


@dataclass
class _Fast:
    """What the fast path found for each distinct text.

    ``decided``: the fast path is sure (valid or not); ``e164``: Arrow text,
    null where not valid (or not decided); ``region``: region codes
    (:data:`_REGION_NAMES`), -1 where not valid. For valid numbers, what
    :func:`_check_canonical` asks: ``total``, the digits of the E.164 text;
    ``reparse``, whether parsing that text again might give another number.
    """

    decided: np.ndarray
    e164: pa.Array
    region: np.ndarray
    total: np.ndarray
    reparse: np.ndarray


def fast_normalize(
    values: pd.Series, default_region: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vectorised path over distinct, trimmed phone texts.

    Returns ``(e164, region, decided)``: object arrays of E.164 strings and
    regions (``None`` when invalid) and a bool mask of the values the fast
    path decided. Undecided values must go to :func:`slow_normalize_one`.

    Example:
        >>> import pandas as pd
        >>> e, r, d = fast_normalize(pd.Series(["+1 415-555-2671", "tel: 123"]), "US")
        >>> e.tolist(), r.tolist()
        (['+14155552671', None], ['US', None])
        >>> d.tolist()
        [True, False]
    """
    found = _fast_normalize(_arrow(values), default_region)
    e164 = np.array(found.e164.to_numpy(zero_copy_only=False), dtype=object)
    region = np.array(_region_text(found.region).to_numpy(zero_copy_only=False), dtype=object)
    return e164, region, found.decided


def _fast_normalize(texts: pa.Array, default_region: str | None) -> _Fast:
    """:func:`fast_normalize` on Arrow text."""
    s = texts.fill_null("") if texts.null_count else texts
    n = len(s)
    decided = np.zeros(n, dtype=bool)
    region = np.full(n, -1, dtype=np.int64)
    if n == 0:
        none = np.zeros(0, dtype=np.int64)
        return _Fast(decided, pa.nulls(0, _TEXT), region, none, decided)
    shape = _shaped(s)
    digits = _Digits.of(s)
    ndig = digits.lengths
    shape &= (ndig >= _MIN_DIGITS) & (ndig <= _MAX_DIGITS)
    other = np.flatnonzero(~shape)
    if len(other):
        decided[other] = _re(s.take(other), _EXT_SHAPE, full=True)  # an extension: invalid
    offsets, data = _buffers(s)
    first = data[np.minimum(offsets[:-1], max(len(data) - 1, 0))] if len(data) else offsets[:-1]
    plus = shape & (np.diff(offsets) > 0) & (first == _PLUS)
    national = shape & ~plus

    # Each row's number is (country code, its digits from ``start``): the
    # national number before, then after, national-prefix stripping.
    cc = np.zeros(n, dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    unsure = np.zeros(n, dtype=bool)
    intl = plus.copy()  # country code read from the text

    if plus.any():
        found = np.zeros(n, dtype=bool)
        leading_zero = digits.head(1) == 0
        for width in (1, 2, 3):
            head = digits.head(width)
            known = plus & ~found & ~leading_zero & (head >= 0)
            known &= _IS_CC[np.clip(head, 0, 999)]
            cc[known] = head[known]
            start[known] = width
            found |= known
        # unknown country code: parse() retries it as a national number
        unsure[plus & ~found] = True

    meta_default = None
    if default_region:
        try:
            code = phonenumbers.country_code_for_region(default_region.upper())
        except Exception:  # pragma: no cover - defensive
            code = 0
        if code:
            meta_default = _meta(default_region.upper(), code)
    if national.any():
        if meta_default is None:
            unsure[national] = True  # parse() raises; let it say so
        else:
            _national(digits, national, meta_default, cc, start, unsure, intl)

    # '+' numbers: national prefix stripping with the country code's main region
    todo_plus = np.flatnonzero(intl & ~unsure)
    for sel in _by_code(cc, todo_plus):
        main = _main_meta(int(cc[sel[0]]))
        if main is None:
            unsure[sel] = True
            continue
        sel = sel[digits.may_strip(sel, start[sel], main)]
        if len(sel):
            strip, np_unsure = _strip_np_checked(
                digits.text(sel, start[sel]), ndig[sel] - start[sel], main
            )
            start[sel] += strip
            unsure[sel[np_unsure]] = True

    ready = shape & ~unsure
    nat_len = ndig - start
    # parse() refuses national numbers shorter than 2 or longer than 17 digits
    bad_len = ready & ((nat_len < 2) | (nat_len > _MAX_DIGITS))
    decided[bad_len] = True
    ready &= ~bad_len
    valid = np.zeros(n, dtype=bool)
    reparse = np.zeros(n, dtype=bool)
    rows = np.flatnonzero(ready)
    nsn = digits.text(rows, start[rows])  # every national number, cut out once

    def nsn_of(mask: np.ndarray) -> pa.Array:
        return nsn.filter(pa.array(mask))

    if len(rows):
        # One copy of the numbers ordered by country code, then length: each code's
        # numbers are one slice of it, and each length's within that (what
        # _classify's patterns are chosen by), so no pass copies a subset of them.
        # (one int16 key: codes < 1000, lengths <= 17; NumPy sorts it by radix)
        order = np.argsort((cc[rows] * 32 + nat_len[rows]).astype(np.int16), kind="stable")
        by_code = nsn.take(order)
        ordered = rows[order]
        for a, b in _runs(cc[ordered]):
            sel = ordered[a:b]
            code = int(cc[sel[0]])
            regs, ok = _classify(by_code.slice(a, b - a), nat_len[sel], code)
            decided[sel] = True
            valid[sel[ok]] = True
            region[sel[ok]] = regs[ok]
            good = sel[ok]
            maybe = digits.may_strip(good, start[good], _main_meta(code))
            reparse[good[maybe]] = _reparses(digits.text(good[maybe], start[good[maybe]]), code)
    # "+", country code, national number for the valid ones, then laid out over all
    # rows (null elsewhere) straight from the joined buffers
    good = valid[rows] if len(rows) else np.zeros(0, dtype=bool)
    prefix = _CODE_PREFIX.take(pa.array(cc[rows[good]]))
    joined = pc.binary_join_element_wise(prefix, nsn_of(good), _EMPTY)
    total = np.where(cc < 10, 1, np.where(cc < 100, 2, 3)) + nat_len
    return _Fast(decided, _spread_text(joined, valid), region, total, reparse)


def _spread_text(values: pa.Array, where: np.ndarray) -> pa.Array:
    """Text of length ``len(where)``: ``values`` in order at the True places, null elsewhere."""
    offsets, data = _buffers(values)
    lengths = np.zeros(len(where), dtype=np.int64)
    lengths[where] = np.diff(offsets)
    spread = np.zeros(len(where) + 1, dtype=np.int64)
    np.cumsum(lengths, out=spread[1:])
    spread += offsets[0]
    validity = np.packbits(where, bitorder="little")
    return pa.Array.from_buffers(
        _TEXT,
        len(where),
        [pa.py_buffer(validity), pa.py_buffer(spread), pa.py_buffer(data)],
        null_count=int(len(where) - where.sum()),
    )


def _by_code(cc: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` grouped by their country code (``cc[rows]``), each group in order."""
    if not len(rows):
        return []
    order = rows[np.argsort(cc[rows], kind="stable")]
    return np.split(order, np.flatnonzero(np.diff(cc[order])) + 1)


def _reparses(nsn: pa.Array, cc: int) -> np.ndarray:
    """Whether ``+<cc><nsn>``, parsed again, might not give itself back: its country's
    main region would strip a national prefix from it (or cannot say)."""
    main = _main_meta(cc)
    if main is None:
        return np.ones(len(nsn), dtype=bool)
    if not main.npfp or not len(nsn):
        return np.zeros(len(nsn), dtype=bool)
    strip, unsure = _strip_np(nsn, main)
    return np.asarray((strip > 0) | unsure, dtype=bool)


def _national(
    digits: _Digits,
    national: np.ndarray,
    meta: _Meta,
    cc: np.ndarray,
    start: np.ndarray,
    unsure: np.ndarray,
    intl: np.ndarray,
) -> None:
    """Country code and start of national-format numbers read with ``meta``'s region (in place)."""
    idx = np.flatnonzero(national)
    d = digits.text(idx)
    ndig = digits.lengths
    idd = _re(d, meta.idd, full=False) if meta.idd else np.zeros(len(idx), dtype=bool)
    unsure[idx[idd]] = True
    cc[idx] = int(meta.country_code)
    width_cc = len(meta.country_code)
    # "starts with the default country code": parse() may take it as one
    starts = _startswith(d, meta.country_code) & ~idd
    if starts.any():
        sidx = idx[starts]
        full = d.filter(pa.array(starts))
        pot_width, pot_unsure = _strip_np(pc.utf8_slice_codeunits(full, width_cc), meta)
        unsure[sidx[pot_unsure]] = True
        full_len = ndig[sidx]
        too_long = (
            (meta.min_length != -1)
            & (full_len > meta.max_length)
            & ~np.isin(full_len, meta.local_only)
        )
        pot_start = width_cc + pot_width
        pot = digits.text(sidx, pot_start)
        take = (~_general_viable(full, meta) & _general_viable(pot, meta)) | too_long
        take &= ~pot_unsure
        # taken: the country code is read off, and the rest is handled
        # like a '+' number (prefix stripping with the main region)
        start[sidx[take]] = pot_start[take]
        intl[sidx[take]] = True
    rest = national & ~intl & ~unsure
    rest[idx[~digits.may_strip(idx, np.zeros(len(idx), dtype=np.int64), meta)]] = False
    if rest.any():
        ridx = np.flatnonzero(rest)
        width, np_unsure = _strip_np_checked(d.filter(pa.array(rest[idx])), ndig[ridx], meta)
        start[ridx] += width
        unsure[ridx[np_unsure]] = True


def _check_canonical(
    texts: pa.Array, e164: pa.Array, region: np.ndarray, known: _Fast, from_fast: np.ndarray
) -> pa.Array:
    """Drop results the API would still refuse: returns ``e164`` without them
    (``region`` is updated in place).

    The contract wants what ``rules.phone_region`` accepts: E.164 text of at
    most 15 digits that parses back to itself as a valid number.
    libphonenumber can call a longer number valid, and in rare cases the
    E.164 text re-parses differently (a leading digit read as a national
    prefix). Values given already in E.164 form passed exactly this test.
    ``from_fast`` marks the results the fast path made (``known`` says their
    length and whether they may re-parse differently); the others (from
    phonenumbers) are read back from their text.
    """
    valid = _bools(e164.is_valid())
    if not valid.any():
        return e164
    n = len(e164)
    shaped = np.zeros(n, dtype=bool)
    need = np.zeros(n, dtype=bool)
    fast = valid & from_fast
    shaped[fast] = (known.total[fast] >= 2) & (known.total[fast] <= 15)
    need[fast] = known.reparse[fast]
    other = np.flatnonzero(valid & ~from_fast)
    if len(other):
        numbers = e164.take(other)
        digits = _Digits.of(numbers)  # "+<cc><nsn>", so the digits are cc + nsn
        # calling codes are prefix-free: the first listed prefix is it
        ccs = np.zeros(len(other), dtype=np.int64)
        nonzero = digits.head(1) > 0
        for width in (3, 2, 1):
            head = digits.head(width)
            hit = nonzero & (head >= 0) & _IS_CC[np.clip(head, 0, 999)]
            ccs[hit] = head[hit]
        cc_width = np.where(ccs < 10, 1, np.where(ccs < 100, 2, 3))
        # the E.164 pattern: "+", a country code (never 0...), 2 to 15 digits in all
        total = digits.lengths
        shaped[other] = (ccs > 0) & (total >= 2) & (total <= 15)
        for code in np.unique(ccs[shaped[other]]).tolist():
            sel = np.flatnonzero(shaped[other] & (ccs == code))
            need[other[sel]] = _reparses(digits.text(sel, cc_width[sel]), code)
    drop = valid & ~shaped
    # Re-parsing reads the same country code back; only a national prefix at the
    # start of the nsn can change the result: only those get the full check.
    recheck = np.flatnonzero(shaped & need)
    if len(recheck):
        given = _bools(pc.equal(e164.take(recheck), texts.take(recheck)))
        recheck = recheck[~given]
    if len(recheck):
        again = e164.take(recheck)
        enc = again.dictionary_encode()
        uniq = enc.dictionary
        found = _fast_normalize(uniq, None)
        same = _bools(pc.equal(found.e164, uniq))
        for j in np.flatnonzero(~found.decided).tolist():
            same[j] = rules.phone_region(uniq[j].as_py()) is not None
        codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        drop[recheck[~same[codes]]] = True
    if not drop.any():
        return e164
    region[drop] = -1
    return pc.if_else(pa.array(drop), pa.nulls(n, _TEXT), e164)


#: Below this many distinct values phonenumbers itself is cheaper: it costs
#: 25-50 µs a number, while the vectorised path pays a fixed cost of a few
#: regex passes per country code and number type (measured on mixed-country
#: numbers: 10 distinct 17 vs 1 ms, 1,000 380 vs 150 ms, 3,000 560 vs 480 ms,
#: 10,000 850 vs 1,570 ms). Both give the same answers (differential tests).
SMALL_INPUT: int = 2000


def _normalize_small(uniq: pa.Array, default_region: str | None) -> tuple[pa.Array, np.ndarray]:
    """Per-number phonenumbers for a few distinct values, with the contract's re-check."""
    e164: list[str | None] = [None] * len(uniq)
    region = np.full(len(uniq), -1, dtype=np.int64)
    for i, text in enumerate(uniq.to_pylist()):
        found = slow_normalize_one(str(text), default_region)
        # the API wants E.164 text that re-parses to itself as a valid number
        if found is not None and rules.phone_region(found[0]) is not None:
            e164[i], region[i] = found[0], _region_code(found[1])
    return pa.array(e164, type=_TEXT), region


def _patched(arr: pa.Array, pos: np.ndarray, values: pa.Array) -> pa.Array:
    """``arr`` with the values at positions ``pos`` (distinct) replaced by ``values``."""
    if not len(pos):
        return arr
    mask = np.zeros(len(arr), dtype=bool)
    mask[pos] = True
    # replace_with_mask takes the new values in the order of the positions
    return pc.replace_with_mask(arr, pa.array(mask), values.take(np.argsort(pos)))


def _normalize_distinct(uniq: pa.Array, default_region: str | None) -> tuple[pa.Array, np.ndarray]:
    """E.164 (null where invalid) and region codes for distinct, non-null texts."""
    if len(uniq) < SMALL_INPUT:
        return _normalize_small(uniq, default_region)
    # The 00 retry (for values the fast path calls invalid) is read in the same
    # pass: "+" and the rest of every text that starts with 00 and not with the
    # region's own exit code, appended to the batch (one fixed cost, not two).
    n = len(uniq)
    maybe = np.flatnonzero(_re(uniq, r"\s*00\d", full=False))
    if len(maybe):
        maybe = maybe[~_own_idd_many(uniq.take(maybe), default_region)]
    rest = pc.utf8_slice_codeunits(pc.utf8_ltrim_whitespace(uniq.take(maybe)), 2)
    alt = pc.binary_join_element_wise(_PLUS_TEXT, rest, _EMPTY)
    both = _fast_normalize(pa.concat_arrays([uniq, alt]) if len(maybe) else uniq, default_region)
    found = _Fast(
        both.decided[:n], both.e164.slice(0, n), both.region[:n], both.total[:n], both.reparse[:n]
    )
    region = found.region.copy()
    patches: dict[int, str] = {}
    undecided = np.flatnonzero(~found.decided)
    for i, text in zip(undecided.tolist(), uniq.take(undecided).to_pylist(), strict=True):
        slow = slow_normalize_one(str(text), default_region)
        if slow is not None:
            patches[i], region[i] = slow[0], _region_code(slow[1])
    retry = found.decided[maybe] & (region[maybe] < 0)
    taken = np.zeros(0, dtype=np.int64)
    taken_e164 = pa.array([], type=_TEXT)
    if retry.any():
        again_decided = both.decided[n:]
        again_region = both.region[n:]
        # decided and valid the second way: take it
        take = np.flatnonzero(retry & again_decided & (again_region >= 0))
        taken, taken_e164 = maybe[take], both.e164.take(n + take)
        region[taken] = again_region[take]
        # undecided the second way: phonenumbers reads the "+" text
        for j in np.flatnonzero(retry & ~again_decided).tolist():
            slow = _slow_once(alt[j].as_py(), default_region)
            if slow is not None:
                i = int(maybe[j])
                patches[i], region[i] = slow[0], _region_code(slow[1])
    # the values phonenumbers read, then those the 00 retry's fast pass read
    pos = np.concatenate([np.fromiter(patches, dtype=np.int64, count=len(patches)), taken])
    e164 = _patched(
        found.e164, pos, pa.concat_arrays([pa.array(list(patches.values()), _TEXT), taken_e164])
    )
    from_fast = found.decided.copy()
    from_fast[pos] = False
    return _check_canonical(uniq, e164, region, found, from_fast), region


#: How many values :func:`_mostly_distinct` looks at, and the share of them that
#: must be distinct for a column to be handled without hashing it first.
_SAMPLE: Final = 2000
_DISTINCT_SHARE: Final = 0.9


def _mostly_distinct(arr: pa.Array) -> bool:
    """Whether the first values of a large column are nearly all different."""
    if len(arr) < 4 * _SAMPLE:
        return False
    head = arr.slice(0, _SAMPLE).drop_null()
    return len(head) >= _SAMPLE // 2 and len(pc.unique(head)) >= _DISTINCT_SHARE * len(head)


def _normalize(arr: pa.Array, default_region: str | None) -> tuple[pa.Array, np.ndarray]:
    """E.164 (null where invalid or missing) and region codes per value; each distinct
    value handled once."""
    if _mostly_distinct(arr):
        # A column of (nearly) all different numbers, the usual contact list:
        # hashing every value first would find almost nothing to share, and
        # costs as much as a tenth of the whole check. Values are handled as
        # they come (a repeated one costs its work again; answers are the same).
        present = _bools(arr.is_valid())
        if present.all():
            return _normalize_distinct(arr, default_region)
        rows = np.flatnonzero(present)
        e164, region = _normalize_distinct(arr.filter(pa.array(present)), default_region)
        where = np.full(len(arr), -1, dtype=np.int64)
        where[rows] = np.arange(len(rows))
        out_region = np.full(len(arr), -1, dtype=np.int64)
        out_region[rows] = region
        return e164.take(pa.array(where, mask=where < 0)), out_region
    enc = arr.dictionary_encode()
    e164, region = _normalize_distinct(enc.dictionary, default_region)
    codes = np.asarray(enc.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    out_region = np.where(codes >= 0, region[np.maximum(codes, 0)] if len(region) else -1, -1)
    return e164.take(enc.indices), out_region


def normalize_phones(values: pd.Series, default_region: str | None) -> tuple[pd.Series, pd.Series]:
    """E.164 text and region for each phone text (missing where invalid or missing).

    ``values`` should already be trimmed text with missing cells as NA. Each
    distinct value is handled once: fewer than :data:`SMALL_INPUT` distinct
    values go to phonenumbers one by one; more take the fast path first, then
    phonenumbers for whatever it leaves undecided, then the ``00`` retry.

    Example:
        >>> import pandas as pd
        >>> normalize_phones(pd.Series(["07400 123456", None]), "GB")[0].tolist()
        ['+447400123456', nan]
    """
    e164, region = _normalize(_arrow(values), default_region)
    return _series(e164, values.index), _series(_region_text(region), values.index)


# ---------------------------------------------------------------------------
# per-row regions, and what to tell the user about a number

#: Regions tried, after those the file itself names, when a national number is
#: invalid in its own region: the contract's SMS countries and other large ones.
OTHER_REGIONS: Final = (
    "GB", "US", "DE", "FR", "ES", "IT", "NL", "BE", "AT", "CH", "IE", "PT", "SE", "NO", "DK",
    "FI", "PL", "CA", "AU", "NZ", "IN", "BR", "MX", "AR", "CO", "CL", "PE", "ZA", "NG", "KE",
    "EG", "MA", "AE", "SA", "IL", "TR", "RU", "UA", "CN", "HK", "SG", "MY", "PH", "ID", "TH",
    "VN", "JP", "KR", "PK",
)  # fmt: skip

#: The codes :func:`check_phones` gives, in the order errors are listed.
CODES: Final = (
    "invalid_phone",
    "phone_scientific",
    "phone_extension",
    "phone_other_region",
    "phone_default_region",
)
_SCIENTIFIC: Final = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?[eE]\+?[0-9]+")
_EXTENSION: Final = re.compile(
    r"(?i)[0-9)]\s*((?:;\s*ext=|,?\s*(?:ext|extn|extension|x|#|durchwahl|poste)\.?\s*)"
    r"[0-9]{1,9})\s*$"
)
_DIGIT_SHAPE: Final = re.compile(r"'?[0-9][0-9 ().\-/]*")


@dataclass
class PhoneCheck:
    """What :func:`check_phones` found, one entry per row.

    ``e164``/``region``: the number and its region where libphonenumber calls
    it valid (NA elsewhere; a ``phone_default_region`` number keeps its
    reading); ``code``/``message``: ``None`` where valid or missing, else the problem
    (``invalid_phone`` with the contract's message, or one of synckit's own
    codes saying why and what to do); ``relied``: valid national numbers read
    with ``default_region`` because the row had no country of its own.
    """

    e164: pd.Series
    region: pd.Series
    code: np.ndarray
    message: np.ndarray
    relied: np.ndarray


def normalize_by_region(
    values: pd.Series, default_region: str | None, row_regions: np.ndarray | None = None
) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """:func:`normalize_phones` with each row's own region where it has one.

    Returns E.164, region, and the region each row was read with. A number
    starting with ``+`` does not depend on a region: those are read in one
    group whatever their row says, so a country column costs one pass per
    country among the national numbers only.

    Example:
        >>> import numpy as np, pandas as pd
        >>> e164, region, used = normalize_by_region(
        ...     pd.Series(["07400 123456", "(415) 555-2671"]), "US", np.array(["GB", None]))
        >>> e164.tolist(), used.tolist()
        (['+447400123456', '+14155552671'], ['GB', 'US'])
    """
    e164, region, used = _by_region(_arrow(values), default_region, row_regions)
    return _series(e164), _series(_region_text(region)), used


def _has_region(row_regions: np.ndarray) -> np.ndarray:
    return np.asarray(row_regions != None, dtype=bool)  # noqa: E711 - elementwise


def _plus(arr: pa.Array) -> np.ndarray:
    """Starts with ``+`` once quotes and spaces in front are set aside."""
    return _startswith(pc.utf8_ltrim(arr, characters="' "), "+")


def _by_region(
    arr: pa.Array, default_region: str | None, row_regions: np.ndarray | None
) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """:func:`normalize_by_region` on Arrow text: E.164 (Arrow), region codes, regions used."""
    n = len(arr)
    used = _filled(n, default_region)
    if row_regions is None:  # one region for all
        e164, region = _normalize(arr, default_region)
        return e164, region, used
    mine = _has_region(row_regions) & ~_plus(arr)
    used[mine] = row_regions[mine]
    keys = pd.Series(used, dtype=object).fillna("\0").to_numpy()
    groups = pd.unique(keys)
    if len(groups) <= 1:
        only = None if not len(groups) or groups[0] == "\0" else str(groups[0])
        e164, region = _normalize(arr, only)
        return e164, region, used
    parts: list[pa.Array] = []
    order: list[np.ndarray] = []
    region = np.full(n, -1, dtype=np.int64)
    for group in groups:
        region_of_group = None if group == "\0" else str(group)
        sel = np.flatnonzero(keys == group)
        e, r = _normalize(arr.take(sel), region_of_group)
        parts.append(e)
        order.append(sel)
        region[sel] = r
    back = np.empty(n, dtype=np.int64)
    back[np.concatenate(order)] = np.arange(n)
    return pa.concat_arrays(parts).take(back), region, used


def _explicit(text: str, region: str | None) -> bool:
    """True when the text names its own country code (``+``, ``00``, the region's exit code)."""
    stripped = text.lstrip("' ")
    if stripped.startswith("+"):
        return True
    digits = phonenumbers.normalize_digits_only(stripped)
    return digits.startswith("00") or _own_idd(stripped, region)


def _explicit_many(texts: pd.Series | pa.Array, region: str | None) -> np.ndarray:
    """:func:`_explicit` for many texts: vectorised, with Python only for the few that
    start like the region's own exit code (its exact test needs the match's end)."""
    arr = _arrow(texts) if isinstance(texts, pd.Series) else texts
    stripped = pc.utf8_ltrim(arr, characters="' ")
    out = _startswith(stripped, "+")
    digits = _Digits.of(stripped).text()
    out |= _startswith(digits, "00") & _bools(arr.is_valid())
    pattern = _idd_pattern(region)
    if pattern is not None:
        maybe = ~out & _re(digits, pattern.pattern, full=False) & _bools(arr.is_valid())
        idx = np.flatnonzero(maybe)
        for i, text in zip(idx.tolist(), arr.take(idx).to_pylist(), strict=True):
            out[i] = _explicit(str(text), region)
    # digits beyond ASCII (rare): the exact, per-text test
    odd = ~out & ~_bools(pc.fill_null(pc.string_is_ascii(arr), True))
    idx = np.flatnonzero(odd)
    for i, text in zip(idx.tolist(), arr.take(idx).to_pylist(), strict=True):
        out[i] = _explicit(str(text), region)
    return out


def _international(e164: str) -> str:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:  # pragma: no cover - e164 is valid here
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _where(region: str | None, own: bool) -> str:
    if region is None:
        return "with no region (no country for the row, no default_region)"
    return f"in {region} (the row's country)" if own else f"in {region} (default_region)"


def check_phones(
    values: pd.Series,
    default_region: str | None,
    row_regions: np.ndarray | None = None,
) -> PhoneCheck:
    """Normalise phone texts and say what is wrong with each invalid one.

    ``values``: trimmed texts, NA where missing; ``row_regions``: each row's
    region from its country (``None`` where it has none). Codes, beyond the
    contract's ``invalid_phone``:

    - ``phone_scientific``: ``4.47911E+11``, a spreadsheet's number format;
    - ``phone_extension``: ``(555) 123-4567 x12``;
    - ``phone_other_region``: a national number with no country of its own,
      invalid where it was read but valid in another region (the regions the
      frame's own numbers and countries name are tried first, then
      :data:`OTHER_REGIONS`);
    - ``phone_default_region``: a bare run of digits (what a spreadsheet
      leaves of a number cell) read with ``default_region`` although most of
      the frame's numbers are from another region, where it is valid too once
      its national prefix is put back: ``2072193000`` is a Maine number under
      US and London's 020 7219 3000 with its lost 0. Valid for the API, but
      nothing tells which was meant: rejected with both readings.

    ``relied`` counts the valid national numbers that only ``default_region``
    placed. Only invalid values (and, for the last check, bare digits) are
    examined one by one: a clean file pays one extra vectorised pass.

    Example:
        >>> import pandas as pd
        >>> c = check_phones(pd.Series(["07400 123456", "4.47911E+11", "(415) 555-2671"]), "US")
        >>> c.e164.tolist()[2], c.code.tolist()[:2], c.relied.tolist()
        ('+14155552671', ['phone_other_region', 'phone_scientific'], [False, False, True])
    """
    s = values.reset_index(drop=True)
    arr = _arrow(s)
    n = len(s)
    e164_arr, region_codes, used = _by_region(arr, default_region, row_regions)
    e164 = _series(e164_arr)
    own = np.zeros(n, dtype=bool) if row_regions is None else _has_region(row_regions)
    present = _bools(arr.is_valid())
    valid = region_codes >= 0
    code = np.full(n, None, dtype=object)
    message = np.full(n, None, dtype=object)

    # national numbers: not "+", not "00", not the region's own exit code
    relied = np.zeros(n, dtype=bool)
    national_valid = valid & ~own & ~_plus(arr)
    if national_valid.any():
        idx = np.flatnonzero(national_valid)
        relied[idx] = ~_explicit_many(arr.take(idx), default_region)

    # evidence of the frame's regions: numbers placed by their own country code or row
    counts: dict[str, int] = {}
    placed = valid & ~relied
    if placed.any():
        # as value_counts: most first, ties in order of first appearance
        found, first, times = np.unique(region_codes[placed], return_index=True, return_counts=True)
        by_appearance = np.argsort(first, kind="stable")
        for j in by_appearance[np.argsort(-times[by_appearance], kind="stable")].tolist():
            counts[_REGION_NAMES[int(found[j])]] = int(times[j])
    if row_regions is not None and own.any():
        for reg, count in pd.Series(row_regions[own]).value_counts().items():
            counts[str(reg)] = counts.get(str(reg), 0) + int(count)

    bad = present & ~valid
    if bad.any():
        elsewhere = _diagnose_invalid(s, bad, used, own, counts, code, message, default_region)
        # a national number valid only in GB is evidence of a British list
        for reg, count in pd.Series(elsewhere).dropna().value_counts().items():
            counts[str(reg)] = counts.get(str(reg), 0) + int(count)
    if relied.any() and default_region:
        _doubt_default_region(s, e164, relied, default_region, counts, code, message)
    # a doubted number keeps its reading (so no other rule reports it again); its
    # code rejects the row, and it no longer counts as placed by default_region
    relied &= np.asarray(code == None, dtype=bool)  # noqa: E711 - elementwise
    region = _series(_region_text(region_codes))
    return PhoneCheck(e164=e164, region=region, code=code, message=message, relied=relied)


def _diagnose_invalid(
    s: pd.Series,
    bad: np.ndarray,
    used: np.ndarray,
    own: np.ndarray,
    counts: dict[str, int],
    code: np.ndarray,
    message: np.ndarray,
    default_region: str | None,
) -> np.ndarray:
    """Codes and messages for invalid numbers (in place).

    The shapes are told apart by vectorised regexes over all of them; Python
    runs only per extension (to quote it) and per distinct national number
    looked up in other regions. Returns, per row, the region a
    ``phone_other_region`` number is valid in.
    """
    out = np.full(len(s), None, dtype=object)
    idx = np.flatnonzero(bad)
    texts = _arrow(s).take(idx)
    text_of = [str(t) for t in texts.to_pylist()]
    code[idx] = "invalid_phone"
    message[idx] = rules.message("invalid_phone")
    scientific = _re(texts, _SCIENTIFIC.pattern, full=True)
    code[idx[scientific]] = "phone_scientific"
    message[idx[scientific]] = _MESSAGE_SCIENTIFIC
    extension = ~scientific & _bools(pc.match_substring_regex(texts, _EXTENSION.pattern))
    for i in np.flatnonzero(extension).tolist():
        text = text_of[i]
        found = _EXTENSION.search(text)
        if found is None or sum(c.isdigit() for c in text[: found.start() + 1]) < 5:
            continue
        code[idx[i]] = "phone_extension"
        message[idx[i]] = _message_extension(found.group(1).strip(" ,;"))
    # national numbers of a plausible shape, with no country of their own (a row that
    # names its country has a mistyped number, not a misplaced one): other regions
    n_digits = _Digits.of(texts).lengths
    search = ~scientific & ~extension & ~own[idx] & (n_digits >= 6) & (n_digits <= 15)
    search &= _re(texts, _DIGIT_SHAPE.pattern, full=True)
    if search.any():
        cand = np.flatnonzero(search)
        cand = cand[~_explicit_many(texts.take(cand), default_region)]
        found_at = _valid_elsewhere(sorted({text_of[i] for i in cand.tolist()}), counts)
        for i in cand.tolist():
            hit = found_at.get(text_of[i])
            reg = used[idx[i]]
            if hit is None or hit[0] == reg:
                continue
            out[idx[i]] = hit[0]
            code[idx[i]] = "phone_other_region"
            message[idx[i]] = (
                f"is not a valid number {_where(reg, False)}, but is valid in {hit[0]} as "
                f"{_international(hit[1])}: give the row its country (a country column), "
                "set default_region, or write the number with + and its country code"
            )
    return out


def _search(s: pd.Series, pattern: str) -> np.ndarray:
    """Unanchored RE2 search per value (as :func:`_regex`)."""
    if not len(s):
        return np.zeros(0, dtype=bool)
    return _bools(pc.match_substring_regex(_arrow(s), pattern))


_MESSAGE_SCIENTIFIC: Final = _diagnostics.MESSAGES["phone_scientific"]


def _message_extension(ext: str) -> str:
    return (
        f"has an extension ({ext!r}), which E.164 cannot hold (sending the number without it "
        "would ring the switchboard): remove the extension from the cell, or keep it in a "
        "custom field"
    )


def _valid_elsewhere(texts: list[str], counts: dict[str, int]) -> dict[str, tuple[str, str]]:
    """Text -> (region, E.164) for texts valid in some region, trying likely regions first.

    Short numbers are valid somewhere (``555-1234`` is a German number), so a
    region is only proposed for a number written in its full national form:
    at least 8 digits, starting with the region's national prefix
    (``07400 123456`` for GB, ``030 1234567`` for DE). A region without one
    (ES, IT, DK...) is proposed only when the frame's own numbers or
    countries name it (``counts``).
    """
    evidenced = [r for r, _ in sorted(counts.items(), key=lambda kv: -kv[1])]
    regions = evidenced + [r for r in OTHER_REGIONS if r not in evidenced]
    regions = [r for r in regions if r in phonenumbers.SUPPORTED_REGIONS]
    out: dict[str, tuple[str, str]] = {}
    todo = pd.Series(texts, dtype="str")
    digits = todo.str.replace(r"[^0-9]", "", regex=True)
    for reg in regions:
        if not len(todo):
            break
        e, _ = normalize_phones(todo, reg)
        hit = np.array(e.notna().to_numpy(dtype=bool))
        meta = PhoneMetadata.metadata_for_region(reg, None)
        prefix = getattr(meta, "national_prefix", None)
        full = np.array(digits.str.len().to_numpy(dtype=np.int64)) >= 8
        if prefix:
            full &= np.array(digits.str.startswith(prefix).to_numpy(dtype=bool))
        elif reg not in counts:
            full[:] = False
        hit &= full
        for text, number in zip(todo[hit].tolist(), e[hit].tolist(), strict=True):
            out[str(text)] = (reg, str(number))
        todo = todo[~hit].reset_index(drop=True)
        digits = digits[~hit].reset_index(drop=True)
    return out


def _doubt_default_region(
    s: pd.Series,
    e164: pd.Series,
    relied: np.ndarray,
    default_region: str,
    counts: dict[str, int],
    code: np.ndarray,
    message: np.ndarray,
) -> None:
    """``phone_default_region`` for bare digits that read validly in the frame's main region too."""
    others = {r: c for r, c in counts.items() if r != default_region}
    if not others:
        return
    main, main_count = max(others.items(), key=lambda kv: kv[1])
    bare = relied.copy()
    bare[relied] = _regex(s[relied], r"[0-9]+", full=True)
    # the default region's side: its own placed numbers and every formatted national one
    home = counts.get(default_region, 0) + int((relied & ~bare).sum())
    if main_count <= home or not bare.any():
        return
    meta = PhoneMetadata.metadata_for_region(main, None)
    prefix = getattr(meta, "national_prefix", None) or ""
    idx = np.flatnonzero(bare)
    texts = s.iloc[idx]
    restored = texts if not prefix else texts.where(texts.str.startswith(prefix), prefix + texts)
    other_e, _ = normalize_phones(restored.reset_index(drop=True), main)
    both = np.array(other_e.notna().to_numpy(dtype=bool))
    home += int((~both).sum())  # bare numbers valid only at home count for home
    if main_count <= home or not both.any():
        return
    for i, other in zip(idx[both], other_e[both].tolist(), strict=True):
        here = str(e164.iat[int(i)])
        code[i] = "phone_default_region"
        message[i] = (
            f"was read as {_international(here)} with default_region {default_region}, but "
            f"most numbers here are from {main}, where it is {_international(str(other))} "
            "(a lost leading 0?): write it with + and its country code, give the row its "
            "country, or set default_region"
        )
