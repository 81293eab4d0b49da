"""Read contact CSVs into pandas as text, with spreadsheet row numbers.

:func:`read_csv` is the front door: it guesses the encoding and delimiter,
reads every cell as text (``07700900123`` stays ``07700900123``), maps
source headers to contract fields and custom fields (``custom.<key>``
columns; a JSON ``custom_fields`` column), and indexes rows by the number a
spreadsheet shows (header = 1). Plain UTF-8 files are parsed by pyarrow
(several times faster); everything else, and any file pyarrow finds
irregular, by pandas' parser, with the same frames as the result.

Example:
    >>> import io
    >>> df = read_csv(io.StringIO("E-mail Address,Mobile\\nada@example.com,07700 900123\\n"),
    ...               columns={"E-mail Address": "email", "Mobile": "phone_number"})
    >>> df.index.tolist(), df.loc[2, "phone_number"]
    ([2], '07700 900123')
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import pandas as pd

from synckit import _arrow, _headers, _vcard, rules
from synckit import accessor as _accessor  # noqa: F401  (registers df.synckit)
from synckit.errors import ConfigError, InputError

try:  # the fast reader for plain UTF-8 files (pyarrow's multi-threaded CSV parser)
    import pyarrow as _pa
    import pyarrow.csv as _pacsv
except ImportError:  # pragma: no cover - without pyarrow every file takes the careful path
    _pa = None
    _pacsv = None

log = logging.getLogger("synckit.io")

__all__ = ["COUNTRY", "SAMPLE_COLUMNS", "ColumnPlan", "plan_columns", "read_csv"]

#: The header mapping of ``sample_data/contacts.csv`` (used by ``synckit demo`` and the notebooks).
SAMPLE_COLUMNS: Final[dict[str, str]] = {
    "E-mail Address": "email",
    "Mobile": "phone_number",
    "First Name": "first_name",
    "Last Name": "last_name",
    "Newsletter": "email_consent",
    "SMS Opt-In": "sms_consent",
}

#: How a frame names a custom field's column (what ``validate`` reads as ``custom_fields`` keys).
CUSTOM_PREFIX: Final = "custom."
_SAMPLE_BYTES: Final = 1 << 16
_SCAN_BLOCK: Final = 1 << 20
_DELIMITERS: Final = (",", ";", "\t")
_PANDAS_LINE = re.compile(r"line (\d+)")


#: Not a contract field: the column giving each row's region for phone numbers
#: (an ISO code or a country name). Read, never sent.
COUNTRY: Final = _headers.COUNTRY


@dataclass(frozen=True)
class ColumnPlan:
    """Where each contract field comes from in a file's header.

    ``fields`` maps contract field (or ``country``) -> source header,
    ``custom`` maps source header -> custom_fields key, ``json_column`` is a
    source header holding JSON objects, ``ignored`` lists headers that are not
    sent and ``unmatched`` the keys of ``columns`` that no header matched.

    Recognised export layouts add: ``fallbacks`` (field -> further headers,
    read in order where the first is empty: ``Home Phone`` after ``Mobile
    Phone``), ``labels`` (header -> the header naming each row's kind of
    value, as Google's ``Phone 1 - Label``), ``recognised`` (headers matched by
    their export spelling rather than by name or ``columns``), ``layout`` (the
    export named by its headers) and ``suggestions`` (unused header ->
    ``(field, note)``: "did you mean").
    """

    fields: dict[str, str] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)
    json_column: str | None = None
    ignored: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    fallbacks: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    recognised: list[str] = field(default_factory=list)
    layout: str | None = None
    suggestions: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return bool(set(self.fields) & set(rules.FIELDS) or self.custom or self.json_column)

    def sources(self, target: str) -> list[str]:
        """The headers feeding ``target``, in the order they are read."""
        first = self.fields.get(target)
        return [] if first is None else [first, *self.fallbacks.get(target, [])]

    def mapping(self) -> dict[str, list[str]]:
        """Target -> headers feeding it (contract order, then ``country``)."""
        order = [*rules.FIELDS, COUNTRY]
        return {t: self.sources(t) for t in order if t in self.fields}


def _fold(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def plan_columns(
    headers: list[str],
    columns: Mapping[str, str | None] | None = None,
    *,
    custom_prefix: str = "custom.",
    source: str | None = None,
    recognise: bool = True,
) -> ColumnPlan:
    """Decide which header feeds which contract field.

    Explicit ``columns`` win (matched exactly, then trimmed and
    case-insensitively); then headers equal to a contract field name; then
    headers starting with ``custom_prefix``; then, with ``recognise=True``,
    the spellings of common exports and languages (:mod:`synckit._headers`:
    Google Contacts, Outlook, Mailchimp, HubSpot, Salesforce, Shopify,
    vCard; ``phone``, ``Handy``, ``courriel``...). Several recognised columns
    for one field are read in rank order, each filling in where the ones
    before are empty (mobile before other phones); a field given in
    ``columns`` takes no recognised column. A country column becomes
    ``country`` (each row's phone region; never sent). Two headers named or
    mapped for one field is an :class:`~synckit.errors.InputError`; a
    mapping to something that is not a contract field (or ``country``, or
    ``custom_prefix`` + key) is a :class:`~synckit.errors.ConfigError`.
    Unused headers close to a known spelling get a suggestion.

    Example:
        >>> p = plan_columns(["Mail", "Phone_Number", "custom.plan", "Notes"], {"Mail": "email"})
        >>> p.fields, p.custom, p.ignored
        ({'email': 'Mail', 'phone_number': 'Phone_Number'}, {'custom.plan': 'plan'}, ['Notes'])
    """
    columns = dict(columns or {})
    prefix_fold = _fold(custom_prefix) if custom_prefix else None
    for target in columns.values():
        if target is None or target in rules.FIELDS or target == COUNTRY:
            continue
        if (
            custom_prefix
            and str(target).startswith(custom_prefix)
            and len(target) > len(custom_prefix)
        ):
            continue
        raise ConfigError(
            f"column mapping target {target!r} is not a contact field "
            f"(one of {', '.join(rules.FIELDS)}, {COUNTRY} for the phone region, "
            f"or {custom_prefix}<key>)"
        )
    folded_map = {_fold(k): v for k, v in columns.items()}
    used_keys: set[str] = set()
    fields: dict[str, str] = {}
    custom: dict[str, str] = {}
    json_column: str | None = None
    ignored: list[str] = []

    def claim(target: str, header: str) -> None:
        nonlocal json_column
        if target == "custom_fields":
            if json_column is not None:
                raise InputError(
                    f"columns {json_column!r} and {header!r} both map to custom_fields",
                    path=source,
                    line=1,
                )
            json_column = header
            return
        if custom_prefix and target.startswith(custom_prefix):
            key = target[len(custom_prefix) :].strip()
            if key in custom.values():
                raise InputError(f"two columns map to custom field {key!r}", path=source, line=1)
            custom[header] = key
            return
        if target in fields:
            raise InputError(
                f"columns {fields[target]!r} and {header!r} both map to {target}",
                path=source,
                line=1,
            )
        fields[target] = header

    given: set[str] = set()  # targets the caller mapped: no recognised column for them
    rest: list[str] = []  # headers neither mapped, named like a field nor prefixed
    for header in headers:
        text = str(header)
        if text in columns:
            used_keys.add(text)
            if columns[text] is not None:
                claim(str(columns[text]), text)
                given.add(str(columns[text]))
            else:
                ignored.append(text)
            continue
        folded = _fold(text)
        if folded in folded_map:
            used_keys.update(k for k in columns if _fold(k) == folded)
            target = folded_map[folded]
            if target is not None:
                claim(str(target), text)
                given.add(str(target))
            else:
                ignored.append(text)
            continue
        if folded in rules.FIELDS or folded == COUNTRY:
            claim(folded, text)
        elif prefix_fold and folded.startswith(prefix_fold) and len(folded) > len(prefix_fold):
            key = text.strip()[len(custom_prefix) :].strip()
            claim(custom_prefix + key, text)
        else:
            rest.append(text)
    unmatched = [k for k in columns if k not in used_keys]
    if not recognise:
        return ColumnPlan(fields, custom, json_column, ignored + rest, unmatched)
    plan = ColumnPlan(fields, custom, json_column, ignored, unmatched)
    return _recognise([str(h) for h in headers], rest, plan, given)


def _recognise(
    headers: list[str], rest: list[str], plan: ColumnPlan, given: set[str]
) -> ColumnPlan:
    """``plan`` with the export spellings among ``rest`` added (see :func:`plan_columns`)."""
    keys = {_headers.header_key(h): h for h in reversed(headers)}  # first of a repeat
    found: dict[str, list[tuple[int, int, str]]] = {}
    labels: dict[str, str] = {}
    leftover: list[str] = []
    seen: set[str] = set()
    for position, text in enumerate(rest):
        match = _headers.recognise(text)
        if match is None or match.target in given or text in seen:
            leftover.append(text)  # a repeat of a recognised header is not read twice
            continue
        seen.add(text)
        found.setdefault(match.target, []).append((match.rank, position, text))
        if match.label is not None:
            for key in (match.label, match.label.replace(" label", " type")):
                if key in keys:
                    labels[text] = keys[key]
                    break
    fields = dict(plan.fields)
    fallbacks: dict[str, list[str]] = {}
    recognised: list[str] = []
    for target, candidates in found.items():
        ordered = [text for _, _, text in sorted(candidates)]
        recognised += ordered
        if target not in fields:
            fields[target], ordered = ordered[0], ordered[1:]
        if ordered:
            fallbacks[target] = ordered
    used = set(labels.values())
    ignored = plan.ignored + [h for h in leftover if h not in used]
    taken = set(fields) | given
    suggestions: dict[str, tuple[str, str]] = {}
    for text in ignored:
        hint = _headers.suggest(text, taken=taken)
        if hint is not None and text not in plan.ignored:  # columns=None: the caller's choice
            suggestions[text] = (hint.target, hint.note)
    return ColumnPlan(
        fields=fields,
        custom=plan.custom,
        json_column=plan.json_column,
        ignored=ignored,
        unmatched=plan.unmatched,
        fallbacks=fallbacks,
        labels=labels,
        recognised=recognised,
        layout=_headers.detect_layout(headers),
        suggestions=suggestions,
    )


# ---------------------------------------------------------------------------
# encoding and delimiter


def _utf8_throughout(path: str | os.PathLike[str], skip: int, *, mixed: bool = True) -> bool:
    """True if the whole file decodes as UTF-8 (scanned in blocks, constant memory).

    A file whose text before its first undecodable byte already holds UTF-8
    letters (``ë`` as two bytes) is neither encoding throughout: reading it
    as cp1252 would garble every one of them, so that is an
    :class:`~synckit.errors.InputError` naming the line.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    seen_utf8 = False
    position = skip
    try:
        with open(path, "rb") as fh:
            fh.seek(skip)
            while block := fh.read(_SCAN_BLOCK):
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(block)
                except UnicodeDecodeError as exc:
                    before = block[: max(exc.start - pending, 0)]
                    if mixed and (seen_utf8 or not before.isascii()):
                        offset = position - pending + exc.start
                        with open(path, "rb") as again:
                            line = again.read(offset).count(b"\n") + 1
                        _mixed_encoding(os.fspath(path), line)
                    raise
                seen_utf8 = seen_utf8 or not text.isascii()
                position += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _mixed_encoding(name: str, line: int) -> None:
    """Raise: UTF-8 text up to ``line``, which holds a byte that is not UTF-8."""
    raise InputError(
        f"the file is UTF-8 up to line {line}, which holds bytes that are not UTF-8 "
        "(a letter saved from another program?): fix that line, or pass encoding=... "
        "if the whole file is in one other encoding",
        path=name,
        line=line,
    )


def _guess_encoding(head: bytes, utf8_ok: bool | None = None) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 4 and head.count(b"\x00") >= len(head) // 4:
        # UTF-16 without a BOM: ASCII text leaves every other byte zero.
        return "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
    if utf8_ok is None:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head)
            utf8_ok = True
        except UnicodeDecodeError:
            utf8_ok = False
    if utf8_ok:
        return "utf-8"
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"  # every byte decodes; better than refusing the file
    return "cp1252"


def _sniff_delimiter(sample: str) -> str:
    """The delimiter giving the header the most fields (ties favour ``,`` then ``;``)."""
    lines = sample.splitlines()
    header = next((line for line in lines if line.strip()), "")
    best, best_count = ",", 1
    for delim in _DELIMITERS:
        try:
            count = len(next(csv.reader([header], delimiter=delim)))
        except (csv.Error, StopIteration):
            continue
        if count > best_count:
            best, best_count = delim, count
    return best


@dataclass
class _Opened:
    target: Any  # path or buffer handed to pandas
    encoding: str | None
    sample: str
    workbook: bool = False  # the bytes are an Excel file, not text


# .xlsx (a zip) and legacy .xls (OLE2) files start with these bytes
_WORKBOOK_MAGIC: Final = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
# Excel writes and honours a first line "sep=;" naming the delimiter; it is not a row
# Lines before the header holding nothing (a spreadsheet shows them as empty rows)
_BLANK_LINES: Final = re.compile(r"(?:[ \t,;]*\r?\n)+")
_SEP_LINE: Final = re.compile(r"\ufeff?sep=([^\r\n])[ \t]*\r?\n")


def _source_name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", None) or "<buffer>")


def _open(source: Any, encoding: str | None) -> _Opened:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise InputError("no such file", path=str(source))
        with open(path, "rb") as fh:
            head = fh.read(_SAMPLE_BYTES)
        if encoding is None:
            utf8_ok: bool | None = None
            if not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                skip = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
                # NUL-heavy text is UTF-16 without a BOM: no mixed-encoding verdict then
                utf16ish = len(head) >= 4 and head.count(b"\x00") >= len(head) // 4
                utf8_ok = _utf8_throughout(path, skip, mixed=not utf16ish)
            encoding = _guess_encoding(head, utf8_ok)
        if head.startswith(_WORKBOOK_MAGIC):
            return _Opened(path, None, "", workbook=True)
        sample = head.decode(encoding, errors="ignore")
        return _Opened(path, encoding, sample)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    if isinstance(source, io.TextIOBase) or (
        hasattr(source, "read") and isinstance(getattr(source, "encoding", None), str)
    ):
        text: IO[str] = source
        if text.seekable():
            start = text.tell()
            sample = text.read(_SAMPLE_BYTES)
            text.seek(start)
            return _Opened(text, None, sample)
        data = text.read()
        return _Opened(io.StringIO(data), None, data[:_SAMPLE_BYTES])
    if hasattr(source, "read"):
        raw = source.read()
        if isinstance(raw, str):
            return _Opened(io.StringIO(raw), None, raw[:_SAMPLE_BYTES])
        if raw.startswith(_WORKBOOK_MAGIC):
            return _Opened(io.BytesIO(raw), None, "", workbook=True)
        if encoding is None:
            utf8 = _decodes(raw, "utf-8")
            head = raw[:_SAMPLE_BYTES]
            utf16ish = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
                len(head) >= 4 and head.count(b"\x00") >= len(head) // 4
            )
            if not utf8 and not utf16ish:
                _check_mixed(raw, _source_name(source))
            encoding = _guess_encoding(raw[:_SAMPLE_BYTES], utf8)
        sample = raw[:_SAMPLE_BYTES].decode(encoding, errors="ignore")
        return _Opened(io.BytesIO(raw), encoding, sample)
    raise InputError(f"cannot read contacts from a {type(source).__name__}")


def _check_mixed(raw: bytes, name: str) -> None:
    """In-memory bytes: UTF-8 text then a byte that is not UTF-8 is an error (see above)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not raw[: exc.start].isascii():
            _mixed_encoding(name, raw[: exc.start].count(b"\n") + 1)


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------------------
# reading


def read_csv(
    source: Any,
    *,
    columns: Mapping[str, str | None] | None = None,
    custom_prefix: str = "custom.",
    chunksize: int | None = None,
    **pandas_kwargs: Any,
) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """Read a contacts CSV as text, indexed by spreadsheet row number.

    ``source`` is a path, bytes, or a binary or text file object.

    - Every cell is text (pandas never guesses numbers); empty cells are
      missing. Rows that are empty in every column are dropped (their row
      numbers are skipped, as a spreadsheet shows them).
    - The index is named ``row``: header = 1, first record = 2, counting
      records (a quoted cell spanning lines is still one row), through every
      chunk.
    - ``columns`` maps source headers to contract fields (``{"E-mail
      Address": "email"}``; a target of ``"custom.plan"`` makes a custom
      field, ``None`` drops the column). Headers equal to a contract field
      after trimming match case-insensitively. Columns starting with
      ``custom_prefix`` (or mapped to ``custom.<key>``) become columns named
      ``custom.<key>``, and a ``custom_fields`` column (JSON objects) stays
      as written: :func:`synckit.validate` checks them, and each sent row's
      ``custom_fields`` object is its JSON object with its ``custom.<key>``
      cells (trimmed; empty ones left out) laid over it.
    - Other columns are not kept: ``df.attrs["ignored_columns"]`` lists them,
      ``df.attrs["unmatched_columns"]`` lists ``columns`` keys not found.
    - UTF-8 (with or without BOM), UTF-16 and cp1252 are recognised; ``,``
      ``;`` and tab are sniffed from the header. ``encoding=`` and ``sep=``
      override the guesses; other keywords go to :func:`pandas.read_csv`.
    - A UTF-8 file without a BOM, without other keywords, is parsed by
      pyarrow when it is installed (pandas >= 3); any irregularity (ragged
      rows, repeated headers, stray bytes) hands it to pandas' parser, so
      the frames and errors are the same either way.

    Rows longer than the header, an empty file, or a header with no usable
    column raise :class:`~synckit.errors.InputError` naming file and line.
    Shorter rows are padded with missing cells (spreadsheets often drop
    trailing empty cells).

    With ``chunksize`` an iterator of DataFrames is returned.

    Example:
        >>> import io
        >>> df = read_csv(io.StringIO("email;phone_number;Custom.Plan\\nA@x.com;;pro\\n"))
        >>> df.columns.tolist(), df.attrs["ignored_columns"]
        (['email', 'phone_number', 'custom.Plan'], [])
    """
    name = _source_name(source)
    opened = _open(source, pandas_kwargs.pop("encoding", None))
    if opened.workbook:
        raise InputError(
            "this is an Excel workbook, not a CSV: save it as CSV (UTF-8) and read that",
            path=name,
        )
    if _vcard.looks_like_vcard(opened.sample):
        # Apple Contacts / iCloud: the cards become a CSV in Google's column layout
        cards = io.StringIO(_vcard.to_csv(_whole_text(opened), source=name))
        cards.name = name
        again = {"custom_prefix": custom_prefix, "chunksize": chunksize, **pandas_kwargs}
        return read_csv(cards, columns=columns, **again)
    sep = pandas_kwargs.pop("sep", None) or pandas_kwargs.pop("delimiter", None)
    # Other pandas options (usecols, quotechar, ...) are pandas' to honour: careful path.
    plain_options = not pandas_kwargs
    sep_line_found = False
    sample = opened.sample
    first_row = 2
    if "skiprows" not in pandas_kwargs and "header" not in pandas_kwargs:
        skip = 0
        sep_line = _SEP_LINE.match(sample)
        if sep_line:
            sep_line_found = True
            skip = 1  # not shown by Excel: the header is still row 1
            sep = sep or sep_line.group(1)
            sample = sample[sep_line.end() :]
        blank = _BLANK_LINES.match(sample)
        if blank:
            lines = blank.group(0).count("\n")
            skip += lines
            first_row += lines
            sample = sample[blank.end() :]
        if skip:
            pandas_kwargs["skiprows"] = skip
    if sep is None:
        sep = _sniff_delimiter(sample)
    if not sample.strip():
        raise InputError("the file is empty", path=name, line=1)
    options: dict[str, Any] = {
        "sep": sep,
        "dtype": str,
        "keep_default_na": False,
        "na_values": [""],
        "skip_blank_lines": False,
        "index_col": False,
        "encoding": opened.encoding,
        "encoding_errors": "strict",
    }
    options.update(pandas_kwargs)

    def careful() -> Iterator[pd.DataFrame]:
        return _pandas_frames(opened.target, options, chunksize)

    read_frames: Callable[[], Iterator[pd.DataFrame]] = careful
    plain = plain_options and not sep_line_found  # Excel's sep= line: the careful path's
    names = _plain_utf8_header(source, opened, sep, sample) if plain else None
    if names is not None:
        skip_lines = int(options.get("skiprows") or 0)
        read_frames = functools.partial(
            _fast_frames, source, sep, skip_lines, names, chunksize, careful
        )
    reader = _chunks(read_frames, name, options, columns, custom_prefix, sample, first_row)
    if chunksize is not None:
        return reader
    frames = list(reader)
    if len(frames) == 1:
        return frames[0]
    out = pd.concat(frames)
    out.attrs = dict(frames[0].attrs)
    return out


def _whole_text(opened: _Opened) -> str:
    """All of an opened source's text (for formats read whole, such as vCard)."""
    target = opened.target
    if isinstance(target, (str, os.PathLike)):
        return Path(target).read_text(encoding=opened.encoding or "utf-8")
    data = target.read()
    if isinstance(data, bytes):
        return data.decode(opened.encoding or "utf-8")
    return str(data)


def _given_headers(sample: str, options: Mapping[str, Any], parsed: list[str]) -> list[str]:
    """The header row as written, where pandas renamed repeats (``email``, ``email.1``).

    Planning with the written names makes a repeated header that feeds a field
    an error (two columns for one field) instead of a silently dropped column.
    Falls back to pandas' names whenever the two readings disagree otherwise.
    """
    if options.get("names") is not None or options.get("header", "infer") not in ("infer", 0):
        return parsed
    try:
        first = next(csv.reader(io.StringIO(sample.lstrip("\ufeff")), delimiter=options["sep"]))
    except (csv.Error, StopIteration, TypeError):
        return parsed
    if len(first) != len(parsed) or len(set(parsed)) != len(parsed):
        return parsed
    out: list[str] = []
    for written, got in zip(first, parsed, strict=True):
        if written == got or (not written and got.startswith("Unnamed: ")):
            out.append(got)
        elif re.fullmatch(re.escape(written) + r"\.[0-9]+", got):
            out.append(written)
        else:
            return parsed
    return out


def _renamed(plan: ColumnPlan, names: Mapping[str, str]) -> ColumnPlan:
    """``plan`` with written header names put back to the frame's column names.

    Only headers that feed a field reach here, and those are unique (a repeat
    is an error in :func:`plan_columns`), so the mapping is exact.
    """
    return ColumnPlan(
        fields={f: names[h] for f, h in plan.fields.items()},
        custom={names[h]: k for h, k in plan.custom.items()},
        json_column=None if plan.json_column is None else names[plan.json_column],
        ignored=list(plan.ignored),
        unmatched=list(plan.unmatched),
        fallbacks={f: [names[h] for h in hs] for f, hs in plan.fallbacks.items()},
        labels={names[h]: names[lab] for h, lab in plan.labels.items()},
        recognised=list(plan.recognised),
        layout=plan.layout,
        suggestions=dict(plan.suggestions),
    )


def _line_of(exc: Exception) -> int | None:
    match = _PANDAS_LINE.search(str(exc))
    return int(match.group(1)) if match else None


def _strict(step: Callable[[], Any]) -> Any:
    """``step()`` with pandas' ParserWarning raised as an error.

    A data row longer than the header makes pandas drop cells with only a
    warning: make it an error. The filter is set around each read only, never
    across a yield (the caller's code runs there).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return step()


def _pandas_frames(
    target: Any, options: dict[str, Any], chunksize: int | None
) -> Iterator[pd.DataFrame]:
    """The careful path: pandas' C parser, every cell as text (raw frames, RangeIndex)."""
    if chunksize is None:
        yield _strict(lambda: pd.read_csv(target, **options))
        return
    iterator = _strict(lambda: iter(pd.read_csv(target, chunksize=chunksize, **options)))
    while True:
        raw = _strict(lambda: next(iterator, None))
        if raw is None:
            return
        yield raw


# ---------------------------------------------------------------------------
# the fast path: pyarrow's CSV parser for plain UTF-8 files

#: Bytes pyarrow parses at a time (one block per thread when reading a whole file).
_ARROW_BLOCK: Final = 1 << 22
#: Files up to this size are parsed as one block on one thread. Cells may span
#: lines (``newlines_in_values``), so pyarrow must find where each block's records
#: end before parsing it, a serial pass that split blocks add to: on the
#: benchmark's 17 MB file one block took 49-50 ms of CPU against 88-111 ms for
#: 1-16 MiB blocks, threaded or not, and wall time followed (2 cores). At 32 MB
#: one block still took less CPU (0.12 s against 0.16-0.18 s) and memory (peak
#: 302 MB against 340-350 MB) for about the same wall time; at 62 MB threads won
#: on wall time (0.18-0.22 s against 0.21-0.34 s) and memory (+50 MB for one
#: block). Beyond this, blocks on threads bound the parser's memory and use the cores.
_ONE_BLOCK_MAX: Final = 32 << 20
#: The same when streaming chunks: pyarrow's streaming reader reads a few dozen
#: blocks ahead, so this bounds its memory (1M rows in chunks of 50k, 85 MB: arrow
#: holds 29 MB at most with 512 KiB blocks, 98 MB with 4 MiB; as fast or faster).
_STREAM_BLOCK: Final = 1 << 19
# pandas >= 3 reads text as the "str" dtype (arrow-backed); older pandas gives object
# columns, which this path does not reproduce (nor does pandas' own pyarrow engine there:
# numbers came back as '7700900123.0', pandas issues 57666 and 58260)
_FAST_READER: Final = _pacsv is not None and int(pd.__version__.split(".")[0]) >= 3


_TEXT: Final = pd.StringDtype("pyarrow", na_value=np.nan)  # what dtype=str reads
_TEXT_TYPES: Final = {} if _pa is None else {_pa.string(): _TEXT, _pa.large_string(): _TEXT}


def _plain_utf8_header(source: Any, opened: _Opened, sep: str, sample: str) -> list[str] | None:
    """The header's names if the fast reader gives the careful path's frames, else None.

    Plain means: a file on disk, UTF-8 without a BOM (sniffed, or
    ``encoding="utf-8"``), a one-character delimiter, and a header of
    distinct, non-blank names on one line. Anything else (encodings, BOMs,
    Excel's ``sep=`` line, pandas options, repeated or empty headers, which
    pandas renames) stays on the careful path. So does a file the fast
    reader then finds irregular (ragged rows, bytes that are not UTF-8):
    :func:`_fast_frames` hands it back.
    """
    if not _FAST_READER or not isinstance(source, (str, os.PathLike)):
        return None
    if opened.encoding is None or codecs.lookup(opened.encoding).name != "utf-8":
        return None  # other encodings, and "utf-8-sig" (a BOM), are the careful path's
    if len(sep) != 1 or sep in '"\r\n':
        return None
    end = re.search(r"\r\n?|\n", sample)
    line = sample[: end.start()] if end else sample
    if end is None and len(sample.encode("utf-8")) >= _SAMPLE_BYTES - 4:
        return None  # the header may go on beyond the sample
    try:
        names = next(csv.reader([line], delimiter=sep, strict=True))
    except (csv.Error, StopIteration):
        return None
    if line.count('"') % 2:
        return None  # a quoted header cell spanning lines
    if not names or len(set(names)) != len(names) or any(not n.strip() for n in names):
        return None
    if not _quotes_even(source):
        return None  # maybe a quote left open: pandas says where, pyarrow reads on to the end
    return names


def _quotes_even(path: str | os.PathLike[str]) -> bool:
    """True if the file holds an even number of ``"`` (one block at a time).

    A quoted cell left open at the end of the file is an error for pandas and
    the rest of the file in one cell for pyarrow; an odd count is the usual
    sign of it. (A stray quote inside a cell can hide one open quote, which
    :func:`_arrow_frames` catches by the multi-line last record it leaves.)
    """
    count = 0
    with open(path, "rb") as fh:
        while block := fh.read(_SCAN_BLOCK):
            count += block.count(b'"')
    return count % 2 == 0


def _fast_frames(
    path: str | os.PathLike[str],
    sep: str,
    skip: int,
    names: list[str],
    chunksize: int | None,
    careful: Callable[[], Iterator[pd.DataFrame]],
) -> Iterator[pd.DataFrame]:
    """Raw frames from pyarrow's parser: the careful path's frames, faster.

    Every column is read as text (``column_types``, never inferred then cast),
    ``""`` and empty cells are missing, blank lines are rows (as pandas' with
    ``skip_blank_lines=False``), quoted cells may span lines. Chunks hold
    ``chunksize`` records each, as pandas' do. If pyarrow refuses the file
    (a row longer or shorter than the header, bytes that are not UTF-8), the
    careful reader takes over from the start, skipping the records already
    given: its errors, padding and messages are the ones the caller sees.
    """
    given = 0
    try:
        for frame in _arrow_frames(path, sep, skip, names, chunksize):
            given += len(frame)
            yield frame
        return
    except _pa.ArrowInvalid as exc:
        log.debug("%s: the careful CSV reader takes over after %d rows (%s)", path, given, exc)
    for frame in careful():
        if given >= len(frame) and len(frame):
            given -= len(frame)
            continue
        if given:
            frame = frame.iloc[given:]
            given = 0
        yield frame


def _arrow_frames(
    path: str | os.PathLike[str], sep: str, skip: int, names: list[str], chunksize: int | None
) -> Iterator[pd.DataFrame]:
    internal = [f"f{i}" for i in range(len(names))]
    block, threads = (_ARROW_BLOCK if chunksize is None else _STREAM_BLOCK), True
    if chunksize is None and (size := os.path.getsize(path)) < _ONE_BLOCK_MAX:
        block, threads = size + 1, False
    read = _pacsv.ReadOptions(
        column_names=internal, skip_rows=skip + 1, block_size=block, use_threads=threads
    )
    parse = _pacsv.ParseOptions(
        delimiter=sep,
        quote_char='"',
        double_quote=True,
        escape_char=False,
        newlines_in_values=True,
        ignore_empty_lines=False,
    )
    convert = _pacsv.ConvertOptions(
        column_types={c: _pa.string() for c in internal},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    if chunksize is None:
        table = _pacsv.read_csv(path, read, parse, convert)
        _check_last_record(table, path)
        yield _arrow_to_frame(table, names)
        return
    pending: list[Any] = []
    held = 0
    yielded = False
    with _pacsv.open_csv(path, read, parse, convert) as stream:
        schema = stream.schema
        for batch in stream:
            pending.append(batch)
            held += batch.num_rows
            # a full chunk goes out once a later row exists: the last record is checked first
            while held > chunksize:
                table = _pa.Table.from_batches(pending, schema=schema)
                yield _arrow_to_frame(table.slice(0, chunksize), names)
                yielded = True
                rest = table.slice(chunksize)
                pending = rest.to_batches()
                held = rest.num_rows
    table = _pa.Table.from_batches(pending, schema=schema)
    _check_last_record(table, path)
    if held or not yielded:
        yield _arrow_to_frame(table, names)


def _check_last_record(table: Any, path: str | os.PathLike[str]) -> None:
    """Refuse (ArrowInvalid) an end of file where a quote may have been left open.

    pyarrow reads an open quote on to the end of the file, where pandas
    reports an error: so a last record with a line break in a cell, or a
    last line without a line break that holds a quote, is pandas' to judge
    (a real multi-line last cell reads the same there, only slower).
    """
    with open(path, "rb") as fh:
        fh.seek(max(fh.seek(0, os.SEEK_END) - _SAMPLE_BYTES, 0))
        tail = fh.read()
    if tail and not tail.endswith((b"\n", b"\r")):
        last_line = re.split(rb"\r\n?|\n", tail)[-1]
        if b'"' in last_line:
            raise _pa.ArrowInvalid("a quote on a last line with no line break")
    if not table.num_rows:
        return
    last = table.slice(table.num_rows - 1)
    for column in last.columns:
        value = column[0].as_py()
        if value is not None and ("\n" in value or "\r" in value):
            raise _pa.ArrowInvalid("a line break in the last record (a quote left open?)")


def _arrow_to_frame(table: Any, names: list[str]) -> pd.DataFrame:
    """An arrow table of text columns as pandas' ``dtype=str`` frame (RangeIndex)."""
    frame = table.to_pandas(types_mapper=_TEXT_TYPES.get)
    frame.columns = pd.Index(names, dtype=object)
    return frame


def _chunks(
    frames: Callable[[], Iterator[pd.DataFrame]],
    name: str,
    options: dict[str, Any],
    columns: Mapping[str, str | None] | None,
    custom_prefix: str,
    sample: str = "",
    first_row: int = 2,
) -> Iterator[pd.DataFrame]:
    next_row = first_row
    plan: ColumnPlan | None = None
    try:
        for raw in frames():
            if plan is None:
                headers = [str(c) for c in raw.columns]
                given = _given_headers(sample, options, headers)
                plan = plan_columns(given, columns, custom_prefix=custom_prefix, source=name)
                if given != headers:
                    names: dict[str, str] = {}
                    for written, parsed in zip(given, headers, strict=True):
                        names.setdefault(written, parsed)  # a repeat is read once: the first
                    plan = _renamed(plan, names)
                if not plan.usable:
                    hints = "".join(
                        f"; did you mean {h!r} -> {t}? (--map '{h}={t}' / columns={{{h!r}: {t!r}}})"
                        for h, (t, _) in plan.suggestions.items()
                    )
                    raise InputError(
                        "no usable column: expected one of "
                        + ", ".join(rules.FIELDS)
                        + f" or a known export's spelling of them (or {custom_prefix}<key>, "
                        "or a --map/columns= mapping); found "
                        + ", ".join(repr(h) for h in headers)
                        + hints,
                        path=name,
                        line=1,
                    )
            raw.index = pd.RangeIndex(next_row, next_row + len(raw), name="row")
            next_row += len(raw)
            yield _shape(raw, plan, name)
    except pd.errors.EmptyDataError as exc:
        raise InputError("the file is empty (no header row)", path=name, line=1) from exc
    except pd.errors.ParserWarning as exc:
        raise InputError(
            f"a row has more fields than the header ({exc})", path=name, line=next_row
        ) from exc
    except pd.errors.ParserError as exc:
        line = _line_of(exc)
        text = str(exc).replace("Error tokenizing data. C error: ", "")
        raise InputError(f"malformed CSV: {text}", path=name, line=line) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            f"cannot decode the file as {options.get('encoding')}: {exc.reason}; pass encoding=...",
            path=name,
        ) from exc
    except (ValueError, csv.Error) as exc:
        raise InputError(f"cannot read CSV: {exc}", path=name, line=_line_of(exc)) from exc


def _shape(raw: pd.DataFrame, plan: ColumnPlan, name: str) -> pd.DataFrame:
    """Drop blank rows, keep mapped fields in contract order, then the custom fields.

    Custom fields stay columns of text (``custom.<key>``, and the JSON
    ``custom_fields`` column as written): :func:`synckit.validate` checks them
    column by column and :func:`synckit.validation.to_payloads` builds each
    row's object only when the row is sent.
    """
    if len(raw.columns):
        raw = raw[raw.notna().any(axis=1)]
        footer = _footer_rows(raw)
        if footer is not None:
            raw = raw[~footer]
    out = pd.DataFrame(index=raw.index)
    for fld in (*rules.FIELDS, COUNTRY):
        if fld in plan.fields:
            out[fld] = _coalesce(raw, plan, fld)
    if plan.json_column is not None:
        out["custom_fields"] = raw[plan.json_column].astype("str")
    for header, key in plan.custom.items():
        out[CUSTOM_PREFIX + key] = raw[header].astype("str")
    mapping = plan.mapping()
    out.attrs = {
        "source": name,
        "columns": {src: fld for fld, srcs in mapping.items() for src in srcs},
        "custom_columns": dict(plan.custom),
        "json_column": plan.json_column,
        "ignored_columns": list(plan.ignored),
        "unmatched_columns": list(plan.unmatched),
        # how the columns were chosen, for Validation's display (plain values: picklable)
        "mapping": mapping,
        "labels": dict(plan.labels),
        "recognised": list(plan.recognised),
        "layout": plan.layout,
        "suggestions": {h: list(s) for h, s in plan.suggestions.items()},
    }
    return out


def _coalesce(raw: pd.DataFrame, plan: ColumnPlan, target: str) -> pd.Series:
    """The target's column: its first source, with later ones filling in where it is empty.

    A source with a label column (Google's ``Phone 1 - Label``) is skipped on
    rows whose label names a fax or pager; for phones, a value labelled mobile
    is taken before any other on its row.
    """
    sources = plan.sources(target)
    first = raw[sources[0]].astype("str")
    if len(sources) == 1 and sources[0] not in plan.labels:
        return first
    out = np.full(len(raw), None, dtype=object)
    todo = np.ones(len(raw), dtype=bool)
    columns: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for header in sources:
        values = raw[header].astype("str")
        kinds = _label_kinds(raw, plan.labels.get(header))
        present = np.array((values.str.strip().fillna("") != "").to_numpy(dtype=bool))
        columns.append((values.to_numpy(dtype=object), present & (kinds != "never"), kinds))
    labelled = any(h in plan.labels for h in sources)
    for wanted in ("mobile", "") if target == "phone_number" and labelled else ("",):
        for cells, usable, kinds in columns:
            take = todo & usable
            if wanted:
                take &= kinds == wanted
            out[take] = cells[take]
            todo &= ~take
    return pd.Series(out, index=raw.index, dtype="str")


def _label_kinds(raw: pd.DataFrame, label: str | None) -> np.ndarray:
    """Per row: ``"mobile"``, ``"never"`` (fax, pager) or ``""``, from a label column."""
    if label is None:
        return _arrow.filled(len(raw), "")
    codes, uniques = pd.factorize(raw[label].fillna(""))
    kinds = np.array([_headers.label_kind(u) for u in uniques] + [""], dtype=object)
    return kinds[codes]


def _footer_rows(raw: pd.DataFrame) -> np.ndarray | None:
    """The footer a Salesforce report export appends, as a row mask (or None).

    It is the last rows, each with text in its first cell only: the report's
    name, Salesforce's copyright line, "Confidential Information - Do Not
    Distribute", "Generated By: ..." and the company's name. It is found by
    the copyright line; the report's name is the lone row just before it.
    """
    if len(raw) == 0 or len(raw.columns) < 2:
        return None
    tail = raw.iloc[-8:]
    lone = np.array(tail.iloc[:, 1:].isna().all(axis=1).to_numpy(dtype=bool))
    if not lone[-1]:
        return None
    firsts = tail.iloc[:, 0].tolist()
    marks = [i for i, text in enumerate(firsts) if _headers.is_footer_text(text)]
    if not marks or not lone[marks[0] :].all():
        return None
    start = marks[0] - 1 if marks[0] > 0 and lone[marks[0] - 1] else marks[0]
    mask = np.zeros(len(raw), dtype=bool)
    mask[len(raw) - len(tail) + start :] = True
    return mask
