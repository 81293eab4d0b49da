"""The outcome of a sync: one row per input row, one row per problem.

:class:`SyncReport` is what :func:`synckit.upsert` returns. ``rows`` says what
happened to every input row (indexed by its spreadsheet row number, so it
joins back to the file); ``errors`` lists every problem, local and remote;
``failed_input`` holds the input rows to fix and re-send.

Example:
    >>> rep = SyncReport.from_records(
    ...     [{"row": 2, "email": "ada@example.com", "status": "created", "contact_id": "ct_1",
    ...       "http_status": 201, "attempts": 1},
    ...      {"row": 3, "email": "bad@", "status": "invalid", "error_code": "invalid_email"}],
    ...     [{"row": 3, "stage": "validate", "field": "email", "code": "invalid_email",
    ...       "message": "must be a valid email address", "value": "bad@"}],
    ... )
    >>> rep.summary()["created"], rep.ok, rep.exit_code()
    (np.int64(1), False, 1)

Formula escaping in every CSV export (:meth:`SyncReport.to_csv`, :meth:`~SyncReport.errors_to_csv`,
:meth:`~SyncReport.failed_rows_to_csv`): a text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a
leading ``'`` (OWASP's advice against CSV injection). That includes E.164
phone numbers: spreadsheets read ``+447911123456`` as a number or formula
(Excel turns it into ``4.47912E+11``, ``+1-555-0100`` into arithmetic), so the
quote keeps them as the text they are. A cell that already starts with quotes
followed by one of those characters gets one more quote, so
:func:`unescape_formulas` (and :meth:`SyncReport.read_csv`) restore every
cell exactly.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd

from synckit._files import atomic_write, csv_export, escape_formulas, unescape_formulas
from synckit._rows import escape_surrogates, is_missing, json_text
from synckit.errors import ConfigError

__all__ = [
    "BAD_NIGHT_EXIT",
    "DEFAULT_MAX_FAILURE_RATE",
    "DRY_RUN_STATUSES",
    "ERROR_FIELDS",
    "MIN_FAILED_FOR_RATE",
    "OK_STATUSES",
    "PROBLEM_STATUSES",
    "ROW_FIELDS",
    "STATUSES",
    "Abort",
    "SyncReport",
    "escape_formulas",
    "unescape_formulas",
]

#: Every row status, in the fixed order summaries and charts use.
STATUSES: Final = (
    "created",
    "updated",
    "unchanged",
    "would_create",
    "would_update",
    "invalid",
    "failed",
    "skipped",
)
#: The statuses a real run reports (summary order).
RUN_STATUSES: Final = ("created", "updated", "unchanged", "invalid", "failed", "skipped")
#: The statuses a dry run reports (summary order).
DRY_RUN_STATUSES: Final = (
    "would_create",
    "would_update",
    "unchanged",
    "invalid",
    "failed",
    "skipped",
)
#: Statuses that count as success (a dry run's ``would_*`` included).
OK_STATUSES: Final = frozenset({"created", "updated", "unchanged", "would_create", "would_update"})
#: Statuses whose input rows go to ``failed_input`` / ``failed_rows()``.
PROBLEM_STATUSES: Final = ("invalid", "failed", "skipped")
#: Default :attr:`SyncReport.max_failure_rate`: a run in which the API refused more than
#: half the rows it was sent is not a normal night (exit code 4).
DEFAULT_MAX_FAILURE_RATE: Final = 0.5
#: Fewer refused rows than this never make a bad night, whatever their share: three
#: changes of which two failed is a row problem (exit 1), not a broken job.
MIN_FAILED_FOR_RATE: Final = 10
#: Exit code of a bad night: the API refused most rows, or could not be reached.
BAD_NIGHT_EXIT: Final = 4


@dataclass(frozen=True)
class Abort:
    """Why a run stopped before every row was tried: data, not a sentence to parse.

    ``code`` is stable and machine-readable (``interrupted``, ``unreachable``,
    ``permission_denied``, ``auth_error``, ``invalid_client``, ``invalid_scope``,
    ``not_contacts_api``, ``tls_error``, ``unavailable``, ``run_failed``);
    ``message`` says it for people; ``exit_code`` is what the command line
    exits with (3: the endpoint or the credential is wrong, 4: unreachable or
    unavailable, 2: configuration, 130: Ctrl-C, 143: SIGTERM, 1: anything else).
    ``str()`` gives ``"code: message"``.

    Example:
        >>> a = Abort("permission_denied", "403 forbidden: the token lacks contacts:write", 3)
        >>> str(a).split(":")[0], a.exit_code
        ('permission_denied', 3)
    """

    code: str
    message: str = ""
    exit_code: int = 1

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code

    def to_dict(self) -> dict[str, Any]:
        """``{"code", "message", "exit_code"}`` (for JSON logs)."""
        return {"code": self.code, "message": self.message, "exit_code": self.exit_code}


#: Columns of ``rows`` (the index is ``row``); a tuple record is ``(row, *ROW_FIELDS)``.
ROW_FIELDS: Final = (
    "email",
    "phone_number",
    "status",
    "contact_id",
    "http_status",
    "error_code",
    "error_message",
    "request_id",
    "attempts",
    "changes",
)
#: Columns of ``errors``.
ERROR_FIELDS: Final = (
    "row",
    "stage",
    "field",
    "code",
    "message",
    "value",
    "http_status",
    "request_id",
    "severity",
)

_STATUS_DTYPE: Final = pd.CategoricalDtype(list(STATUSES))
# Few distinct values, repeated on many rows: categories cost one small int per row.
_ROW_CATEGORY_COLS: Final = ("error_code", "error_message", "changes")
_ROW_INT_COLS: Final = ("http_status", "attempts")
#: Rows :meth:`SyncReport.to_csv` escapes and writes at a time (bounded memory).
CSV_SLICE_ROWS: Final = 100_000

_COLOURS: Final[Mapping[str, str]] = {
    "created": "#2e7d32",
    "updated": "#1565c0",
    "unchanged": "#757575",
    "would_create": "#66bb6a",
    "would_update": "#42a5f5",
    "invalid": "#ef6c00",
    "failed": "#c62828",
    "skipped": "#6d4c41",
}


def _column(values: Sequence[Any], kind: str) -> pd.Series:
    if kind == "int":
        return pd.Series(pd.array(list(values), dtype="Int64"))
    if kind == "category":
        return pd.Series(pd.Categorical(values))
    try:
        return pd.Series(values, dtype="str")
    except UnicodeEncodeError:
        # A cell as given that is not valid Unicode (a lone surrogate): arrow-backed
        # text cannot hold it, so the report keeps it escaped (rare: only then a pass).
        return pd.Series([escape_surrogates(v) for v in values], dtype="str")


def _rows_frame(
    records: Sequence[Mapping[str, Any] | Sequence[Any]], *, sort: bool = True
) -> pd.DataFrame:
    n_fields = len(ROW_FIELDS) + 1
    columns: dict[str, list[Any]] = {name: [] for name in ("row", *ROW_FIELDS)}
    if records and not isinstance(records[0], Mapping):
        # Tuples: (row, email, ..., attempts[, changes]); zip is the fast path for 1M rows.
        padded = (
            records
            if all(len(r) == n_fields for r in records)
            else [tuple(r) + (None,) * (n_fields - len(r)) for r in records]
        )
        for name, values in zip(columns, zip(*padded, strict=True), strict=True):
            columns[name] = list(values)
    else:
        for rec in records:
            assert isinstance(rec, Mapping)
            unknown = set(rec) - set(columns)
            if unknown:
                raise ValueError(f"unknown row record keys: {sorted(unknown)}")
            for name, col in columns.items():
                col.append(rec.get(name))
    bad = sorted(str(s) for s in set(columns["status"]) if s not in STATUSES)
    if bad:
        raise ValueError(f"unknown row status {bad!r}; expected one of {STATUSES}")
    changes = ["" if v is None else v for v in columns["changes"]]
    data: dict[str, pd.Series] = {
        "email": _column(columns["email"], "str"),
        "phone_number": _column(columns["phone_number"], "str"),
        "status": pd.Series(pd.Categorical(columns["status"], dtype=_STATUS_DTYPE)),
        "contact_id": _column(columns["contact_id"], "str"),
        "http_status": _column(columns["http_status"], "int"),
        "error_code": _column(columns["error_code"], "category"),
        "error_message": _column(columns["error_message"], "category"),
        "request_id": _column(columns["request_id"], "str"),
        "attempts": _column(columns["attempts"], "int"),
        "changes": _column(changes, "category"),
    }
    frame = pd.DataFrame(data)
    frame.index = pd.Index(pd.array(columns["row"], dtype="int64"), name="row")
    if sort and not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
    return frame


def _errors_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    columns: dict[str, list[Any]] = {name: [] for name in ERROR_FIELDS}
    for rec in records:
        unknown = set(rec) - set(columns)
        if unknown:
            raise ValueError(f"unknown error record keys: {sorted(unknown)}")
        for name, col in columns.items():
            col.append(rec.get(name))
    columns["severity"] = [v or "error" for v in columns["severity"]]
    columns["value"] = [_value_text(v) for v in columns["value"]]
    data: dict[str, pd.Series] = {
        "row": pd.Series(pd.array(columns["row"], dtype="Int64")),
        "stage": _column(columns["stage"], "category"),
        "field": _column(columns["field"], "category"),
        "code": _column(columns["code"], "category"),
        "message": _column(columns["message"], "category"),
        "value": _column(columns["value"], "str"),
        "http_status": _column(columns["http_status"], "int"),
        "request_id": _column(columns["request_id"], "str"),
        "severity": _column(columns["severity"], "category"),
    }
    frame = pd.DataFrame(data)
    return frame.sort_values("row", kind="stable", ignore_index=True)


def _index_wanted(frame: pd.DataFrame) -> bool:
    """Whether an export writes ``frame``'s index as its first column.

    An unnamed input index next to a ``row`` column (report rows of a frame
    not indexed by sheet row) says nothing a reader needs; any other index is
    the sheet's row number (named ``row``, or unnamed and written as ``row``).
    """
    return not (frame.index.name is None and "row" in frame.columns)


def _value_text(value: Any) -> str | None:
    """A problem's value as text: objects (custom_fields) as JSON, as a sheet held them."""
    if value is None:
        return None
    return str(json_text(value))


def _clean(value: Any) -> Any:
    """None for NA/NaN, the value otherwise."""
    return None if is_missing(value) else value


def _fmt_time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# Columns a problem table shows only when some row of it has a value: local
# validation problems have no HTTP status or request id.
_OPTIONAL_COLS: Final = ("field", "value", "http_status", "request_id", "email", "phone_number")


def _html_table(frame: pd.DataFrame, cols: Sequence[str], *, optional: Sequence[str] = ()) -> str:
    """A small HTML table of ``cols`` of ``frame`` (escaped, long cells cut)."""
    records = frame.to_dict("records")
    shown = [
        c
        for c in cols
        if c not in optional or any(_clean(rec.get(c)) not in (None, "") for rec in records)
    ]
    out = ['<table style="border-collapse:collapse;font-size:12px">']
    out.append(
        "<tr>"
        + "".join(f'<th style="text-align:left;padding:1px 6px">{c}</th>' for c in shown)
        + "</tr>"
    )
    for rec in records:
        cells = []
        for c in shown:
            v = _clean(rec.get(c))
            text = "" if v is None else str(v)
            if len(text) > 80:
                text = text[:77] + "..."
            cells.append(f'<td style="padding:1px 6px">{html.escape(text)}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


@dataclass(eq=False)
class SyncReport:
    """Every input row's outcome and every problem of one sync run.

    ``rows`` has one line per input row, in input order, with columns
    :data:`ROW_FIELDS`. :func:`synckit.upsert` indexes it like its input (so
    ``df.join(report.rows)`` lines up); when that index is not the
    spreadsheet row number, a ``row`` column holds the number ``errors``
    uses, and a ``source`` column is kept when the input had one.
    ``errors`` has columns :data:`ERROR_FIELDS`; ``failed_input`` holds the
    input rows whose status is invalid, failed or skipped. ``aborted`` is
    ``None`` or an :class:`Abort` saying why the run stopped early; its
    ``exit_code`` is :meth:`exit_code` (3 for the endpoint or credentials). A
    plain string is taken as an :class:`Abort` with that code and exit code 1.

    Example:
        >>> rep = SyncReport.from_records([(2, "a@example.com", None, "created", "ct_1", 201,
        ...                                 None, None, "req_1", 1, "")], [])
        >>> rep.ok, int(rep.summary().sum())
        (True, 1)
    """

    rows: pd.DataFrame
    errors: pd.DataFrame
    failed_input: pd.DataFrame | None = None
    run_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    dry_run: bool = False
    aborted: Abort | None = None
    #: What learning the platform's contacts cost (``pages``, ``lookups``,
    #: ``listing_complete``), set by :func:`synckit.upsert`.
    discovery: dict[str, Any] | None = None
    #: Above this share of refused rows (:meth:`failure_rate`, with at least
    #: :data:`MIN_FAILED_FOR_RATE` failed) :meth:`exit_code` is 4; None: never.
    #: :func:`synckit.upsert` sets it (default :data:`DEFAULT_MAX_FAILURE_RATE`).
    max_failure_rate: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.aborted, str):
            self.aborted = Abort(self.aborted)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_records(
        cls,
        rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
        errors: Iterable[Mapping[str, Any]],
        **meta: Any,
    ) -> SyncReport:
        """Build a report from the plain records an engine accumulates.

        ``rows``: dicts with keys ``row`` and :data:`ROW_FIELDS` (missing keys
        are empty), or tuples ``(row, email, phone_number, status, contact_id,
        http_status, error_code, error_message, request_id, attempts[,
        changes])``. ``errors``: dicts with keys :data:`ERROR_FIELDS`
        (``severity`` defaults to ``"error"``). ``meta``: the other fields
        (``failed_input``, ``run_id``, ``started_at``, ``finished_at``,
        ``dry_run``, ``aborted``). Rows come out sorted by row number.

        Example:
            >>> SyncReport.from_records([{"row": 5, "status": "skipped"}], [],
            ...                         aborted="interrupted").exit_code()
            1
        """
        return cls(rows=_rows_frame(list(rows)), errors=_errors_frame(errors), **meta)

    @classmethod
    def empty(cls, **meta: Any) -> SyncReport:
        """A report with no rows (an empty input).

        Example:
            >>> SyncReport.empty().ok
            True
        """
        return cls.from_records([], [], **meta)

    # ------------------------------------------------------------------ summaries
    def _statuses(self) -> tuple[str, ...]:
        base = DRY_RUN_STATUSES if self.dry_run else RUN_STATUSES
        present = set(self.rows["status"].dropna().unique()) if len(self.rows) else set()
        return (*base, *(s for s in STATUSES if s in present and s not in base))

    def summary(self) -> pd.Series:
        """Row counts by status: every status of this kind of run, zeros too, in a fixed order.

        A real run lists created, updated, unchanged, invalid, failed, skipped;
        a dry run would_create, would_update, unchanged, invalid, failed, skipped.

        Example:
            >>> SyncReport.empty().summary().to_dict()
            {'created': 0, 'updated': 0, 'unchanged': 0, 'invalid': 0, 'failed': 0, 'skipped': 0}
        """
        counts = self.rows["status"].value_counts(sort=False)
        order = list(self._statuses())
        out = counts.reindex(order, fill_value=0).astype("int64")
        out.index = pd.Index(order, name="status")
        out.name = "count"
        return out

    def counts(self) -> dict[str, int]:
        """:meth:`summary` as a plain dict (for logs and the ledger).

        Example:
            >>> SyncReport.empty(dry_run=True).counts()["would_create"]
            0
        """
        return {str(k): int(v) for k, v in self.summary().items()}

    @property
    def ok(self) -> bool:
        """True when every row was created, updated or unchanged (dry run: would be) and
        the run was not aborted."""
        if self.aborted:
            return False
        statuses = self.rows["status"]
        return bool(statuses.isin(list(OK_STATUSES)).all())

    def failure_rate(self) -> float:
        """The share of rows sent that the API refused: ``failed`` over ``created +
        updated + failed`` (a dry run: ``would_create + would_update + failed``).

        Invalid rows were never sent and unchanged ones needed nothing, so they
        do not dilute it: 12,000 unchanged rows and 40 of 40 changes refused is
        a rate of 1.0.

        Example:
            >>> SyncReport.from_records([{"row": 2, "status": "created"},
            ...     {"row": 3, "status": "failed"}, {"row": 4, "status": "failed"}],
            ...     []).failure_rate()
            0.6666666666666666
        """
        counts = self.counts()
        failed = counts.get("failed", 0)
        sent = failed + sum(
            counts.get(s, 0) for s in ("created", "updated", "would_create", "would_update")
        )
        return failed / sent if sent else 0.0

    @property
    def too_many_failed(self) -> bool:
        """True when :meth:`failure_rate` exceeds :attr:`max_failure_rate` and at least
        :data:`MIN_FAILED_FOR_RATE` rows failed: a bad night (exit code 4)."""
        limit = self.max_failure_rate
        if limit is None or self.counts().get("failed", 0) < MIN_FAILED_FOR_RATE:
            return False
        return self.failure_rate() > limit

    def exit_code(self) -> int:
        """The CLI's exit code: 0 ok, 1 some rows invalid/failed/skipped, 4 when the API
        refused too many of the rows sent (:attr:`too_many_failed`), or the aborted run's
        own :attr:`Abort.exit_code` (3 endpoint or credentials, 4 unreachable).

        Example:
            >>> SyncReport.empty(aborted=Abort("permission_denied", "403", 3)).exit_code()
            3
            >>> bad = SyncReport.from_records([{"row": r, "status": "failed"}
            ...                                for r in range(2, 14)], [], max_failure_rate=0.5)
            >>> bad.exit_code(), bad.failure_rate()
            (4, 1.0)
        """
        if self.aborted is not None:
            return int(self.aborted.exit_code)
        if self.too_many_failed:
            return BAD_NIGHT_EXIT
        return 0 if self.ok else 1

    def failed_rows(self) -> pd.DataFrame:
        """The input rows whose status is invalid, failed or skipped, ready to fix and re-send.

        Uses ``failed_input``: the rows as given, with all their columns and
        their index, ``custom_fields`` written as JSON text (so ``to_csv`` then
        :func:`synckit.read_csv` reads them back). Without it, the report's own
        ``email`` and ``phone_number`` of those rows.

        Example:
            >>> SyncReport.from_records([{"row": 2, "email": "x@", "status": "invalid"}],
            ...                         []).failed_rows()["email"].tolist()
            ['x@']
        """
        if self.failed_input is not None:
            return self.failed_input.copy()
        mask = self.rows["status"].isin(list(PROBLEM_STATUSES))
        return self.rows.loc[mask, ["email", "phone_number"]].copy()

    def to_dict(self, *, max_errors: int = 20) -> dict[str, Any]:
        """Run id, times, counts, aborted, exit code and the first problems (for JSON logs).

        Errors carry row, stage, field, code, message, http status and request id,
        never the offending value (it is personal data).

        Example:
            >>> SyncReport.empty(run_id="r1").to_dict()["run_id"]
            'r1'
        """
        duration = None
        if self.started_at is not None and self.finished_at is not None:
            duration = round((self.finished_at - self.started_at).total_seconds(), 3)
        errs = self.errors
        by_code = errs["code"].value_counts(sort=True) if len(errs) else pd.Series(dtype="int64")
        first: list[dict[str, Any]] = []
        for rec in errs.head(max_errors).to_dict("records"):
            item = {k: _clean(rec[k]) for k in ERROR_FIELDS if k != "value"}
            for k in ("row", "http_status"):
                if item[k] is not None:
                    item[k] = int(item[k])
            first.append(item)
        return {
            "run_id": self.run_id,
            "started_at": _fmt_time(self.started_at),
            "finished_at": _fmt_time(self.finished_at),
            "duration_s": duration,
            "dry_run": self.dry_run,
            "aborted": self.aborted.to_dict() if self.aborted is not None else None,
            "rows": len(self.rows),
            "discovery": self.discovery,
            "counts": self.counts(),
            "ok": self.ok,
            "failure_rate": round(self.failure_rate(), 4),
            "max_failure_rate": self.max_failure_rate,
            "exit_code": self.exit_code(),
            "error_counts": {str(k): int(v) for k, v in by_code.items() if v},
            "errors": first,
        }

    # ------------------------------------------------------------------ files
    def to_csv(
        self,
        path: str | Path,
        *,
        escape: bool = True,
        slice_rows: int = CSV_SLICE_ROWS,
        file_mode: int | None = None,
    ) -> Path:
        """Write ``rows`` as CSV with a ``row`` column; returns the path.

        With ``escape`` (the default), text cells starting with ``= + - @``, a tab
        or a CR get a leading ``'`` so spreadsheets show them instead of running
        them (E.164 phones too, see the module docs); :meth:`read_csv` undoes it.
        Rows are written ``slice_rows`` at a time so that memory stays bounded on
        big reports; the output does not depend on it. The file is created
        ``0600`` (or ``file_mode``) and replaces ``path`` atomically when complete.

        Example:
            >>> import tempfile, os
            >>> rep = SyncReport.from_records([{"row": 2, "email": "=cmd()", "status": "failed"}],
            ...                               [])
            >>> p = rep.to_csv(os.path.join(tempfile.mkdtemp(), "r.csv"))
            >>> p.read_text().splitlines()[1].split(",")[:2]
            ['2', "'=cmd()"]
        """
        out = Path(path)
        rows = self.rows
        step = max(int(slice_rows), 1)
        # Escaping (and reset_index) copy every column they touch: on a million-row
        # report ~250 MB at once. Slice by slice the copy is one slice big, and the
        # bytes are the same (each slice after the first just leaves out the header).
        with csv_export(out, escape=escape, file_mode=file_mode) as export:
            for start in range(0, max(len(rows), 1), step):
                export.write(rows.iloc[start : start + step], index=_index_wanted(rows))
        return out

    def errors_to_csv(self, path: str | Path, *, file_mode: int | None = None) -> Path:
        """Write ``errors`` (one line per problem, the offending ``value`` included) as CSV.

        Formula-escaped like :meth:`to_csv` -- the ``value`` column is exactly
        where a hostile "email" such as ``=HYPERLINK(...)`` ends up -- private
        (``0600`` or ``file_mode``) and atomic. Returns the path.

        Example:
            >>> import tempfile, os
            >>> rep = SyncReport.from_records([{"row": 2, "status": "invalid"}],
            ...     [{"row": 2, "field": "email", "code": "invalid_email", "value": "=1+1"}])
            >>> p = rep.errors_to_csv(os.path.join(tempfile.mkdtemp(), "errors.csv"))
            >>> "'=1+1" in p.read_text()
            True
        """
        with csv_export(path, columns=list(self.errors.columns), file_mode=file_mode) as export:
            if len(self.errors):
                export.write(self.errors)
        return Path(path)

    def failed_rows_to_csv(self, path: str | Path, *, file_mode: int | None = None) -> Path:
        """Write :meth:`failed_rows` (the rows to fix and re-send, with a ``row`` column) as CSV.

        Formula-escaped, private (``0600`` or ``file_mode``) and atomic, like
        :meth:`to_csv`; ``custom_fields`` objects are written as JSON. Returns the path.

        Example:
            >>> import tempfile, os
            >>> rep = SyncReport.from_records([{"row": 2, "email": "@x", "status": "invalid"}], [])
            >>> p = rep.failed_rows_to_csv(os.path.join(tempfile.mkdtemp(), "to_fix.csv"))
            >>> p.read_text().splitlines()
            ['row,email,phone_number', "2,'@x,"]
        """
        failed = self.failed_rows()
        with csv_export(path, file_mode=file_mode) as export:
            export.write(failed, index=_index_wanted(failed))
        return Path(path)

    @staticmethod
    def read_csv(path: str | Path) -> pd.DataFrame:
        """Read a CSV written by :meth:`to_csv` back: index ``row``, escapes undone.

        Example:
            >>> import tempfile, os
            >>> rep = SyncReport.from_records([{"row": 2, "phone_number": "+447911123456",
            ...                                 "status": "created"}], [])
            >>> p = rep.to_csv(os.path.join(tempfile.mkdtemp(), "r.csv"))
            >>> SyncReport.read_csv(p).loc[2, "phone_number"]
            '+447911123456'
        """
        text_cols = [c for c in ROW_FIELDS if c not in _ROW_INT_COLS]
        frame = pd.read_csv(
            path,
            dtype={**{c: "str" for c in text_cols}, "http_status": "Int64", "attempts": "Int64"},
            keep_default_na=False,
            na_values={c: [""] for c in (*text_cols, *_ROW_INT_COLS) if c != "changes"},
        )
        frame = unescape_formulas(frame)
        frame["status"] = frame["status"].astype(_STATUS_DTYPE)
        for col in _ROW_CATEGORY_COLS:
            if col in frame:
                frame[col] = frame[col].astype("category")
        return frame.set_index("row")

    def to_parquet(self, path: str | Path, *, file_mode: int | None = None) -> Path:
        """Write ``rows`` (index ``row``, dtypes kept) as Parquet; needs pyarrow.

        Private (``0600`` or ``file_mode``) and atomic, like :meth:`to_csv`.

        Example:
            >>> import tempfile, os
            >>> p = SyncReport.empty().to_parquet(os.path.join(tempfile.mkdtemp(), "r.parquet"))
            >>> p.suffix
            '.parquet'
        """
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                "writing a Parquet report needs pyarrow: pip install 'synckit[parquet]' "
                "(or write CSV with to_csv)"
            ) from exc
        out = Path(path)
        with atomic_write(out, binary=True, file_mode=file_mode) as handle:
            self.rows.to_parquet(handle, engine="pyarrow", index=True)
        return out

    # ------------------------------------------------------------------ display
    def plot(self, ax: Any = None) -> Any:
        """Horizontal bar chart of the outcome counts (matplotlib); returns the Axes.

        Example:
            >>> ax = SyncReport.empty().plot()  # doctest: +SKIP
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ConfigError("plot() needs matplotlib: pip install 'synckit[notebook]'") from exc
        counts = self.summary()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.35 * len(counts) + 0.8))
        labels = list(counts.index)[::-1]
        values = [int(counts[s]) for s in labels]
        ax.barh(labels, values, color=[_COLOURS.get(s, "#999999") for s in labels])
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:,}", va="center", fontsize=9)
        title = "Dry run: planned outcomes" if self.dry_run else "Sync outcomes"
        if self.aborted:
            title += f" (aborted: {self.aborted})"
        ax.set_title(title)
        ax.set_xlabel("rows")
        ax.margins(x=0.15)
        return ax

    def _header(self) -> str:
        parts = ["SyncReport"]
        if self.run_id:
            parts.append(f"run {self.run_id}")
        if self.dry_run:
            parts.append("DRY RUN")
        parts.append(f"{len(self.rows):,} rows")
        if self.started_at is not None and self.finished_at is not None:
            secs = (self.finished_at - self.started_at).total_seconds()
            parts.append(f"{secs:.1f} s")
        return " · ".join(parts)

    def __repr__(self) -> str:
        counts = self.summary()
        width = max((len(s) for s in counts.index), default=0)
        lines = [self._header()]
        lines += [f"  {s:<{width}}  {int(n):>9,}" for s, n in counts.items()]
        if self.aborted:
            lines.append(f"  aborted: {self.aborted}")
        elif self.too_many_failed:
            lines.append(
                f"  too many failed: {self.failure_rate():.0%} of the rows sent were refused "
                f"(more than {self.max_failure_rate:.0%}): look at the platform or the job"
            )
        if len(self.errors):
            codes = self.errors["code"].value_counts()
            shown = ", ".join(f"{k} ×{int(v)}" for k, v in codes.head(6).items() if v)
            lines.append(f"  problems: {len(self.errors):,} ({shown})")
        lines.append(f"  exit code {self.exit_code()}")
        return "\n".join(lines)

    __str__ = __repr__

    def _problem_frame(self) -> tuple[pd.DataFrame, tuple[str, ...]]:
        """Problems to show: the errors frame, or (when it is empty) the problem rows."""
        if len(self.errors):
            return self.errors, ("row", "field", "message", "value", "http_status", "request_id")
        mask = self.rows["status"].isin(list(PROBLEM_STATUSES))
        rows = self.rows.loc[mask].reset_index()
        rows = rows.rename(columns={"error_message": "message"})
        rows["code"] = (
            rows["error_code"]
            .astype("object")
            .where(rows["error_code"].notna(), rows["status"].astype("object"))
        )
        return rows, ("row", "email", "phone_number", "message", "http_status", "request_id")

    def _repr_html_(self) -> str:
        esc = html.escape
        counts = self.summary()
        total = max(int(counts.sum()), 1)
        out: list[str] = [
            '<div class="synckit-report" style="font-family:sans-serif;font-size:13px">'
        ]
        out.append(f"<div><b>{esc(self._header())}</b></div>")
        if self.aborted:
            out.append(
                f'<div style="color:#c62828;margin:2px 0"><b>aborted:</b> '
                f"{esc(str(self.aborted))}</div>"
            )
        out.append('<table style="border-collapse:collapse;margin:4px 0">')
        for status, n in counts.items():
            colour = _COLOURS.get(str(status), "#999")
            pct = 100.0 * int(n) / total
            badge = (
                f'<span style="background:{colour};color:#fff;border-radius:8px;'
                f'padding:1px 7px;font-size:12px">{esc(str(status))}</span>'
            )
            bar = (
                f'<div style="background:{colour};height:10px;width:{pct:.1f}%;'
                'min-width:1px;border-radius:2px"></div>'
                if n
                else ""
            )
            out.append(
                f'<tr><td style="padding:1px 6px">{badge}</td>'
                f'<td style="padding:1px 6px;text-align:right">{int(n):,}</td>'
                f'<td style="padding:1px 6px;width:220px">'
                f'<div style="background:#eee;width:200px;height:10px;border-radius:2px">'
                f"{bar}</div></td></tr>"
            )
        out.append("</table>")
        problems, cols = self._problem_frame()
        if len(problems):
            out.append(f"<div><b>Problems</b> ({len(problems):,}), first rows of each:</div>")
            grouped = problems.groupby("code", observed=True, sort=False, dropna=False)
            for code, group in grouped:
                sev = str(group["severity"].iloc[0]) if "severity" in group else "error"
                colour = "#ef6c00" if sev == "warning" else "#c62828"
                out.append(
                    f'<div style="margin-top:4px"><code style="color:{colour}">'
                    f"{esc(str(code))}</code> × {len(group):,}</div>"
                )
                out.append(_html_table(group.head(3), cols, optional=_OPTIONAL_COLS))
        if self.dry_run:
            updates = self.rows.loc[self.rows["status"] == "would_update"]
            if len(updates):
                out.append(
                    f'<div style="margin-top:4px"><b>Would update</b> ({len(updates):,}), '
                    "first rows, with the fields that would change:</div>"
                )
                out.append(
                    _html_table(
                        updates.head(5).reset_index(),
                        ("row", "email", "phone_number", "contact_id", "changes"),
                        optional=("email", "phone_number"),
                    )
                )
        out.append(f"<div style='color:#666'>exit code {self.exit_code()}</div></div>")
        return "".join(out)
