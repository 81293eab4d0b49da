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

import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Final

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import PhoneMetadata

from synckit import _diagnostics, rules

try:  # pandas keeps text in pyarrow when it is installed; use its RE2 directly
    import pyarrow as _pa
    import pyarrow.compute as _pc
except ImportError:  # pragma: no cover - pandas without pyarrow: the pandas path
    _pa = None
    _pc = None

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


def _own_idd_many(texts: pd.Series, region: str | None) -> np.ndarray:
    """:func:`_own_idd` for many texts: a vectorised prefilter on the digits, then the
    exact test (which needs the match's end) for the few that start like the prefix."""
    pattern = _idd_pattern(region)
    out = np.zeros(len(texts), dtype=bool)
    if pattern is None or not len(texts):
        return out
    digits = texts.str.replace(r"[^0-9]", "", regex=True)
    maybe = _regex(digits, pattern.pattern, full=False)
    # digits beyond ASCII are normalised by libphonenumber only: test those exactly too
    maybe |= ~np.array(texts.str.isascii().to_numpy(dtype=bool, na_value=True))
    for i in np.flatnonzero(maybe).tolist():
        out[i] = _own_idd(str(texts.iat[i]), region)
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


@dataclass(frozen=True)
class _Desc:
    pattern: str
    lengths: frozenset[int] | None  # None: no length restriction


@dataclass(frozen=True)
class _Meta:
    region: str
    country_code: str
    general: _Desc | None
    types: tuple[_Desc, ...]
    leading_digits: str | None
    npfp: str | None  # national_prefix_for_parsing
    npfp_literals: tuple[str, ...] | None  # the prefix regex is just alternatives of digits
    has_transform: bool
    idd: str | None
    local_only: frozenset[int]
    min_length: int
    max_length: int
    possible: frozenset[int]


def _desc(raw: object) -> _Desc | None:
    pattern = getattr(raw, "national_number_pattern", None)
    if raw is None or not pattern:
        return None
    lengths = tuple(getattr(raw, "possible_length", ()) or ())
    return _Desc(pattern, frozenset(lengths) if lengths else None)


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
        local_only=frozenset(general_desc.possible_length_local_only or ()),
        min_length=possible[0] if possible else -1,
        max_length=possible[-1] if possible else -1,
        possible=frozenset(possible),
    )


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _main_meta(country_code: int) -> _Meta | None:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if not regions:
        return None
    return _meta(regions[0], country_code)


def _regex(s: pd.Series, pattern: str, *, full: bool) -> np.ndarray:
    """Anchored regex test per value (full match, or prefix match like ``re.match``).

    Goes straight to pyarrow's RE2 for arrow-backed text (the pandas wrapper
    costs more than the matching on the many small groups here); the
    differential tests prove the verdicts equal Python's ``re``.
    """
    if not len(s):
        return np.zeros(0, dtype=bool)
    if _pc is not None and getattr(s.dtype, "storage", None) == "pyarrow":
        anchored = "^(?:" + pattern + (")$" if full else ")")
        res = _pc.match_substring_regex(_pa.array(s.array), anchored).fill_null(False)
        return np.array(res.to_numpy(zero_copy_only=False), dtype=bool)
    out = s.str.fullmatch(pattern) if full else s.str.match(pattern)
    return np.array(out.to_numpy(dtype=bool, na_value=False))


def _text(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype="str")


def _fullmatch(s: pd.Series, pattern: str) -> np.ndarray:
    return _regex(s, pattern, full=True)


def _desc_match(s: pd.Series, lengths: np.ndarray, desc: _Desc | None) -> np.ndarray:
    """libphonenumber's ``_is_number_matching_desc``: length gate, then the pattern."""
    if desc is None:
        return np.zeros(len(s), dtype=bool)
    ok = (
        np.ones(len(s), dtype=bool)
        if desc.lengths is None
        else np.isin(lengths, list(desc.lengths))
    )
    if ok.any():
        hit = np.zeros(len(s), dtype=bool)
        hit[ok] = _fullmatch(s[ok], desc.pattern)
        ok = hit
    return ok


@lru_cache(maxsize=4096)
def _types_for_length(meta: _Meta, length: int) -> str | None:
    """One alternation of every type pattern whose possible lengths admit ``length``."""
    patterns = [d.pattern for d in meta.types if d.lengths is None or length in d.lengths]
    return "|".join(f"(?:{p})" for p in patterns) if patterns else None


def _general_viable(s: pd.Series, meta: _Meta) -> np.ndarray:
    """``_match_national_number(number, general_desc)``: the pattern alone, no length gate."""
    if meta.general is None:
        return np.zeros(len(s), dtype=bool)
    return _fullmatch(s, meta.general.pattern)


def _length_accepts(lengths: np.ndarray, meta: _Meta) -> np.ndarray:
    """``_test_number_length`` is neither TOO_SHORT, IS_POSSIBLE_LOCAL_ONLY nor INVALID_LENGTH."""
    if meta.min_length == -1:
        return np.zeros(len(lengths), dtype=bool)
    local = np.isin(lengths, list(meta.local_only))
    too_long = lengths > meta.max_length
    possible = np.isin(lengths, list(meta.possible))
    return np.array(~local & (possible | too_long))


def _strip_np(s: pd.Series, meta: _Meta) -> tuple[pd.Series, np.ndarray]:
    """``_maybe_strip_national_prefix_carrier_code`` for literal prefixes.

    Returns the numbers and a mask of rows the fast path cannot decide
    (prefix is a regex that matches, or there is a transform rule).
    """
    unsure = np.zeros(len(s), dtype=bool)
    if not meta.npfp or len(s) == 0:
        return s, unsure
    if meta.npfp_literals is None or meta.has_transform:
        # A regex prefix: only rows where it cannot match at all are certain.
        # (A pattern that matches the empty string matches everything.)
        matched = _regex(s, meta.npfp, full=False)
        # An empty match that captured nothing strips nothing (Argentina's prefix
        # matches every number this way): those rows are certain. Python's re,
        # as phonenumbers uses it, judges each value.
        pattern = _compiled(meta.npfp)
        for i in np.flatnonzero(matched):
            m = pattern.match(str(s.iat[int(i)]))
            if m is not None and m.end() == 0 and all(g is None for g in m.groups()):
                matched[i] = False
        return s, matched
    # re.match on "a|b" takes the first alternative that matches, in order
    plen = np.zeros(len(s), dtype=np.int64)
    for literal in meta.npfp_literals:
        hit = np.array(s.str.startswith(literal).to_numpy(dtype=bool, na_value=False))
        plen[hit & (plen == 0)] = len(literal)
    has = plen > 0
    if not has.any():
        return s, unsure
    out = s.copy()
    for width in np.unique(plen[has]):
        sel = np.flatnonzero(plen == width)
        sub = s.iloc[sel]
        cand = sub.str.slice(int(width))
        viable_orig = _general_viable(sub, meta)
        viable_cand = _general_viable(cand, meta)
        strip = ~(viable_orig & ~viable_cand)
        out.iloc[sel[strip]] = cand[strip].to_numpy()
    return out, unsure


def _strip_np_checked(s: pd.Series, meta: _Meta) -> tuple[pd.Series, np.ndarray]:
    """parse()'s use of national-prefix stripping: kept only if the length test allows it."""
    stripped, unsure = _strip_np(s, meta)
    if stripped is s:
        return s, unsure
    lengths = stripped.str.len().to_numpy()
    keep = _length_accepts(np.array(lengths, dtype=np.int64), meta)
    return s.where(~pd.Series(keep, index=s.index), stripped), unsure


def _classify(nsn: pd.Series, cc: int) -> tuple[np.ndarray, np.ndarray]:
    """Region and validity of national significant numbers of one country code.

    Mirrors ``region_code_for_number`` (leading digits, else full type check,
    region by region in metadata order) and ``is_valid_number``.
    """
    n = len(nsn)
    regions = np.full(n, None, dtype=object)
    valid = np.zeros(n, dtype=bool)
    region_list = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc, ())
    lengths = np.array(nsn.str.len().to_numpy(), dtype=np.int64)
    todo = np.ones(n, dtype=bool)
    for region in region_list:
        meta = _meta(region, cc)
        if meta is None or not todo.any():
            continue
        idx = np.flatnonzero(todo)
        sub = nsn.iloc[idx]
        if len(region_list) > 1 and meta.leading_digits is not None:
            claimed = _regex(sub, meta.leading_digits, full=False)
            idx = idx[claimed]
            type_ok = _type_known(nsn.iloc[idx], lengths[idx], meta)
        else:
            type_ok = _type_known(sub, lengths[idx], meta)
            if len(region_list) > 1:
                idx = idx[type_ok]
                type_ok = type_ok[type_ok]
        regions[idx] = region
        valid[idx] = type_ok
        todo[idx] = False
    return regions, valid


def _type_known(s: pd.Series, lengths: np.ndarray, meta: _Meta) -> np.ndarray:
    """``_number_type_helper(...) != UNKNOWN``: the general desc and at least one type desc.

    The type descs are tried together, one alternation per number length
    (each desc's possible lengths decide whether it takes part).
    """
    ok = _desc_match(s, lengths, meta.general)
    if not ok.any():
        return ok
    found = np.zeros(len(s), dtype=bool)
    idx = np.flatnonzero(ok)
    for length in np.unique(lengths[idx]).tolist():
        pattern = _types_for_length(meta, int(length))
        if pattern is None:
            continue
        sel = idx[lengths[idx] == length]
        found[sel] = _fullmatch(s.iloc[sel], pattern)
    return found


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
        >>> e.tolist(), r.tolist(), d.tolist()
        (['+14155552671', None], ['US', None], [True, False])
    """
    e164, region, decided, _cc, _nsn = _fast_normalize(values, default_region)
    return e164, region, decided


def _fast_normalize(
    values: pd.Series, default_region: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`fast_normalize`, plus the country code and national number of valid results."""
    s = pd.Series(values, dtype="str").reset_index(drop=True)
    n = len(s)
    e164 = np.full(n, None, dtype=object)
    region = np.full(n, None, dtype=object)
    decided = np.zeros(n, dtype=bool)
    nsn_out = np.full(n, None, dtype=object)
    cc_arr = np.zeros(n, dtype=np.int64)
    if n == 0:
        return e164, region, decided, cc_arr, nsn_out
    shape = _fullmatch(s, _SHAPE)
    digits = s.str.replace(r"[^0-9]", "", regex=True)
    ndig = np.array(digits.str.len().to_numpy(dtype=np.int64, na_value=0))
    shape &= (ndig >= _MIN_DIGITS) & (ndig <= _MAX_DIGITS)
    with_ext = ~shape & _fullmatch(s, _EXT_SHAPE)
    decided[with_ext] = True
    plus = np.array(s.str.startswith("+").to_numpy(dtype=bool, na_value=False)) & shape
    national = shape & ~plus

    # (country code, national number before prefix stripping) per row
    # numbers are collected in a plain object array: assigning into an
    # arrow-backed Series rebuilds it each time
    nat = np.full(n, "", dtype=object)
    unsure = np.zeros(n, dtype=bool)
    intl = plus.copy()  # country code read from the text

    if plus.any():
        idx = np.flatnonzero(plus)
        d = digits.iloc[idx]
        found = np.zeros(len(idx), dtype=bool)
        for width in (1, 2, 3):
            head = d.str.slice(0, width)
            listed = head.isin([str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE])
            known = np.array(listed.to_numpy(dtype=bool, na_value=False)) & ~found
            known &= np.array(~d.str.startswith("0").to_numpy(dtype=bool, na_value=False))
            if known.any():
                sel = idx[known]
                cc_arr[sel] = head[known].astype(np.int64).to_numpy()
                nat[sel] = d[known].str.slice(width).to_numpy(dtype=object)
                found |= known
        # unknown country code: parse() retries it as a national number
        unsure[idx[~found]] = True

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
            idx = np.flatnonzero(national)
            d = digits.iloc[idx]
            idd = (
                _regex(d, meta_default.idd, full=False)
                if meta_default.idd
                else np.zeros(len(idx), dtype=bool)
            )
            unsure[idx[idd]] = True
            cc = int(meta_default.country_code)
            cc_arr[idx] = cc
            nat[idx] = d.to_numpy(dtype=object)
            # "starts with the default country code": parse() may take it as one
            starts = (
                np.array(
                    d.str.startswith(meta_default.country_code).to_numpy(dtype=bool, na_value=False)
                )
                & ~idd
            )
            if starts.any():
                sidx = idx[starts]
                full = d[starts]
                pot, pot_unsure = _strip_np(
                    full.str.slice(len(meta_default.country_code)), meta_default
                )
                unsure[sidx[pot_unsure]] = True
                full_len = np.array(full.str.len().to_numpy(), dtype=np.int64)
                too_long = (
                    (meta_default.min_length != -1)
                    & (full_len > meta_default.max_length)
                    & ~np.isin(full_len, list(meta_default.local_only))
                )
                take = (
                    ~_general_viable(full, meta_default) & _general_viable(pot, meta_default)
                ) | too_long
                take &= ~pot_unsure
                # taken: the country code is read off, and the rest is handled
                # like a '+' number (prefix stripping with the main region)
                nat[sidx[take]] = pot[take].to_numpy(dtype=object)
                intl[sidx[take]] = True
            rest = national & ~intl & ~unsure
            if rest.any():
                ridx = np.flatnonzero(rest)
                stripped, np_unsure = _strip_np_checked(_text(nat[ridx]), meta_default)
                nat[ridx] = stripped.to_numpy(dtype=object)
                unsure[ridx[np_unsure]] = True

    # '+' numbers: national prefix stripping with the country code's main region
    todo_plus = intl & ~unsure
    if todo_plus.any():
        for cc in np.unique(cc_arr[todo_plus]):
            sel = np.flatnonzero(todo_plus & (cc_arr == cc))
            main = _main_meta(int(cc))
            if main is None:
                unsure[sel] = True
                continue
            stripped, np_unsure = _strip_np_checked(_text(nat[sel]), main)
            nat[sel] = stripped.to_numpy(dtype=object)
            unsure[sel[np_unsure]] = True

    ready = shape & ~unsure
    nat_len = np.fromiter(map(len, nat), dtype=np.int64, count=n)
    # parse() refuses national numbers shorter than 2 or longer than 17 digits
    bad_len = ready & ((nat_len < 2) | (nat_len > _MAX_DIGITS))
    decided[bad_len] = True
    ready &= ~bad_len
    for cc in np.unique(cc_arr[ready]):
        sel = np.flatnonzero(ready & (cc_arr == cc))
        sub = _text(nat[sel])
        regs, ok = _classify(sub, int(cc))
        decided[sel] = True
        good = sel[ok]
        region[good] = regs[ok]
        e164[good] = ("+" + str(int(cc)) + sub[ok]).to_numpy(dtype=object)
        nsn_out[good] = nat[good]
    return e164, region, decided, cc_arr, nsn_out


def _check_canonical(
    texts: pd.Series,
    e164: np.ndarray,
    region: np.ndarray,
    cc_known: np.ndarray,
    nsn_known: np.ndarray,
) -> None:
    """Drop results the API would still refuse (in place).

    The contract wants what ``rules.phone_region`` accepts: E.164 text of at
    most 15 digits that parses back to itself as a valid number.
    libphonenumber can call a longer number valid, and in rare cases the
    E.164 text re-parses differently (a leading digit read as a national
    prefix). Values given already in E.164 form passed exactly this test.
    ``cc_known``/``nsn_known`` carry what the fast path found (0/None where
    it did not decide); the rest is derived from the E.164 text.
    """
    have = np.flatnonzero(e164 != None)  # noqa: E711 - elementwise
    if not len(have):
        return
    ccs = cc_known[have].copy()
    nsns = nsn_known[have].copy()
    unknown = np.flatnonzero((ccs == 0) | (nsns == None))  # noqa: E711 - elementwise
    if len(unknown):
        # "+<cc><nsn>": calling codes are prefix-free, so the first listed prefix is it
        digits = pd.Series(e164[have[unknown]], dtype="str").str.slice(1)
        found = np.zeros(len(unknown), dtype=np.int64)
        for width in (3, 2, 1):
            head = digits.str.slice(0, width)
            listed = head.isin([str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE])
            hit = np.array(listed.to_numpy(dtype=bool, na_value=False))
            found[hit] = head[hit].astype(np.int64).to_numpy()
        ccs[unknown] = found
        widths = np.where(found < 10, 1, np.where(found < 100, 2, 3))
        rest = digits.to_numpy(dtype=object)
        nsns[unknown] = [r[w:] for r, w in zip(rest, widths.tolist(), strict=True)]
    # the E.164 pattern: "+", a country code (never 0...), 2 to 15 digits in all
    cc_width = np.where(ccs < 10, 1, np.where(ccs < 100, 2, 3))
    total = cc_width + np.fromiter(map(len, nsns), dtype=np.int64, count=len(nsns))
    shaped = (ccs > 0) & (total >= 2) & (total <= 15)
    e164[have[~shaped]] = None
    region[have[~shaped]] = None
    given = texts.iloc[have].to_numpy(dtype=object)
    recheck = np.flatnonzero(shaped & (e164[have] != given))
    if not len(recheck):
        return
    # Re-parsing reads the same country code back; only a national prefix at
    # the start of the nsn can change the result: only those get the full check.
    need = np.zeros(len(recheck), dtype=bool)
    rc = ccs[recheck]
    for cc in np.unique(rc).tolist():
        main = _main_meta(int(cc))
        sel = np.flatnonzero(rc == cc)
        if main is None:
            need[sel] = True
            continue
        if not main.npfp:
            continue
        nsn = _text(nsns[recheck[sel]])
        stripped, unsure = _strip_np(nsn, main)
        changed = stripped.to_numpy(dtype=object) != nsn.to_numpy(dtype=object)
        need[sel[changed | unsure]] = True
    recheck = recheck[need]
    if not len(recheck):
        return
    codes, uniq = pd.factorize(pd.Series(e164[have[recheck]], dtype="str"))
    again_e, _again_r, decided = fast_normalize(pd.Series(uniq, dtype="str"), None)
    same = np.zeros(len(uniq), dtype=bool)
    for j, text in enumerate(uniq.tolist()):
        same[j] = again_e[j] == text if decided[j] else rules.phone_region(text) is not None
    bad = have[recheck[~same[codes]]]
    e164[bad] = None
    region[bad] = None


#: Below this many distinct values phonenumbers itself is cheaper: it costs
#: 25-50 µs a number, while the vectorised path pays a fixed cost of a few
#: regex passes per country code and number type (measured on mixed-country
#: numbers: 10 distinct 17 vs 1 ms, 1,000 380 vs 150 ms, 3,000 560 vs 480 ms,
#: 10,000 850 vs 1,570 ms). Both give the same answers (differential tests).
SMALL_INPUT: int = 2000


def _normalize_small(uniq: pd.Series, default_region: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-number phonenumbers for a few distinct values, with the contract's re-check."""
    e164 = np.full(len(uniq), None, dtype=object)
    region = np.full(len(uniq), None, dtype=object)
    for i, text in enumerate(uniq.tolist()):
        found = slow_normalize_one(str(text), default_region)
        # the API wants E.164 text that re-parses to itself as a valid number
        if found is not None and rules.phone_region(found[0]) is not None:
            e164[i], region[i] = found
    return e164, region


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
    index = values.index
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    uniq = pd.Series(np.array(uniques, dtype=object), dtype="str")
    if len(uniq) < SMALL_INPUT:
        e164, region = _normalize_small(uniq, default_region)
        return _spread(codes, e164, region, index)
    e164, region, decided, cc_known, nsn_known = _fast_normalize(uniq, default_region)
    for i in np.flatnonzero(~decided):
        found = slow_normalize_one(str(uniq.iat[int(i)]), default_region)
        if found is not None:
            e164[i], region[i] = found
    # the 00 retry, for values the fast path called invalid
    retry = np.flatnonzero(decided & (e164 == None))  # noqa: E711 - elementwise
    if len(retry):
        texts = uniq.iloc[retry]
        zz = np.array(texts.str.match(r"\s*00\d").to_numpy(dtype=bool, na_value=False))
        ridx = retry[zz]
        if len(ridx):
            ridx = ridx[~_own_idd_many(uniq.iloc[ridx].reset_index(drop=True), default_region)]
        if len(ridx):
            alt = "+" + uniq.iloc[ridx].str.lstrip().str.slice(2)
            e2, r2, d2 = fast_normalize(alt, default_region)
            for j, i in enumerate(ridx):
                if d2[j]:
                    e164[i], region[i] = e2[j], r2[j]
                else:
                    found = _slow_once(str(alt.iat[j]), default_region)
                    if found is not None:
                        e164[i], region[i] = found
    _check_canonical(uniq, e164, region, cc_known, nsn_known)
    return _spread(codes, e164, region, index)


def _spread(
    codes: np.ndarray, e164: np.ndarray, region: np.ndarray, index: pd.Index
) -> tuple[pd.Series, pd.Series]:
    """Per-distinct results back onto every row (factorize codes; -1 is missing)."""
    out_e = np.full(len(codes), None, dtype=object)
    out_r = np.full(len(codes), None, dtype=object)
    have = codes >= 0
    out_e[have] = e164[codes[have]]
    out_r[have] = region[codes[have]]
    return pd.Series(out_e, index=index, dtype="str"), pd.Series(out_r, index=index, dtype="str")


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
    """
    s = values.reset_index(drop=True)
    n = len(s)
    used = np.full(n, default_region, dtype=object)
    if row_regions is not None:
        own = np.array([r is not None for r in row_regions], dtype=bool)
        plus = np.array(s.str.lstrip("' ").str.startswith("+").to_numpy(dtype=bool, na_value=False))
        used[own & ~plus] = row_regions[own & ~plus]
    keys = pd.Series(used, dtype=object).fillna("\0").to_numpy()
    groups = pd.unique(keys)
    if len(groups) == 1:
        only = None if groups[0] == "\0" else str(groups[0])
        e164, region = normalize_phones(s, only)
        return e164, region, used
    out_e = np.full(n, None, dtype=object)
    out_r = np.full(n, None, dtype=object)
    for group in groups:
        region_of_group = None if group == "\0" else str(group)
        sel = np.flatnonzero(keys == group)
        e, r = normalize_phones(s.iloc[sel], region_of_group)
        out_e[sel] = _objects_of(e)
        out_r[sel] = _objects_of(r)
    return pd.Series(out_e, dtype="str"), pd.Series(out_r, dtype="str"), used


def _objects_of(s: pd.Series) -> np.ndarray:
    out = np.array(s.to_numpy(dtype=object), dtype=object)
    out[np.asarray(s.isna(), dtype=bool)] = None
    return out


def _explicit(text: str, region: str | None) -> bool:
    """True when the text names its own country code (``+``, ``00``, the region's exit code)."""
    stripped = text.lstrip("' ")
    if stripped.startswith("+"):
        return True
    digits = phonenumbers.normalize_digits_only(stripped)
    return digits.startswith("00") or _own_idd(stripped, region)


def _explicit_many(texts: pd.Series, region: str | None) -> np.ndarray:
    """:func:`_explicit` for many texts: vectorised, with Python only for the few that
    start like the region's own exit code (its exact test needs the match's end)."""
    stripped = texts.str.lstrip("' ")
    out = np.array(stripped.str.startswith("+").to_numpy(dtype=bool, na_value=False))
    digits = stripped.str.replace(r"[^0-9]", "", regex=True)
    out |= np.array(digits.str.startswith("00").to_numpy(dtype=bool, na_value=False))
    pattern = _idd_pattern(region)
    if pattern is not None:
        maybe = ~out & _regex(digits, pattern.pattern, full=False)
        for i in np.flatnonzero(maybe).tolist():
            out[i] = _explicit(str(texts.iat[i]), region)
    # digits beyond ASCII (rare): the exact, per-text test
    odd = ~out & ~np.array(texts.str.isascii().to_numpy(dtype=bool, na_value=True))
    for i in np.flatnonzero(odd).tolist():
        out[i] = _explicit(str(texts.iat[i]), region)
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
    n = len(s)
    e164, region, used = normalize_by_region(s, default_region, row_regions)
    own = (
        np.zeros(n, dtype=bool)
        if row_regions is None
        else np.array([r is not None for r in row_regions], dtype=bool)
    )
    present = np.array(s.notna().to_numpy(dtype=bool))
    valid = np.array(e164.notna().to_numpy(dtype=bool))
    code = np.full(n, None, dtype=object)
    message = np.full(n, None, dtype=object)

    # national numbers: not "+", not "00", not the region's own exit code
    relied = np.zeros(n, dtype=bool)
    national_valid = valid & ~own & ~np.array(s.str.lstrip("' ").str.startswith("+").to_numpy(
        dtype=bool, na_value=False))  # fmt: skip
    if national_valid.any():
        relied[np.flatnonzero(national_valid)] = ~_explicit_many(
            s[national_valid].reset_index(drop=True), default_region
        )

    # evidence of the frame's regions: numbers placed by their own country code or row
    counts: dict[str, int] = {}
    placed = valid & ~relied
    if placed.any():
        for reg, count in pd.Series(_objects_of(region)[placed]).value_counts().items():
            counts[str(reg)] = counts.get(str(reg), 0) + int(count)
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
    relied &= np.array([c is None for c in code], dtype=bool)
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
    texts = s.iloc[idx].reset_index(drop=True)
    code[idx] = "invalid_phone"
    message[idx] = rules.message("invalid_phone")
    scientific = _regex(texts, _SCIENTIFIC.pattern, full=True)
    code[idx[scientific]] = "phone_scientific"
    message[idx[scientific]] = _MESSAGE_SCIENTIFIC
    extension = ~scientific & _search(texts, _EXTENSION.pattern)
    for i in np.flatnonzero(extension).tolist():
        text = str(texts.iat[i])
        found = _EXTENSION.search(text)
        if found is None or sum(c.isdigit() for c in text[: found.start() + 1]) < 5:
            continue
        code[idx[i]] = "phone_extension"
        message[idx[i]] = _message_extension(found.group(1).strip(" ,;"))
    # national numbers of a plausible shape, with no country of their own (a row that
    # names its country has a mistyped number, not a misplaced one): other regions
    digits = texts.str.replace(r"[^0-9]", "", regex=True)
    n_digits = np.array(digits.str.len().to_numpy(dtype=np.int64, na_value=0))
    search = ~scientific & ~extension & ~own[idx] & (n_digits >= 6) & (n_digits <= 15)
    search &= _regex(texts, _DIGIT_SHAPE.pattern, full=True)
    if search.any():
        cand = np.flatnonzero(search)
        cand = cand[~_explicit_many(texts.iloc[cand].reset_index(drop=True), default_region)]
        found_at = _valid_elsewhere(sorted({str(texts.iat[i]) for i in cand.tolist()}), counts)
        for i in cand.tolist():
            hit = found_at.get(str(texts.iat[i]))
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
    """Unanchored regex search per value (RE2 for arrow-backed text, as :func:`_regex`)."""
    if not len(s):
        return np.zeros(0, dtype=bool)
    if _pc is not None and getattr(s.dtype, "storage", None) == "pyarrow":
        res = _pc.match_substring_regex(_pa.array(s.array), pattern).fill_null(False)
        return np.array(res.to_numpy(zero_copy_only=False), dtype=bool)
    return np.array(s.str.contains(pattern, regex=True).to_numpy(dtype=bool, na_value=False))


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
    bare = relied & np.array(s.str.fullmatch(r"[0-9]+").to_numpy(dtype=bool, na_value=False))
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
