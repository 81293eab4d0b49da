"""Check contact rows against the API's field rules, all at once.

:func:`validate` applies exactly the rules of :mod:`synckit.rules` (the
contract, section 2) to a whole DataFrame with vectorised pandas work, after
normalising what is unambiguous, and returns a :class:`Validation`: the rows
ready to send, one error row per broken rule, and the rows that failed.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"email": [" Ada@Example.com", "bad@"], "sms_consent": [None, "yes"]})
    >>> check = validate(df)
    >>> check.valid.to_dict("index")
    {2: {'email': 'ada@example.com', 'sms_consent': None}}
    >>> check.errors[["row", "field", "code"]].values.tolist()
    [[3, 'email', 'invalid_email'], [3, 'sms_consent', 'invalid_choice']]
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import phonenumbers

from synckit import _email, _phone, rules
from synckit import accessor as _accessor  # noqa: F401  (registers df.synckit)
from synckit._rows import (
    CUSTOM_PREFIX,
    Duplicates,
    check_duplicates,
    fold_custom,
    is_missing,
    json_text,
    parse_custom_cell,
    row_numbers,
)
from synckit.errors import ConfigError

__all__ = [
    "ERROR_COLUMNS",
    "FileValidation",
    "Validation",
    "find_duplicates",
    "to_payloads",
    "validate",
    "validate_file",
]

#: Columns of ``Validation.errors``.
ERROR_COLUMNS: Final = ("row", "field", "code", "message", "value")
_TEXT_FIELDS: Final = tuple(f for f in rules.FIELDS if f != "custom_fields")
_PREFIX: Final = CUSTOM_PREFIX


# ---------------------------------------------------------------------------
# results


def _empty_errors() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": pd.Series([], dtype="int64"),
            **{c: pd.Series([], dtype=object) for c in ERROR_COLUMNS[1:]},
        }
    )


def _summarise(errors: pd.DataFrame, examples: int = 3) -> pd.DataFrame:
    """Counts per (field, code) with the message, example rows and values.

    ``message`` is the contract's text; where it differs from row to row
    (``duplicate_in_file`` names the kept row) the example rows' distinct
    messages are joined with ``"; "``.
    """
    columns = ["field", "code", "count", "message", "rows", "examples"]
    if errors.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}).astype(
            {"count": "int64"}
        )
    out = []
    for (fld, code), group in errors.groupby(["field", "code"], sort=False):
        rows = group["row"].head(examples).tolist()
        values: list[Any] = []
        seen: set[str] = set()
        for value in group["value"].tolist():
            key = repr(value)  # values may be dicts (custom_fields): compare by text
            if is_missing(value) or key in seen:
                continue
            seen.add(key)
            values.append(value)
            if len(values) == examples:
                break
        texts: list[str] = []
        if "message" in group:
            for text in group["message"].head(examples).tolist():
                if not is_missing(text) and str(text) not in texts:
                    texts.append(str(text))
        out.append(
            {
                "field": fld,
                "code": code,
                "count": len(group),
                "message": "; ".join(texts),
                "rows": rows,
                "examples": values,
            }
        )
    frame = pd.DataFrame(out, columns=columns)
    return frame.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


def _short(value: object, width: int = 40) -> str:
    """``repr`` of ``value`` in at most about ``width`` characters, quotes kept on text."""
    text = repr(value)
    if len(text) <= width:
        return text
    if isinstance(value, str):
        # shorten the text itself, so the example still reads as a quoted string
        inner = value
        while len(repr(inner + "…")) > width and inner:
            inner = inner[: max(len(inner) - max(len(repr(inner + "…")) - width, 1), 0)]
        return repr(inner + "…")
    return text[: width - 1] + "…"


@dataclass(frozen=True, eq=False)
class Validation:
    """The outcome of :func:`validate`.

    - ``valid``: rows ready to send, index ``row`` (spreadsheet row number),
      the contract fields present in the input (in ``rules.FIELDS`` order),
      normalised; missing values are ``None``.
    - ``errors``: one row per broken rule: ``row``, ``field``, ``code``,
      ``message`` (the contract's text, or for ``duplicate_in_file`` one that
      names the kept row), ``value`` (the cell as given).
    - ``invalid``: the failing rows as given, indexed by ``row``.
    - ``ignored_columns``: input columns that are not contract fields.

    Example:
        >>> import pandas as pd
        >>> v = validate(pd.DataFrame({"email": ["a@example.com", "nope"]}))
        >>> v.n_valid, v.n_invalid, v.summary()[["field", "code", "count"]].values.tolist()
        (1, 1, [['email', 'invalid_email', 1]])
    """

    valid: pd.DataFrame
    errors: pd.DataFrame
    invalid: pd.DataFrame
    ignored_columns: tuple[str, ...] = ()

    @property
    def n_rows(self) -> int:
        return len(self.valid) + len(self.invalid)

    @property
    def n_valid(self) -> int:
        return len(self.valid)

    @property
    def n_invalid(self) -> int:
        return len(self.invalid)

    @property
    def ok(self) -> bool:
        """True when every row is valid."""
        return self.invalid.empty

    def summary(self, examples: int = 3) -> pd.DataFrame:
        """Errors counted per ``field`` and ``code``, most frequent first, with examples."""
        return _summarise(self.errors, examples)

    def __str__(self) -> str:
        text = _text_report(
            self.n_rows, self.n_valid, self.n_invalid, len(self.errors), self.summary()
        )
        if self.ignored_columns:
            text += "\nignored columns (not sent): " + _names(self.ignored_columns)
        return text

    def __repr__(self) -> str:
        return (
            f"<Validation {self.n_rows} rows: {self.n_valid} valid, {self.n_invalid} invalid>\n"
            + str(self)
        )

    def _repr_html_(self) -> str:
        return _html_report(
            self.n_rows,
            self.n_valid,
            self.n_invalid,
            len(self.errors),
            self.summary(),
            ignored=self.ignored_columns,
        )


def _names(columns: Iterable[str]) -> str:
    return ", ".join(repr(str(c)) for c in columns)


def _text_report(
    n_rows: int, n_valid: int, n_invalid: int, n_errors: int, summary: pd.DataFrame
) -> str:
    lines = [f"{n_rows} rows: {n_valid} valid, {n_invalid} invalid ({n_errors} errors)"]
    if not summary.empty:
        width_f = max(len(str(f)) for f in summary["field"])
        width_c = max(len(str(c)) for c in summary["code"])
        for rec in summary.to_dict("records"):
            tail = [str(rec.get("message") or "")]
            if rec["rows"]:
                example = f"e.g. row {rec['rows'][0]}"
                if rec["examples"]:
                    example += f" {_short(rec['examples'][0])}"
                tail.append(example)
            text = "; ".join(t for t in tail if t)
            lines.append(
                f"  {rec['field']:<{width_f}}  {rec['code']:<{width_c}}  {rec['count']:>7}  {text}"
            )
    return "\n".join(lines)


def _badge(text: str, colour: str) -> str:
    return (
        f'<span style="background:{colour};color:#fff;border-radius:8px;'
        f'padding:1px 7px;font-size:12px">{html.escape(text)}</span>'
    )


def _html_report(
    n_rows: int,
    n_valid: int,
    n_invalid: int,
    n_errors: int,
    summary: pd.DataFrame,
    *,
    ignored: Iterable[str] = (),
) -> str:
    from synckit.report import _COLOURS

    cell = 'style="padding:1px 6px;text-align:left;vertical-align:top"'
    head = (
        '<div class="synckit-validation" style="font-family:sans-serif;font-size:13px">'
        f"<div><b>Validation</b>: {n_rows:,} rows "
        f"{_badge(f'{n_valid:,} valid', _COLOURS['created'])} "
        f"{_badge(f'{n_invalid:,} invalid', _COLOURS['invalid'])} "
        f"({n_errors:,} errors)</div>"
    )
    names = _names(ignored)
    if names:
        head += f'<div style="color:#666">ignored columns (not sent): {html.escape(names)}</div>'
    if summary.empty:
        return head + "</div>"
    rows = "".join(
        "<tr><td {c}>{}</td><td {c}>{}</td><td {r}>{}</td>"
        "<td {c}>{}</td><td {c}>{}</td><td {c}>{}</td></tr>".format(
            html.escape(str(r["field"])),
            _badge(str(r["code"]), _COLOURS["failed"]),
            f"{int(r['count']):,}",
            html.escape(str(r.get("message") or "")),
            html.escape(", ".join(str(x) for x in r["rows"])),
            html.escape(", ".join(_short(x, 30) for x in r["examples"])),
            c=cell,
            r='style="padding:1px 6px;text-align:right;vertical-align:top"',
        )
        for r in summary.to_dict("records")
    )
    headers = "".join(
        f"<th>{name}</th>" for name in ("field", "code", "count", "message", "rows", "examples")
    )
    return (
        head
        + "<table>"
        + f"<thead><tr>{headers}</tr></thead><tbody>"
        + rows
        + "</tbody></table></div>"
    )


# ---------------------------------------------------------------------------
# cell normalisation


def _objects(values: pd.Series) -> np.ndarray:
    """The values as an object array, missing ones as None."""
    out = np.array(values.to_numpy(dtype=object), dtype=object)
    out[np.asarray(values.isna(), dtype=bool)] = None
    return out


def _cell_text(value: Any) -> str | None:
    """A cell as text. Missing -> None; integral floats lose the ``.0``."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        number = float(value)
        if math.isnan(number):
            return None
        if math.isfinite(number) and number.is_integer() and abs(number) < 2**53:
            return str(int(number))
        return str(value)
    return str(value)


def _as_text(col: pd.Series) -> pd.Series:
    """The column as pandas text (NA for missing), without touching text columns."""
    if isinstance(col.dtype, pd.StringDtype):
        return col.astype("str")
    values = [_cell_text(v) for v in col.tolist()]
    return pd.Series(values, index=col.index, dtype="str")


def _clean(text: pd.Series) -> pd.Series:
    """Trimmed; empty or blank cells become missing."""
    s = text.str.strip()
    return s.where(s != "")


def _lower(s: pd.Series) -> pd.Series:
    """Python's ``str.lower`` (pyarrow's differs on a few letters: final sigma, dotted I)."""
    low = s.str.lower()
    odd = ~np.array(s.str.isascii().to_numpy(dtype=bool, na_value=True))
    odd &= np.array(s.notna().to_numpy(dtype=bool))  # isascii() says False for NA
    if not odd.any():
        return low
    values = low.to_numpy(dtype=object)
    values[odd] = [str(v).lower() for v in s[odd].tolist()]
    return pd.Series(values, index=s.index, dtype="str")


def _per_distinct(s: pd.Series, func: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply a text transformation once per distinct value (for low-cardinality columns)."""
    codes, uniques = pd.factorize(s)
    done = func(pd.Series(np.asarray(uniques, dtype=object), dtype="str"))
    values = _objects(done)
    out = np.full(len(s), None, dtype=object)
    have = codes >= 0
    out[have] = values[codes[have]]
    return pd.Series(out, index=s.index, dtype="str")


def _consent(s: pd.Series, allowed: tuple[str, ...]) -> pd.Series:
    """Trimmed, lower-cased; spaces/hyphens read as underscores when that names a choice."""

    def fix(u: pd.Series) -> pd.Series:
        lower = _lower(u)
        alt = lower.str.replace(r"[ \t\-]+", "_", regex=True)
        use_alt = alt.isin(allowed) & ~lower.isin(allowed)
        return lower.where(~use_alt, alt)

    return _per_distinct(s, fix)


# ---------------------------------------------------------------------------
# validation


@dataclass
class _Rule:
    mask: np.ndarray
    field: str
    code: str
    value: pd.Series | None
    message: str | np.ndarray | None = None


def _region(value: str | None) -> str | None:
    """The default region in upper case; an unknown one is a ConfigError, not silent failure."""
    if value is None or not str(value).strip():
        return None
    region = str(value).strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        hint = " (the United Kingdom is GB)" if region == "UK" else ""
        raise ConfigError(
            f"unknown default region {value!r} for phone numbers{hint}: use an ISO 3166 "
            "code libphonenumber knows, e.g. US, GB, DE"
        )
    return region


def validate(
    df: pd.DataFrame,
    *,
    default_region: str | None = "US",
    sms_countries: Collection[str] | None = None,
    duplicates: Duplicates = "last",
) -> Validation:
    """Check every row against the contract's field rules; normalise what is unambiguous.

    A pure function (no I/O, no global state): safe per chunk or partition.

    Rows: the index is the spreadsheet row number when it is named ``row``
    (as :func:`synckit.read_csv` makes it); any other integer index (e.g. a
    RangeIndex from :func:`pandas.read_csv`) is taken as ``row - 2`` (header
    = row 1); a non-integer index counts rows by position. ``valid`` and
    ``invalid`` are indexed by these row numbers.

    Columns: the contract fields (``rules.FIELDS``); columns named
    ``custom.<key>`` become ``custom_fields`` keys (blank cells left out), as
    :func:`synckit.read_csv` does; other columns are ignored and listed in
    ``Validation.ignored_columns`` (they are never sent, so they are not
    ``unknown_field`` errors).

    Cells need not be text: non-string cells are read as their text, and
    floats that are whole numbers lose the ``.0`` (``7700900123.0`` ->
    ``"7700900123"``). That is error-prone for phones: a float column has
    already lost leading zeros and ``+``, so read CSVs with
    :func:`synckit.read_csv` (all text) instead. Missing cells (None, NaN,
    NA, empty or blank text) are missing values.

    Normalisation:

    - ``phone_number`` to E.164 with phonenumbers, ``default_region`` for
      national formats; a number libphonenumber does not call valid is an
      ``invalid_phone`` error. Extensions (``x123``) are errors (E.164 cannot
      hold them and dropping them silently dials the wrong line). Vanity
      letters convert as libphonenumber does (``1-800-FLOWERS``). ``00`` +
      country code works whatever the default region (the region's own
      prefix, e.g. US ``011``, is understood by libphonenumber).
    - ``email`` trimmed and lower-cased; checked with email-validator's
      syntax rules (no DNS).
    - ``email_consent`` / ``sms_consent`` trimmed and lower-cased; spaces or
      hyphens between words read as ``_`` (``Never Subscribed`` ->
      ``never_subscribed``). Other spellings (``yes``, ``opted in``) are not
      guessed: they are ``invalid_choice`` errors.
    - names trimmed; ``custom_fields`` cells: dicts, or JSON object text.

    Duplicates in the file (same normalised email or phone, transitively,
    among otherwise valid rows): ``"last"`` keeps the last occurrence and
    gives each earlier one a ``duplicate_in_file`` error naming the kept row;
    ``"error"`` rejects them all; ``"keep"`` keeps them all.

    Example:
        >>> import pandas as pd
        >>> v = validate(pd.DataFrame({"phone_number": ["(415) 555-2671", "07400 123456"]}))
        >>> v.valid["phone_number"].tolist(), v.errors["code"].tolist()
        (['+14155552671'], ['invalid_phone'])
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"validate() takes a pandas DataFrame, not a {type(df).__name__}")
    check_duplicates(duplicates)
    default_region = _region(default_region)
    countries = rules.DEFAULT_SMS_COUNTRIES if sms_countries is None else frozenset(sms_countries)
    rows = row_numbers(df)
    n = len(df)
    present_fields = [f for f in rules.FIELDS if f in df.columns]
    twice = [f for f in present_fields if list(df.columns).count(f) > 1]
    if twice:
        raise ConfigError(f"column {twice[0]!r} appears more than once")
    prefixed = [
        c
        for c in df.columns
        if isinstance(c, str) and c.startswith(_PREFIX) and c.strip() != _PREFIX
    ]
    ignored = tuple(str(c) for c in df.columns if c not in rules.FIELDS and c not in prefixed)
    if prefixed and "custom_fields" not in present_fields:
        present_fields.append("custom_fields")

    raw: dict[str, pd.Series] = {}
    norm: dict[str, pd.Series] = {}
    for fld in present_fields:
        if fld == "custom_fields":
            continue
        text = _as_text(df[fld]).reset_index(drop=True)
        raw[fld] = text
        norm[fld] = _clean(text)

    false = np.zeros(n, dtype=bool)
    rules_out: list[_Rule] = []

    def present(fld: str) -> np.ndarray:
        if fld not in norm:
            return false
        return np.array(norm[fld].notna().to_numpy(dtype=bool))

    # identifiers
    has_email, has_phone = present("email"), present("phone_number")
    rules_out.append(_Rule(~has_email & ~has_phone, rules.REQUIRED_FIELD, "required", None))

    email_ok = np.ones(n, dtype=bool)
    if "email" in norm:
        lowered = _lower(norm["email"])
        norm["email"] = lowered
        codes, uniques = pd.factorize(lowered)
        verdict = _email.valid_emails(pd.Series(np.asarray(uniques, dtype=object), dtype="str"))
        good = np.zeros(n, dtype=bool)
        good[codes >= 0] = verdict[codes[codes >= 0]]
        email_ok = ~has_email | good
        rules_out.append(_Rule(~email_ok, "email", "invalid_email", raw["email"]))

    phone_ok = np.ones(n, dtype=bool)
    region = pd.Series(np.full(n, None, dtype=object), dtype="str")
    if "phone_number" in norm:
        e164, region = _phone.normalize_phones(norm["phone_number"], default_region)
        e164_ok = np.array(e164.notna().to_numpy(dtype=bool))
        phone_ok = ~has_phone | e164_ok
        norm["phone_number"] = norm["phone_number"].where(~pd.Series(e164_ok), e164)
        rules_out.append(_Rule(~phone_ok, "phone_number", "invalid_phone", raw["phone_number"]))

    for fld, allowed in rules.CHOICES.items():
        if fld not in norm:
            continue
        norm[fld] = _consent(norm[fld], allowed)
        bad = present(fld) & ~np.array(norm[fld].isin(allowed).to_numpy(dtype=bool))
        rules_out.append(_Rule(bad, fld, "invalid_choice", raw[fld]))

    if "sms_consent" in norm:
        sms_set = present("sms_consent") & np.array(
            norm["sms_consent"].isin(rules.SMS_CONSENT_VALUES).to_numpy(dtype=bool)
        )
        in_country = np.array(region.isin(list(countries)).to_numpy(dtype=bool)) & has_phone
        bad = sms_set & phone_ok & ~in_country
        rules_out.append(_Rule(bad, "sms_consent", "sms_country", raw["sms_consent"]))

    for fld in ("first_name", "last_name"):
        if fld not in norm:
            continue
        lengths = norm[fld].str.len().to_numpy(dtype=np.int64, na_value=0)
        rules_out.append(_Rule(lengths > rules.NAME_MAX_LENGTH, fld, "too_long", raw[fld]))

    custom_values: list[Any] | None = None
    if "custom_fields" in present_fields:
        if "custom_fields" in df.columns:
            given_list = df["custom_fields"].tolist()
            custom_values = [parse_custom_cell(v) for v in given_list]
        else:
            given_list = [None] * n
            custom_values = [None] * n
        if prefixed:
            _fold_prefixed(df, prefixed, custom_values)
            given_list = custom_values
        bad = np.array(
            [v is not None and not rules.check_custom_fields(v) for v in custom_values], dtype=bool
        )
        given = pd.Series(given_list, dtype=object)
        rules_out.append(_Rule(bad, "custom_fields", "nested_custom_fields", given))

    failed = np.zeros(n, dtype=bool)
    for rule in rules_out:
        failed |= rule.mask

    if duplicates != "keep" and ("email" in norm or "phone_number" in norm):
        keys = pd.DataFrame(
            {
                "row": rows,
                "email": norm.get("email"),
                "phone_number": norm.get("phone_number"),
            }
        )
        candidates = ~failed
        dup = find_duplicates(keys[candidates], policy=duplicates)
        if not dup.empty:
            pos = np.flatnonzero(candidates)[dup["_pos"].to_numpy()]
            mask = np.zeros(n, dtype=bool)
            mask[pos] = True
            messages = np.full(n, None, dtype=object)
            messages[pos] = dup["message"].to_numpy()
            fields = np.full(n, None, dtype=object)
            fields[pos] = dup["field"].to_numpy()
            rules_out.append(_Rule(mask, "", "duplicate_in_file", None, messages))
            rules_out[-1].value = _dup_values(fields, raw)
            rules_out[-1].field = fields  # type: ignore[assignment]
            failed |= mask

    errors = _build_errors(rules_out, rows)
    ok = ~failed

    valid_cols: dict[str, Any] = {}
    for fld in present_fields:
        if fld == "custom_fields":
            assert custom_values is not None
            valid_cols[fld] = pd.Series(
                [v for v, good in zip(custom_values, ok, strict=True) if good], dtype=object
            )
        else:
            kept = norm[fld][ok]
            valid_cols[fld] = kept.astype(object).where(kept.notna(), None).reset_index(drop=True)
    valid = pd.DataFrame(valid_cols, columns=present_fields)
    valid.index = pd.Index(rows[ok], name="row")
    invalid = df.iloc[np.flatnonzero(failed)].copy()
    invalid.index = pd.Index(rows[failed], name="row")
    return Validation(valid=valid, errors=errors, invalid=invalid, ignored_columns=ignored)


def _fold_prefixed(df: pd.DataFrame, prefixed: list[str], cells: list[Any]) -> None:
    """Merge ``custom.<key>`` columns into the custom_fields cells (in place), as read_csv does."""
    for column in prefixed:
        values = df[column].tolist()
        fold_custom(cells, column[len(_PREFIX) :].strip(), range(len(values)), values)


def _dup_values(fields: np.ndarray, raw: Mapping[str, pd.Series]) -> pd.Series:
    out = np.full(len(fields), None, dtype=object)
    for fld in ("email", "phone_number"):
        if fld in raw:
            sel = fields == fld
            out[sel] = _objects(raw[fld])[sel]
    return pd.Series(out, dtype=object)


def _build_errors(rules_out: list[_Rule], rows: np.ndarray) -> pd.DataFrame:
    parts = []
    for order, rule in enumerate(rules_out):
        pos = np.flatnonzero(rule.mask)
        if not len(pos):
            continue
        fld = rule.field
        field_col = (
            fld[pos] if isinstance(fld, np.ndarray) else np.full(len(pos), fld, dtype=object)
        )
        if rule.message is None:
            message = rules.message(rule.code, fld if isinstance(fld, str) else None)
            message_col = np.full(len(pos), message, dtype=object)
        elif isinstance(rule.message, np.ndarray):
            message_col = rule.message[pos]
        else:
            message_col = np.full(len(pos), rule.message, dtype=object)
        if rule.value is None:
            value_col = np.full(len(pos), None, dtype=object)
        else:
            value_col = _objects(rule.value)[pos]
        parts.append(
            pd.DataFrame(
                {
                    "_pos": pos,
                    "_order": order,
                    "row": rows[pos],
                    "field": field_col,
                    "code": rule.code,
                    "message": message_col,
                    "value": value_col,
                }
            )
        )
    if not parts:
        return _empty_errors()
    out = pd.concat(parts, ignore_index=True)
    out = out.sort_values(["_pos", "_order"], kind="stable").reset_index(drop=True)
    out = out[list(ERROR_COLUMNS)]
    return out.astype({"row": "int64", "field": object, "code": object, "message": object})


# ---------------------------------------------------------------------------
# duplicates


def find_duplicates(keys: pd.DataFrame, *, policy: Duplicates = "last") -> pd.DataFrame:
    """Rows sharing a normalised email or phone (transitively) with another row.

    ``keys`` has columns ``row``, ``email``, ``phone_number`` (normalised;
    missing as NA/None), one line per candidate row, in file order. Returns
    one line per rejected row: ``_pos`` (position in ``keys``), ``row``,
    ``field`` (``email``, ``phone_number``, or ``email / phone_number`` when
    linked only through other rows), ``message`` (``duplicate of row 17 (same
    email)``). With ``"last"`` the last row of each group is kept; with
    ``"error"`` none is; ``"keep"`` returns nothing.

    Example:
        >>> k = pd.DataFrame({"row": [2, 3, 4], "email": ["a@x.io", "b@x.io", "a@x.io"],
        ...                   "phone_number": [None, None, None]})
        >>> find_duplicates(k)[["row", "message"]].values.tolist()
        [[2, 'duplicate of row 4 (same email)']]
    """
    out_cols = ["_pos", "row", "field", "message"]
    empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in out_cols})
    if policy == "keep" or len(keys) < 2:
        return empty
    n = len(keys)
    # factorize the key columns as they are (no Python strings: this runs on
    # every valid row of a million-row file at the end of ``validate_file``)
    email_codes = pd.factorize(keys["email"])[0] if "email" in keys else None
    phone_codes = pd.factorize(keys["phone_number"])[0] if "phone_number" in keys else None
    codes = [c for c in (email_codes, phone_codes) if c is not None]
    # only rows sharing some key can be in a group: work on those alone
    involved = np.zeros(n, dtype=bool)
    for c in codes:
        have = c >= 0
        counts = np.bincount(c[have]) if have.any() else np.zeros(0, np.int64)
        involved |= have & (counts[np.maximum(c, 0)] > 1 if len(counts) else False)
    if not involved.any():
        return empty
    sub = np.flatnonzero(involved)
    sub_codes = [c[sub] for c in codes]
    # connected components: propagate the smallest position through shared keys
    label = np.arange(len(sub), dtype=np.int64)
    while True:
        before = label.copy()
        for c in sub_codes:
            have = c >= 0
            if not have.any():
                continue
            best = np.full(int(c.max()) + 1, len(sub), dtype=np.int64)
            np.minimum.at(best, c[have], label[have])
            label[have] = np.minimum(label[have], best[c[have]])
        label = label[label]  # pointer jumping shortens long chains
        if np.array_equal(label, before):
            break
    last_of = np.zeros(len(sub), dtype=np.int64)
    np.maximum.at(last_of, label, np.arange(len(sub)))
    first_of = np.full(len(sub), len(sub), dtype=np.int64)
    np.minimum.at(first_of, label, np.arange(len(sub)))
    local = np.arange(len(sub))
    last = sub[last_of[label]]
    first = sub[first_of[label]]
    pick = local != last_of[label] if policy == "last" else np.ones(len(sub), dtype=bool)
    rejected = sub[pick]
    last = last[pick]
    first = first[pick]
    rows = keys["row"].to_numpy()
    other = np.where(rejected == last, first, last)
    fields: list[str] = []
    messages: list[str] = []
    # for rows linked to the kept one only through others: the rows they share a key with
    partners: dict[tuple[str, int], list[int]] = {}
    named = [
        (k, c) for k, c in (("email", email_codes), ("phone_number", phone_codes)) if c is not None
    ]
    for name, c in named:
        for p in sub.tolist():
            if c[p] >= 0:
                seen = partners.setdefault((name, int(c[p])), [])
                if len(seen) < 2:
                    seen.append(p)
    for pos, kept in zip(rejected.tolist(), other.tolist(), strict=True):
        if (
            email_codes is not None
            and email_codes[pos] >= 0
            and email_codes[pos] == email_codes[kept]
        ):
            how, fld = "same email", "email"
        elif (
            phone_codes is not None
            and phone_codes[pos] >= 0
            and phone_codes[pos] == phone_codes[kept]
        ):
            how, fld = "same phone_number", "phone_number"
        else:
            how, fld = "linked through shared email or phone_number", rules.REQUIRED_FIELD
            for name, c in named:
                if c[pos] < 0:
                    continue
                near = [p for p in partners.get((name, int(c[pos])), []) if p != pos]
                if near:
                    how = f"same {name} as row {rows[near[0]]}, which is linked to row {rows[kept]}"
                    break
        fields.append(fld)
        messages.append(f"duplicate of row {rows[kept]} ({how})")
    return pd.DataFrame(
        {"_pos": rejected, "row": rows[rejected], "field": fields, "message": messages}
    )


# ---------------------------------------------------------------------------
# payloads


def to_payloads(valid: pd.DataFrame) -> list[tuple[int, dict[str, Any]]]:
    """(spreadsheet row, JSON body) for each row of ``Validation.valid``.

    Missing or empty cells are left out of the body (never sent as null),
    ``custom_fields`` is included only when it has keys, and only contract
    fields are sent.

    Example:
        >>> v = validate(pd.DataFrame({"email": ["a@example.com"], "first_name": [None]}))
        >>> to_payloads(v.valid)
        [(2, {'email': 'a@example.com'})]
    """
    fields = [f for f in rules.FIELDS if f in valid.columns]
    rows = [int(r) for r in valid.index.tolist()]
    n = len(rows)
    columns: list[np.ndarray] = []
    present = np.zeros(n, dtype=np.int64)  # bit i set: field i has a value
    for bit, fld in enumerate(fields):
        col = valid[fld]
        if fld == "custom_fields":
            values = np.empty(n, dtype=object)
            values[:] = col.tolist()
            has = np.array([isinstance(v, dict) and bool(v) for v in values], dtype=bool)
        else:
            values = _objects(col)
            has = np.array([v is not None and v != "" for v in values.tolist()], dtype=bool)
        columns.append(values)
        present |= has.astype(np.int64) << bit
    bodies: list[dict[str, Any]] = [{}] * n
    # rows with the same set of present fields share one key list: no per-cell test
    for mask in np.unique(present).tolist():
        sel = np.flatnonzero(present == mask)
        keys = [f for bit, f in enumerate(fields) if mask >> bit & 1]
        cols = [columns[bit][sel].tolist() for bit in range(len(fields)) if mask >> bit & 1]
        made = [dict(zip(keys, cells, strict=True)) for cells in zip(*cols, strict=True)]
        if not cols:
            made = [{} for _ in sel]
        for i, body in zip(sel.tolist(), made, strict=True):
            bodies[i] = body
    out = list(zip(rows, bodies, strict=True))
    return out


# ---------------------------------------------------------------------------
# files, in chunks


@dataclass
class FileValidation:
    """What :func:`validate_file` found: counts, a summary, and where errors went.

    ``errors_sample`` holds the first ``sample`` error rows (all of them for
    small files); the full list is in ``errors_path`` when one was given.
    """

    source: str
    n_rows: int = 0
    n_valid: int = 0
    n_invalid: int = 0
    n_errors: int = 0
    summary: pd.DataFrame = field(default_factory=lambda: _summarise(_empty_errors()))
    errors_sample: pd.DataFrame = field(default_factory=_empty_errors)
    errors_path: str | None = None
    ignored_columns: list[str] = field(default_factory=list)
    unmatched_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.n_invalid == 0

    def __str__(self) -> str:
        return _text_report(self.n_rows, self.n_valid, self.n_invalid, self.n_errors, self.summary)

    def _repr_html_(self) -> str:
        return _html_report(
            self.n_rows,
            self.n_valid,
            self.n_invalid,
            self.n_errors,
            self.summary,
            ignored=self.ignored_columns,
        )


def validate_file(
    source: Any,
    *,
    columns: Mapping[str, str | None] | None = None,
    default_region: str | None = "US",
    sms_countries: Collection[str] | None = None,
    duplicates: Duplicates = "last",
    chunksize: int = 50_000,
    errors_path: str | Path | None = None,
    sample: int = 1000,
    progress: Callable[[int], None] | None = None,
) -> FileValidation:
    """Validate a CSV in chunks, in bounded memory; optionally write every error to CSV.

    Duplicates are found across the whole file (the normalised email and
    phone of valid rows are kept, not the rows). Error rows are written
    chunk by chunk, then the ``duplicate_in_file`` ones at the end.

    Example:
        >>> import io
        >>> r = validate_file(io.StringIO("email\\na@example.com\\nbad\\n"))
        >>> r.n_valid, r.n_invalid
        (1, 1)
    """
    from synckit.io import read_csv

    default_region = _region(default_region)  # a bad option fails before any reading
    result = FileValidation(source=str(getattr(source, "name", source)))
    chunks = read_csv(source, columns=columns, chunksize=chunksize)
    assert isinstance(chunks, Iterator)
    keys: list[pd.DataFrame] = []
    summaries: list[pd.DataFrame] = []
    sample_parts: list[pd.DataFrame] = []
    sampled = 0
    handle = None
    if errors_path:
        try:
            handle = open(errors_path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(f"cannot write errors to {errors_path}: {exc.strerror}") from exc
    wrote_header = False

    def emit(errors: pd.DataFrame) -> None:
        nonlocal wrote_header, sampled
        if errors.empty:
            return
        result.n_errors += len(errors)
        summaries.append(errors[["field", "code", "row", "message", "value"]].head(sample))
        counts.append(errors.groupby(["field", "code"], sort=False).size())
        if sampled < sample:
            sample_parts.append(errors.head(sample - sampled))
            sampled += min(len(errors), sample - sampled)
        if handle is not None:
            values = errors["value"]
            if values.map(lambda v: isinstance(v, (dict, list))).any():
                # custom_fields cells: JSON, as the sheet held them (not Python's repr)
                errors = errors.assign(value=values.map(json_text))
            errors.to_csv(handle, index=False, header=not wrote_header)
            wrote_header = True

    counts: list[pd.Series] = []
    try:
        for chunk in chunks:
            if not result.ignored_columns and not result.unmatched_columns:
                result.ignored_columns = list(chunk.attrs.get("ignored_columns", []))
                result.unmatched_columns = list(chunk.attrs.get("unmatched_columns", []))
            check = validate(
                chunk, default_region=default_region, sms_countries=sms_countries, duplicates="keep"
            )
            result.n_rows += check.n_rows
            result.n_valid += check.n_valid
            result.n_invalid += check.n_invalid
            emit(check.errors)
            if duplicates != "keep":
                part = pd.DataFrame(index=check.valid.index)
                for fld in ("email", "phone_number"):
                    if fld in check.valid:
                        part[fld] = check.valid[fld].astype("str")
                keys.append(part.reset_index())
            if progress is not None:
                progress(len(chunk))
        if keys:
            all_keys = pd.concat(keys, ignore_index=True)
            dup = find_duplicates(all_keys, policy=duplicates)
            if not dup.empty:
                values = []
                for pos, fld in zip(dup["_pos"].tolist(), dup["field"].tolist(), strict=True):
                    values.append(all_keys[fld].iat[pos] if fld in all_keys else None)
                errors = pd.DataFrame(
                    {
                        "row": dup["row"].astype("int64"),
                        "field": dup["field"],
                        "code": "duplicate_in_file",
                        "message": dup["message"],
                        "value": values,
                    }
                )
                emit(errors)
                result.n_valid -= len(dup)
                result.n_invalid += len(dup)
    finally:
        if handle is not None:
            handle.close()
    if handle is not None and not wrote_header:
        Path(errors_path).write_text(",".join(ERROR_COLUMNS) + "\n", encoding="utf-8")  # type: ignore[arg-type]
    result.errors_path = str(errors_path) if errors_path else None
    if sample_parts:
        result.errors_sample = pd.concat(sample_parts, ignore_index=True)
    result.summary = _merge_summaries(summaries, counts)
    return result


def _merge_summaries(parts: Iterable[pd.DataFrame], counts: Iterable[pd.Series]) -> pd.DataFrame:
    frames = list(parts)
    if not frames:
        return _summarise(_empty_errors())
    examples = _summarise(pd.concat(frames, ignore_index=True))
    total = pd.concat(list(counts)).groupby(level=[0, 1]).sum()
    examples["count"] = [
        int(total.get((f, c), 0)) for f, c in zip(examples["field"], examples["code"], strict=True)
    ]
    return examples.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
