"""One run of :func:`synckit.upsert`: read, scan, discover, plan, execute, record.

The order of a run:

1. **Options** are checked before anything is opened (a bad ``default_region``
   is a :class:`~synckit.errors.ConfigError`, not a run in the ledger).
2. **Ledger**: opened and locked (a dry run opens an existing one read-only
   and never creates one); the run is recorded.
3. **Scan** (a re-readable input): every chunk is validated once, the
   duplicate keys of the whole input found, and the rows whose contacts must
   be discovered counted (rows the ledger confirmed need no discovery).
4. **Discover** what the platform holds for those rows
   (:mod:`~synckit.sync.discover`).
5. **Send**, a slice at a time: plan each row (:mod:`~synckit.sync.plan`),
   give each contact to one row at most, run the steps that need requests
   (:mod:`~synckit.sync.execute`), record everything
   (:mod:`~synckit.sync.record`).

A one-pass iterator skips 3: each chunk is deduplicated against the keys of
earlier chunks (the first copy wins) and discovered just before it is sent.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd

from synckit._rows import check_duplicates
from synckit.config import redact
from synckit.errors import ConfigError, InputError, StateLockedError, SynckitError
from synckit.report import DEFAULT_MAX_FAILURE_RATE, Abort, SyncReport
from synckit.sync.discover import Discovery, KeyFilter, LookupJob, Pending, Snapshot
from synckit.sync.execute import (
    INTERRUPTED,
    TERMINATED,
    Executor,
    Job,
    ListPage,
    SignalStop,
    Stop,
    Tally,
    Terminated,
    skipped,
)
from synckit.sync.flows import FlowOptions, drive, lookup_flow, step_flow
from synckit.sync.outcome import Outcome
from synckit.sync.plan import (
    Create,
    Known,
    PlanOptions,
    RowIn,
    Update,
    apply_owners,
    needs_read,
    plan_rows,
)
from synckit.sync.record import Recorder
from synckit.sync.source import Chunk, Source, adapt, reject

if TYPE_CHECKING:
    from synckit.client import Client
    from synckit.ledger import Ledger, LedgerEntry

__all__ = ["RunOptions", "last_report", "run_upsert"]

log = logging.getLogger("synckit")

#: Input rows planned, sent and recorded at a time: bounds the Python objects alive at
#: once (a million-row frame is never a million dicts) and is the unit of report frames.
SLICE_ROWS: Final = 20_000

_last_report: SyncReport | None = None
_last_report_lock = threading.Lock()


def last_report() -> SyncReport | None:
    """The report of the most recent :func:`synckit.upsert` in this process (also after Ctrl-C)."""
    return _last_report


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class RunOptions:
    batch_size: int = 100
    workers: int = 8
    dry_run: bool = False
    progress: bool = True
    default_region: str = "US"
    sms_countries: frozenset[str] | None = None
    raise_on_error: bool = False
    state: str | os.PathLike[str] | None = None
    retry_failed: bool = False
    allow_resubscribe: bool = False
    duplicates: str = "last"
    source: str | None = None
    in_flight_limit: Callable[[], int] | None = None
    #: check the endpoint and credential before the first request, the state folder
    #: before the ledger is opened (synckit.sync.preflight)
    preflight: bool = True
    #: a finished run whose share of refused rows exceeds this exits 4 (None: never)
    max_failure_rate: float | None = DEFAULT_MAX_FAILURE_RATE
    #: more keyword arguments for synckit.validate (defaults, values, invalid_fields, ...)
    validate_options: Mapping[str, Any] = field(default_factory=dict)
    #: more fields for the ``run_started`` log event (the command line's options);
    #: names that look like secrets are left out.
    log_fields: Mapping[str, Any] = field(default_factory=dict)

    def checked(self) -> RunOptions:
        """The options, or a :class:`ConfigError` for the first one that cannot work."""
        from synckit.validation import _region

        for name in ("batch_size", "workers"):
            value = getattr(self, name)
            # "100" from a form or 2.5 would fail deep inside as a bare TypeError.
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise ConfigError(f"{name} must be a whole number, not {value!r}")
            if value < 1:
                raise ConfigError(f"{name} must be at least 1")
        check_duplicates(self.duplicates)
        if self.duplicates == "keep":
            raise ConfigError(
                "upsert writes each contact at most once per run, so duplicates='keep' is "
                "for validate() only: use 'last' (keep the last copy) or 'error' (reject all)"
            )
        if self.retry_failed and self.state is None:
            raise ConfigError("retry_failed needs state=PATH (the ledger of the previous run)")
        if self.in_flight_limit is not None and not callable(self.in_flight_limit):
            raise ConfigError("in_flight_limit must be a function returning a whole number")
        _region(self.default_region)  # a bad region fails here, before the ledger hears of it
        rate = self.max_failure_rate
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1
        ):
            raise ConfigError(f"max_failure_rate must be a share from 0 to 1, not {rate!r}")
        if self.preflight and self.state is not None and not self.dry_run:
            from synckit.sync.preflight import check_paths

            # A missing state folder is configuration (exit 2), found before any request.
            problems = check_paths(state=self.state)
            if problems:
                from synckit.sync.preflight import PreflightError

                raise PreflightError(problems)
        return self

    def ledger_options(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "workers": self.workers,
            "default_region": self.default_region,
            "retry_failed": self.retry_failed,
            "allow_resubscribe": self.allow_resubscribe,
            "duplicates": self.duplicates,
        }


# --------------------------------------------------------------------------- progress


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

    def __init__(self, enabled: bool, total: int | None, desc: str, unit: str = "row") -> None:
        self._bar: Any = None
        if enabled and (_is_tty() or _in_notebook()):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True)

    def update(self, n: int) -> None:
        if self._bar is not None and n:
            self._bar.update(n)

    def total(self, n: int) -> None:
        if self._bar is not None:
            self._bar.total = n
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# --------------------------------------------------------------------------- the run


@dataclass
class _Scan:
    rejected: dict[int, tuple[str, str, Any]]
    pending: Pending
    keep: KeyFilter
    sizes: list[int]


def _key_of(email: Any, phone: Any) -> str | None:
    if isinstance(email, str) and email:
        return "email:" + email.strip().lower()
    if isinstance(phone, str) and phone:
        return "phone:" + phone.strip()
    return None


class _Run:
    def __init__(self, client: Client, opts: RunOptions) -> None:
        self.client = client
        self.opts = opts
        self.stop = Stop()
        self.run_id = uuid.uuid4().hex[:12]
        self.ledger: Ledger | None = None
        self.snapshot = Snapshot()
        self.plan_opts = PlanOptions(
            dry_run=opts.dry_run,
            allow_resubscribe=opts.allow_resubscribe,
            retry_failed=opts.retry_failed,
        )
        self.flow_opts = FlowOptions(dry_run=opts.dry_run, allow_resubscribe=opts.allow_resubscribe)
        self.error: BaseException | None = None
        self._list_bar: _Progress | None = None
        self._chunk: Chunk | None = None
        self._done_upto = 0
        self._phase = "send"  # "scan" while a re-readable input is read the first time

    # ------------------------------------------------------------------ helpers
    def _validate(self, frame: pd.DataFrame, duplicates: str) -> Any:
        from synckit.validation import validate

        kwargs: dict[str, Any] = {
            "default_region": self.opts.default_region,
            "duplicates": duplicates,
        }
        if self.opts.sms_countries is not None:
            kwargs["sms_countries"] = self.opts.sms_countries
        kwargs.update(self.opts.validate_options)
        return validate(frame, **kwargs)

    def _entries(self, keys: Iterable[str | None]) -> dict[str, LedgerEntry]:
        if self.ledger is None:
            return {}
        wanted = [k for k in keys if k is not None]
        return self.ledger.get(wanted) if wanted else {}

    def _needs_discovery(self, key: str | None, entries: dict[str, LedgerEntry]) -> bool:
        from synckit.ledger import RETRY_STATUSES

        entry = entries.get(key) if key is not None else None
        if entry is None:
            return True
        if self.opts.retry_failed and entry.status not in RETRY_STATUSES:
            return False  # not retried: nothing to find out
        return not (entry.contact_id and entry.payload_hash)

    def _claim(self, contact_id: str, job: Job) -> int | None:
        owner = self.snapshot.claim([(contact_id, job.pos, job.row)])[contact_id]
        return None if owner[0] == job.pos else owner[1]

    def _list_page(self, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        if self._list_bar is None:
            self._list_bar = _Progress(self.opts.progress, None, "reading contacts", "contact")
        result: tuple[list[dict[str, Any]], str | None] = self.executor.call(ListPage(cursor))
        return result

    def _on_page(self, n: int) -> None:
        if self._list_bar is not None:
            self._list_bar.update(n)

    def _look_up(self, jobs: list[LookupJob]) -> list[tuple[LookupJob, Known, int]]:
        out: list[tuple[LookupJob, Known, int]] = []
        by_pos = {j.pos: j for j in jobs}
        dry = self.opts.dry_run

        def make(j: LookupJob) -> Job:
            return Job(
                pos=j.pos,
                row=-1,
                key=None,
                base="",
                make=lambda: lookup_flow(
                    j.email, j.phone, phone_after_miss=dry, by_email=j.by_email, by_phone=j.by_phone
                ),
                skip=lambda reason, in_flight: Known(j.by_email, j.by_phone),
            )

        def done(job: Job, result: Any, tally: Tally) -> None:
            known = result if isinstance(result, Known) else Known()
            out.append((by_pos[job.pos], known, tally.requests))

        self.executor.run((make(j) for j in jobs), done)
        return out

    # ------------------------------------------------------------------ scan
    def _scan(self, source: Source) -> _Scan:
        from synckit.validation import find_duplicates

        parts: list[pd.DataFrame] = []
        sizes: list[int] = []
        reading = _Progress(self.opts.progress, source.total, "checking", "row")
        try:
            for chunk in source.chunks(duplicates="keep", validate=self._validate):
                if self.stop.requested:  # Ctrl-C while reading: nothing was sent yet
                    break
                self._check_mapping(chunk)
                sizes.append(chunk.n)
                reading.update(chunk.n)
                parts.append(self._scan_keys(chunk))
        finally:
            reading.close()
        keys = (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame({"_pos": [], "row": [], "email": [], "phone_number": []})
        )
        del parts
        rejected: dict[int, tuple[str, str, Any]] = {}
        positions_all = keys["_pos"].to_numpy(dtype=np.int64)
        dup = find_duplicates(keys[["row", "email", "phone_number"]], policy=self.opts.duplicates)  # type: ignore[arg-type]
        if len(dup):
            where = dup["_pos"].to_numpy(dtype=np.int64)
            for i, fld, message in zip(
                where.tolist(), dup["field"].tolist(), dup["message"].tolist(), strict=True
            ):
                value = keys[fld].iat[i] if fld in keys.columns else None
                rejected[int(positions_all[i])] = (
                    fld,
                    message,
                    None if pd.isna(value) else value,
                )
            keep = np.ones(len(keys), dtype=bool)
            keep[where] = False
            keys = keys[keep].reset_index(drop=True)
        # A million keys stay arrow strings here; Python strings only a batch at a time.
        emails, phones = keys["email"].array, keys["phone_number"].array
        need = np.ones(len(keys), dtype=bool)
        if self.ledger is not None:
            step = 50_000
            for start in range(0, len(keys), step):
                part_keys = [
                    _key_of(e, p)
                    for e, p in zip(
                        keys["email"].iloc[start : start + step].tolist(),
                        keys["phone_number"].iloc[start : start + step].tolist(),
                        strict=True,
                    )
                ]
                entries = self._entries(part_keys)
                for i, k in enumerate(part_keys):
                    need[start + i] = self._needs_discovery(k, entries)
        pending = Pending(emails[need], phones[need])
        keep_filter = KeyFilter.of(emails, phones)
        del keys, emails, phones
        return _Scan(rejected, pending, keep_filter, sizes)

    def _check_mapping(self, chunk: Chunk) -> None:
        """Preflight: a first chunk read with ``columns=`` that lacks a mapped column stops
        the run before anything is sent (the CLI checks this before the run starts)."""
        if not self.opts.preflight or chunk.start != 0 or chunk.raw is None:
            return
        from synckit.sync.preflight import PreflightError, frame_mapping_problems

        problems = frame_mapping_problems(chunk.raw)
        if problems:
            raise PreflightError(problems)

    @staticmethod
    def _scan_keys(chunk: Chunk) -> pd.DataFrame:
        """Run position, row number, email and phone of the chunk's valid rows (arrow text)."""
        valid = chunk.check.valid
        assert chunk.valid_pos is not None
        part = pd.DataFrame(
            {"_pos": chunk.start + chunk.valid_pos, "row": np.asarray(valid.index, dtype=np.int64)}
        )
        for fld in ("email", "phone_number"):
            col = valid[fld] if fld in valid.columns else pd.Series([None] * len(valid))
            part[fld] = pd.array(col.tolist(), dtype="str")
        return part

    def _reject_seen(self, chunk: Chunk) -> Chunk:
        """A one-pass stream: a key an earlier chunk had makes this row a duplicate."""
        valid = chunk.check.valid
        assert chunk.valid_pos is not None
        if not len(valid):
            return chunk
        rows = np.asarray(valid.index, dtype=np.int64).tolist()
        rejected: dict[int, tuple[str, str, Any]] = {}
        for fld, kind in (("email", "email"), ("phone_number", "phone")):
            if fld not in valid.columns:
                continue
            values = valid[fld].tolist()
            pairs = [(v, r) for v, r in zip(values, rows, strict=True) if isinstance(v, str) and v]
            earlier = self.snapshot.first_seen(kind, pairs)
            for p, v in zip(chunk.valid_pos.tolist(), values, strict=True):
                pos = chunk.start + p
                if isinstance(v, str) and v in earlier and pos not in rejected:
                    rejected[pos] = (
                        fld,
                        f"duplicate of row {earlier[v]} (same {fld}; a one-pass stream of "
                        "chunks sends the first copy)",
                        v,
                    )
        return reject(chunk, rejected) if rejected else chunk

    # ------------------------------------------------------------------ sending
    def _send_chunk(self, chunk: Chunk, *, discover: bool) -> None:
        recorder = self.recorder
        recorder.begin_chunk(chunk)
        check = chunk.check
        assert check is not None and chunk.valid_pos is not None and chunk.invalid_pos is not None
        vpos, ipos = chunk.valid_pos, chunk.invalid_pos
        self._chunk = chunk
        self._done_upto = 0
        for a in range(0, max(chunk.n, 1), SLICE_ROWS):
            if self.stop.requested:
                # Stopping: the rest of the chunk is reported by _skip_current.
                return
            b = min(a + SLICE_ROWS, chunk.n)
            recorder.invalid(chunk, ipos[(ipos >= a) & (ipos < b)])
            sel = np.flatnonzero((vpos >= a) & (vpos < b))
            if len(sel):
                self._send_rows(chunk, check.valid.iloc[sel], vpos[sel], discover=discover)
            recorder.flush(chunk)
            self._done_upto = b
        self._chunk = None

    def _send_rows(
        self, chunk: Chunk, valid: pd.DataFrame, positions: np.ndarray, *, discover: bool
    ) -> None:
        from synckit.validation import to_payloads

        payloads = to_payloads(valid)
        rows = [
            RowIn(
                chunk.start + int(p),
                int(r),
                body,
                _key_of(body.get("email"), body.get("phone_number")),
            )
            for (r, body), p in zip(payloads, positions.tolist(), strict=True)
        ]
        del payloads
        entries = self._entries(r.key for r in rows)
        need = [
            (r.pos, r.body.get("email"), r.body.get("phone_number"))
            for r in rows
            if self._needs_discovery(r.key, entries)
        ]
        if discover and need and not self.stop.requested:
            # A one-pass stream: the listing goes on, chunk by chunk, while it is cheaper.
            self.discovery.list_for(Pending([n[1] for n in need], [n[2] for n in need]), None)
        knowns = self.discovery.known_for(
            [(r.pos, r.body.get("email"), r.body.get("phone_number")) for r in rows]
        )
        if need and not self.stop.requested:
            # What the listing did not answer, looked up now that the rows are at hand.
            self.discovery.look_up(need, knowns, dry_run=self.opts.dry_run)
        del need
        planned = plan_rows(rows, knowns, entries, self.plan_opts)
        del knowns
        owners = self.snapshot.claim(
            [(p.target, p.row.pos, p.row.row) for p in planned if p.target]
        )
        apply_owners(planned, owners)

        recorder = self.recorder
        jobs: list[Job] = []
        for p in planned:
            step = p.step
            cp = p.row.pos - chunk.start
            if isinstance(step, Outcome):
                recorder.outcome(chunk, cp, p.row.body, p.row.key, step)
            elif self._inline(step):
                out = drive(step_flow(step, self.flow_opts), _no_request)
                recorder.outcome(chunk, cp, p.row.body, p.row.key, out)
            else:
                jobs.append(self._job(p.row, step, p.base))
        if jobs:

            def done(job: Job, result: Any, tally: Tally) -> None:
                assert job.body is not None
                recorder.outcome(chunk, job.pos - chunk.start, job.body, job.key, result)

            self.executor.run(jobs, done)

    def _inline(self, step: Create | Update) -> bool:
        """A dry-run step that needs no request (no write, no read): decided here."""
        if not self.opts.dry_run:
            return False
        if isinstance(step, Create):
            return True
        return step.current is not None or not needs_read(step.diff, self.opts.allow_resubscribe)

    def _job(self, row: RowIn, step: Create | Update, base: str) -> Job:
        opts = self.flow_opts
        return Job(
            pos=row.pos,
            row=row.row,
            key=row.key,
            base=base,
            make=lambda: step_flow(step, opts),
            skip=lambda reason, in_flight: skipped(reason, in_flight=in_flight),
            body=row.body,
        )

    # ------------------------------------------------------------------ stopping
    def _skip_current(self, reason: Abort) -> None:
        """Rows of the chunk being sent that were not recorded: skipped with ``reason``."""
        chunk = self._chunk
        if chunk is None:
            return
        self._chunk = None
        recorder = self.recorder
        done = recorder.pending_positions(chunk)
        todo = np.arange(self._done_upto, chunk.n, dtype=np.int64)
        self._unsent(chunk, todo[~np.isin(todo, done)], skipped(reason))

    def _skip_all(self, source: Source, reason: Abort) -> None:
        """Stopped before sending anything: every row once, ``skipped`` (or ``invalid``)."""
        for chunk in source.chunks(duplicates="keep", validate=None):
            self.recorder.begin_chunk(chunk)
            self._chunk, self._done_upto = chunk, 0
            self._skip_current(reason)

    def _skip_rest(self, source: Source, reason: Abort) -> None:
        """Input not read yet is reported too: each row once, ``skipped`` (or ``invalid``)."""
        out = skipped(reason)
        for chunk in source.rest():
            self.recorder.begin_chunk(chunk)
            self._unsent(chunk, np.arange(chunk.n, dtype=np.int64), out)

    def _unsent(self, chunk: Chunk, todo: np.ndarray, out: Outcome) -> None:
        """Record rows at ``todo`` that will not be sent: ``out``, or ``invalid`` where the
        chunk was validated and found them so (known for free: still invalid)."""
        if chunk.invalid_pos is not None:
            bad = np.isin(todo, chunk.invalid_pos)
            self.recorder.invalid(chunk, todo[bad])
            todo = todo[~bad]
        self.recorder.skipped(chunk, todo, out)
        self.recorder.flush(chunk)

    # ------------------------------------------------------------------ run
    def __call__(self, data: Any) -> SyncReport:
        global _last_report
        opts = self.opts
        started = datetime.now(UTC)
        source = adapt(data)
        lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if opts.state is not None:
            from synckit.ledger import Ledger

            if opts.dry_run:
                self.ledger = Ledger.open_existing(opts.state)  # never creates the file
            else:
                self.ledger = Ledger(opts.state)
                lock = self.ledger.lock()
        bar = _Progress(opts.progress, source.total, "dry run" if opts.dry_run else "sync")
        interrupt: KeyboardInterrupt | None = None
        try:
            with lock:
                if self.ledger is not None and not opts.dry_run:
                    self.run_id = self.ledger.begin_run(
                        source=opts.source or source.description, options=opts.ledger_options()
                    )
                self._log_started(source)
                salt = "" if self.ledger is not None and not opts.dry_run else self.run_id
                limit = opts.in_flight_limit or _default_limit(self.client, opts.workers)
                self.executor = Executor(
                    self.client,
                    workers=int(opts.workers),
                    in_flight_limit=limit,
                    stop=self.stop,
                    salt=salt,
                    claim=self._claim,
                    preflight=opts.preflight,
                )
                self.discovery = Discovery(
                    self.snapshot,
                    list_page=self._list_page,
                    look_up=self._look_up,
                    stopped=lambda: self.stop.requested,
                    on_page=self._on_page,
                )
                self.recorder = Recorder(
                    ledger=self.ledger,
                    run_id=self.run_id,
                    dry_run=opts.dry_run,
                    batch_size=int(opts.batch_size),
                    progress=bar,
                )
                try:
                    with SignalStop(self.stop):
                        try:
                            self._sync(source, bar)
                        except KeyboardInterrupt as exc:
                            interrupt = exc
                            self.stop.request(
                                TERMINATED if isinstance(exc, Terminated) else INTERRUPTED
                            )
                            # The first signal's reason (SIGTERM or Ctrl-C) names the rows.
                            stopped = self.stop.reason or INTERRUPTED
                            if self._phase == "send":
                                self._skip_current(stopped)
                                self._skip_rest(source, stopped)
                            else:
                                self._skip_all(source, stopped)
                        except Exception as exc:
                            # e.g. a chunk that cannot be read half-way through a stream: rows
                            # already sent were changed in the platform and must be reported.
                            self.error = exc
                            # Unreadable input or a bad setting: the command line's 2.
                            usage = isinstance(exc, (InputError, ConfigError, StateLockedError))
                            where = (
                                "input rows after that point are not in this report"
                                if self._phase == "send"
                                else "nothing was sent (the whole input is read first)"
                            )
                            reason = Abort(
                                "run_failed",
                                f"{type(exc).__name__}: {redact(str(exc))}; {where}",
                                2 if usage else 1,
                            )
                            self.stop.request(reason, exc)
                            with contextlib.suppress(Exception):
                                self._skip_current(reason)
                finally:
                    self.executor.close(wait=interrupt is None and self.error is None)
                report = self.recorder.build(started=started, aborted=self.stop.reason)
                report.max_failure_rate = opts.max_failure_rate
                if self.ledger is not None and not opts.dry_run:
                    with contextlib.suppress(SynckitError, OSError):
                        self.ledger.end_run(
                            self.run_id, counts=report.counts(), exit_code=report.exit_code()
                        )
        finally:
            bar.close()
            if self._list_bar is not None:
                self._list_bar.close()
            self.snapshot.close()
            if self.ledger is not None:
                self.ledger.close()
        with _last_report_lock:
            _last_report = report
        counts = report.counts()
        stats = self.discovery.stats()
        log.debug(
            "sync %s: %s; discovery: %d pages, %d look-ups",
            "aborted" if report.aborted else "finished",
            ", ".join(f"{k} {v}" for k, v in counts.items()),
            stats["pages"],
            stats["lookups"],
            extra={"run_id": report.run_id, "counts": counts, "discovery": stats},
        )
        report.discovery = stats
        why = self.stop.reason
        if interrupt is not None or (why is not None and why.code == "interrupted"):
            stopped_by = interrupt or (Terminated() if why == TERMINATED else KeyboardInterrupt())
            stopped_by.report = report  # type: ignore[attr-defined]
            raise stopped_by
        if self.error is not None:
            self.error.report = report  # type: ignore[attr-defined]
            raise self.error
        if why is not None and opts.raise_on_error and self.stop.error is not None:
            self.stop.error.report = report  # type: ignore[attr-defined]
            raise self.stop.error
        return report

    def _log_started(self, source: Source) -> None:
        """One ``run_started`` log event: a run killed later still left a trace with its id."""
        from synckit.ledger import safe_options

        opts = self.opts
        options = safe_options({**opts.ledger_options(), **opts.log_fields})
        logging.getLogger("synckit.run").info(
            "sync %s started: %s",
            self.run_id,
            opts.source or source.description,
            extra={
                "event": "run_started",
                "run_id": self.run_id,
                "source": opts.source or source.description,
                "dry_run": opts.dry_run,
                "state": None if opts.state is None else os.fspath(opts.state),
                "pid": os.getpid(),
                "options": options,
            },
        )

    def _sync(self, source: Source, bar: _Progress) -> None:
        if source.rereadable:
            self._phase = "scan"
            scan = self._scan(source)
            if self.stop.requested:
                del scan
                self._skip_all(source, self.stop.reason or INTERRUPTED)
                return
            bar.total(sum(scan.sizes))
            self.discovery.list_for(scan.pending, scan.keep)
            rejected, sizes = scan.rejected, scan.sizes
            del scan
            _release_memory()  # the scan's keys, before the send's report frames grow
            self._phase = "send"
            for i, chunk in enumerate(source.chunks(duplicates="keep", validate=self._validate)):
                if i >= len(sizes) or chunk.n != sizes[i]:
                    raise SynckitError(
                        "the input changed between its scan and its sending (a chunk of "
                        f"{chunk.n} rows where the scan read "
                        f"{sizes[i] if i < len(sizes) else 0}); run again"
                    )
                self._send_chunk(reject(chunk, rejected), discover=False)
                if self.stop.requested:
                    self._skip_current(self.stop.reason or INTERRUPTED)
                    break
        else:
            for chunk in source.chunks(duplicates=self.opts.duplicates, validate=self._validate):
                self._check_mapping(chunk)
                self._send_chunk(self._reject_seen(chunk), discover=True)
                if self.stop.requested:
                    self._skip_current(self.stop.reason or INTERRUPTED)
                    break
        reason = self.stop.reason
        if reason is not None:
            self._skip_rest(source, reason)


def _default_limit(client: Any, workers: int) -> Callable[[], int]:
    """Requests to keep in flight: the client's concurrency controller when it has one
    (``client.concurrency.limit``, moving with the server's answers), else ``workers``."""
    controller = getattr(client, "concurrency", None)
    if controller is not None and hasattr(controller, "limit"):
        return lambda: int(controller.limit)
    return lambda: workers


def _release_memory() -> None:
    """Give memory freed by a big step back to the operating system.

    A million rows' keys are tens of MB freed at once; glibc keeps freed heap
    pages for reuse unless asked, and the rows report that grows next would
    then sit on top of them. ``malloc_trim`` exists in glibc only: elsewhere
    this does nothing.
    """
    gc.collect()
    with contextlib.suppress(Exception):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def _no_request(ask: Any) -> Any:
    raise AssertionError(f"a dry-run step decided in the planner asked for {ask!r}")


def run_upsert(data: Any, client: Client, opts: RunOptions) -> SyncReport:
    """Sync ``data`` through ``client`` with ``opts`` (what :func:`synckit.upsert` does)."""
    opts = opts.checked()
    if _is_dask(data):
        data = _dask_chunks(data, opts)
    return _Run(client, opts)(data)


def _is_dask(data: Any) -> bool:
    """A Dask DataFrame or a validation of one (known without importing Dask)."""
    module = type(data).__module__
    return module.split(".")[0] == "dask" or module == "synckit.dask"


def _dask_chunks(data: Any, opts: RunOptions) -> Callable[[], Iterator[Any]]:
    """Dask input as a re-readable source of pandas ``Validation`` chunks (issue 14).

    Validated once on the cluster (duplicates settled across every partition
    and file), then each read streams the partitions to this process one at a
    time, each indexed by ``row`` with its ``source`` column: the engine's
    scan and send passes each hold about two partitions.
    """
    from synckit import dask as sdask

    # Issue 12's mapping check: a file that lacks a mapped column stops the run before
    # the cluster validates anything (the pandas path checks the first chunk's attrs).
    problems = sdask.mapping_problems(data)
    if problems and opts.preflight:
        from synckit.sync.preflight import PreflightError

        raise PreflightError(list(problems))
    check = data
    if not isinstance(check, sdask.DaskValidation):
        check = sdask.validate(
            data,
            default_region=opts.default_region,
            sms_countries=opts.sms_countries,
            duplicates=opts.duplicates,
            **opts.validate_options,
        )

    def chunks() -> Iterator[Any]:
        return sdask.iter_validations(check)

    chunks.__name__ = "dask partitions"
    return chunks
