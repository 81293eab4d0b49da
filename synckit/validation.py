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
    >>> check.errors[["row", "field", "code"]].values.tolist()  # doctest: +NORMALIZE_WHITESPACE
    [[3, 'email', 'invalid_email'], [3, 'sms_consent', 'invalid_choice'],
     [3, 'sms_consent', 'sms_country']]
"""

from __future__ import annotations

import contextlib
import functools
import gc
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
import pyarrow as pa
import pyarrow.compute as pc

from synckit import _arrow, _diagnostics, _email, _phone, _steps, rules
from synckit import accessor as _accessor  # noqa: F401  (registers df.synckit)
from synckit._files import CsvExport, csv_export
from synckit._headers import COUNTRY
from synckit._rows import (
    CUSTOM_PREFIX,
    Duplicates,
    check_duplicates,
    custom_scalar,
    escape_surrogates,
    is_missing,
    parse_custom_cell,
    row_numbers,
)
from synckit._steps import InvalidFields
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

#: Columns of ``Validation.errors``. ``severity``: ``"error"`` (the row is rejected) or
#: ``"warning"`` (reported; the row is sent), as in ``SyncReport.errors``.
ERROR_COLUMNS: Final = ("row", "field", "code", "message", "value", "severity")
_TEXT_FIELDS: Final = tuple(f for f in rules.FIELDS if f != "custom_fields")
_WARNING: Final = "#a67c00"  # badge colour of a warning (errors use the report's "failed")
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
    """Counts per (field, code, severity) with the message, example rows and values.

    ``message`` is the contract's text; where it differs from row to row
    (``duplicate_in_file`` names the kept row) the example rows' distinct
    messages are joined with ``"; "``. Errors come first, then warnings, each
    most frequent first.
    """
    columns = ["field", "code", "count", "message", "rows", "examples", "severity"]
    if errors.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}).astype(
            {"count": "int64"}
        )
    if "severity" not in errors:
        errors = errors.assign(severity="error")
    out = []
    keys = ["field", "code", "severity"]
    for (fld, code, severity), group in errors.groupby(keys, sort=False, dropna=False):
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
            # short messages naming another row are joined; long ones (a number's
            # diagnosis) would repeat themselves: the first stands for the rest
            joined = code == "duplicate_in_file"
            for text in group["message"].head(examples if joined else 1).tolist():
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
                "severity": severity,
            }
        )
    frame = pd.DataFrame(out, columns=columns)
    return _ordered(frame)


def _ordered(summary: pd.DataFrame) -> pd.DataFrame:
    """Errors before warnings, each most frequent first (stable otherwise)."""
    warning = (summary["severity"] == "warning").to_numpy(dtype=bool)
    order = np.lexsort((-summary["count"].to_numpy(dtype=np.int64), warning))
    return summary.iloc[order].reset_index(drop=True)


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


@dataclass(frozen=True)
class SourceColumns:
    """Which columns of the file fed which field, as :func:`synckit.read_csv` chose them.

    ``mapping``: field (or ``country``) -> headers, read in that order, each
    filling in where the ones before are empty; ``labels``: header -> the
    column naming each row's kind (mobile first); ``recognised``: headers
    matched by their export spelling; ``layout``: the export the headers
    come from; ``suggestions``: unused header -> ``[field, note]``.
    """

    mapping: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    recognised: tuple[str, ...] = ()
    layout: str | None = None
    suggestions: dict[str, list[str]] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    def lines(self) -> list[tuple[str, str, str]]:
        """(field, headers, note) per mapped field, then ("did you mean", header, note)."""
        out: list[tuple[str, str, str]] = []
        for target, headers in self.mapping.items():
            notes = []
            if any(h in self.recognised for h in headers):
                notes.append("recognised")
            if target == "phone_number" and any(h in self.labels for h in headers):
                notes.append("a mobile label wins")
            if len(headers) > 1:
                notes.append("first non-empty")
            if target == COUNTRY:
                notes.append("each row's phone region; not sent")
            out.append((target, ", ".join(repr(h) for h in headers), "; ".join(notes)))
        for header, (target, note) in self.suggestions.items():
            how = f"columns={{{header!r}: {target!r}}} / --map '{header}={target}'"
            out.append(("did you mean", f"{header!r} -> {target}?", f"{how}; {note}"))
        return out

    def text(self) -> str:
        head = "columns" + (f" ({self.layout} layout)" if self.layout else "")
        head += ", override with columns= / --map:"
        rows = self.lines()
        width = max((len(t) for t, _, _ in rows), default=0)
        body = [
            f"  {t:<{width}}  <- {h}" + (f"  ({n})" if n else "")
            if t != "did you mean"
            else f"  {t}: {h}" + (f"  ({n})" if n else "")
            for t, h, n in rows
        ]
        return "\n".join([head, *body])

    def html(self) -> str:
        style = "padding:1px 6px;text-align:left;vertical-align:top"
        cell = f'style="{style}"'
        rows = "".join(
            f"<tr><td {cell}>{html.escape(t)}</td><td {cell}>{html.escape(h)}</td>"
            f'<td style="{style};color:#666">{html.escape(n)}</td></tr>'
            for t, h, n in self.lines()
        )
        title = "Columns" + (f" — {html.escape(self.layout)} layout" if self.layout else "")
        return (
            f'<details class="synckit-columns" open><summary><b>{title}</b> '
            '<span style="color:#666">(override with <code>columns=</code> / '
            "<code>--map</code>)</span></summary>"
            f"<table><thead><tr><th>field</th><th>file columns</th><th>note</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></details>"
        )


def _shown_columns(df: pd.DataFrame) -> SourceColumns | None:
    """The column choices :func:`synckit.read_csv` left in ``df.attrs`` (None for other frames)."""
    attrs = getattr(df, "attrs", {}) or {}
    mapping = attrs.get("mapping")
    if not isinstance(mapping, Mapping):
        return None
    return SourceColumns(
        mapping={str(k): [str(h) for h in v] for k, v in mapping.items()},
        labels=dict(attrs.get("labels") or {}),
        recognised=tuple(attrs.get("recognised") or ()),
        layout=attrs.get("layout"),
        suggestions={str(k): list(v) for k, v in (attrs.get("suggestions") or {}).items()},
        ignored=tuple(attrs.get("ignored_columns") or ()),
    )


def _region_note(n_default_region: int, default_region: str | None) -> str | None:
    if not n_default_region:
        return None
    s = "" if n_default_region == 1 else "s"
    return (
        f"{n_default_region:,} phone number{s} in national format had no country of "
        f"{'its' if n_default_region == 1 else 'their'} own and "
        f"{'was' if n_default_region == 1 else 'were'} read with default_region {default_region}"
    )


@dataclass(frozen=True, eq=False)
class Validation:
    """The outcome of :func:`validate`.

    - ``valid``: rows ready to send, index ``row`` (spreadsheet row number),
      the contract fields present in the input (in ``rules.FIELDS`` order),
      normalised; missing values are ``None``. Custom fields stay columns:
      ``custom_fields`` (the parsed JSON object, when the input has that
      column) and one ``custom.<key>`` column per custom field (trimmed
      text, or the input's numbers and booleans; missing where the key is
      left out). :func:`to_payloads` builds each row's object when it is sent.
    - ``errors``: one row per problem: ``row``, ``field``, ``code``,
      ``message`` (the contract's text, or synckit's own saying what to do),
      ``value`` (the cell as given), ``severity`` (``error`` rejects the row,
      ``warning`` reports something changed or doubtful in a row that is sent).
    - ``invalid``: the failing rows as given, indexed by ``row``.
    - ``ignored_columns``: input columns that are not contract fields.
    - ``columns``: which file columns fed which field (frames from
      :func:`synckit.read_csv`; ``None`` otherwise).
    - ``n_default_region``: phone numbers in national format that had no
      country of their own, read with ``default_region``.

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
    columns: SourceColumns | None = None
    n_default_region: int = 0
    default_region: str | None = None

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
    def n_errors(self) -> int:
        """Problems that rejected a row."""
        return len(self.errors) - self.n_warnings

    @property
    def n_warnings(self) -> int:
        """Problems reported on rows that are sent all the same."""
        if "severity" not in self.errors:
            return 0
        return int((self.errors["severity"] == "warning").sum())

    @property
    def ok(self) -> bool:
        """True when every row is valid (warnings or not)."""
        return self.invalid.empty

    def summary(self, examples: int = 3) -> pd.DataFrame:
        """Problems counted per ``field``, ``code`` and ``severity`` (errors first, then
        warnings, most frequent first), with the message and examples."""
        return _summarise(self.errors, examples)

    def errors_to_csv(self, path: str | Path, *, file_mode: int | None = None) -> Path:
        """Write ``errors`` (row, field, code, message, value, severity) as CSV; returns the path.

        Cells a spreadsheet would run as formulas (``=HYPERLINK(...)`` in the
        ``value`` column) are escaped with a leading ``'``; the file is created
        ``0600`` (or ``file_mode``) and replaces ``path`` atomically.

        Example:
            >>> import pandas as pd, tempfile, os
            >>> v = validate(pd.DataFrame({"email": ["=1+1"]}))
            >>> p = v.errors_to_csv(os.path.join(tempfile.mkdtemp(), "problems.csv"))
            >>> p.read_text().splitlines()[1]
            "2,email,invalid_email,must be a valid email address,'=1+1,error"
        """
        with csv_export(path, columns=list(self.errors.columns), file_mode=file_mode) as out:
            if len(self.errors):
                out.write(self.errors)
        return Path(path)

    def invalid_to_csv(self, path: str | Path, *, file_mode: int | None = None) -> Path:
        """Write ``invalid`` (the failing rows as given, with a ``row`` column) as CSV.

        Escaped, private and atomic like :meth:`errors_to_csv`; ``custom_fields``
        objects are written as JSON. Returns the path.

        Example:
            >>> import pandas as pd, tempfile, os
            >>> v = validate(pd.DataFrame({"email": ["+1 bad"]}))
            >>> p = v.invalid_to_csv(os.path.join(tempfile.mkdtemp(), "to_fix.csv"))
            >>> p.read_text().splitlines()
            ['row,email', "2,'+1 bad"]
        """
        with csv_export(path, file_mode=file_mode) as out:
            out.write(self.invalid, index=True)
        return Path(path)

    def _notes(self) -> list[str]:
        note = _region_note(self.n_default_region, self.default_region)
        return [note] if note else []

    def __str__(self) -> str:
        text = _text_report(
            self.n_rows,
            self.n_valid,
            self.n_invalid,
            self.n_errors,
            self.summary(),
            n_warnings=self.n_warnings,
            notes=self._notes(),
        )
        if self.columns is not None:
            text += "\n" + self.columns.text()
        ignored = self.ignored_columns or (self.columns.ignored if self.columns else ())
        if ignored:
            text += "\nignored columns (not sent): " + _names(ignored)
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
            self.n_errors,
            self.summary(),
            ignored=self.ignored_columns or (self.columns.ignored if self.columns else ()),
            n_warnings=self.n_warnings,
            notes=self._notes(),
            columns=self.columns,
        )


def _names(columns: Iterable[str]) -> str:
    return ", ".join(repr(str(c)) for c in columns)


def _counts(n_errors: int, n_warnings: int) -> str:
    text = f"{n_errors:,} error{'' if n_errors == 1 else 's'}"
    if n_warnings:
        text += f", {n_warnings:,} warning{'' if n_warnings == 1 else 's'}"
    return text


def _text_report(
    n_rows: int,
    n_valid: int,
    n_invalid: int,
    n_errors: int,
    summary: pd.DataFrame,
    *,
    n_warnings: int = 0,
    notes: Iterable[str] = (),
) -> str:
    counted = _counts(n_errors, n_warnings)
    lines = [f"{n_rows} rows: {n_valid} valid, {n_invalid} invalid ({counted})"]
    lines += [f"note: {note}" for note in notes]
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
            mark = "  " if rec.get("severity", "error") == "error" else "w "
            lines.append(
                f"{mark}{rec['field']:<{width_f}}  {rec['code']:<{width_c}}  {rec['count']:>7}  "
                f"{text}"
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
    n_warnings: int = 0,
    notes: Iterable[str] = (),
    columns: SourceColumns | None = None,
) -> str:
    from synckit.report import _COLOURS

    cell = 'style="padding:1px 6px;text-align:left;vertical-align:top"'
    head = (
        '<div class="synckit-validation" style="font-family:sans-serif;font-size:13px">'
        f"<div><b>Validation</b>: {n_rows:,} rows "
        f"{_badge(f'{n_valid:,} valid', _COLOURS['created'])} "
        f"{_badge(f'{n_invalid:,} invalid', _COLOURS['invalid'])} "
        f"({html.escape(_counts(n_errors, n_warnings))})</div>"
    )
    for note in notes:
        head += f'<div style="color:#666">note: {html.escape(note)}</div>'
    if columns is not None:
        head += columns.html()
    names = _names(ignored)
    if names:
        head += f'<div style="color:#666">ignored columns (not sent): {html.escape(names)}</div>'
    if summary.empty:
        return head + "</div>"
    rows = "".join(
        "<tr><td {c}>{}</td><td {c}>{}</td><td {r}>{}</td>"
        "<td {c}>{}</td><td {c}>{}</td><td {c}>{}</td></tr>".format(
            html.escape(str(r["field"])),
            _badge(
                str(r["code"]),
                _COLOURS["failed"] if r.get("severity", "error") == "error" else _WARNING,
            ),
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


def _encodable(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_checked(col: pd.Series) -> tuple[pd.Series, np.ndarray | None, pd.Series | None]:
    """:func:`_as_text`, with cells that are not valid Unicode set aside.

    A lone surrogate (``'test@\\ud800'``, left by decoding bytes with
    ``surrogateescape`` or slicing UTF-16 text) cannot be stored as text, sent
    as JSON or written to a report. Such cells come back missing, with a mask
    of them and their text with the surrogates escaped (for the error's
    ``value``). Clean columns pay nothing: the check runs only when the
    conversion fails.
    """
    try:
        return _as_text(col), None, None
    except UnicodeEncodeError:
        pass
    values = col.tolist()
    broken = np.array([not _encodable(v) for v in values], dtype=bool)
    flags = broken.tolist()
    shown = [escape_surrogates(v) if bad else None for v, bad in zip(values, flags, strict=True)]
    kept = pd.Series([None if bad else v for v, bad in zip(values, broken.tolist(), strict=True)],
                     index=col.index, dtype=object)  # fmt: skip
    return _as_text(kept), broken, pd.Series(shown, dtype=object)


def _clean(text: pd.Series) -> pd.Series:
    """Trimmed; empty or blank cells become missing."""
    s = _arrow.blank_to_null(_arrow.trimmed(_arrow.text_array(text)))
    return _arrow.series(s, text.index)


def _lower(s: pd.Series) -> pd.Series:
    """Python's ``str.lower`` (pyarrow's differs on a few letters: final sigma, dotted I)."""
    arr = _arrow.text_array(s)
    low = pc.utf8_lower(arr)
    odd = ~_arrow.bools(pc.fill_null(pc.string_is_ascii(arr), True))
    if odd.any():
        idx = np.flatnonzero(odd)
        fixed = pa.array([str(v).lower() for v in arr.take(idx).to_pylist()], type=low.type)
        low = pc.replace_with_mask(low, pa.array(odd), fixed)
    return _arrow.series(low, s.index)


def _consent(s: pd.Series, allowed: tuple[str, ...]) -> tuple[pd.Series, np.ndarray]:
    """Trimmed, lower-cased; spaces/hyphens read as underscores when that names a choice.
    Also returns which values are one of ``allowed`` (judged once per distinct value)."""
    encoded = _arrow.text_array(s).dictionary_encode()
    lower = _lower(_arrow.series(encoded.dictionary))
    alt = lower.str.replace(r"[ \t\-]+", "_", regex=True)
    use_alt = alt.isin(allowed) & ~lower.isin(allowed)
    fixed = lower.where(~use_alt, alt)
    codes = _arrow.codes(encoded)
    ok = np.asarray(fixed.isin(allowed).to_numpy(dtype=bool), dtype=bool)
    chosen = np.zeros(len(codes), dtype=bool)
    chosen[codes >= 0] = ok[codes[codes >= 0]]
    return _arrow.series(_arrow.text_array(fixed).take(encoded.indices), s.index), chosen


# ---------------------------------------------------------------------------
# validation


@dataclass
class _Rule:
    mask: np.ndarray
    field: str
    code: str
    value: pd.Series | None
    message: str | np.ndarray | None = None
    severity: str = "error"  # "warning": reported, the row is still sent


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
    defaults: Mapping[str, str] | None = None,
    values: Mapping[str, Mapping[str, str | None]] | None = None,
    invalid_fields: InvalidFields = "reject",
    region_column: str | None = COUNTRY,
) -> Validation:
    """Check every row against the contract's field rules; normalise what is unambiguous.

    A pure function (no I/O, no global state): safe per chunk or partition.
    A Dask DataFrame gets the same answer as a lazy Validation of Dask frames
    (see :func:`synckit.dask.validate`).

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
        (['+14155552671'], ['phone_other_region'])
    """
    if not isinstance(df, pd.DataFrame):
        if type(df).__module__.split(".")[0] == "dask":  # without importing Dask for pandas
            from synckit import dask as _dask

            return _dask.validate(
                df,
                default_region=default_region,
                sms_countries=sms_countries,
                duplicates=duplicates,
                defaults=defaults,
                values=values,
                invalid_fields=invalid_fields,
                region_column=region_column,
            )
        raise ConfigError(f"validate() takes a pandas or Dask DataFrame, not a {type(df).__name__}")
    check_duplicates(duplicates)
    default_region = _region(default_region)
    countries = rules.DEFAULT_SMS_COUNTRIES if sms_countries is None else frozenset(sms_countries)
    fill, value_maps = _steps.check_options(
        defaults=defaults, values=values, invalid_fields=invalid_fields, region_column=region_column
    )
    shown_columns = _shown_columns(df)
    df = _steps.with_defaults(df, fill)
    rows = row_numbers(df)
    n = len(df)
    present_fields = [f for f in rules.FIELDS if f in df.columns]
    twice = [f for f in present_fields if list(df.columns).count(f) > 1]
    if twice:
        raise ConfigError(f"column {twice[0]!r} appears more than once")
    prefixed = _prefixed(df)
    ignored = tuple(
        str(c)
        for c in df.columns
        if c not in rules.FIELDS and c not in prefixed and c != region_column
    )
    if prefixed and "custom_fields" not in present_fields:
        present_fields.append("custom_fields")

    raw: dict[str, pd.Series] = {}
    norm: dict[str, pd.Series] = {}
    rules_out: list[_Rule] = []
    unreadable: dict[str, np.ndarray] = {}
    for fld in present_fields:
        if fld == "custom_fields":
            continue
        text, broken, shown = _text_checked(df[fld])
        text = text.reset_index(drop=True)
        raw[fld] = text
        norm[fld] = _clean(text)
        if broken is not None:
            unreadable[fld] = broken
            message = _diagnostics.MESSAGES["invalid_text"]
            rules_out.append(_Rule(broken, fld, "invalid_text", shown, message))
        if fld in value_maps:
            norm[fld] = _steps.map_values(norm[fld], value_maps[fld])

    false = np.zeros(n, dtype=bool)

    # each row's phone region, from its country cell where the frame has one
    regions_by_row: np.ndarray | None = None
    unknown_country = false
    if region_column is not None and region_column in df.columns:
        cells = _clean(_text_checked(df[region_column])[0].reset_index(drop=True))
        cells = _steps.map_values(cells, value_maps.get(region_column, {}))
        regions_by_row, unknown_country = _steps.row_regions(cells)
        if not any(r is not None for r in regions_by_row):
            regions_by_row = None  # no row names a region: one pass, as without the column

    def present(fld: str) -> np.ndarray:
        if fld not in norm:
            return false
        return np.array(norm[fld].notna().to_numpy(dtype=bool))

    # identifiers
    has_email, has_phone = present("email"), present("phone_number")
    # an identifier cell that is there but unreadable is reported as such, not as missing
    given_email = has_email | unreadable.get("email", false)
    given_phone = has_phone | unreadable.get("phone_number", false)
    rules_out.append(_Rule(~given_email & ~given_phone, rules.REQUIRED_FIELD, "required", None))

    email_ok = np.ones(n, dtype=bool)
    lowered: pd.Series | None = None
    email_codes = np.zeros(0, dtype=np.int64)
    if "email" in norm:
        # several addresses in one cell (Google's " ::: "): the first valid one is sent
        norm["email"], cut, said = _steps.first_valid(
            norm["email"], "email", lambda parts, _rows: _email.valid_emails(_lower(parts))
        )
        rules_out.append(_multiple("email", cut, said, raw["email"]))
        lowered = _lower(norm["email"])
        norm["email"] = lowered
        encoded = _arrow.text_array(lowered).dictionary_encode()
        verdict = _email.valid_emails(_arrow.series(encoded.dictionary))
        email_codes = _arrow.codes(encoded)
        good = np.zeros(n, dtype=bool)
        good[email_codes >= 0] = verdict[email_codes[email_codes >= 0]]
        email_ok = ~has_email | good
        rules_out.append(_Rule(~email_ok, "email", "invalid_email", raw["email"]))

    region: pd.Series | None = None  # each row's phone region, where its number is valid
    n_default_region = 0
    if "phone_number" in norm:

        def judge(parts: pd.Series, owners: np.ndarray) -> np.ndarray:
            own = None if regions_by_row is None else regions_by_row[owners]
            found = _phone.normalize_by_region(parts, default_region, own)[0]
            return np.array(found.notna().to_numpy(dtype=bool))

        norm["phone_number"], cut, said = _steps.first_valid(
            norm["phone_number"], "phone_number", judge
        )
        rules_out.append(_multiple("phone_number", cut, said, raw["phone_number"]))
        checked = _phone.check_phones(norm["phone_number"], default_region, regions_by_row)
        e164, region = checked.e164, checked.region
        e164_ok = np.array(e164.notna().to_numpy(dtype=bool)) & (checked.code == None)  # noqa: E711
        norm["phone_number"] = _arrow.series(
            pc.if_else(
                pa.array(e164_ok),
                _arrow.text_array(e164),
                _arrow.text_array(norm["phone_number"]),
            )
        )
        n_default_region = int(checked.relied.sum())
        coded = np.flatnonzero(checked.code != None)  # noqa: E711 - elementwise
        for code in _phone.CODES:
            mask = np.zeros(n, dtype=bool)
            mask[coded] = checked.code[coded] == code
            told = None if code == "invalid_phone" else checked.message
            rules_out.append(_Rule(mask, "phone_number", code, raw["phone_number"], told))
        if unknown_country.any():
            doubtful = unknown_country & has_phone
            rules_out.append(
                _unknown_country(df, region_column, doubtful, raw["phone_number"], default_region)
            )

    for fld, allowed in rules.CHOICES.items():
        if fld not in norm:
            continue
        norm[fld], chosen = _consent(norm[fld], allowed)
        bad = present(fld) & ~chosen
        rules_out.append(_Rule(bad, fld, "invalid_choice", raw[fld]))

    if "sms_consent" in norm:
        # as rules.check_contact: any value set (even outside the enum) needs a valid
        # number from an SMS country; a missing or invalid number has no region
        in_country = np.zeros(n, dtype=bool)
        if region is not None:
            in_country = np.array(region.isin(list(countries)).to_numpy(dtype=bool)) & has_phone
        bad = present("sms_consent") & ~in_country
        rules_out.append(_Rule(bad, "sms_consent", "sms_country", raw["sms_consent"]))

    for fld in ("first_name", "last_name"):
        if fld not in norm:
            continue
        lengths = norm[fld].str.len().to_numpy(dtype=np.int64, na_value=0)
        rules_out.append(_Rule(lengths > rules.NAME_MAX_LENGTH, fld, "too_long", raw[fld]))

    custom: _Custom | None = None
    if "custom_fields" in present_fields:
        custom = _check_custom(df, prefixed)
        rules_out.append(_Rule(custom.bad, "custom_fields", "nested_custom_fields", custom.given))

    if invalid_fields == "drop":
        dropped = _drop_invalid_fields(rules_out, {f: present(f) for f in norm}, n, raw)
        for fld, mask in dropped.items():
            if fld == "custom_fields" and custom is not None:
                # the row goes without its custom fields: every custom column is unset
                if custom.json is not None:
                    custom.json[mask] = None
                for column, cells in custom.columns.items():
                    custom.columns[column] = cells.mask(pd.Series(mask, index=cells.index))
            elif fld in norm:
                norm[fld] = norm[fld].where(~pd.Series(mask))

    failed = np.zeros(n, dtype=bool)
    for rule in rules_out:
        if rule.severity == "error":
            failed |= rule.mask

    if duplicates != "keep" and ("email" in norm or "phone_number" in norm):
        candidates = ~failed
        keep = pa.array(candidates)
        key_codes: list[np.ndarray | None] = []
        for fld in ("email", "phone_number"):
            if fld not in norm:
                key_codes.append(None)
            elif fld == "email" and norm[fld] is lowered:  # hashed for the email check
                key_codes.append(email_codes[candidates])
            else:
                key_codes.append(_arrow.codes(_arrow.text_array(norm[fld]).filter(keep)))
        dup = _duplicates(rows[candidates], key_codes[0], key_codes[1], None, duplicates)
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
            assert custom is not None
            if custom.json is not None:
                valid_cols[fld] = pd.Series(custom.json[ok], dtype=object)
            for column, cells in custom.columns.items():
                valid_cols[column] = cells[ok].reset_index(drop=True)
        else:
            # object cells, None where missing (what to_payloads and callers expect)
            kept = _arrow.text_array(norm[fld]).filter(pa.array(ok))
            valid_cols[fld] = pd.Series(_arrow.objects(kept), dtype=object)
    valid = pd.DataFrame(valid_cols, columns=list(valid_cols))
    valid.index = pd.Index(rows[ok], name="row")
    invalid = df.iloc[np.flatnonzero(failed)].copy()
    invalid.index = pd.Index(rows[failed], name="row")
    for fld, broken in unreadable.items():
        # the cells as given, but with the surrogates escaped: text that a report,
        # a CSV or pyarrow can hold (the unescaped cell crashes each of them)
        sel = broken[failed]
        as_given = invalid[fld].astype(object)
        as_given[sel] = [escape_surrogates(v) for v in as_given[sel].tolist()]
        invalid[fld] = as_given
    return Validation(
        valid=valid,
        errors=errors,
        invalid=invalid,
        ignored_columns=ignored,
        columns=shown_columns,
        n_default_region=n_default_region,
        default_region=default_region,
    )


def _multiple(fld: str, cut: np.ndarray, said: np.ndarray, raw: pd.Series) -> _Rule:
    """The warning for cells cut to their first valid value (:func:`_steps.first_valid`)."""
    return _Rule(cut, fld, "multiple_values", raw, said, severity="warning")


def _unknown_country(
    df: pd.DataFrame,
    column: str | None,
    mask: np.ndarray,
    raw: pd.Series,
    default_region: str | None,
) -> _Rule:
    """A warning for country cells naming no region, on rows whose national number needed one."""
    assert column is not None
    phones = _clean(raw)  # as written: the E.164 text has lost the national form
    mask = mask.copy()
    for i in np.flatnonzero(mask).tolist():
        # a number written with its country code does not need the row's country
        mask[i] = not _phone._explicit(str(phones.iat[i]), default_region)
    read_as = f"default_region {default_region}" if default_region else "no region"
    message = (
        f"names no country synckit knows, so the phone number was read with {read_as}: write "
        "an ISO code (GB) or the country's name in English, German, French or Spanish, or "
        f"map it with values={{{column!r}: {{...}}}}"
    )
    cells = pd.Series(df[column].tolist(), dtype=object)
    return _Rule(mask, column, "unknown_country", cells, message, severity="warning")


def _drop_invalid_fields(
    rules_out: list[_Rule], present: Mapping[str, np.ndarray], n: int, raw: Mapping[str, pd.Series]
) -> dict[str, np.ndarray]:
    """``invalid_fields="drop"``: turn droppable errors into warnings (in place).

    Returns, per field, the rows whose cell is left out. A rule's rows that
    are dropped become a warning copy of it, placed right after it; the rest
    stay errors. A consent left out only because its field was gets a
    ``field_dropped`` warning of its own.
    """
    bad: dict[str, np.ndarray] = {}
    for rule in rules_out:
        if rule.severity == "error" and isinstance(rule.field, str) and rule.field in rules.FIELDS:
            bad[rule.field] = bad.get(rule.field, np.zeros(n, dtype=bool)) | rule.mask
    drop = _steps.drop_plan(bad, present, n)
    out: list[_Rule] = []
    for rule in rules_out:
        out.append(rule)
        mask = drop.get(rule.field) if isinstance(rule.field, str) else None
        if rule.severity != "error" or mask is None or not (rule.mask & mask).any():
            continue
        sent = rule.mask & mask
        rule.mask = rule.mask & ~mask
        if rule.message is None:
            text: str | np.ndarray = rules.message(rule.code, rule.field)
        else:
            text = rule.message
        out.append(
            _Rule(sent, rule.field, rule.code, rule.value, _dropped_text(text),
                  severity="warning")
        )  # fmt: skip
    for consent, base in _steps.DEPENDS_ON.items():
        alone = drop.get(consent, np.zeros(n, dtype=bool)) & ~bad.get(consent, np.zeros(n, bool))
        if alone.any():
            message = (
                f"not sent: {base} was left out (invalid), and a consent is never sent "
                "without the field it is about"
            )
            value = raw.get(consent)
            out.append(_Rule(alone, consent, "field_dropped", value, message, severity="warning"))
    rules_out[:] = out
    return drop


def _dropped_text(message: str | np.ndarray) -> str | np.ndarray:
    suffix = "; the row is sent without this field (invalid_fields='drop')"
    if isinstance(message, np.ndarray):
        return np.array([None if m is None else str(m) + suffix for m in message], dtype=object)
    return message + suffix


@dataclass
class _Custom:
    """The custom fields of a frame, column by column (no dict per row).

    ``json``: the parsed ``custom_fields`` cell of each row (one object per
    distinct text; None where missing), or None without that column.
    ``columns``: each ``custom.<key>`` column, normalised (trimmed text or
    JSON numbers and booleans; missing where the key is left out).
    ``bad``: rows whose merged object breaks the contract's rules; ``given``
    holds, for those rows only, the value the error reports.
    """

    json: np.ndarray | None
    columns: dict[str, pd.Series]
    bad: np.ndarray
    given: pd.Series


def _distinct(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, cells)`` with ``values[i]`` equal to ``cells[codes[i]]``, each text once.

    Only text (and missing) cells are grouped: ``1``, ``1.0`` and ``True``
    compare equal in Python but are different JSON values, and dicts cannot
    be grouped at all, so a column holding anything else keeps one entry per
    cell.
    """
    values = values.reset_index(drop=True)
    if isinstance(values.dtype, pd.StringDtype) or (
        values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) == "string"
    ):
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        cells = np.empty(len(uniques) + 1, dtype=object)
        cells[: len(uniques)] = np.asarray(uniques, dtype=object)
        cells[-1] = None  # code -1: missing
        return np.where(codes < 0, len(uniques), codes), cells
    cells = np.empty(len(values), dtype=object)
    cells[:] = values.tolist()
    return np.arange(len(values)), cells


def _each(cells: np.ndarray, func: Callable[[Any], Any], dtype: Any = object) -> np.ndarray:
    out = np.empty(len(cells), dtype=dtype)
    out[:] = [func(v) for v in cells.tolist()]
    return out


def _custom_values(col: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """A ``custom.<key>`` column normalised as :func:`_custom_scalar` does, and where it is set.

    Text is trimmed in one vectorised pass; numbers and booleans keep their
    dtype (``tolist`` gives Python ints, floats and bools); anything else is
    converted once per distinct text, or cell by cell.
    """
    col = col.reset_index(drop=True)
    dtype = col.dtype
    if isinstance(dtype, pd.StringDtype):
        text = _arrow.trimmed(_arrow.text_array(col))
        present = _arrow.bools(pc.not_equal(text, ""))
        return _arrow.series(
            pc.if_else(pa.array(present), text, pa.scalar(None, text.type))
        ), present
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        return col, np.array(col.notna().to_numpy(dtype=bool))
    if pd.api.types.is_float_dtype(dtype):
        values = col.astype("float64")
        return values, np.array(values.notna().to_numpy(dtype=bool))
    codes, cells = _distinct(col)
    out = _each(cells, custom_scalar)[codes]
    present = np.array([v is not None for v in out.tolist()], dtype=bool)
    return pd.Series(out, dtype=object), present


def _flat(value: Any) -> bool:
    """A JSON cell that passes on its own: missing, or a flat object within the limits."""
    return value is None or rules.check_custom_fields(value)


def _check_custom(df: pd.DataFrame, prefixed: list[str]) -> _Custom:
    """The ``nested_custom_fields`` rule for every row, without building a dict per row.

    A row's object is its JSON cell with its ``custom.<key>`` values laid over
    it (as :func:`to_payloads` builds it). Columns are checked as columns:
    each distinct JSON text parsed and checked once, key names once per
    column, values by dtype, the number of keys by counting. Rows that may
    break a rule (rare) get the exact check on their merged object, which
    also gives the value the error reports.
    """
    n = len(df)
    maybe_bad = np.zeros(n, dtype=bool)
    n_keys = np.zeros(n, dtype=np.int64)
    json_cells: np.ndarray | None = None
    if "custom_fields" in df.columns:
        codes, texts = _distinct(df["custom_fields"])
        parsed = _each(texts, parse_custom_cell)
        json_cells = parsed[codes]
        maybe_bad |= ~_each(parsed, _flat, bool)[codes]
        n_keys += _each(parsed, _n_keys, np.int64)[codes]
    columns: dict[str, pd.Series] = {}
    keys: dict[str, np.ndarray] = {}
    for column in prefixed:
        key = column[len(_PREFIX) :].strip()
        values, present = _custom_values(df[column])
        columns[column] = values
        if not 1 <= len(key) <= rules.CUSTOM_FIELD_KEY_MAX_LENGTH:
            maybe_bad |= present
        if values.dtype == object:
            finite = np.array([_finite_or_missing(v) for v in values.tolist()], dtype=bool)
            maybe_bad |= present & ~finite
        elif pd.api.types.is_float_dtype(values.dtype):
            maybe_bad |= present & ~np.isfinite(values.to_numpy(dtype="float64", na_value=0.0))
        keys[key] = keys.get(key, np.zeros(n, dtype=bool)) | present
    for key, present in keys.items():
        new_key = present
        if json_cells is not None:
            has = _each(parsed, functools.partial(_has_key, key=key), bool)[codes]
            new_key = present & ~has
        n_keys += new_key
    maybe_bad |= n_keys > rules.CUSTOM_FIELDS_MAX_KEYS

    bad = np.zeros(n, dtype=bool)
    given = np.full(n, None, dtype=object)
    suspects = np.flatnonzero(maybe_bad).tolist()
    raw_json = None
    if suspects and json_cells is not None and not prefixed:
        raw_json = df["custom_fields"].tolist()  # the error shows the cell as given
    for i in suspects:
        cell = None if json_cells is None else json_cells[i]
        for column in prefixed:
            item = custom_scalar(columns[column].iat[i])
            if item is None:
                continue
            key = column[len(_PREFIX) :].strip()
            if cell is None:
                cell = {key: item}
            elif isinstance(cell, dict):
                cell = {**cell, key: item}  # a copy: parsed cells are shared by equal texts
        if cell is not None and not rules.check_custom_fields(cell):
            bad[i] = True
            given[i] = raw_json[i] if raw_json is not None else cell
    return _Custom(json_cells, columns, bad, pd.Series(given, dtype=object))


def _n_keys(value: Any) -> int:
    return len(value) if isinstance(value, dict) else 0


def _has_key(value: Any, key: str) -> bool:
    return isinstance(value, dict) and key in value


def _finite_or_missing(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value) or math.isnan(value)


def _dup_values(fields: np.ndarray, raw: Mapping[str, pd.Series]) -> pd.Series:
    out = np.full(len(fields), None, dtype=object)
    for fld in ("email", "phone_number"):
        if fld in raw:
            sel = fields == fld
            out[sel] = _objects(raw[fld])[sel]
    return pd.Series(out, dtype=object)


def _build_errors(rules_out: list[_Rule], rows: np.ndarray) -> pd.DataFrame:
    columns: dict[str, list[np.ndarray]] = {c: [] for c in (*ERROR_COLUMNS, "_order")}
    all_text = True
    for order, rule in enumerate(rules_out):
        pos = np.flatnonzero(rule.mask)
        if not len(pos):
            continue
        fld = rule.field
        field_col = fld[pos] if isinstance(fld, np.ndarray) else _arrow.filled(len(pos), fld)
        if rule.message is None:
            message = rules.message(rule.code, fld if isinstance(fld, str) else None)
            message_col = _arrow.filled(len(pos), message)
        elif isinstance(rule.message, np.ndarray):
            message_col = rule.message[pos]
        else:
            message_col = _arrow.filled(len(pos), rule.message)
        if rule.value is None:
            value_col = np.full(len(pos), None, dtype=object)
        else:
            value_col = _objects(rule.value.iloc[pos])  # only the cells reported
        # the value column is text when every rule's cells are text, as pandas
        # infers it (missing cells of a text rule are NaN there, None elsewhere)
        text = pd.api.types.infer_dtype(value_col, skipna=True) == "string"
        if text:
            value_col[pd.isna(value_col)] = np.nan
        all_text = all_text and text
        columns["row"].append(pos)  # positions for now; row numbers after sorting
        columns["field"].append(field_col)
        columns["code"].append(_arrow.filled(len(pos), rule.code))
        columns["message"].append(message_col)
        columns["value"].append(value_col)
        columns["severity"].append(_arrow.filled(len(pos), rule.severity))
        columns["_order"].append(np.full(len(pos), order, dtype=np.int64))
    if not columns["row"]:
        return _empty_errors()
    pos = np.concatenate(columns["row"])
    order_of = np.concatenate(columns["_order"])
    warning = np.concatenate(columns["severity"]) != "error"
    # a row's errors before its warnings: the first line of a row says why it was rejected
    sort = np.lexsort((order_of, warning, pos))
    out: dict[str, pd.Series] = {"row": pd.Series(rows[pos[sort]].astype("int64"))}
    for name in ERROR_COLUMNS[1:]:
        dtype = "str" if name == "value" and all_text else object
        out[name] = pd.Series(np.concatenate(columns[name])[sort], dtype=dtype)
    return pd.DataFrame(out, columns=list(ERROR_COLUMNS))


# ---------------------------------------------------------------------------
# duplicates


def find_duplicates(keys: pd.DataFrame, *, policy: Duplicates = "last") -> pd.DataFrame:
    """Rows sharing a normalised email or phone (transitively) with another row.

    ``keys`` has columns ``row``, ``email``, ``phone_number`` (normalised;
    missing as NA/None), one line per candidate row, in file order, and
    optionally ``source`` (the file: a row of another file than the rejected
    one is named ``row 4 of b.csv``). Returns
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
    # factorize the key columns as they are (no Python strings: this runs on
    # every valid row of a million-row file at the end of ``validate_file``)
    email_codes = _key_codes(keys["email"]) if "email" in keys else None
    phone_codes = _key_codes(keys["phone_number"]) if "phone_number" in keys else None
    sources = keys["source"].to_numpy(dtype=object) if "source" in keys else None
    return _duplicates(keys["row"].to_numpy(), email_codes, phone_codes, sources, policy)


def _duplicates(
    rows: np.ndarray,
    email_codes: np.ndarray | None,
    phone_codes: np.ndarray | None,
    sources: np.ndarray | None,
    policy: Duplicates,
) -> pd.DataFrame:
    """:func:`find_duplicates` on the keys' codes (equal values, equal codes; -1 missing)."""
    out_cols = ["_pos", "row", "field", "message"]
    empty = pd.DataFrame({c: pd.Series([], dtype=object) for c in out_cols})
    n = len(rows)
    if policy == "keep" or n < 2:
        return empty
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

    def row_name(p: int, of: int) -> str:
        if sources is None or sources[p] == sources[of]:
            return f"row {rows[p]}"
        return f"row {rows[p]} of {sources[p]}"

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
                    how = (
                        f"same {name} as {row_name(near[0], pos)}, "
                        f"which is linked to {row_name(kept, pos)}"
                    )
                    break
        fields.append(fld)
        messages.append(f"duplicate of {row_name(kept, pos)} ({how})")
    return pd.DataFrame(
        {"_pos": rejected, "row": rows[rejected], "field": fields, "message": messages}
    )


def _key_codes(values: pd.Series) -> np.ndarray:
    """``pd.factorize`` codes of a key column; Arrow's hash table for Arrow text."""
    if getattr(values.dtype, "storage", None) == "pyarrow":
        return _arrow.codes(_arrow.text_array(values))
    return pd.factorize(values)[0]


# ---------------------------------------------------------------------------
# payloads


def to_payloads(valid: pd.DataFrame) -> list[tuple[int, dict[str, Any]]]:
    """(spreadsheet row, JSON body) for each row of ``Validation.valid``.

    Missing or empty cells are left out of the body (never sent as null),
    ``custom_fields`` is the row's JSON object (the ``custom_fields``
    column) with its ``custom.<key>`` values laid over it, included only when
    it has keys, and only contract fields are sent. The bodies are built
    here, when they are sent, and nowhere else: validation keeps custom
    fields as columns.

    Example:
        >>> v = validate(pd.DataFrame({"email": ["a@example.com"], "first_name": [None],
        ...                            "custom.plan": [" pro "]}))
        >>> to_payloads(v.valid)
        [(2, {'email': 'a@example.com', 'custom_fields': {'plan': 'pro'}})]
    """
    with _gc_paused():
        return _payloads(valid)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while many small dicts are made, then back as it was.

    Bodies hold no reference cycles, so the collections their allocations
    trigger find nothing; with the rows already in memory each one scans
    them all: 40% of to_payloads' time on 170k bodies (0.91 -> 0.55 s CPU).
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _payloads(valid: pd.DataFrame) -> list[tuple[int, dict[str, Any]]]:
    prefixed = _prefixed(valid)
    fields = [f for f in rules.FIELDS if f in valid.columns or (f == "custom_fields" and prefixed)]
    rows = [int(r) for r in valid.index.tolist()]
    columns: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for fld in fields:
        if fld == "custom_fields":
            values = _custom_objects(valid, prefixed)
            has = np.array([isinstance(v, dict) and bool(v) for v in values.tolist()], dtype=bool)
        else:
            values = _objects(valid[fld])
            has = np.asarray(pd.notna(values) & (values != ""), dtype=bool)
        columns.append(values)
        masks.append(has)
    return list(zip(rows, _dicts(fields, columns, masks, len(rows)), strict=True))


def _prefixed(frame: pd.DataFrame) -> list[str]:
    """The frame's ``custom.<key>`` columns, in order."""
    return [
        c
        for c in frame.columns
        if isinstance(c, str) and c.startswith(_PREFIX) and c.strip() != _PREFIX
    ]


def _dicts(
    keys: list[str], columns: list[np.ndarray], masks: list[np.ndarray], n: int
) -> list[dict[str, Any]]:
    """One dict per row: ``keys[j]: columns[j][i]`` wherever ``masks[j][i]``; later keys win."""
    if len(keys) > 62:  # more keys than bits in an int64 mask: the plain way
        return [
            {k: col[i] for k, col, has in zip(keys, columns, masks, strict=True) if has[i]}
            for i in range(n)
        ]
    present = np.zeros(n, dtype=np.int64)  # bit j set: key j has a value
    for bit, has in enumerate(masks):
        present |= has.astype(np.int64) << bit
    out: list[dict[str, Any]] = [{}] * n
    # rows with the same set of present keys share one key list: no per-cell test
    for mask in np.unique(present).tolist():
        sel = np.flatnonzero(present == mask)
        names = [k for bit, k in enumerate(keys) if mask >> bit & 1]
        cols = [columns[bit][sel].tolist() for bit in range(len(keys)) if mask >> bit & 1]
        made = [dict(zip(names, cells, strict=True)) for cells in zip(*cols, strict=True)]
        if not cols:
            made = [{} for _ in sel]
        for i, body in zip(sel.tolist(), made, strict=True):
            out[i] = body
    return out


def _custom_objects(valid: pd.DataFrame, prefixed: list[str]) -> np.ndarray:
    """Each row's ``custom_fields`` object: its JSON object, then its ``custom.<key>`` values."""
    n = len(valid)
    out = np.full(n, None, dtype=object)
    if "custom_fields" in valid.columns:
        # a dict of its own per row; JSON text (a frame that went through text) parsed here
        out[:] = [
            dict(v) if isinstance(v, dict) else parse_custom_cell(v)
            for v in valid["custom_fields"].tolist()
        ]
    if not prefixed:
        return out
    keys = [c[len(_PREFIX) :].strip() for c in prefixed]
    values = [_objects(valid[c]) for c in prefixed]
    masks = [np.asarray(pd.notna(col), dtype=bool) for col in values]
    laid = np.empty(n, dtype=object)
    laid[:] = _dicts(keys, values, masks, n)
    some = np.logical_or.reduce(masks)
    bare = some & pd.isna(out)  # no JSON object: the columns' dict is the object
    out[bare] = laid[bare]
    for i in np.flatnonzero(some & ~bare).tolist():
        if isinstance(out[i], dict):
            out[i].update(laid[i])  # this row's own copy
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
    n_warnings: int = 0
    n_default_region: int = 0
    default_region: str | None = None
    columns: SourceColumns | None = None

    @property
    def ok(self) -> bool:
        return self.n_invalid == 0

    def _notes(self) -> list[str]:
        note = _region_note(self.n_default_region, self.default_region)
        return [note] if note else []

    def __str__(self) -> str:
        text = _text_report(
            self.n_rows,
            self.n_valid,
            self.n_invalid,
            self.n_errors,
            self.summary,
            n_warnings=self.n_warnings,
            notes=self._notes(),
        )
        if self.columns is not None:
            text += "\n" + self.columns.text()
        return text

    def _repr_html_(self) -> str:
        return _html_report(
            self.n_rows,
            self.n_valid,
            self.n_invalid,
            self.n_errors,
            self.summary,
            ignored=self.ignored_columns,
            n_warnings=self.n_warnings,
            notes=self._notes(),
            columns=self.columns,
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
    defaults: Mapping[str, str] | None = None,
    values: Mapping[str, Mapping[str, str | None]] | None = None,
    invalid_fields: InvalidFields = "reject",
    region_column: str | None = COUNTRY,
) -> FileValidation:
    """Validate a CSV in chunks, in bounded memory; optionally write every error to CSV.

    Duplicates are found across the whole file (the normalised email and
    phone of valid rows are kept, not the rows). Error rows are written
    chunk by chunk, then the ``duplicate_in_file`` ones at the end. The other
    options are :func:`validate`'s, applied to every chunk.

    Example:
        >>> import io
        >>> r = validate_file(io.StringIO("email\\na@example.com\\nbad\\n"))
        >>> r.n_valid, r.n_invalid
        (1, 1)
    """
    from synckit.io import read_csv

    default_region = _region(default_region)  # a bad option fails before any reading
    _steps.check_options(
        defaults=defaults, values=values, invalid_fields=invalid_fields, region_column=region_column
    )
    result = FileValidation(
        source=str(getattr(source, "name", source)), default_region=default_region
    )
    chunks = read_csv(source, columns=columns, chunksize=chunksize)
    assert isinstance(chunks, Iterator)
    keys: list[pd.DataFrame] = []
    summaries: list[pd.DataFrame] = []
    sample_parts: list[pd.DataFrame] = []
    sampled = 0
    export: CsvExport | None = None
    stack = contextlib.ExitStack()
    if errors_path:
        try:
            # Private, atomic and formula-escaped, like every CSV synckit writes.
            export = stack.enter_context(csv_export(errors_path, columns=ERROR_COLUMNS))
        except OSError as exc:
            raise ConfigError(f"cannot write errors to {errors_path}: {exc.strerror}") from exc

    def emit(errors: pd.DataFrame) -> None:
        nonlocal sampled
        if errors.empty:
            return
        warned = int((errors["severity"] == "warning").sum())
        result.n_errors += len(errors) - warned
        summaries.append(
            errors[["field", "code", "row", "message", "value", "severity"]].head(sample)
        )
        counts.append(errors.groupby(["field", "code", "severity"], sort=False).size())
        result.n_warnings += warned
        if sampled < sample:
            sample_parts.append(errors.head(sample - sampled))
            sampled += min(len(errors), sample - sampled)
        if export is not None:
            # custom_fields cells go out as JSON, as the sheet held them (not Python's repr)
            export.write(errors)

    counts: list[pd.Series] = []
    with stack:
        for chunk in chunks:
            if not result.ignored_columns and not result.unmatched_columns:
                result.ignored_columns = list(chunk.attrs.get("ignored_columns", []))
                result.unmatched_columns = list(chunk.attrs.get("unmatched_columns", []))
            check = validate(
                chunk,
                default_region=default_region,
                sms_countries=sms_countries,
                duplicates="keep",
                defaults=defaults,
                values=values,
                invalid_fields=invalid_fields,
                region_column=region_column,
            )
            result.n_default_region += check.n_default_region
            if result.columns is None:
                result.columns = check.columns
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
                dup_values = []
                for pos, fld in zip(dup["_pos"].tolist(), dup["field"].tolist(), strict=True):
                    dup_values.append(all_keys[fld].iat[pos] if fld in all_keys else None)
                errors = pd.DataFrame(
                    {
                        "row": dup["row"].astype("int64"),
                        "field": dup["field"],
                        "code": "duplicate_in_file",
                        "message": dup["message"],
                        "value": dup_values,
                        "severity": "error",
                    }
                )
                emit(errors)
                result.n_valid -= len(dup)
                result.n_invalid += len(dup)
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
    total = pd.concat(list(counts)).groupby(level=[0, 1, 2]).sum()
    keys = zip(examples["field"], examples["code"], examples["severity"], strict=True)
    examples["count"] = [int(total.get(key, 0)) for key in keys]
    return _ordered(examples)
