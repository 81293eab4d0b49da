"""The executor: worker threads, the client, stopping (Ctrl-C, aborts), the unreachable breaker.

It runs :mod:`~synckit.sync.flows` on a thread pool, answering each flow's asks
with the client (idempotency keys derived from the row's key, the operation,
the target and the body) and the run's claim registry. What it keeps in flight
comes from ``in_flight_limit()``, re-read before every dispatch (a concurrency
controller can move it while the run goes); ``workers`` is the ceiling.

Stopping is one mechanism, :class:`Stop`: a request with a reason (an
:class:`~synckit.report.Abort`). Ctrl-C (:class:`SignalStop`), a 401/403, and
the unreachable breaker all call :meth:`Stop.request`; a signal handler for
another signal can too. Once stopped, nothing new is dispatched, a flow between
two of its requests ends ``skipped`` ("nothing was changed for this row"),
requests in flight finish (after Ctrl-C, within :data:`INTERRUPT_GRACE`
seconds), and every job not started is ``skipped`` with the reason's code.

Example:
    >>> stop = Stop()
    >>> stop.request(Abort("interrupted", "Ctrl-C")), stop.request(Abort("other"))
    (True, False)
    >>> stop.reason.code
    'interrupted'
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from synckit._rows import canonical_json
from synckit.config import redact
from synckit.errors import APIError, AuthError, PermissionDenied, TransportError
from synckit.report import Abort
from synckit.sync.flows import Ask, Claim, Find, Flow, Get, Patch, Post, drive
from synckit.sync.outcome import Outcome, problem

if TYPE_CHECKING:
    from synckit.client import Client

__all__ = [
    "INTERRUPT_GRACE",
    "UNREACHABLE_AFTER",
    "Executor",
    "Job",
    "ListPage",
    "SignalStop",
    "Stop",
    "Terminated",
    "abort_for",
    "skipped",
    "stop_on_sigterm",
]

log = logging.getLogger("synckit")

#: Seconds the run waits for requests in flight after Ctrl-C before it gives up on them.
INTERRUPT_GRACE: Final = 5.0
#: Rows in a row that may end without any answer from the server (a TransportError,
#: each *after* the client's own retries) before the run stops as ``unreachable``.
#: Each such row already spent the client's whole retry window, so a dead server
#: costs a few windows instead of one per row (hours on a big file). One or two in a
#: row can be a passing network fault (dropped connections under load); three with no
#: HTTP answer from any row in between means the server is gone. Any answer resets it.
UNREACHABLE_AFTER: Final = 3


@dataclass(frozen=True, slots=True)
class ListPage:
    """``GET /contacts?limit=100&cursor=...``: answered with ``(contacts, next_cursor)``."""

    cursor: str | None = None
    limit: int = 100


# --------------------------------------------------------------------------- stopping


class Stop:
    """A request to stop the run, with its reason; the first reason wins. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reason: Abort | None = None
        #: The exception behind the reason, if any (``raise_on_error`` raises it).
        self.error: BaseException | None = None
        self.event = threading.Event()

    def request(self, reason: Abort, error: BaseException | None = None) -> bool:
        """Ask the run to stop; True if this call set the reason (False: already stopping)."""
        with self._lock:
            if self._reason is not None:
                return False
            self._reason = reason
            self.error = error
        self.event.set()
        if reason.code != "interrupted":
            log.error("stopping the run: %s", reason)
        return True

    @property
    def reason(self) -> Abort | None:
        return self._reason

    @property
    def requested(self) -> bool:
        return self._reason is not None


#: The reason Ctrl-C gives; 130 = 128 + SIGINT, what a shell reports for a job Ctrl-C stopped.
INTERRUPTED: Final = Abort("interrupted", "Ctrl-C: rows not sent are skipped", 130)
#: The reason SIGTERM gives (systemd, container runtimes and ``kill`` send it to stop a
#: job); 143 = 128 + SIGTERM. The rows' code stays ``interrupted``: the same stop.
TERMINATED: Final = Abort("interrupted", "SIGTERM: rows not sent are skipped", 143)


class Terminated(KeyboardInterrupt):
    """The ``KeyboardInterrupt`` a SIGTERM raises once :func:`stop_on_sigterm` is in force.

    A ``KeyboardInterrupt`` so that every ``except KeyboardInterrupt`` that
    cleans up after Ctrl-C cleans up after SIGTERM too; its own class so the
    command line can exit 143 instead of 130.
    """


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def stop_on_sigterm() -> None:
    """Treat SIGTERM like Ctrl-C in this process (main thread only): what ``synckit sync`` does.

    Outside a run, SIGTERM then raises :class:`Terminated`; during a run,
    :class:`SignalStop` turns it into a clean stop (requests in flight
    finish, unsent rows are ``skipped``, report and ledger written, then
    :class:`Terminated` is raised with ``exc.report``). The library does not
    do this on its own: a program that never asked keeps SIGTERM's default
    (the process ends at once; a ledger still resumes without duplicates).

    Example:
        >>> import signal
        >>> before = signal.getsignal(signal.SIGTERM)
        >>> stop_on_sigterm(); signal.getsignal(signal.SIGTERM) is _raise_terminated
        True
        >>> _ = signal.signal(signal.SIGTERM, before)
    """
    signal.signal(signal.SIGTERM, _raise_terminated)


class SignalStop:
    """Turns a signal into a :class:`Stop` request the run acts on at safe points.

    A ``KeyboardInterrupt`` raised at an arbitrary line could lose rows
    half-recorded; a stop request is honoured between requests, so the report
    and the ledger stay consistent. A second signal raises
    ``KeyboardInterrupt`` at once, for the impatient. Installed only from the
    main thread, and only over Python's default handler (a notebook kernel's
    interrupt arrives the same way). ``signals`` maps each signal to the
    reason it stops with (default: SIGINT -> :data:`INTERRUPTED`, SIGTERM ->
    :data:`TERMINATED`). SIGTERM is taken over only where the program asked
    for it with :func:`stop_on_sigterm`, never over its default.
    """

    def __init__(self, stop: Stop, signals: Mapping[int, Abort] | None = None) -> None:
        self._stop = stop
        self._signals: dict[int, Abort] = (
            dict(signals)
            if signals is not None
            else {int(signal.SIGINT): INTERRUPTED, int(signal.SIGTERM): TERMINATED}
        )
        self._previous: dict[int, Any] = {}
        self._hit: set[int] = set()

    def _handler(self, signum: int, frame: Any) -> None:
        if signum in self._hit:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        self._hit.add(signum)
        self._stop.request(self._signals[signum])

    @staticmethod
    def _ours(signum: int, current: Any) -> bool:
        """Whether the handler in place may be replaced for the run (and put back after)."""
        if signum == signal.SIGTERM:
            return current is _raise_terminated
        return current in (signal.default_int_handler, signal.SIG_DFL)

    def __enter__(self) -> SignalStop:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in self._signals:
            with contextlib.suppress(ValueError, TypeError, OSError):
                current = signal.getsignal(signum)
                if self._ours(signum, current):
                    self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            with contextlib.suppress(ValueError, TypeError, OSError):
                signal.signal(signum, previous)
        self._previous.clear()


def abort_for(err: APIError) -> Abort:
    """The run's :class:`Abort` for an error that stops it (credentials, permission, no server).

    Example:
        >>> abort_for(PermissionDenied("no", status=403, code="forbidden")).exit_code
        3
        >>> abort_for(TransportError("refused")).exit_code
        4
    """
    if isinstance(err, TransportError):
        # 4, not 1: a night the platform never heard of is no normal night.
        return Abort(
            "unreachable",
            f"{UNREACHABLE_AFTER} rows in a row got no answer from the server after retries "
            f"({err.message}); the rows not sent are skipped",
            4,
        )
    if isinstance(err, PermissionDenied):
        return Abort("permission_denied", str(err), 3)
    if isinstance(err, AuthError):
        code = err.code if err.code in ("invalid_client", "invalid_scope") else "auth_error"
        return Abort(code, str(err), 3)
    return Abort(err.code or type(err).__name__, str(err), 1)


def skipped(reason: Abort, *, in_flight: bool = False) -> Outcome:
    """The outcome of a row the stopped run did not send (or could not see finish)."""
    if in_flight:
        text = "not confirmed: interrupted while the request was in flight"
    elif reason.code == "interrupted":
        text = "not sent: interrupted"
    else:
        text = f"not sent: the run stopped ({reason})"
    return Outcome("skipped", error_code=reason.code, error_message=redact(text))


# --------------------------------------------------------------------------- jobs


@dataclass(eq=False)
class Job:
    """A flow to run on a worker.

    ``key``/``base``/``row`` feed the idempotency keys; ``make()`` builds the
    flow; ``skip(reason, in_flight)`` is the result of a job that never ran or
    never finished; ``body`` names the row's values in a crash message.
    """

    pos: int
    row: int
    key: str | None
    base: str
    make: Callable[[], Flow]
    skip: Callable[[Abort, bool], Any]
    body: Mapping[str, Any] | None = None


class Tally:
    """A job's HTTP requests: attempts (retries included), the last status and request id."""

    __slots__ = ("attempts", "request_id", "requests", "status")

    def __init__(self) -> None:
        self.attempts = 0
        self.requests = 0
        self.status: int | None = None
        self.request_id: str | None = None


# --------------------------------------------------------------------------- executor


class Executor:
    """Runs jobs on ``workers`` threads through ``client`` (see the module docs).

    ``claim(contact_id, job)`` answers a flow's :class:`~synckit.sync.flows.Claim`:
    None when the job's row may write the contact, else the row that holds it.
    ``salt`` goes into every idempotency key ("" with a ledger, so a resumed
    run replays; the run id without one, so a re-run is not answered from
    yesterday's replay).
    """

    def __init__(
        self,
        client: Client,
        *,
        workers: int,
        in_flight_limit: Callable[[], int],
        stop: Stop,
        salt: str,
        claim: Callable[[str, Job], int | None],
        grace: float = INTERRUPT_GRACE,
        preflight: bool = False,
    ) -> None:
        self.client = client
        self.workers = workers
        self.in_flight_limit = in_flight_limit
        self.stop = stop
        self.salt = salt
        self._claim = claim
        self.grace = grace
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synckit-sync")
        self._lock = threading.Lock()
        self._no_answer_streak = 0
        # The same answer no Contacts API gives, rows in a row (preflight.foreign_answer).
        self._foreign: tuple[Any, int] = (None, 0)
        # The endpoint check before the run's first request (preflight=True): done once.
        self._probe_lock = threading.Lock()
        self._checked = not preflight or bool(getattr(client, "endpoint_verified", False))

    def close(self, *, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)

    # ------------------------------------------------------------------ requests
    def _ikey(self, op: str, job: Job | None, target: str, body: Mapping[str, Any]) -> str:
        who = (job.key or f"row:{job.row}") if job is not None else ""
        base = job.base if job is not None else ""
        seed = "\x1f".join((op, who, target, base, self.salt, canonical_json(body)))
        return f"synckit-{op}-" + hashlib.sha256(seed.encode()).hexdigest()[:48]

    def _send(self, ask: Ask | ListPage, job: Job | None) -> Any:
        client = self.client
        if isinstance(ask, Post):
            key = self._ikey(ask.op, job, ask.replaced, ask.body)
            return client.create_contact(ask.body, idempotency_key=key)
        if isinstance(ask, Patch):
            key = self._ikey("update", job, ask.contact_id, ask.body)
            return client.update_contact(ask.contact_id, ask.body, idempotency_key=key)
        if isinstance(ask, Get):
            return client.get_contact(ask.contact_id)
        if isinstance(ask, Find):
            return client.find_contacts(email=ask.email, phone_number=ask.phone_number)
        if isinstance(ask, ListPage):
            return client.list_page(limit=ask.limit, cursor=ask.cursor)
        raise TypeError(f"cannot send {ask!r}")

    def _answer(self, ask: Ask | ListPage, job: Job | None, tally: Tally) -> Any:
        if isinstance(ask, Claim):
            assert job is not None
            return self._claim(ask.contact_id, job)
        tally.requests += 1
        try:
            result = self._send(ask, job)
        except APIError as err:
            tally.attempts += max(int(err.attempts or 1), 1)
            tally.status, tally.request_id = err.status, err.request_id
            raise
        info = self.client.last_call
        if info is not None:
            tally.attempts += info.attempts
            tally.status, tally.request_id = info.status, info.request_id
        else:  # a client without last_call: count the call
            tally.attempts += 1
        return result

    # ------------------------------------------------------------------ preflight
    def check_endpoint(self) -> None:
        """Before the run's first request: is this the Contacts API, is the credential good?

        One ``GET /contacts?limit=1`` (:func:`~synckit.sync.preflight.check_endpoint`),
        made once by whichever thread gets here first while the others wait;
        a problem stops the run before anything is sent. A run whose first
        request is a listing page skips this: the page is the check (:meth:`call`).
        """
        if self._checked:
            return
        from synckit.sync.preflight import check_endpoint

        with self._probe_lock:
            if self._checked or self.stop.requested:
                return
            try:
                problem = check_endpoint(self.client)
            finally:
                self._checked = True
            if problem is not None:
                self.stop.request(problem.abort())

    def _probe_with(self, ask: ListPage) -> Any:
        """The first listing page as the endpoint check: no extra request."""
        from synckit.sync.preflight import endpoint_problem

        with self._probe_lock:
            if self._checked:
                return self._call(ask)
            try:
                return self._call(ask)
            except APIError as err:
                problem = endpoint_problem(err, self.client)
                if problem is not None:
                    self.stop.request(problem.abort(), err)
                raise
            finally:
                self._checked = True

    def _judge(self, err: BaseException | None, tally: Tally) -> None:
        """Stop the run on credentials/permission, on rows with no answer at all, and on
        rows that keep getting the same answer no Contacts API gives."""
        self._judge_foreign(err, tally)
        if isinstance(err, (AuthError, PermissionDenied)):
            self.stop.request(abort_for(err), err)
        elif isinstance(err, TransportError):
            with self._lock:
                self._no_answer_streak += 1
                tripped = self._no_answer_streak >= UNREACHABLE_AFTER
            if tripped:
                self.stop.request(abort_for(err), err)
        if tally.status is not None:
            with self._lock:  # the server answered (this job's last call): reachable
                self._no_answer_streak = 0

    def _judge_foreign(self, err: BaseException | None, tally: Tally) -> None:
        from synckit.sync.preflight import FOREIGN_AFTER, foreign_answer, streak_problem

        signature = foreign_answer(err)
        with self._lock:
            if signature is None:
                if tally.status is not None:  # a proper answer: the streak is broken
                    self._foreign = (None, 0)
                return
            last, count = self._foreign
            count = count + 1 if last == signature else 1
            self._foreign = (signature, count)
        if count >= FOREIGN_AFTER:
            assert isinstance(err, APIError)
            self.stop.request(streak_problem(err, self.client, count).abort(), err)

    def call(self, ask: ListPage | Ask) -> Any:
        """One request on this thread (a listing page), judged like a job's requests.

        The run's first listing page is also its endpoint check (preflight).
        """
        if not self._checked and isinstance(ask, ListPage):
            return self._probe_with(ask)
        return self._call(ask)

    def _call(self, ask: ListPage | Ask) -> Any:
        tally = Tally()
        try:
            return self._answer(ask, None, tally)
        except APIError as err:
            self._judge(err, tally)
            raise
        finally:
            if tally.status is not None:
                self._judge(None, tally)

    # ------------------------------------------------------------------ jobs
    def _halted(self) -> Outcome | None:
        reason = self.stop.reason
        return skipped(reason) if reason is not None else None

    def _work(self, job: Job) -> tuple[Any, Tally]:
        tally = Tally()
        if not self._checked:
            self.check_endpoint()
        reason = self.stop.reason
        if reason is not None:
            return job.skip(reason, False), tally
        try:
            result = drive(
                job.make(), lambda ask: self._answer(ask, job, tally), halted=self._halted
            )
        except Exception as exc:  # a bug must cost one row, not the run
            log.exception("unexpected error on row %s", job.row)
            text = redact(f"{type(exc).__name__}: {exc}")
            result = Outcome(
                "failed",
                error_code="unexpected_error",
                error_message=text,
                errors=[problem("unexpected_error", text)],
            )
        self._judge(getattr(result, "error", None), tally)
        if isinstance(result, Outcome):
            result.attempts = tally.attempts
            if result.request_id is None:
                result.request_id = tally.request_id
            if result.http_status is None and result.status != "skipped":
                result.http_status = tally.status
        return result, tally

    def _limit(self) -> int:
        try:
            wanted = int(self.in_flight_limit())
        except Exception:  # a controller that fails must not stop the run
            log.exception("in_flight_limit() failed; using workers=%d", self.workers)
            wanted = self.workers
        return max(1, min(self.workers, wanted))

    def run(self, jobs: Iterable[Job], on_done: Callable[[Job, Any, Tally], None]) -> None:
        """Run every job; ``on_done(job, result, tally)`` is called on this thread for each,
        exactly once, in completion order (jobs not run get ``job.skip(reason, False)``)."""
        pending: dict[Future[tuple[Any, Tally]], Job] = {}
        it: Iterator[Job] = iter(jobs)
        try:
            for job in it:
                while len(pending) >= self._limit() and not self.stop.requested:
                    self._collect(pending, on_done)
                reason = self.stop.reason
                if reason is not None:
                    on_done(job, job.skip(reason, False), Tally())
                    continue
                pending[self._pool.submit(self._work, job)] = job
            self._finish(pending, on_done)
        except KeyboardInterrupt:
            # Python's own handler (SignalStop not installed) or a second Ctrl-C.
            first = self.stop.request(INTERRUPTED)
            if first:
                with contextlib.suppress(KeyboardInterrupt):
                    self._finish(pending, on_done)
            self._abandon(pending, on_done)
            reason = self.stop.reason or INTERRUPTED
            for job in it:
                on_done(job, job.skip(reason, False), Tally())

    def _collect(
        self,
        pending: dict[Future[tuple[Any, Tally]], Job],
        on_done: Callable[[Job, Any, Tally], None],
        timeout: float = 0.2,
    ) -> None:
        if not pending:
            return
        done, _ = wait_futures(list(pending), timeout=timeout, return_when=FIRST_COMPLETED)
        for fut in done:
            job = pending.pop(fut)
            result, tally = fut.result()
            on_done(job, result, tally)

    def _finish(
        self,
        pending: dict[Future[tuple[Any, Tally]], Job],
        on_done: Callable[[Job, Any, Tally], None],
    ) -> None:
        """Wait for what is in flight; after Ctrl-C only :attr:`grace` seconds."""
        deadline: float | None = None
        while pending:
            reason = self.stop.reason
            if reason is not None and reason.code == "interrupted" and deadline is None:
                deadline = time.monotonic() + self.grace
            if deadline is not None and time.monotonic() >= deadline:
                break
            self._collect(pending, on_done)
        self._abandon(pending, on_done)

    def _abandon(
        self,
        pending: dict[Future[tuple[Any, Tally]], Job],
        on_done: Callable[[Job, Any, Tally], None],
    ) -> None:
        reason = self.stop.reason or INTERRUPTED
        for fut, job in list(pending.items()):
            if fut.done() and not fut.cancelled():
                result, tally = fut.result()
            else:
                fut.cancel()
                result, tally = job.skip(reason, True), Tally()
            on_done(job, result, tally)
        pending.clear()
