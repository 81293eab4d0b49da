"""The request pacer one :class:`synckit.Client` shares across all its threads.

Why pacing instead of a token bucket: the server counts requests per second
(``X-RateLimit-*``), and any burst we allow ourselves lands in the server's
window on top of whatever is already in flight. Spacing requests evenly at a
little under the announced limit (95 %) keeps every server window (fixed,
sliding or bucket) under the limit, so 429s become rare, while 16 threads
waiting on their slots still fill every slot. Slots missed while every thread
was busy may be caught up within half the remaining headroom (a GCRA
tolerance), so a one-second span never holds more than the limit.

The schedule itself (the next free slot, a pause, the pauses' running total)
lives in a *budget*: :class:`MemoryBudget` for one process, or a shared one
(``synckit._ratestore``: a file for the processes of one host, Redis for
several hosts) whose every step is atomic, so that everyone holding the same
budget takes slots from one evenly spaced sequence. The steps are the pure
functions :func:`reserve_slot` and :func:`hold_schedule`; the Redis budget runs
the same steps in Lua (a test checks both agree).

Example:
    >>> pacer = RatePacer(rate_limit=100)
    >>> pacer.rate
    95.0
    >>> pacer.acquire() >= 0.0
    True
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Budget",
    "BudgetUnavailable",
    "MemoryBudget",
    "RatePacer",
    "Schedule",
    "hold_schedule",
    "reserve_slot",
    "tolerance_for",
]

log = logging.getLogger("synckit")

# Pace at this share of the limit: clock jitter between us and the server and
# the request that sneaks into the next window must not tip a window over.
DEFAULT_HEADROOM = 0.95
# A schedule further ahead than this is not a queue but a clock that jumped
# back (or a corrupt file): it is started afresh instead of obeyed.
MAX_AHEAD = 3600.0
# After a shared budget fails, this process paces on its own for this long
# before asking the budget again (a dead Redis must not cost every request a
# connect timeout).
RETRY_SHARED_AFTER = 5.0
_WARN_EVERY = 30.0


@dataclass(slots=True)
class Schedule:
    """The whole state of a paced budget, in the clock of whoever keeps it.

    ``next`` is the theoretical arrival time of the next request (GCRA's TAT),
    ``paused_until`` the end of the current pause, ``shift`` the total of all
    pauses so far (threads sleeping towards a slot move it by the growth).
    """

    next: float = 0.0
    paused_until: float = 0.0
    shift: float = 0.0


def reserve_slot(s: Schedule, now: float, interval: float, tolerance: float) -> float:
    """Take the next send slot at or after ``now``; returns its time (``s`` advances).

    Slots are ``interval`` apart; one may come up to ``tolerance`` early when
    earlier slots went unused, so that a short stall is caught up but any
    one-second span still holds at most ``(1 + tolerance) / interval + 1``.
    ``interval == 0`` means unpaced (only a pause holds the request back).

    Example:
        >>> s = Schedule()
        >>> [reserve_slot(s, 10.0, 0.5, 0.0) for _ in range(3)]
        [10.0, 10.5, 11.0]
    """
    if s.next > now + MAX_AHEAD or s.paused_until > now + MAX_AHEAD:
        # Started afresh at this moment (not at 0: a clock may count from anywhere).
        s.next = s.paused_until = now
    slot = now if now > s.paused_until else s.paused_until
    if interval:
        early = s.next - tolerance
        if early > slot:
            slot = early
        s.next = (s.next if s.next > slot else slot) + interval
    return slot


def hold_schedule(s: Schedule, now: float, seconds: float) -> None:
    """Nobody sends for ``seconds`` from ``now`` (a 429's ``Retry-After``).

    Slots already handed out move back by the time the pause grew, keeping
    their spacing, and ``shift`` grows by the same amount (sleepers follow it).

    Example:
        >>> s = Schedule(next=10.2)
        >>> hold_schedule(s, 10.0, 0.5); (s.paused_until, s.next, s.shift)
        (10.5, 10.7, 0.5)
    """
    until = now + seconds
    start = max(now, s.paused_until)
    if until <= start:  # nothing to hold (also a zero or negative pause)
        return
    delta = until - start
    s.paused_until = until
    s.shift += delta
    s.next = s.next + delta if s.next > now else until


def tolerance_for(limit: float, rate: float) -> float:
    """How early a slot may come (seconds) when pacing at ``rate`` under ``limit``.

    Slots missed while every thread was busy may be caught up, but only so far
    that any one-second span still holds at most ``rate * (1 + tol) + 1``
    requests: half the headroom, so the limit is never reached.

    Example:
        >>> round(tolerance_for(200, 190), 4)
        0.0237
    """
    return max(0.0, 0.5 * (limit - 1 - rate) / rate) if rate and limit else 0.0


class BudgetUnavailable(Exception):
    """A shared budget could not be asked (the pacer then paces on its own for a while)."""


class Budget(Protocol):
    """Where a pacer's schedule lives. Every method is atomic across all its users."""

    def reserve(self, interval: float, tolerance: float) -> tuple[float, float, float]:
        """Take a slot: (seconds to wait for it, the pauses' total, the limit known to the
        budget or 0). The slower of ``interval`` and the budget's own is used."""
        ...

    def hold(self, seconds: float) -> None:
        """Pause everyone for ``seconds``."""
        ...

    def publish(self, limit: float, interval: float, tolerance: float) -> None:
        """Record the server's limit (and its pace) for everyone holding the budget."""
        ...

    def seen_shift(self) -> float:
        """The pauses' total as last seen by this process."""
        ...

    def close(self) -> None: ...


class MemoryBudget:
    """A schedule kept in this process, guarded by a lock (the default budget).

    Example:
        >>> b = MemoryBudget(clock=lambda: 5.0)
        >>> b.reserve(0.25, 0.0)[0], b.reserve(0.25, 0.0)[0]
        (0.0, 0.25)
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.schedule = Schedule()

    def reserve(self, interval: float, tolerance: float) -> tuple[float, float, float]:
        s = self.schedule
        with self._lock:
            now = self._clock()
            slot = reserve_slot(s, now, interval, tolerance)
            return slot - now, s.shift, 0.0

    def hold(self, seconds: float) -> None:
        with self._lock:
            hold_schedule(self.schedule, self._clock(), seconds)

    def publish(self, limit: float, interval: float, tolerance: float) -> None:
        pass  # nobody else to tell

    def seen_shift(self) -> float:
        return self.schedule.shift

    @property
    def paused_until(self) -> float:
        return self.schedule.paused_until

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "MemoryBudget()"


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number else None  # NaN guard


class RatePacer:
    """Thread-safe pacer: hands out evenly spaced send slots.

    ``rate_limit`` (requests per second) is the caller's own ceiling; the
    server's ``X-RateLimit-Limit`` lowers it when smaller. With neither known,
    requests go out unpaced until the first answer announces a limit (or a
    shared ``budget`` tells the limit another process saw).
    :meth:`pause` (called on a 429) holds every thread until ``Retry-After``,
    and with a shared budget every process too.

    ``clock`` and ``sleep`` are injectable for tests; a shared ``budget``
    keeps its own clock.
    """

    def __init__(
        self,
        rate_limit: float | None = None,
        *,
        headroom: float = DEFAULT_HEADROOM,
        budget: Budget | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError("rate_limit must be positive")
        self._lock = threading.Lock()
        self._user_limit = rate_limit
        self._server_limit: float | None = None
        self._headroom = headroom
        self._clock = clock
        self._sleep = sleep
        self._local = MemoryBudget(clock=clock)
        self._budget: Budget = budget if budget is not None else self._local
        # "Never": -inf, whatever the clock counts from.
        self._degraded_until = -math.inf  # while > now, a failed shared budget is skipped
        self._warned_at = -math.inf
        self._interval: float  # these three are set by _recompute, from the limit
        self._tolerance: float
        self._rate: float | None
        self._recompute()

    @property
    def limit(self) -> float | None:
        """The limit being followed (requests per second), or None while unknown."""
        limits = [x for x in (self._user_limit, self._server_limit) if x]
        return min(limits) if limits else None

    @property
    def user_limit(self) -> float | None:
        """The caller's own ceiling, if any."""
        return self._user_limit

    @property
    def rate(self) -> float | None:
        """The pace actually kept (a little under :attr:`limit`)."""
        return self._rate

    @property
    def budget(self) -> Budget:
        """Where the schedule lives (:class:`MemoryBudget` unless shared)."""
        return self._budget

    @property
    def paused_until(self) -> float:
        """Monotonic time until which every thread of this process waits (0 when not paused)."""
        return self._local.paused_until

    def _recompute(self) -> None:
        limit = self.limit
        rate = None if limit is None else limit * self._headroom
        self._interval = 1.0 / rate if rate else 0.0
        self._tolerance = tolerance_for(limit, rate) if rate and limit else 0.0
        self._rate = rate

    def acquire(self) -> float:
        """Block until this thread may send; returns the seconds waited."""
        started = self._clock()
        budget = self._budget
        if budget is not self._local and started < self._degraded_until:
            budget = self._local
        try:
            wait, shift, shared_limit = budget.reserve(self._interval, self._tolerance)
        except BudgetUnavailable as exc:
            self._degrade(exc)
            budget = self._local
            wait, shift, shared_limit = budget.reserve(self._interval, self._tolerance)
        if shared_limit and self._server_limit is None:
            self._adopt(shared_limit)
        deadline = self._clock() + wait
        while True:
            left = deadline - self._clock()
            if left <= 0:
                return self._clock() - started
            self._sleep(left)
            # A pause that began (or grew) while we slept moved every
            # reserved slot by the same amount: spacing is kept, and no
            # slot is thrown away and re-queued behind the others.
            seen = budget.seen_shift()
            if seen > shift:
                deadline += seen - shift
                shift = seen

    def observe(self, headers: Mapping[str, str]) -> None:
        """Follow the server's ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset``.

        ``headers`` must be case-insensitive (a requests response's headers are).
        """
        limit = _header_float(headers, "X-RateLimit-Limit")
        remaining = _header_float(headers, "X-RateLimit-Remaining")
        if limit is None and remaining is None:
            return
        if limit is not None and limit > 0 and limit != self._server_limit:
            with self._lock:
                self._server_limit = limit
                self._recompute()
            if self._budget is not self._local:
                rate = limit * self._headroom
                self._guarded(lambda b: b.publish(limit, 1.0 / rate, tolerance_for(limit, rate)))
        if remaining is not None and remaining <= 0:
            reset = _header_float(headers, "X-RateLimit-Reset")
            if reset is not None:  # a pause of 0 or less holds nobody
                # The window is spent (maybe by someone else sharing the
                # credential): nobody sends before it refills.
                self.pause(min(reset, 60.0))

    def pause(self, seconds: float) -> None:
        """Hold every thread (and, with a shared budget, every process) for ``seconds``."""
        self._local.hold(seconds)
        if self._budget is not self._local:
            self._guarded(lambda b: b.hold(seconds))

    def close(self) -> None:
        """Let go of a shared budget (its connection or file)."""
        self._budget.close()

    def _adopt(self, limit: float) -> None:
        """Take the limit another holder of the shared budget saw, until the server says."""
        with self._lock:
            if self._server_limit is None:
                self._server_limit = limit
                self._recompute()

    def _guarded(self, step: Callable[[Budget], None]) -> None:
        if self._clock() < self._degraded_until:
            return
        try:
            step(self._budget)
        except BudgetUnavailable as exc:
            self._degrade(exc)

    def _degrade(self, exc: BudgetUnavailable) -> None:
        now = self._clock()
        self._degraded_until = now + RETRY_SHARED_AFTER
        if now - self._warned_at >= _WARN_EVERY:
            self._warned_at = now
            log.warning(
                "shared rate budget unavailable (%s): pacing this process on its own, "
                "asking again in %.0f s",
                exc,
                RETRY_SHARED_AFTER,
            )

    def __repr__(self) -> str:
        return f"RatePacer(limit={self.limit!r}, rate={self.rate!r})"
