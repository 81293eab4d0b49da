"""Input adaptation: whatever :func:`synckit.upsert` is given becomes numbered, validated chunks.

Accepted inputs:

- a DataFrame (validated here), or a :class:`~synckit.validation.Validation`;
- a function returning a fresh iterator of chunks (DataFrames or
  ``Validation`` objects), e.g. ``lambda: read_csv(path, chunksize=20_000)``, or
  a collection that can be iterated twice (a list of frames): **re-readable**.
  It is read twice: once to number every row and find the duplicate keys of
  the whole input (and what the platform must be asked), once to send;
- an iterator of chunks, read **once**: a key seen in an earlier chunk cannot
  be weighed against later ones, so the first copy is sent and later copies
  are ``duplicate_in_file``.

Every chunk keeps, by position: the input's index labels (the report is
indexed the same way), the spreadsheet row numbers (``row``: an integer
``row`` column, else the index as :func:`synckit.validate` reads it; rows
repeated within a chunk, or repeating an earlier chunk's numbers, are numbered
by position after the last row seen), the ``source`` column if the input has
one, and the input rows as given (for ``failed_rows()``).

Example:
    >>> import pandas as pd
    >>> src = adapt(pd.DataFrame({"email": ["a@example.com", "nope"]}, index=[10, 20]))
    >>> chunk = next(src.chunks(duplicates="last", validate=lambda f, d: _plain_validate(f, d)))
    >>> chunk.labels.tolist(), chunk.rows.tolist(), chunk.valid_pos.tolist()
    ([10, 20], [12, 22], [0])
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synckit._rows import row_numbers
from synckit.errors import ConfigError

__all__ = ["Chunk", "Source", "adapt", "reject"]

log = logging.getLogger("synckit")

Validate = Callable[[pd.DataFrame, str], Any]  # (frame indexed by row, duplicates) -> Validation


def _plain_validate(frame: pd.DataFrame, duplicates: str) -> Any:
    from synckit.validation import validate

    return validate(frame, duplicates=duplicates)  # type: ignore[arg-type]


@dataclass(eq=False)
class Chunk:
    """One piece of the input, numbered and (unless ``check`` is None) validated.

    ``start`` is the run position of its first row; ``rows``, ``labels`` and
    ``sources`` are by position; ``check.valid`` / ``check.invalid`` are
    indexed by row number, and ``valid_pos`` / ``invalid_pos`` are their
    positions. ``raw`` holds the input rows as given (index = labels).
    """

    start: int
    rows: np.ndarray
    labels: pd.Index
    sources: np.ndarray | None
    raw: pd.DataFrame | None
    check: Any = None
    valid_pos: np.ndarray | None = None
    invalid_pos: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.check is not None:
            self._locate()

    def _locate(self) -> None:
        where = pd.Index(self.rows)
        self.valid_pos = np.asarray(where.get_indexer(self.check.valid.index), dtype=np.int64)
        self.invalid_pos = np.asarray(where.get_indexer(self.check.invalid.index), dtype=np.int64)

    @property
    def n(self) -> int:
        return len(self.rows)

    def identifiers(self, positions: np.ndarray) -> tuple[list[Any], list[Any]]:
        """The email and phone_number cells at ``positions`` (as given when not validated)."""
        n = len(positions)
        if self.raw is not None:
            part = self.raw.iloc[positions]
            return tuple(  # type: ignore[return-value]
                part[name].tolist() if name in part.columns else [None] * n
                for name in ("email", "phone_number")
            )
        assert self.check is not None
        rows = pd.Index(self.rows[positions])
        out: list[list[Any]] = []
        for name in ("email", "phone_number"):
            col = pd.Series([None] * n, index=rows, dtype=object)
            for frame in (self.check.valid, self.check.invalid):
                if name in frame.columns and len(frame):
                    hit = frame.index.intersection(rows)
                    col.loc[hit] = frame.loc[hit, name].astype(object)
            out.append(col.tolist())
        return out[0], out[1]


class Source:
    """A re-readable or one-pass input of chunks. ``total`` is the row count when known."""

    rereadable: bool = True
    total: int | None = None
    description: str = ""

    def chunks(self, *, duplicates: str, validate: Validate | None) -> Iterator[Chunk]:
        """The input's chunks, validated with ``validate`` (None: numbered only)."""
        raise NotImplementedError

    def rest(self) -> Iterator[Chunk]:
        """The chunks a stopped run has not read yet (not validated); nothing by default."""
        return iter(())


class _Numbering:
    """Hands out row numbers so that no chunk repeats an earlier chunk's numbers."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.start = 0

    def number(self, frame: pd.DataFrame) -> np.ndarray:
        rows = _given_rows(frame)
        n = len(rows)
        if not n:
            return rows
        last = self.last
        repeats = len(np.unique(rows)) != n
        if repeats or ("source" not in frame.columns and last is not None and rows.min() <= last):
            first = 2 if last is None else last + 1
            log.warning(
                "row numbers repeat in the input (%s..%s); numbering these %d rows by "
                "position from row %d",
                rows.min(),
                rows.max(),
                n,
                first,
            )
            rows = np.arange(first, first + n, dtype=np.int64)
        top = int(rows.max())
        self.last = top if last is None else max(last, top)
        return rows


def _given_rows(frame: pd.DataFrame) -> np.ndarray:
    col = frame["row"] if "row" in frame.columns else None
    if col is not None and pd.api.types.is_integer_dtype(col.dtype) and not col.isna().any():
        return np.asarray(col, dtype=np.int64)
    return row_numbers(frame)


def _sources(frame: pd.DataFrame) -> np.ndarray | None:
    if "source" not in frame.columns:
        return None
    return np.asarray(frame["source"].astype(object).where(frame["source"].notna(), None))


def _frame_chunk(
    frame: pd.DataFrame,
    numbering: _Numbering,
    *,
    duplicates: str | None,
    validate: Validate | None,
) -> Chunk:
    rows = numbering.number(frame)
    start = numbering.start
    numbering.start += len(rows)
    check = None
    if validate is not None:
        check = validate(frame.set_axis(pd.Index(rows, name="row"), axis=0), duplicates or "keep")
    return Chunk(
        start=start,
        rows=rows,
        labels=frame.index,
        sources=_sources(frame),
        raw=frame,
        check=check,
    )


def _validation_chunk(check: Any, numbering: _Numbering) -> Chunk:
    rows = np.sort(
        np.concatenate(
            [np.asarray(check.valid.index, np.int64), np.asarray(check.invalid.index, np.int64)]
        )
    )
    start = numbering.start
    numbering.start += len(rows)
    if len(rows):
        top = int(rows.max())
        numbering.last = top if numbering.last is None else max(numbering.last, top)
    sources = None
    parts = [f for f in (check.valid, check.invalid) if "source" in f.columns]
    if parts:
        both = pd.concat([f["source"] for f in parts]).reindex(rows)
        sources = np.asarray(both.astype(object).where(both.notna(), None))
    return Chunk(
        start=start,
        rows=rows,
        labels=pd.Index(rows, name="row"),
        sources=sources,
        raw=None,
        check=check,
    )


def _item_chunk(
    item: Any, numbering: _Numbering, *, duplicates: str | None, validate: Validate | None
) -> Chunk:
    from synckit.validation import Validation

    if isinstance(item, pd.DataFrame):
        return _frame_chunk(item, numbering, duplicates=duplicates, validate=validate)
    if isinstance(item, Validation):
        return _validation_chunk(item, numbering)
    raise ConfigError(
        "upsert() takes chunks that are DataFrames or Validation objects "
        f"(e.g. read_csv(..., chunksize=...)); got a chunk of type {type(item).__name__}"
    )


class _FrameSource(Source):
    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.total = len(frame)
        self.description = str(frame.attrs.get("source") or "DataFrame")
        self._cache: Chunk | None = None

    def chunks(self, *, duplicates: str, validate: Validate | None) -> Iterator[Chunk]:
        # Validated once: the scan and the send see the same chunk.
        if self._cache is not None:
            yield self._cache
            return
        chunk = _frame_chunk(self.frame, _Numbering(), duplicates=duplicates, validate=validate)
        if validate is not None:
            self._cache = chunk
        yield chunk


class _ValidationSource(Source):
    def __init__(self, check: Any) -> None:
        self.check = check
        self.total = check.n_rows
        self.description = "Validation"

    def chunks(self, *, duplicates: str, validate: Validate | None) -> Iterator[Chunk]:
        yield _validation_chunk(self.check, _Numbering())


class _ChunkSource(Source):
    def __init__(self, open_: Callable[[], Iterable[Any]], *, rereadable: bool, name: str) -> None:
        self._open = open_
        self.rereadable = rereadable
        self.description = name
        self._stream: Iterator[Any] | None = None
        self._numbering = _Numbering()
        self._opened = False

    def chunks(self, *, duplicates: str, validate: Validate | None) -> Iterator[Chunk]:
        if self._opened and not self.rereadable:
            raise ConfigError("a one-pass iterator of chunks can be read only once")
        self._opened = True
        self._numbering = _Numbering()
        stream = iter(self._open())
        self._stream = stream
        for item in stream:
            yield _item_chunk(item, self._numbering, duplicates=duplicates, validate=validate)
        self._stream = None

    def rest(self) -> Iterator[Chunk]:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        for item in stream:
            yield _item_chunk(item, self._numbering, duplicates=None, validate=None)


def adapt(data: Any) -> Source:
    """The :class:`Source` for what ``upsert`` was given (see the module docs).

    Example:
        >>> import pandas as pd
        >>> adapt([pd.DataFrame({"email": ["a@x.io"]})]).rereadable
        True
        >>> adapt(iter([pd.DataFrame({"email": ["a@x.io"]})])).rereadable
        False
    """
    from synckit.validation import Validation

    if isinstance(data, pd.DataFrame):
        return _FrameSource(data)
    if isinstance(data, Validation):
        return _ValidationSource(data)
    if callable(data):
        source = _ChunkSource(data, rereadable=True, name=getattr(data, "__name__", "chunks"))
        # A function may say how many rows it reads (``fn.total = n``, an estimate is
        # fine): the progress bar then has a total and an ETA while the input is scanned.
        total = getattr(data, "total", None)
        if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
            source.total = total
        return source
    if isinstance(data, Iterator):
        return _ChunkSource(lambda: data, rereadable=False, name=type(data).__name__)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, Mapping)):
        return _ChunkSource(lambda: data, rereadable=True, name=type(data).__name__)
    raise ConfigError(
        "upsert() takes a DataFrame, a Validation, an iterator of DataFrames (e.g. "
        "read_csv(..., chunksize=...)) or a function returning one, "
        f"not {type(data).__name__}"
    )


def reject(chunk: Chunk, rejected: Mapping[int, tuple[str, str, Any]]) -> Chunk:
    """``chunk`` with the rows at run positions ``rejected`` moved from valid to invalid.

    Each gets a ``duplicate_in_file`` error: ``rejected[pos] = (field, message, value)``.
    """
    check = chunk.check
    assert check is not None and chunk.valid_pos is not None
    hit = [i for i, p in enumerate(chunk.valid_pos.tolist()) if chunk.start + int(p) in rejected]
    if not hit:
        return chunk
    from synckit.validation import Validation

    valid = check.valid
    gone_rows = valid.index[hit]
    keep = np.ones(len(valid), dtype=bool)
    keep[hit] = False
    if chunk.raw is not None:
        as_given = chunk.raw.iloc[chunk.valid_pos[hit]].set_axis(gone_rows, axis=0)
    else:
        as_given = valid.iloc[hit]
    invalid = pd.concat([check.invalid, as_given])
    order = np.argsort(pd.Index(chunk.rows).get_indexer(invalid.index), kind="stable")
    invalid = invalid.iloc[order]
    records = []
    for r, p in zip(gone_rows.tolist(), chunk.valid_pos[hit].tolist(), strict=True):
        fld, message, value = rejected[chunk.start + int(p)]
        records.append(
            {
                "row": int(r),
                "field": fld,
                "code": "duplicate_in_file",
                "message": message,
                "value": value,
            }
        )
    errors = pd.concat([check.errors, pd.DataFrame(records)], ignore_index=True)
    where = pd.Index(chunk.rows)
    errors = errors.iloc[
        np.argsort(where.get_indexer(errors["row"].astype("int64")), kind="stable")
    ].reset_index(drop=True)
    new = Validation(
        valid=valid[keep],
        errors=errors,
        invalid=invalid,
        ignored_columns=check.ignored_columns,
    )
    return Chunk(
        start=chunk.start,
        rows=chunk.rows,
        labels=chunk.labels,
        sources=chunk.sources,
        raw=chunk.raw,
        check=new,
    )
