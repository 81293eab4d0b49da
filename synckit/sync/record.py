"""The recorder: outcomes become report rows, error rows, failed input rows and ledger entries.

Rows are recorded a slice at a time (a few thousand input rows, in input
order) and each finished slice becomes a compact frame at once: a million
Python tuples would not fit the memory budget, a million arrow-backed strings
and categoricals do. The report's rows are indexed like the input; the
spreadsheet row number is the index when the input was indexed by it, else
a ``row`` column; a ``source`` column is kept when the input had one.

Example:
    >>> import pandas as pd
    >>> frame = _rows_piece([(0, 12, None, "a@x.io", None, "created", "ct_1", 201, None, None,
    ...                      "r1", 1, "")], pd.Index([10]))
    >>> frame.index.tolist(), frame["row"].tolist(), frame["status"].tolist()
    ([10], [12], ['created'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from synckit._rows import is_missing, json_text
from synckit.report import PROBLEM_STATUSES, SyncReport, _rows_frame

if TYPE_CHECKING:
    from synckit.ledger import Ledger, LedgerOutcome
    from synckit.report import Abort
    from synckit.sync.outcome import Outcome
    from synckit.sync.source import Chunk

__all__ = ["Recorder"]

_PROBLEMS: Final = frozenset(PROBLEM_STATUSES)


def _text(value: Any) -> str | None:
    return None if is_missing(value) else str(value)


def _rows_piece(records: Sequence[tuple[Any, ...]], labels: pd.Index) -> pd.DataFrame:
    """A rows frame from ``(pos, row, source, email, ..., changes)`` tuples, index ``labels``."""
    frame = _rows_frame([r[1:2] + r[3:] for r in records], sort=False)
    rows = frame.index.to_numpy(dtype=np.int64)
    frame = frame.set_axis(labels, axis=0)
    frame.insert(0, "row", rows)
    sources = [r[2] for r in records]
    if any(s is not None for s in sources):
        frame.insert(1, "source", pd.Series(pd.Categorical(sources), index=frame.index))
    return frame


def _json_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Dict and list cells (``custom_fields``) as JSON text, so the rows read back from CSV."""
    out = frame
    for col in frame.columns:
        if frame[col].dtype != object:
            continue
        values = frame[col]
        if values.map(lambda v: isinstance(v, (dict, list))).any():
            if out is frame:
                out = frame.copy()
            out[col] = values.map(json_text)
    return out


def _concat(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack row pieces (already in order) one column at a time, freeing as it goes.

    ``pd.concat`` would hold the pieces and the stacked frame at once (twice
    the rows frame of a million-row run); column by column the peak is one
    column more. Categoricals stay categorical.
    """
    if len(pieces) == 1:
        return pieces[0]
    index = pieces[0].index.append([p.index for p in pieces[1:]])
    columns: list[str] = []
    for p in pieces:
        columns.extend(c for c in p.columns if c not in columns)
    data: dict[str, Any] = {}
    for col in columns:
        parts = [
            p[col] if col in p.columns else pd.Series([None] * len(p), dtype=object) for p in pieces
        ]
        if all(isinstance(x.dtype, pd.CategoricalDtype) for x in parts):
            try:
                merged: Any = union_categoricals([x.array for x in parts])
            except TypeError:  # e.g. an all-missing piece has object categories
                merged = pd.Categorical(
                    np.concatenate([np.asarray(x, dtype=object) for x in parts])
                )
        else:
            merged = pd.concat(parts, ignore_index=True).array
        data[col] = merged
        del parts
        for p in pieces:
            if col in p.columns:
                del p[col]
    return pd.DataFrame(data, index=index)


def _cast_like(frame: pd.DataFrame, template: pd.DataFrame) -> pd.DataFrame:
    for col, dtype in template.dtypes.items():
        if col in frame.columns and frame[col].dtype != dtype:
            if isinstance(dtype, pd.CategoricalDtype) and not len(dtype.categories):
                frame[col] = frame[col].astype("category")
            else:
                frame[col] = frame[col].astype(dtype)
    return frame


class Recorder:
    """Collects a run's outcomes (on the main thread) and builds its :class:`SyncReport`."""

    def __init__(
        self,
        *,
        ledger: Ledger | None,
        run_id: str,
        dry_run: bool,
        batch_size: int,
        progress: Any = None,
    ) -> None:
        self.ledger = ledger if not dry_run else None
        self.run_id = run_id
        self.dry_run = dry_run
        self.batch_size = batch_size
        self._bar = progress
        self._records: list[tuple[Any, ...]] = []
        self._problem_pos: list[int] = []
        self._api_errors: list[dict[str, Any]] = []
        self._ledger_out: list[LedgerOutcome] = []
        self._row_pieces: list[pd.DataFrame] = []
        self._error_pieces: list[pd.DataFrame] = []
        self._failed_pieces: list[pd.DataFrame] = []
        self._row_is_index = True
        self._index_name: Any = None
        self._first = True
        self._why: dict[int, tuple[Any, Any]] = {}
        self._why_for: Chunk | None = None
        self.counts: dict[str, int] = {}

    # ------------------------------------------------------------------ recording
    def begin_chunk(self, chunk: Chunk) -> None:
        """Record the chunk's validation errors (all of them, in one compact frame)."""
        if self._first:
            self._index_name = chunk.labels.name
            self._first = False
        if self._row_is_index:
            given = chunk.labels
            self._row_is_index = (
                given.name == "row"
                and pd.api.types.is_integer_dtype(given.dtype)
                and np.array_equal(np.asarray(given, dtype=np.int64), chunk.rows)
            )
        check = chunk.check
        if check is None or not len(check.errors):
            return
        errors = check.errors
        n = len(errors)
        where = pd.Index(chunk.rows).get_indexer(errors["row"].to_numpy(dtype=np.int64))
        frame = pd.DataFrame(
            {
                "_pos": chunk.start + where,
                "row": pd.array(errors["row"].to_numpy(), dtype="Int64"),
                "stage": pd.Categorical(["validate"] * n),
                "field": pd.Categorical(errors["field"].to_numpy()),
                "code": pd.Categorical(errors["code"].to_numpy()),
                "message": pd.Categorical(errors["message"].to_numpy()),
                "value": errors["value"]
                .map(lambda v: None if v is None else json_text(v))
                .astype("str")
                .to_numpy(),
                # validate's warnings (multiple_values, field_dropped...) stay warnings
                "severity": pd.Categorical(
                    errors["severity"].to_numpy() if "severity" in errors else ["error"] * n
                ),
            }
        )
        if chunk.sources is not None:
            frame["source"] = pd.Categorical(chunk.sources[where])
        self._error_pieces.append(frame)

    def invalid(self, chunk: Chunk, positions: np.ndarray) -> None:
        """Record the chunk's invalid rows at ``positions`` (chunk positions)."""
        from synckit.ledger import LedgerOutcome, match_key

        if not len(positions):
            return
        check = chunk.check
        assert check is not None
        if self._why_for is not chunk:
            # The first problem of each row, once per chunk (not once per slice).
            first = check.errors.drop_duplicates("row")
            self._why = dict(
                zip(
                    first["row"].tolist(),
                    zip(first["code"].tolist(), first["message"].tolist(), strict=True),
                    strict=True,
                )
            )
            self._why_for = chunk
        why = self._why
        emails, phones = chunk.identifiers(positions)
        for k, p in enumerate(positions.tolist()):
            row = int(chunk.rows[p])
            code, message = why.get(row, ("invalid", "the row failed local validation"))
            src = chunk.sources[p] if chunk.sources is not None else None
            email, phone = _text(emails[k]), _text(phones[k])
            self._records.append(
                (chunk.start + p, row, src, email, phone, "invalid", None, None,
                 str(code), str(message), None, None, "")
            )  # fmt: skip
            self._problem_pos.append(p)
            key = match_key({"email": email, "phone_number": phone})
            # A duplicate's key is its kept copy's: recording "invalid" there would undo it.
            if self.ledger is not None and key is not None and code != "duplicate_in_file":
                self._ledger_out.append(LedgerOutcome(key, row, "invalid", error_code=str(code)))

    def outcome(
        self, chunk: Chunk, p: int, body: Mapping[str, Any], key: str | None, out: Outcome
    ) -> None:
        """Record one valid row's outcome (``p``: its chunk position)."""
        row = int(chunk.rows[p])
        src = chunk.sources[p] if chunk.sources is not None else None
        self._records.append(
            (
                chunk.start + p,
                row,
                src,
                _text(body.get("email")),
                _text(body.get("phone_number")),
                out.status,
                out.contact_id,
                out.http_status,
                out.error_code,
                out.error_message,
                out.request_id,
                out.attempts
                if (out.attempts or out.status not in ("invalid", "skipped"))
                else None,
                out.changes,
            )
        )
        for err in out.errors:
            rec = dict(err)
            rec["_pos"] = chunk.start + p
            rec["row"] = row
            if src is not None:
                rec["source"] = src
            self._api_errors.append(rec)
        if out.status in _PROBLEMS:
            self._problem_pos.append(p)
        if self.ledger is not None and key is not None and out.record:
            self._ledger_out.append(self._ledger_outcome(key, row, out))
            if len(self._ledger_out) >= self.batch_size:
                self._write_ledger()

    def skipped(self, chunk: Chunk, positions: np.ndarray, out: Outcome) -> None:
        """Record rows not validated (a stopped run's unread input) as ``out``."""
        emails, phones = chunk.identifiers(positions)
        for k, p in enumerate(positions.tolist()):
            src = chunk.sources[p] if chunk.sources is not None else None
            self._records.append(
                (chunk.start + p, int(chunk.rows[p]), src, _text(emails[k]), _text(phones[k]),
                 out.status, None, None, out.error_code, out.error_message, None, None, "")
            )  # fmt: skip
            self._problem_pos.append(p)

    def pending_positions(self, chunk: Chunk) -> np.ndarray:
        """Chunk positions recorded since the last :meth:`flush`."""
        return np.asarray([r[0] - chunk.start for r in self._records], dtype=np.int64)

    @staticmethod
    def _ledger_outcome(key: str, row: int, out: Outcome) -> LedgerOutcome:
        from synckit.ledger import CONFIRMED_STATUSES, LedgerOutcome

        confirmed = out.status in CONFIRMED_STATUSES
        return LedgerOutcome(
            key=key,
            row=row,
            status=out.status,
            contact_id=out.contact_id if confirmed else None,
            payload=out.confirmed if confirmed else None,
            error_code=out.error_code,
        )

    def _write_ledger(self) -> None:
        if self._ledger_out and self.ledger is not None:
            outcomes, self._ledger_out = self._ledger_out, []
            self.ledger.record(self.run_id, outcomes)

    def flush(self, chunk: Chunk) -> None:
        """End of a slice of ``chunk``: its rows become a frame, its ledger entries are written."""
        self._write_ledger()
        records, self._records = self._records, []
        if records:
            records.sort(key=lambda r: r[0])
            ps = np.fromiter((r[0] - chunk.start for r in records), dtype=np.int64)
            self._row_pieces.append(_rows_piece(records, chunk.labels.take(ps)))
            for r in records:
                self.counts[r[5]] = self.counts.get(r[5], 0) + 1
            if self._bar is not None:
                self._bar.update(len(records))
        if self._api_errors:
            errs, self._api_errors = self._api_errors, []
            frame = pd.DataFrame(errs)
            self._error_pieces.append(frame)
        if self._problem_pos:
            ps = np.unique(np.asarray(self._problem_pos, dtype=np.int64))
            self._problem_pos = []
            self._failed_pieces.append(_json_cells(self._input_rows(chunk, ps)))

    @staticmethod
    def _input_rows(chunk: Chunk, ps: np.ndarray) -> pd.DataFrame:
        if chunk.raw is not None:
            return chunk.raw.iloc[ps]
        check = chunk.check
        assert check is not None
        both = pd.concat([check.invalid, check.valid])
        return both.loc[[r for r in chunk.rows[ps].tolist() if r in both.index]]

    # ------------------------------------------------------------------ the report
    def build(
        self,
        *,
        started: datetime,
        aborted: Abort | None,
        extra: Mapping[str, Any] | None = None,
    ) -> SyncReport:
        template = SyncReport.empty()
        if self._row_pieces:
            pieces, self._row_pieces = self._row_pieces, []
            rows = _cast_like(_concat(pieces), template.rows)
            if self._row_is_index:
                del rows["row"]
                rows.index.name = "row"
            elif rows.index.name == "row":
                rows.index.name = None  # the index is not the row number: the column is
            else:
                rows.index.name = self._index_name
        else:
            rows = template.rows
        errors = self._errors(template)
        failed = [f for f in self._failed_pieces if len(f)]
        failed_input = pd.concat(failed) if failed else None
        report = SyncReport(
            rows=rows,
            errors=errors,
            failed_input=failed_input,
            run_id=self.run_id,
            started_at=started,
            finished_at=datetime.now(UTC),
            dry_run=self.dry_run,
            aborted=aborted,
        )
        return report

    def _errors(self, template: SyncReport) -> pd.DataFrame:
        pieces = [f for f in self._error_pieces if len(f)]
        self._error_pieces = []
        columns = list(template.errors.columns)
        if not pieces:
            return template.errors
        has_source = any("source" in f.columns for f in pieces)
        frame = pd.concat(
            [
                f.reindex(columns=["_pos", *columns, *(["source"] if has_source else [])])
                for f in pieces
            ],
            ignore_index=True,
        )
        frame = frame.sort_values("_pos", kind="stable", ignore_index=True).drop(columns="_pos")
        if "value" in frame.columns:
            frame["value"] = frame["value"].map(
                lambda v: None if v is None or is_missing(v) else json_text(v)
            )
        return _cast_like(frame, template.errors)
