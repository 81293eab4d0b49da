"""The sync engine: :func:`upsert` validated rows into the Contacts API, in batches, with a report.

Each valid row becomes ``POST /contacts``; a ``409`` (the email or phone is
taken) turns into an update of the contact the ``409`` names: the engine reads
that contact, sends only the fields that differ (nothing at all when none do:
the row is ``unchanged``), and a second ``409`` on that update (the email
belongs to one contact, the phone to another) fails the row naming both ids.

With ``state=PATH`` a SQLite ledger (:class:`synckit.state.Ledger`) remembers
what the API confirmed for every match key, so a nightly re-send of a full
export only sends what changed, straight to ``PATCH`` on the known contact id,
and a run killed at any point resumes without duplicates: idempotency keys are
derived from the row's key, the operation and the payload, so an unconfirmed
create is *replayed* by the server rather than repeated.

Example:
    >>> import pandas as pd, synckit
    >>> df = pd.DataFrame({"email": ["ada@example.com", "bad@"], "first_name": ["Ada", "X"]})
    >>> with synckit.serve_sandbox() as sb, synckit.Client(sb.url, token=sb.token) as client:
    ...     report = synckit.upsert(df, client, progress=False)
    >>> report.summary()[["created", "invalid"]].tolist()
    [1, 1]

Ctrl-C (``KeyboardInterrupt``) stops dispatching, lets requests in flight end
(a few seconds at most), marks the rest ``skipped`` (``interrupted``) and then
re-raises; the report of the interrupted run is attached to the exception as
``exc.report`` and is also returned by :func:`last_report`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from synckit import rules
from synckit.config import redact
from synckit.errors import (
    APIError,
    AuthError,
    ConfigError,
    Conflict,
    NotFound,
    PermissionDenied,
    SynckitError,
    TransportError,
)
from synckit.report import SyncReport

if TYPE_CHECKING:
    from synckit.client import Client
    from synckit.state import Ledger, LedgerEntry, LedgerOutcome
    from synckit.validation import Validation

__all__ = ["last_report", "upsert"]

log = logging.getLogger("synckit")

#: Seconds the engine waits for requests in flight after Ctrl-C before it gives up on them.
INTERRUPT_GRACE: Final = 5.0
# Consent values an opt-out may not be turned back from (contract + issue 6).
_EMAIL_OPTED_OUT: Final = frozenset({"unsubscribed", "suppressed"})
_SMS_OPTED_OUT: Final = frozenset({"unsubscribed"})
_DUPLICATE_MODES: Final = ("last", "error", "keep")
# Row records become a compact frame this often, so a one-chunk input of a
# million rows never holds a million Python tuples at once.
_FLUSH_EVERY: Final = 20_000
#: Rows in a row that may end without any answer from the server (a TransportError,
#: each *after* the client's own retries) before the run stops as ``unreachable``.
#: Each such row already spent the client's whole retry window, so a dead server
#: costs a few windows instead of one per row (hours on a big file). One or two in a
#: row can be a passing network fault (dropped connections under load); three with no
#: HTTP answer from any row in between means the server is gone. Any answer resets it.
UNREACHABLE_AFTER: Final = 3

_last_report: SyncReport | None = None
_last_report_lock = threading.Lock()


def last_report() -> SyncReport | None:
    """The report of the most recent :func:`upsert` in this process (also after Ctrl-C).

    ``upsert`` re-raises ``KeyboardInterrupt`` after an interrupted run; this
    (or ``exc.report`` on the exception) is how to get that run's report.

    Example:
        >>> try:                                           # doctest: +SKIP
        ...     report = synckit.upsert(df, client)
        ... except KeyboardInterrupt:
        ...     report = synckit.sync.last_report()
    """
    return _last_report


# --------------------------------------------------------------------------- row work


@dataclass(slots=True)
class _Job:
    """One valid row on its way to the API."""

    row: int
    body: dict[str, Any]
    key: str | None
    entry: LedgerEntry | None = None


@dataclass(slots=True)
class _Result:
    """What happened to one row (the engine turns it into a report record)."""

    status: str
    contact_id: str | None = None
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    attempts: int = 0
    changes: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: The full payload the API now holds for this row (ledger), None if unconfirmed.
    confirmed: dict[str, Any] | None = None


class _Calls:
    """Per-row tally of HTTP attempts and the last answer's status and request id."""

    __slots__ = ("attempts", "client", "request_id", "status")

    def __init__(self, client: Client) -> None:
        self.client = client
        self.attempts = 0
        self.status: int | None = None
        self.request_id: str | None = None

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except APIError as err:
            self.attempts += max(int(err.attempts or 1), 1)
            self.status, self.request_id = err.status, err.request_id
            raise
        info = self.client.last_call
        if info is not None:
            self.attempts += info.attempts
            self.status, self.request_id = info.status, info.request_id
        else:  # a client without last_call: count the call
            self.attempts += 1
        return result


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _diff(body: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``body`` that differs from ``current`` (custom_fields key by key).

    PATCH merges ``custom_fields`` key by key, so an unchanged custom key is
    left out too; fields absent from ``body`` are never sent (absent = keep).
    """
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name == "custom_fields" and isinstance(value, Mapping):
            old = current.get("custom_fields")
            old = old if isinstance(old, Mapping) else {}
            changed = {k: v for k, v in value.items() if k not in old or not _same(v, old[k])}
            if changed:
                out[name] = changed
        elif name == "email" and isinstance(value, str):
            old_email = current.get("email")
            if not (isinstance(old_email, str) and old_email.lower() == value.lower()):
                out[name] = value
        elif not _same(value, current.get(name)):
            out[name] = value
    return out


def _merge(old: Mapping[str, Any], diff: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(old)
    for name, value in diff.items():
        if name == "custom_fields" and isinstance(value, Mapping):
            base = merged.get("custom_fields")
            merged[name] = {**(base if isinstance(base, Mapping) else {}), **value}
        else:
            merged[name] = value
    return merged


def _changes(diff: Mapping[str, Any]) -> str:
    names: list[str] = []
    for name in rules.FIELDS:
        if name not in diff:
            continue
        if name == "custom_fields" and isinstance(diff[name], Mapping):
            names.extend(f"custom_fields.{k}" for k in sorted(diff[name]))
        else:
            names.append(name)
    return ",".join(names)


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


class _Progress:
    """tqdm.auto when wanted (widget in Jupyter, text bar on a terminal), else nothing."""

    def __init__(self, enabled: bool, total: int | None, desc: str) -> None:
        self._bar: Any = None
        if enabled and (_is_tty() or _in_notebook()):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit="row", desc=desc, dynamic_ncols=True)

    def update(self, n: int) -> None:
        if self._bar is not None and n:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _SigintFlag:
    """Turns the first Ctrl-C into a flag the engine checks at safe points.

    A ``KeyboardInterrupt`` raised at an arbitrary line could lose a batch
    half-recorded; checked between steps, the report and the ledger stay
    consistent. A second Ctrl-C raises at once, for the impatient. Only
    installed from the main thread while Python's default handler is active
    (a notebook kernel's interrupt arrives the same way).
    """

    def __init__(self, stop: threading.Event) -> None:
        self.hit = False
        self._stop = stop
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True
        # Workers stop taking new rows at once, before the main thread notices.
        self._stop.set()

    def check(self) -> None:
        if self.hit:
            raise KeyboardInterrupt

    def __enter__(self) -> _SigintFlag:
        if threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError, TypeError):
                if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                    self._previous = signal.signal(signal.SIGINT, self._handler)
                    self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signal.SIGINT, self._previous)
            self._installed = False


# --------------------------------------------------------------------------- the engine


@dataclass
class _Batch:
    jobs: list[_Job]
    futures: list[Future[_Result]]
    # Rows decided without a request (ledger unchanged, not retried): final already.
    presets: list[tuple[_Job, _Result]]
    raw: pd.DataFrame | None


class _Engine:
    def __init__(
        self,
        client: Client,
        *,
        batch_size: int,
        workers: int,
        dry_run: bool,
        progress: bool,
        default_region: str,
        sms_countries: Iterable[str] | None,
        raise_on_error: bool,
        state: str | os.PathLike[str] | None,
        retry_failed: bool,
        allow_resubscribe: bool,
        duplicates: str,
        validate_options: Mapping[str, Any] | None = None,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("workers", workers)):
            # "100" from a form or 2.5 would fail deep inside as a bare TypeError.
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ConfigError(f"{name} must be a whole number, not {value!r}")
            if value < 1:
                raise ConfigError(f"{name} must be at least 1")
        if duplicates not in _DUPLICATE_MODES:
            raise ConfigError(f"duplicates must be one of {', '.join(_DUPLICATE_MODES)}")
        if retry_failed and state is None:
            raise ConfigError("retry_failed needs state=PATH (the ledger of the previous run)")
        self.client = client
        self.batch_size = int(batch_size)
        self.workers = int(workers)
        self.dry_run = dry_run
        self.progress = progress
        self.default_region = default_region
        self.sms_countries = frozenset(sms_countries) if sms_countries is not None else None
        self.raise_on_error = raise_on_error
        self.state = state
        self.retry_failed = retry_failed
        self.allow_resubscribe = allow_resubscribe
        self.duplicates = duplicates
        self.validate_options = dict(validate_options or {})

        self.ledger: Ledger | None = None
        self.source: str | None = None
        self.run_id = uuid.uuid4().hex[:12]
        # Without a ledger nothing can resume, so keys are unique per run: a
        # re-run of the same file must not be answered from yesterday's replay.
        self._salt = self.run_id
        self._stop = threading.Event()
        self._abort_lock = threading.Lock()
        self._abort: APIError | None = None
        self._no_answer_streak = 0
        self._interrupted = False
        self._failed_keys: set[str] = set()
        # The highest row number handed out so far (None before the first row).
        self._last_row: int | None = None
        # An exception that stopped the run half-way (e.g. an unreadable chunk).
        self._error: Exception | None = None

        # Accumulated output (compact: row frames per chunk, failed input rows only).
        self._records: list[tuple[Any, ...]] = []
        self._row_frames: list[pd.DataFrame] = []
        self._error_records: list[dict[str, Any]] = []
        self._error_frames: list[pd.DataFrame] = []
        self._failed_frames: list[pd.DataFrame] = []
        self._bar: _Progress | None = None
        self._stream: Iterator[Any] | None = None
        self._todo: deque[Sequence[tuple[int, dict[str, Any]]]] = deque()
        self._todo_source: pd.DataFrame | None = None
        self._sigint = _SigintFlag(self._stop)

    # ----------------------------------------------------------------- inputs

    def _validate(self, frame: pd.DataFrame) -> Validation:
        from synckit.validation import validate

        kwargs: dict[str, Any] = {
            "default_region": self.default_region,
            "duplicates": self.duplicates,
        }
        if self.sms_countries is not None:
            kwargs["sms_countries"] = self.sms_countries
        kwargs.update(self.validate_options)
        return validate(frame, **kwargs)

    def _chunks(self, data: Any) -> Iterator[tuple[Validation, pd.DataFrame | None]]:
        from synckit.validation import Validation

        if _is_dask(data):
            # Dask input: pandas Validation chunks, one partition at a time (issue 14)
            from synckit.dask import iter_validations

            data = iter_validations(
                data,
                default_region=self.default_region,
                sms_countries=self.sms_countries,
                duplicates=self.duplicates,
                **self.validate_options,
            )
        if isinstance(data, Validation):
            yield data, None
        elif isinstance(data, pd.DataFrame):
            frame = self._numbered(data)
            yield self._validate(frame), frame
        elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, Mapping)):
            self._stream = iter(data)
            for chunk in self._stream:
                if isinstance(chunk, Validation):  # already validated (e.g. a Dask partition)
                    yield chunk, None
                    continue
                if not isinstance(chunk, pd.DataFrame):
                    raise ConfigError(
                        "upsert() takes a DataFrame, a Validation or an iterator of DataFrames "
                        f"(e.g. read_csv(..., chunksize=...)); got a chunk of type "
                        f"{type(chunk).__name__}"
                    )
                frame = self._numbered(chunk)
                yield self._validate(frame), frame
        else:
            raise ConfigError(
                "upsert() takes a DataFrame, a Validation or an iterator of DataFrames, "
                f"not {type(data).__name__}"
            )

    def _numbered(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` indexed by row numbers no earlier row (or chunk) already used.

        Repeated numbers (``pd.concat`` without ``ignore_index``, or a list of
        frames each counting from 0) would put two outcomes under one ``row``;
        such a frame is numbered by position instead, after the last row seen.
        """
        framed = _with_row_index(frame)
        rows = framed.index
        if not len(rows):
            return framed
        last = self._last_row
        if not rows.is_unique or (last is not None and int(rows.min()) <= last):
            first = 2 if last is None else last + 1
            log.warning(
                "row numbers repeat in the input (index %s..%s); numbering these %d rows "
                "by position from row %d",
                rows.min(),
                rows.max(),
                len(rows),
                first,
            )
            framed = framed.set_axis(pd.RangeIndex(first, first + len(rows), name="row"), axis=0)
        top = int(framed.index.max())
        self._last_row = top if last is None else max(last, top)
        return framed

    @staticmethod
    def _total(data: Any) -> int | None:
        from synckit.validation import Validation

        if isinstance(data, Validation) and not _is_dask(data):
            return len(data.valid) + len(data.invalid)
        if isinstance(data, pd.DataFrame):
            return len(data)
        return None

    # ----------------------------------------------------------------- output

    def _add_record(self, row: int, body_or_raw: Mapping[str, Any], res: _Result) -> None:
        email = body_or_raw.get("email")
        phone = body_or_raw.get("phone_number")
        self._records.append(
            (
                int(row),
                None if _missing(email) else str(email),
                None if _missing(phone) else str(phone),
                res.status,
                res.contact_id,
                res.http_status,
                res.error_code,
                res.error_message,
                res.request_id,
                res.attempts
                if (res.attempts or res.status not in ("invalid", "skipped"))
                else None,
                res.changes,
            )
        )
        for err in res.errors:
            err.setdefault("row", int(row))
            self._error_records.append(err)

    def _flush_records(self) -> None:
        # Rows become a compact frame per chunk: a million Python tuples would not fit
        # the memory budget, a million arrow-backed strings do.
        if self._records:
            self._records.sort(key=_row_of)
            self._row_frames.append(SyncReport.from_records(self._records, []).rows)
            self._records = []

    def _keep_failed(self, source: pd.DataFrame | None, rows: Sequence[int]) -> None:
        if source is None or not rows:
            return
        wanted = source.index.intersection(pd.Index(rows))
        if len(wanted):
            self._failed_frames.append(_contract_columns(source.loc[wanted]))

    # ----------------------------------------------------------------- run

    def run(self, data: Any) -> SyncReport:
        started = datetime.now(UTC)
        ledger_cm: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.state is not None:
            from synckit.state import Ledger

            self.ledger = Ledger(self.state)
            ledger_cm = self.ledger.lock() if not self.dry_run else contextlib.nullcontext()
        try:
            with ledger_cm:
                if self.ledger is not None and not self.dry_run:
                    self.run_id = self.ledger.begin_run(
                        source=self.source or _describe_source(data), options=self._options()
                    )
                    self._salt = ""  # deterministic keys: a resumed run replays
                if self.ledger is not None and self.retry_failed:
                    self._failed_keys = self.ledger.failed_keys()
                report = self._run_locked(data, started)
        finally:
            if self.ledger is not None:
                self.ledger.close()
        return report

    def _options(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "workers": self.workers,
            "default_region": self.default_region,
            "retry_failed": self.retry_failed,
            "allow_resubscribe": self.allow_resubscribe,
            "duplicates": self.duplicates,
        }

    def _run_locked(self, data: Any, started: datetime) -> SyncReport:
        global _last_report
        self._bar = _Progress(
            self.progress, self._total(data), "dry run" if self.dry_run else "sync"
        )
        interrupt: KeyboardInterrupt | None = None
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="synckit-sync")
        inflight: deque[_Batch] = deque()
        try:
            with self._sigint:
                try:
                    self._dispatch_all(self._chunks(data), pool, inflight)
                except KeyboardInterrupt as exc:
                    interrupt = exc
                    self._interrupted = True
                    self._stop.set()
                    self._wind_down(inflight)
                except Exception as exc:
                    # e.g. a chunk that cannot be read half-way through a file: rows
                    # already sent were changed in the platform and must be reported.
                    self._error = exc
                    self._stop.set()
                    self._wind_down_after_error(inflight)
        finally:
            pool.shutdown(wait=interrupt is None and self._error is None, cancel_futures=True)
            self._bar.close()

        report = self._build_report(started)
        counts = report.counts()
        if self.ledger is not None and not self.dry_run:
            with contextlib.suppress(SynckitError, OSError):
                self.ledger.end_run(self.run_id, counts=counts, exit_code=report.exit_code())
        with _last_report_lock:
            _last_report = report
        log.debug(
            "sync %s: %s",
            "interrupted" if interrupt else ("aborted" if report.aborted else "finished"),
            ", ".join(f"{k} {v}" for k, v in counts.items()),
            extra={"run_id": report.run_id, "counts": counts, "aborted": report.aborted},
        )
        if interrupt is not None:
            interrupt.report = report  # type: ignore[attr-defined]
            raise interrupt
        if self._error is not None:
            self._error.report = report  # type: ignore[attr-defined]
            raise self._error
        if self._abort is not None and self.raise_on_error:
            self._abort.report = report  # type: ignore[attr-defined]
            raise self._abort
        return report

    def _dispatch_all(
        self,
        chunks: Iterator[tuple[Validation, pd.DataFrame | None]],
        pool: ThreadPoolExecutor,
        inflight: deque[_Batch],
    ) -> None:
        from synckit.validation import to_payloads

        for validation, raw in chunks:
            self._sigint.check()
            self._take_invalid(validation, raw)
            payloads = to_payloads(validation.valid)
            self._todo_source = raw if raw is not None else validation.valid
            self._todo = deque(
                payloads[start : start + self.batch_size]
                for start in range(0, len(payloads), self.batch_size)
            )
            while self._todo and self._abort is None:
                self._sigint.check()
                inflight.append(self._submit(self._todo.popleft(), self._todo_source, pool))
                # Two batches in flight: the next one starts while the last
                # stragglers of this one finish, so workers never sit idle.
                self._drain(inflight, keep=1)
            # Finish the chunk before the next one: its rows then form one sorted
            # piece of the report, which stacks at the end without a copy. (So
            # nothing is in flight after the loop, however it ends.)
            self._drain(inflight)
            self._flush_records()
            if self._abort is not None:
                break
        if self._abort is not None:
            self._skip_rest()
        self._flush_records()

    def _skip_rest(self) -> None:
        """Every row not dispatched yet becomes ``skipped`` (abort or Ctrl-C)."""
        while self._todo:
            self._finish_batch(self._skipped_batch(self._todo.popleft(), self._todo_source))
        self._flush_records()
        # Rows of a stream not read yet are input rows too: each appears once, as
        # skipped, ready to re-send (read, not validated: nothing will be sent).
        if self._stream is not None:
            from synckit.validation import Validation

            for chunk in self._stream:
                if isinstance(chunk, pd.DataFrame):
                    self._skip_raw(chunk)
                elif isinstance(chunk, Validation):  # validated already: invalid rows as such
                    self._take_invalid(chunk, None)
                    self._skip_raw(chunk.valid)
            self._stream = None

    def _drain(
        self, inflight: deque[_Batch], *, keep: int = 0, deadline: float | None = None
    ) -> None:
        """Wait for and record the oldest batches until at most ``keep`` are in flight."""
        while len(inflight) > keep:
            self._await(inflight[0], deadline=deadline)
            self._finish_batch(inflight.popleft())

    def _await(self, batch: _Batch, *, deadline: float | None = None) -> None:
        pending = [f for f in batch.futures if not f.done()]
        while pending:
            if deadline is None:
                self._sigint.check()
                timeout = 0.2
            else:
                timeout = max(0.0, min(0.2, deadline - time.monotonic()))
            _, not_done = wait_futures(pending, timeout=timeout)
            pending = list(not_done)
            if deadline is not None and time.monotonic() >= deadline:
                break

    def _wind_down(self, inflight: deque[_Batch]) -> None:
        """After Ctrl-C: finish what is in flight (briefly), mark everything else skipped."""
        try:
            self._drain(inflight, deadline=time.monotonic() + INTERRUPT_GRACE)
            self._skip_rest()
        except KeyboardInterrupt:
            # A second Ctrl-C: stop tidying up; what is recorded stays recorded.
            while inflight:
                self._finish_batch(inflight.popleft())
        self._flush_records()

    def _wind_down_after_error(self, inflight: deque[_Batch]) -> None:
        """After an exception: record what is in flight (briefly), skip what was not sent.

        The input that failed is not read again (its rows after the failure are
        not in the report; ``report.aborted`` says so). Errors while tidying up
        are logged, not raised: the first error is the one the caller sees.
        """
        self._stream = None
        deadline = time.monotonic() + INTERRUPT_GRACE
        while inflight:
            batch = inflight.popleft()
            try:
                self._await(batch, deadline=deadline)
                self._finish_batch(batch)
            except Exception:
                log.exception("while stopping after an error")
        try:
            self._skip_rest()
        except Exception:
            log.exception("while stopping after an error")
        self._flush_records()

    # ----------------------------------------------------------------- batches

    def _take_invalid(self, validation: Validation, raw: pd.DataFrame | None) -> None:
        invalid = validation.invalid
        errors = validation.errors
        if len(errors):
            # Compact at once (few distinct codes and messages): a streamed file
            # with many invalid rows keeps these until the end.
            n = len(errors)
            frame = pd.DataFrame(
                {
                    "row": pd.array(errors["row"].to_numpy(), dtype="Int64"),
                    "stage": pd.Categorical(["validate"] * n),
                    "field": pd.Categorical(errors["field"].to_numpy()),
                    "code": pd.Categorical(errors["code"].to_numpy()),
                    "message": pd.Categorical(errors["message"].to_numpy()),
                    "value": (errors["value"].astype("str") if "value" in errors else [None] * n),
                    # validate's warnings (multiple_values, field_dropped...) stay warnings
                    "severity": pd.Categorical(
                        errors["severity"].to_numpy() if "severity" in errors else ["error"] * n
                    ),
                }
            )
            frame.index = pd.RangeIndex(n)
            self._error_frames.append(frame)
        if not len(invalid):
            return
        first: dict[int, tuple[str, str]] = {}
        if len(errors):
            for r, code, message in zip(
                errors["row"].tolist(),
                errors["code"].tolist(),
                errors["message"].tolist(),
                strict=True,
            ):
                if int(r) not in first:
                    first[int(r)] = (str(code), f"{message}")
        emails = _column_or_none(invalid, "email")
        phones = _column_or_none(invalid, "phone_number")
        for r, email, phone in zip(invalid.index.tolist(), emails, phones, strict=True):
            code, message = first.get(int(r), ("invalid", "the row failed local validation"))
            self._records.append(
                (
                    int(r),
                    None if _missing(email) else str(email),
                    None if _missing(phone) else str(phone),
                    "invalid",
                    None,
                    None,
                    code,
                    message,
                    None,
                    None,
                    "",
                )
            )
        self._failed_frames.append(_contract_columns(invalid))
        if self._bar is not None:
            self._bar.update(len(invalid))

    def _skip_raw(self, raw: pd.DataFrame) -> None:
        res = self._skip_result()
        for r, rec in zip(raw.index.tolist(), _records_of(raw), strict=True):
            self._add_record(int(r), rec, res)
        self._failed_frames.append(_contract_columns(raw))
        if self._bar is not None:
            self._bar.update(len(raw))
        self._flush_records()

    def _skip_result(self) -> _Result:
        if self._error is not None:
            return _Result(
                "skipped",
                error_code="run_failed",
                error_message="not sent: the run stopped on an error: "
                + redact(f"{type(self._error).__name__}: {self._error}"),
            )
        abort = self._abort
        if abort is not None:
            return _Result(
                "skipped",
                error_code=_abort_code(abort),
                error_message=f"not sent: the run stopped after {abort.message}",
            )
        return _Result("skipped", error_code="interrupted", error_message="not sent: interrupted")

    def _jobs(self, part: Sequence[tuple[int, dict[str, Any]]]) -> list[_Job]:
        from synckit.state import match_key

        jobs = [_Job(int(r), body, match_key(body)) for r, body in part]
        if self.ledger is not None:
            keys = [j.key for j in jobs if j.key is not None]
            entries = self.ledger.get(keys) if keys else {}
            for job in jobs:
                if job.key is not None:
                    job.entry = entries.get(job.key)
        return jobs

    def _skipped_batch(
        self, part: Sequence[tuple[int, dict[str, Any]]], source: pd.DataFrame | None
    ) -> _Batch:
        jobs = self._jobs(part)
        res = self._skip_result()
        return _Batch(jobs=[], futures=[], presets=[(j, res) for j in jobs], raw=source)

    def _submit(
        self,
        part: Sequence[tuple[int, dict[str, Any]]],
        source: pd.DataFrame,
        pool: ThreadPoolExecutor,
    ) -> _Batch:
        from synckit.state import payload_hash

        batch = _Batch(jobs=[], futures=[], presets=[], raw=source)
        for job in self._jobs(part):
            entry = job.entry
            # Hashed only here: without a ledger entry the hash has nothing to match.
            if (
                entry is not None
                and entry.contact_id is not None
                and entry.payload_hash == payload_hash(job.body)
            ):
                # The API confirmed exactly this payload before: nothing to send.
                batch.presets.append(
                    (job, _Result("unchanged", contact_id=entry.contact_id, confirmed=job.body))
                )
                continue
            if self.retry_failed and job.key not in self._failed_keys:
                batch.presets.append(
                    (
                        job,
                        _Result(
                            "skipped",
                            contact_id=entry.contact_id if entry is not None else None,
                            error_code="not_retried",
                            error_message="not sent: --retry-failed re-sends only the rows that "
                            "failed or were skipped last time",
                        ),
                    )
                )
                continue
            batch.jobs.append(job)
            batch.futures.append(pool.submit(self._process, job))
        return batch

    def _finish_batch(self, batch: _Batch) -> None:

        done: list[tuple[_Job, _Result]] = list(batch.presets)
        for job, fut in zip(batch.jobs, batch.futures, strict=True):
            if fut.done() and not fut.cancelled():
                try:
                    res = fut.result()
                except Exception as exc:  # a bug must cost one row, not the run
                    log.exception("unexpected error on row %s", job.row)
                    text = redact(f"{type(exc).__name__}: {exc}")
                    res = _Result(
                        "failed",
                        error_code="unexpected_error",
                        error_message=text,
                        errors=[_problem("unexpected_error", text)],
                    )
            else:
                fut.cancel()
                res = _Result(
                    "skipped",
                    error_code="interrupted",
                    error_message="not confirmed: interrupted while the request was in flight",
                )
            done.append((job, res))
        done.sort(key=lambda jr: jr[0].row)
        outcomes: list[LedgerOutcome] = []
        failed_rows: list[int] = []
        for job, res in done:
            self._add_record(job.row, job.body, res)
            if res.status in ("failed", "skipped"):
                failed_rows.append(job.row)
            if self.ledger is not None and not self.dry_run and job.key is not None:
                out = self._outcome(job, res)
                if out is not None:
                    outcomes.append(out)
        self._keep_failed(batch.raw, failed_rows)
        if outcomes and self.ledger is not None:
            self.ledger.record(self.run_id, outcomes)
        if self._bar is not None:
            self._bar.update(len(done))
        batch.futures.clear()
        if len(self._records) >= _FLUSH_EVERY:
            self._flush_records()

    def _outcome(self, job: _Job, res: _Result) -> LedgerOutcome | None:
        from synckit.state import CONFIRMED_STATUSES, LedgerOutcome

        assert job.key is not None
        entry = job.entry
        if (
            res.status == "unchanged"
            and res.attempts == 0
            and entry is not None
            and entry.status in CONFIRMED_STATUSES
        ):
            # Not sent because the ledger already holds it: nothing new to write.
            return None
        if res.error_code == "not_retried":
            return None
        confirmed = res.status in CONFIRMED_STATUSES
        return LedgerOutcome(
            key=job.key,
            row=job.row,
            status=res.status,
            contact_id=res.contact_id if confirmed else None,
            payload=res.confirmed if confirmed else None,
            error_code=res.error_code,
        )

    # ----------------------------------------------------------------- one row

    def _process(self, job: _Job) -> _Result:
        if self._abort is not None or self._stop.is_set():
            return self._skip_result()
        calls = _Calls(self.client)
        try:
            if self.dry_run:
                res = self._plan(job, calls)
            elif job.entry is not None and job.entry.contact_id and job.entry.payload_hash:
                # Confirmed before: straight to PATCH, no POST/409 round trip.
                res = self._update_known(job, calls)
            else:
                res = self._create(job, calls)
        except (AuthError, PermissionDenied) as err:
            self._set_abort(err)
            res = _failure(err, job.body)
        except TransportError as err:
            self._no_answer(err)
            res = _failure(err, job.body)
        except APIError as err:
            res = _failure(err, job.body)
        except SynckitError as err:
            res = _Result("failed", error_code=type(err).__name__, error_message=str(err))
        if calls.status is not None:
            with self._abort_lock:  # the server answered (this row's last call): reachable
                self._no_answer_streak = 0
        res.attempts = calls.attempts
        if res.request_id is None:
            res.request_id = calls.request_id
        if res.http_status is None and res.status != "skipped":
            res.http_status = calls.status
        return res

    def _set_abort(self, err: APIError) -> None:
        with self._abort_lock:
            if self._abort is None:
                self._abort = err
                log.error("stopping the run: %s", err)

    def _no_answer(self, err: TransportError) -> None:
        """Count a row that got no answer at all; enough in a row stop the run."""
        with self._abort_lock:
            self._no_answer_streak += 1
            tripped = self._no_answer_streak >= UNREACHABLE_AFTER
        if tripped:
            self._set_abort(err)

    def _halted(self) -> _Result | None:
        """A skipped result when the run stopped between two requests of one row."""
        if self._abort is not None or self._stop.is_set():
            res = self._skip_result()
            res.error_message = (res.error_message or "") + " (nothing was changed for this row)"
            return res
        return None

    def _ikey(
        self, op: str, job: _Job, target: str, body: Mapping[str, Any], base: str = ""
    ) -> str:
        seed = "\x1f".join(
            (op, job.key or f"row:{job.row}", target, base, self._salt, _canonical(body))
        )
        return f"synckit-{op}-" + hashlib.sha256(seed.encode()).hexdigest()[:48]

    def _create(self, job: _Job, calls: _Calls, *, replaced: str | None = None) -> _Result:
        # A create after a 404 gets its own key: the original create's key would
        # replay the first contact, which no longer exists.
        op = "recreate" if replaced else "create"
        # The last run that recorded an outcome for this key is part of the key:
        # a resumed run (nothing recorded since) replays an unconfirmed create,
        # while a create whose failure was recorded (e.g. quota) is tried anew
        # rather than answered with the stored failure.
        base = job.entry.run_id if job.entry is not None else ""
        key = self._ikey(op, job, replaced or "", job.body, base)
        try:
            contact = calls(self.client.create_contact, job.body, idempotency_key=key)
        except Conflict as err:
            if err.retryable or not err.existing_id:
                raise
            halted = self._halted()
            if halted is not None:
                return halted
            return self._update_existing(job, calls, err.existing_id)
        return _Result("created", contact_id=str(contact.get("id")), confirmed=dict(job.body))

    def _update_existing(self, job: _Job, calls: _Calls, contact_id: str) -> _Result:
        """The 409 path: read the named contact, send what differs (if anything)."""
        current = calls(self.client.get_contact, contact_id)
        diff = _diff(job.body, current)
        diff, warnings = self._protect(job, diff, current, calls.request_id)
        confirmed = self._confirmed_payload(job.body, current, warnings)
        if not diff:
            return _Result("unchanged", contact_id=contact_id, errors=warnings, confirmed=confirmed)
        return self._patch(job, calls, contact_id, diff, warnings, confirmed, base="")

    def _update_known(self, job: _Job, calls: _Calls) -> _Result:
        """The ledger path: PATCH the known contact with what changed since it was confirmed."""
        entry = job.entry
        assert entry is not None and entry.contact_id is not None and entry.payload is not None
        contact_id = entry.contact_id
        diff = _diff(job.body, entry.payload)
        if not diff:
            # e.g. a field emptied in the file: absent fields are kept, so nothing to send.
            return _Result(
                "unchanged", contact_id=contact_id, confirmed=_merge(entry.payload, job.body)
            )
        warnings: list[dict[str, Any]] = []
        confirmed = _merge(entry.payload, job.body)
        if self._needs_read(diff):
            try:
                current = calls(self.client.get_contact, contact_id)
            except NotFound:
                return self._recreate(job, calls, contact_id)
            diff, warnings = self._protect(job, diff, current, calls.request_id)
            confirmed = self._confirmed_payload(confirmed, current, warnings)
            if not diff:
                return _Result(
                    "unchanged", contact_id=contact_id, errors=warnings, confirmed=confirmed
                )
        return self._patch(job, calls, contact_id, diff, warnings, confirmed, base=entry.run_id)

    def _recreate(self, job: _Job, calls: _Calls, old_id: str) -> _Result:
        halted = self._halted()
        if halted is not None:
            return halted
        return self._create(job, calls, replaced=old_id)

    def _patch(
        self,
        job: _Job,
        calls: _Calls,
        contact_id: str,
        diff: dict[str, Any],
        warnings: list[dict[str, Any]],
        confirmed: dict[str, Any],
        *,
        base: str,
    ) -> _Result:
        halted = self._halted()
        if halted is not None:
            return halted
        key = self._ikey("update", job, contact_id, diff, base)
        try:
            calls(self.client.update_contact, contact_id, diff, idempotency_key=key)
        except NotFound:
            if job.entry is not None and job.entry.contact_id == contact_id:
                # Deleted in the platform since the ledger saw it: create it again.
                return self._recreate(job, calls, contact_id)
            raise
        except Conflict as err:
            if err.retryable:
                raise
            return self._two_contacts(job, contact_id, err, warnings)
        return _Result(
            "updated",
            contact_id=contact_id,
            changes=_changes(diff),
            errors=warnings,
            confirmed=confirmed,
        )

    def _two_contacts(
        self, job: _Job, contact_id: str, err: Conflict, warnings: list[dict[str, Any]]
    ) -> _Result:
        other = err.existing_id or "another contact"
        email = job.body.get("email")
        phone = job.body.get("phone_number")
        if email and phone:
            text = _split_owners(email, contact_id, phone, other, "nothing was changed")
        else:
            text = (
                f"the update of contact {contact_id} conflicts with contact {other}: "
                "nothing was changed"
            )
        return _Result(
            "failed",
            contact_id=contact_id,
            http_status=err.status,
            error_code=err.code or "conflict",
            error_message=text,
            request_id=err.request_id,
            errors=[
                *warnings,
                _problem(
                    err.code or "conflict",
                    text,
                    field="email / phone_number",
                    value=phone,
                    http_status=err.status,
                    request_id=err.request_id,
                ),
            ],
        )

    # ----------------------------------------------------------------- consent

    def _needs_read(self, diff: Mapping[str, Any]) -> bool:
        if self.allow_resubscribe:
            return False
        return (
            diff.get("email_consent") in rules.OPT_IN_VALUES
            or diff.get("sms_consent") in rules.OPT_IN_VALUES
        )

    def _protect(
        self,
        job: _Job,
        diff: dict[str, Any],
        current: Mapping[str, Any],
        request_id: str | None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Drop an opt-in that would override a person's opt-out; one warning per field."""
        if self.allow_resubscribe:
            return diff, []
        warnings: list[dict[str, Any]] = []
        for name, opted_out in (
            ("email_consent", _EMAIL_OPTED_OUT),
            ("sms_consent", _SMS_OPTED_OUT),
        ):
            new = diff.get(name)
            old = current.get(name)
            if new in rules.OPT_IN_VALUES and old in opted_out:
                diff = {k: v for k, v in diff.items() if k != name}
                warnings.append(
                    _problem(
                        "consent_protected",
                        f"kept {old}: the contact opted out, so {name} was not set "
                        f"to {new} (allow_resubscribe=True / --allow-resubscribe overrides)",
                        field=name,
                        value=new,
                        request_id=request_id,
                        severity="warning",
                    )
                )
        return diff, warnings

    @staticmethod
    def _confirmed_payload(
        payload: Mapping[str, Any], current: Mapping[str, Any], warnings: list[dict[str, Any]]
    ) -> dict[str, Any]:
        # What the API holds after the update: the payload, except a protected
        # consent keeps the platform's value (so the ledger does not claim it).
        out = dict(payload)
        for w in warnings:
            out[w["field"]] = current.get(w["field"])
        return out

    # ----------------------------------------------------------------- dry run

    def _plan(self, job: _Job, calls: _Calls) -> _Result:
        body = job.body
        email = body.get("email")
        phone = body.get("phone_number")
        by_email: dict[str, Any] | None = None
        if email:
            found = calls(self.client.find_contacts, email=email)
            by_email = found[0] if found else None
        by_phone: dict[str, Any] | None = None
        if phone and (by_email is None or by_email.get("phone_number") != phone):
            found = calls(self.client.find_contacts, phone_number=phone)
            by_phone = found[0] if found else None
        if (
            by_email is not None
            and by_phone is not None
            and by_email.get("id") != by_phone.get("id")
        ):
            text = _split_owners(
                email, by_email.get("id"), phone, by_phone.get("id"), "the update would be refused"
            )
            return _Result(
                "failed",
                contact_id=str(by_email.get("id")),
                error_code="conflict",
                error_message=text,
                errors=[_problem("conflict", text, field="email / phone_number", value=phone)],
            )
        target = by_email if by_email is not None else by_phone
        if target is None:
            return _Result("would_create")
        diff = _diff(body, target)
        diff, warnings = self._protect(job, diff, target, calls.request_id)
        cid = str(target.get("id"))
        if not diff:
            return _Result("unchanged", contact_id=cid, errors=warnings)
        return _Result("would_update", contact_id=cid, changes=_changes(diff), errors=warnings)

    # ----------------------------------------------------------------- report

    def _build_report(self, started: datetime) -> SyncReport:
        self._flush_records()
        template = SyncReport.empty()
        if self._row_frames:
            pieces, self._row_frames = self._row_frames, []
            rows = _cast_like(_concat_by_column(pieces), template.rows)
        else:
            rows = template.rows
        api_errors = SyncReport.from_records([], self._error_records).errors
        error_frames = [f for f in self._error_frames if len(f)]
        if error_frames:
            local = pd.concat(error_frames, ignore_index=True)
            local = local.reindex(columns=list(api_errors.columns))
            errors = pd.concat([local, api_errors], ignore_index=True) if len(api_errors) else local
            errors = errors.sort_values("row", kind="stable", ignore_index=True)
            errors = _cast_like(errors, template.errors)
        else:
            errors = api_errors
        failed = [f for f in self._failed_frames if len(f)]
        failed_input = pd.concat(failed).sort_index(kind="stable") if failed else None
        aborted: str | None = None
        if isinstance(self._abort, TransportError):
            aborted = (
                f"unreachable: {UNREACHABLE_AFTER} rows in a row got no answer from the server "
                f"after retries ({self._abort.message}); the rows not sent are skipped"
            )
        elif self._abort is not None:
            aborted = f"{_abort_code(self._abort)}: {self._abort}"
        elif self._interrupted:
            aborted = "interrupted"
        elif self._error is not None:
            aborted = (
                f"error: {type(self._error).__name__}: {redact(str(self._error))}; "
                "input rows after that point are not in this report"
            )
        return SyncReport(
            rows=rows,
            errors=errors,
            failed_input=failed_input,
            run_id=self.run_id,
            started_at=started,
            finished_at=datetime.now(UTC),
            dry_run=self.dry_run,
            aborted=aborted,
        )


# --------------------------------------------------------------------------- helpers


def _row_of(record: tuple[Any, ...]) -> int:
    return int(record[0])


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _column_or_none(frame: pd.DataFrame, name: str) -> list[Any]:
    if name in frame.columns:
        return frame[name].tolist()
    return [None] * len(frame)


def _records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    emails = _column_or_none(frame, "email")
    phones = _column_or_none(frame, "phone_number")
    return [{"email": e, "phone_number": p} for e, p in zip(emails, phones, strict=True)]


def _is_dask(data: Any) -> bool:
    """A Dask DataFrame or a validation of one (known without importing Dask)."""
    module = type(data).__module__
    return module.split(".")[0] == "dask" or module == "synckit.dask"


def _with_row_index(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` indexed by spreadsheet row numbers, as :func:`synckit.validate` numbers rows.

    An integer index named ``row`` is kept; another integer index counts from
    row 2 (0 = the first data row); anything else counts rows by position.
    """
    index = frame.index
    if index.name == "row" and pd.api.types.is_integer_dtype(index.dtype):
        return frame
    if pd.api.types.is_integer_dtype(index.dtype):
        rows = pd.Index(index.to_numpy(dtype="int64") + 2, name="row")
    else:
        rows = pd.RangeIndex(2, 2 + len(frame), name="row")
    return frame.set_axis(rows, axis=0)


def _contract_columns(frame: pd.DataFrame) -> pd.DataFrame:
    # custom.<key> columns are custom fields (read_csv keeps them as columns)
    cols = [c for c in frame.columns if c in rules.FIELDS or str(c).startswith("custom.")]
    return frame[cols] if cols else frame


def _concat_by_column(pieces: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack frames with the same columns, sorted by index, one column at a time.

    ``pd.concat`` then ``sort_index`` would hold the pieces, the stacked frame
    and the sorted copy at once (three times the rows frame of a million-row
    run); column by column, freeing each piece's column as it goes, the peak
    is one column more. Categoricals stay categorical.
    """
    index = pieces[0].index.append([p.index for p in pieces[1:]]) if len(pieces) > 1 else None
    if index is None:
        frame = pieces[0]
        if frame.index.is_monotonic_increasing:
            return frame
        return frame.sort_index(kind="stable")
    order = None if index.is_monotonic_increasing else index.argsort(kind="stable")
    data: dict[str, Any] = {}
    for col in list(pieces[0].columns):
        parts = [p[col] for p in pieces]
        if all(isinstance(x.dtype, pd.CategoricalDtype) for x in parts):
            try:
                merged: Any = union_categoricals([x.array for x in parts])
            except TypeError:  # e.g. an all-missing piece has object categories
                merged = pd.Categorical(
                    np.concatenate([np.asarray(x, dtype=object) for x in parts])
                )
        else:
            merged = pd.concat(parts, ignore_index=True).array
        if order is not None:
            merged = merged.take(order)
        data[col] = merged
        del parts
        for p in pieces:
            del p[col]
    return pd.DataFrame(data, index=index if order is None else index.take(order))


def _cast_like(frame: pd.DataFrame, template: pd.DataFrame) -> pd.DataFrame:
    for col, dtype in template.dtypes.items():
        if col in frame.columns and frame[col].dtype != dtype:
            if isinstance(dtype, pd.CategoricalDtype) and not len(dtype.categories):
                frame[col] = frame[col].astype("category")
            else:
                frame[col] = frame[col].astype(dtype)
    return frame


def _abort_code(err: APIError) -> str:
    if isinstance(err, TransportError):
        return "unreachable"
    if isinstance(err, PermissionDenied):
        return "permission_denied"
    if isinstance(err, AuthError):
        return err.code if err.code in ("invalid_client", "invalid_scope") else "auth_error"
    return err.code or type(err).__name__


def _split_owners(email: Any, email_owner: Any, phone: Any, phone_owner: Any, outcome: str) -> str:
    """The message for a row whose email and phone number belong to two different contacts.

    Names the contacts, never the values: messages go to the JSON log, which
    promises no personal data (the values are in the report's columns).
    """
    return (
        f"the email belongs to contact {email_owner} and the phone_number "
        f"to contact {phone_owner}: {outcome}"
    )


def _problem(
    code: str,
    message: str,
    *,
    field: str | None = None,
    value: Any = None,
    http_status: int | None = None,
    request_id: str | None = None,
    severity: str = "error",
) -> dict[str, Any]:
    """One API-stage record of ``report.errors`` (keys: :data:`synckit.report.ERROR_FIELDS`)."""
    return {
        "stage": "api",
        "field": field,
        "code": code,
        "message": message,
        "value": value,
        "http_status": http_status,
        "request_id": request_id,
        "severity": severity,
    }


def _failure(err: APIError, body: Mapping[str, Any]) -> _Result:
    code = err.code or type(err).__name__
    errors: list[dict[str, Any]] = []
    if err.details:
        for d in err.details:
            fld = d.get("field") or None
            value = body.get(fld) if fld else None
            errors.append(
                _problem(
                    code,
                    d.get("message") or err.message,
                    field=fld,
                    value=_canonical(value) if isinstance(value, dict) else value,
                    http_status=err.status,
                    request_id=err.request_id,
                )
            )
    else:
        errors.append(
            _problem(code, err.message, http_status=err.status, request_id=err.request_id)
        )
    return _Result(
        "failed",
        http_status=err.status,
        error_code=code,
        error_message=err.message_with_details(),
        request_id=err.request_id,
        errors=errors,
    )


def _describe_source(data: Any) -> str | None:
    name = getattr(data, "attrs", {}).get("source") if isinstance(data, pd.DataFrame) else None
    if name:
        return str(name)
    return type(data).__name__


# --------------------------------------------------------------------------- public


def upsert(
    data: Any,
    client: Client,
    *,
    batch_size: int = 100,
    workers: int | None = None,
    dry_run: bool = False,
    progress: bool = True,
    default_region: str = "US",
    sms_countries: Iterable[str] | None = None,
    raise_on_error: bool = False,
    state: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    allow_resubscribe: bool = False,
    duplicates: str = "last",
    source: str | None = None,
    validate_options: Mapping[str, Any] | None = None,
) -> SyncReport:
    """Create or update every valid row through ``client``; returns a :class:`SyncReport`.

    ``data``: a DataFrame (validated first with ``default_region``,
    ``sms_countries``, ``duplicates``; invalid rows are reported, never sent),
    a :class:`~synckit.validation.Validation`, or an iterator of DataFrame chunks
    (``read_csv(path, chunksize=50_000)``), streamed in bounded memory.

    Rows go out in batches of ``batch_size`` on ``workers`` threads sharing the
    client (default: ``client.concurrency.ceiling``; the client's adaptive
    limit decides how many of them have a request in flight); after each
    batch the progress bar advances (``progress=False`` or a non-terminal
    stderr shows none) and the batch's outcomes are final.

    - A ``401`` that survives token renewal, ``invalid_client`` or a ``403``
      stops the run at once: unsent rows are ``skipped``, ``report.aborted``
      says why. The report is returned; with ``raise_on_error=True`` the error
      is raised instead (``exc.report`` holds the report).
    - An unreachable server (no answer, after the client's retries, for
      ``UNREACHABLE_AFTER`` = 3 rows in a row) stops the run too: rows already
      sent keep their outcome, unsent rows are ``skipped`` (``unreachable``),
      ``report.aborted`` starts with ``unreachable``; ``raise_on_error=True``
      raises the :class:`~synckit.errors.TransportError` (``exc.report``).
    - ``quota_exceeded`` fails the rows that needed a create; updates go on.
    - Ctrl-C: in-flight requests finish (at most a few seconds), the rest are
      ``skipped`` (``interrupted``), then ``KeyboardInterrupt`` is re-raised
      with the report at ``exc.report`` (and in :func:`last_report`).
    - ``dry_run=True`` sends no write: it looks each row's contact up and
      reports ``would_create``, ``would_update`` (``changes`` lists the
      fields), ``unchanged``, ``invalid``.
    - ``state=PATH``: the ledger of issue 6 (incremental, resumable runs, one
      run at a time per file: :class:`~synckit.errors.StateLockedError`);
      ``retry_failed=True`` sends only the rows that failed or were skipped
      last time.
    - Consent protection: an update never turns ``email_consent``
      unsubscribed/suppressed or ``sms_consent`` unsubscribed into an opt-in;
      the field is left out and a ``consent_protected`` warning added.
      ``allow_resubscribe=True`` turns this off.
    - ``source`` names the input in the ledger's run history (the CLI passes
      the file path).
    - ``validate_options``: more keyword arguments for :func:`synckit.validate`
      on DataFrame input (``defaults``, ``values``, ``invalid_fields``,
      ``region_column``), e.g. ``{"defaults": {"email_consent": "subscribed"}}``.

    Empty cells are not sent, so they never clear a value in the platform.

    Example:
        >>> report = synckit.upsert(df, client, batch_size=200, progress=False)  # doctest: +SKIP
        >>> report.rows.query("status == 'failed'")                            # doctest: +SKIP
    """
    if workers is None:
        # Threads for the most requests the client ever lets in flight; its
        # adaptive gate (limit x latency) decides how many are busy at once.
        workers = client.concurrency.ceiling
    engine = _Engine(
        client,
        batch_size=batch_size,
        workers=workers,
        dry_run=dry_run,
        progress=progress,
        default_region=default_region,
        sms_countries=sms_countries,
        raise_on_error=raise_on_error,
        state=state,
        retry_failed=retry_failed,
        allow_resubscribe=allow_resubscribe,
        duplicates=duplicates,
        validate_options=validate_options,
    )
    engine.source = source
    return engine.run(data)


def default_report_path(source: str | os.PathLike[str]) -> Path:
    """Where ``synckit sync FILE`` writes its report by default: ``<stem>.report.csv`` beside FILE.

    Example:
        >>> default_report_path("exports/contacts.csv").as_posix()
        'exports/contacts.report.csv'
    """
    path = Path(source)
    return path.with_name(f"{path.stem}.report.csv")
