"""Read contact CSVs into pandas as text, with spreadsheet row numbers.

:func:`read_csv` is the front door: it guesses the encoding and delimiter,
reads every cell as text (``07700900123`` stays ``07700900123``), maps
source headers to contract fields, folds ``custom.*`` columns and a JSON
``custom_fields`` column into one ``custom_fields`` column of dicts, and
indexes rows by the number a spreadsheet shows (header = 1).

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
import io
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import pandas as pd

from synckit import accessor as _accessor  # noqa: F401  (registers df.synckit)
from synckit import rules
from synckit._rows import fold_custom, parse_custom_cell
from synckit.errors import ConfigError, InputError

__all__ = ["SAMPLE_COLUMNS", "ColumnPlan", "plan_columns", "read_csv"]

#: The header mapping of ``sample_data/contacts.csv`` (used by ``synckit demo`` and the notebooks).
SAMPLE_COLUMNS: Final[dict[str, str]] = {
    "E-mail Address": "email",
    "Mobile": "phone_number",
    "First Name": "first_name",
    "Last Name": "last_name",
    "Newsletter": "email_consent",
    "SMS Opt-In": "sms_consent",
}

_SAMPLE_BYTES: Final = 1 << 16
_SCAN_BLOCK: Final = 1 << 20
_DELIMITERS: Final = (",", ";", "\t")
_PANDAS_LINE = re.compile(r"line (\d+)")


@dataclass(frozen=True)
class ColumnPlan:
    """Where each contract field comes from in a file's header.

    ``fields`` maps contract field -> source header, ``custom`` maps source
    header -> custom_fields key, ``json_column`` is a source header holding
    JSON objects, ``ignored`` lists headers that are not sent and
    ``unmatched`` the keys of ``columns`` that no header matched.
    """

    fields: dict[str, str] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)
    json_column: str | None = None
    ignored: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return bool(self.fields or self.custom or self.json_column)


def _fold(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def plan_columns(
    headers: list[str],
    columns: Mapping[str, str | None] | None = None,
    *,
    custom_prefix: str = "custom.",
    source: str | None = None,
) -> ColumnPlan:
    """Decide which header feeds which contract field.

    Explicit ``columns`` win (matched exactly, then trimmed and
    case-insensitively); then headers equal to a contract field name; then
    headers starting with ``custom_prefix``. Two headers for one field is an
    :class:`~synckit.errors.InputError`; a mapping to something that is not a
    contract field (or ``custom_prefix`` + key) is a
    :class:`~synckit.errors.ConfigError`.

    Example:
        >>> p = plan_columns(["Mail", "Phone_Number", "custom.plan", "Notes"], {"Mail": "email"})
        >>> p.fields, p.custom, p.ignored
        ({'email': 'Mail', 'phone_number': 'Phone_Number'}, {'custom.plan': 'plan'}, ['Notes'])
    """
    columns = dict(columns or {})
    prefix_fold = _fold(custom_prefix) if custom_prefix else None
    for target in columns.values():
        if target is None or target in rules.FIELDS:
            continue
        if (
            custom_prefix
            and str(target).startswith(custom_prefix)
            and len(target) > len(custom_prefix)
        ):
            continue
        raise ConfigError(
            f"column mapping target {target!r} is not a contact field "
            f"(one of {', '.join(rules.FIELDS)}, or {custom_prefix}<key>)"
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

    for header in headers:
        text = str(header)
        if text in columns:
            used_keys.add(text)
            if columns[text] is not None:
                claim(str(columns[text]), text)
            else:
                ignored.append(text)
            continue
        folded = _fold(text)
        if folded in folded_map:
            used_keys.update(k for k in columns if _fold(k) == folded)
            target = folded_map[folded]
            if target is not None:
                claim(str(target), text)
            else:
                ignored.append(text)
            continue
        if folded in rules.FIELDS:
            claim(folded, text)
        elif prefix_fold and folded.startswith(prefix_fold) and len(folded) > len(prefix_fold):
            key = text.strip()[len(custom_prefix) :].strip()
            claim(custom_prefix + key, text)
        else:
            ignored.append(text)
    unmatched = [k for k in columns if k not in used_keys]
    return ColumnPlan(fields, custom, json_column, ignored, unmatched)


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
      after trimming match case-insensitively. A ``custom_fields`` column of
      JSON objects is parsed; columns starting with ``custom_prefix`` become
      ``custom_fields`` keys (empty cells left out, values trimmed text). A
      cell that is not a JSON object stays as text, and validation reports it.
    - Other columns are not kept: ``df.attrs["ignored_columns"]`` lists them,
      ``df.attrs["unmatched_columns"]`` lists ``columns`` keys not found.
    - UTF-8 (with or without BOM), UTF-16 and cp1252 are recognised; ``,``
      ``;`` and tab are sniffed from the header. ``encoding=`` and ``sep=``
      override the guesses; other keywords go to :func:`pandas.read_csv`.

    Rows longer than the header, an empty file, or a header with no usable
    column raise :class:`~synckit.errors.InputError` naming file and line.
    Shorter rows are padded with missing cells (spreadsheets often drop
    trailing empty cells).

    With ``chunksize`` an iterator of DataFrames is returned.

    Example:
        >>> import io
        >>> df = read_csv(io.StringIO("email;phone_number;custom.plan\\nA@x.com;;pro\\n"))
        >>> df.loc[2, "custom_fields"], df.attrs["ignored_columns"]
        ({'plan': 'pro'}, [])
    """
    name = _source_name(source)
    opened = _open(source, pandas_kwargs.pop("encoding", None))
    if opened.workbook:
        raise InputError(
            "this is an Excel workbook, not a CSV: save it as CSV (UTF-8) and read that",
            path=name,
        )
    sep = pandas_kwargs.pop("sep", None) or pandas_kwargs.pop("delimiter", None)
    sample = opened.sample
    first_row = 2
    if "skiprows" not in pandas_kwargs and "header" not in pandas_kwargs:
        skip = 0
        sep_line = _SEP_LINE.match(sample)
        if sep_line:
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
    reader = _chunks(
        opened.target, name, options, chunksize, columns, custom_prefix, sample, first_row
    )
    if chunksize is not None:
        return reader
    frames = list(reader)
    if len(frames) == 1:
        return frames[0]
    out = pd.concat(frames)
    out.attrs = dict(frames[0].attrs)
    return out


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
    )


def _line_of(exc: Exception) -> int | None:
    match = _PANDAS_LINE.search(str(exc))
    return int(match.group(1)) if match else None


def _chunks(
    target: Any,
    name: str,
    options: dict[str, Any],
    chunksize: int | None,
    columns: Mapping[str, str | None] | None,
    custom_prefix: str,
    sample: str = "",
    first_row: int = 2,
) -> Iterator[pd.DataFrame]:
    next_row = first_row
    plan: ColumnPlan | None = None

    def strict(step: Callable[[], Any]) -> Any:
        # A data row longer than the header makes pandas drop cells with only a
        # warning: make it an error. The filter is set around each read only, never
        # across a yield (the caller's code runs there).
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return step()

    try:
        if chunksize is None:
            iterator: Iterator[pd.DataFrame] = iter(
                [strict(lambda: pd.read_csv(target, **options))]
            )
        else:
            iterator = strict(lambda: iter(pd.read_csv(target, chunksize=chunksize, **options)))
        while True:
            raw = strict(lambda: next(iterator, None))
            if raw is None:
                break
            if plan is None:
                headers = [str(c) for c in raw.columns]
                given = _given_headers(sample, options, headers)
                plan = plan_columns(given, columns, custom_prefix=custom_prefix, source=name)
                if given != headers:
                    plan = _renamed(plan, dict(zip(given, headers, strict=True)))
                if not plan.usable:
                    raise InputError(
                        "no usable column: expected one of "
                        + ", ".join(rules.FIELDS)
                        + f" (or {custom_prefix}<key>, or a --map/columns= mapping); found "
                        + ", ".join(repr(h) for h in headers),
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
    """Drop blank rows, keep mapped fields in contract order, build ``custom_fields``."""
    if len(raw.columns):
        raw = raw[raw.notna().any(axis=1)]
    out = pd.DataFrame(index=raw.index)
    for fld in rules.FIELDS:
        if fld in plan.fields:
            out[fld] = raw[plan.fields[fld]].astype("str")
    if plan.custom or plan.json_column:
        out["custom_fields"] = _custom_column(raw, plan)
    out.attrs = {
        "source": name,
        "columns": {src: fld for fld, src in plan.fields.items()},
        "custom_columns": dict(plan.custom),
        "json_column": plan.json_column,
        "ignored_columns": list(plan.ignored),
        "unmatched_columns": list(plan.unmatched),
    }
    return out


def _custom_column(raw: pd.DataFrame, plan: ColumnPlan) -> pd.Series:
    n = len(raw)
    cells: list[Any] = [None] * n
    if plan.json_column is not None:
        col = raw[plan.json_column]
        for i in np.flatnonzero(col.notna().to_numpy()):
            # text that is not a JSON object stays text: validation reports it
            cells[i] = parse_custom_cell(str(col.iat[int(i)]))
    for header, key in plan.custom.items():
        values = raw[header].str.strip()
        present = (values.notna() & (values != "")).to_numpy()
        fold_custom(cells, key, np.flatnonzero(present).tolist(), values[present].tolist())
    return pd.Series(cells, index=raw.index, dtype=object, name="custom_fields")
