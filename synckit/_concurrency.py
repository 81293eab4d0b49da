"""How many requests a :class:`synckit.Client` keeps in flight: adaptive, and enforced.

A fixed number of workers caps the request rate at ``workers / latency``
whatever the server allows (8 workers at 250 ms: 32 requests a second against
a limit of 200). By Little's law the number in flight a rate needs is ``rate x
latency``; :class:`AdaptiveConcurrency` keeps the limit there, with headroom,
and moves it as latency moves:

- **Known limit** (the pacer follows ``X-RateLimit-*`` or ``rate_limit``):
  ``limit = pace x mean latency x 1.25 + 2``, but not under 8. The pacer,
  not this gate, then holds the request rate at the budget; spare places wait for
  their pacing slot, so a server that slows down never gets more requests per
  second than it announced. (Hence the floor: a handful of places more cost
  the server nothing, while at 10 ms latency the 4 or 5 Little's law asks for
  leave the pace at the mercy of one slow answer or one descheduled thread.)
- **No known limit**: AIMD on the signals a server gives (as Netflix's
  concurrency-limits does for clients): one more request in flight per round
  trip while latency stays near its recent minimum and the limit is used;
  x0.9 when latency climbs past twice that minimum (queueing somewhere);
  x0.5 on a 429, a 502/503/504 or a connection failure. At most one decrease
  per round trip, so one burst of failures is one signal.

Either way the limit stays between 1 and ``ceiling``. The client calls
:meth:`acquire` before each HTTP attempt and :meth:`release` after it (a
blocking gate whose size this object moves), so any executor with enough
threads benefits; executors read :attr:`limit` to size their in-flight work.

Example:
    >>> c = AdaptiveConcurrency(ceiling=64, rate=lambda: 190.0)
    >>> c.limit                          # before any latency is known
    8
    >>> for _ in range(20):
    ...     c.acquire(); c.release(0.25, OK)
    >>> c.limit                          # 190/s x 0.25 s x 1.25 + 2, capped at 64
    61
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["NEUTRAL", "OK", "OVERLOAD", "RATE_LIMITED", "AdaptiveConcurrency"]

# What one attempt said about the server (see release()).
OK = 0  # an answer, any status that says nothing about load
RATE_LIMITED = 1  # 429
OVERLOAD = 2  # 502/503/504, a connection failure or timeout
NEUTRAL = 3  # no answer, for a reason that says nothing about the server

# Little's law needs the *mean* in flight; arrivals and latencies vary, so
# keep a quarter more, plus two for the thread that is between requests.
LITTLE_HEADROOM = 1.25
LITTLE_EXTRA = 2.0
DEFAULT_INITIAL = 8  # the old fixed worker count: safe before anything is known
KNOWN_FLOOR = 8  # with a known limit the pacer holds the rate: never fewer in flight
LATENCY_ALPHA = 0.2  # EWMA weight of a new latency sample
LATENCY_TOLERANCE = 2.0  # latency above this times the recent minimum = queueing
MIN_WINDOW = 10.0  # seconds per bucket of the windowed latency minimum
BACKOFF_LATENCY = 0.9
BACKOFF_REFUSED = 0.5


class AdaptiveConcurrency:
    """The in-flight limit of one client, and the gate that enforces it.

    ``rate`` returns the pace the client keeps (requests per second) or None
    while unknown. ``adaptive=False`` pins the limit at ``ceiling`` (the old
    behaviour: a fixed number of concurrent requests). ``clock`` is injectable
    for tests.

    Example:
        >>> c = AdaptiveConcurrency(ceiling=4, adaptive=False)
        >>> c.limit, c.ceiling
        (4, 4)
    """

    def __init__(
        self,
        *,
        ceiling: int = 64,
        initial: int = DEFAULT_INITIAL,
        rate: Callable[[], float | None] = lambda: None,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ceiling < 1:
            raise ValueError("ceiling must be at least 1")
        self._lock = threading.Lock()
        # Waiting threads, first come first served: each waits on its own
        # locked lock, which release() unlocks to hand over a place.
        self._waiters: deque[threading.Lock] = deque()
        self._ceiling = int(ceiling)
        self._rate = rate
        self._adaptive = adaptive
        self._clock = clock
        self._estimate = float(min(initial, ceiling) if adaptive else ceiling)
        self._limit = max(1, int(self._estimate))
        self._in_flight = 0
        self._latency: float | None = None  # EWMA of answered attempts, seconds
        # Windowed minimum of the latency EWMA: two buckets of MIN_WINDOW
        # seconds, so the baseline follows a server that got slower for good.
        self._min_now = math.inf
        self._min_before = math.inf
        self._window_ends = 0.0
        self._calm_after = 0.0  # no decrease before this (one per round trip)

    # ------------------------------------------------------------- reading

    @property
    def limit(self) -> int:
        """Requests to keep in flight now (1..ceiling)."""
        return self._limit

    @property
    def ceiling(self) -> int:
        """The most requests ever in flight (``max_concurrency`` / ``workers``)."""
        return self._ceiling

    @property
    def in_flight(self) -> int:
        """Attempts inside the gate right now."""
        return self._in_flight

    @property
    def latency(self) -> float | None:
        """Mean latency of recent answers in seconds (an EWMA), None before the first."""
        return self._latency

    @property
    def adaptive(self) -> bool:
        return self._adaptive

    def __repr__(self) -> str:
        lat = "None" if self._latency is None else f"{self._latency * 1000:.0f}ms"
        mode = "adaptive" if self._adaptive else "fixed"
        return (
            f"AdaptiveConcurrency(limit={self._limit}, ceiling={self._ceiling}, {mode}, "
            f"in_flight={self._in_flight}, latency={lat})"
        )

    # ---------------------------------------------------------------- gate

    def acquire(self) -> None:
        """Block until fewer than :attr:`limit` attempts are in flight, then count this one.

        First come, first served: a place freed goes to the longest waiter,
        never to the thread that just freed it (with a condition variable
        that thread usually wins, and a row can wait for seconds behind rows
        submitted after it; the sync engine then waits for that straggler).
        """
        with self._lock:
            if self._in_flight < self._limit and not self._waiters:
                self._in_flight += 1
                return
            waiter = threading.Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        waiter.acquire()  # the place is counted for us by whoever hands it over

    def release(self, latency: float | None, signal: int = OK) -> None:
        """Count one attempt out; ``latency`` (seconds, None without an answer) and
        ``signal`` (:data:`OK`, :data:`RATE_LIMITED`, :data:`OVERLOAD`,
        :data:`NEUTRAL`) move the limit."""
        with self._lock:
            in_flight = self._in_flight
            self._in_flight = in_flight - 1
            if self._adaptive:
                self._update(latency, signal, in_flight)
            waiters = self._waiters
            while waiters and self._in_flight < self._limit:
                self._in_flight += 1
                waiters.popleft().release()

    def _update(self, latency: float | None, signal: int, in_flight: int) -> None:
        ewma = self._latency
        if latency is not None and latency >= 0 and signal != RATE_LIMITED:
            # (a 429 is answered before any work: not a sample of the work's latency)
            ewma = latency if ewma is None else ewma + LATENCY_ALPHA * (latency - ewma)
            self._latency = ewma
        rate = self._rate()
        if rate and ewma is not None:
            self._set(max(rate * ewma * LITTLE_HEADROOM + LITTLE_EXTRA, KNOWN_FLOOR))
            return
        if rate:
            return  # a limit but no latency yet: keep the initial guess
        now = self._clock()
        if signal in (RATE_LIMITED, OVERLOAD):
            self._decrease(now, BACKOFF_REFUSED, ewma)
            return
        if ewma is None or signal != OK:
            return
        if now >= self._window_ends:
            self._min_before, self._min_now = self._min_now, math.inf
            self._window_ends = now + MIN_WINDOW
        self._min_now = min(self._min_now, ewma)
        baseline = min(self._min_now, self._min_before)
        if ewma > LATENCY_TOLERANCE * baseline:
            self._decrease(now, BACKOFF_LATENCY, ewma)
        elif 2 * in_flight >= self._limit:
            # Additive increase, about one more per round trip; only while the
            # limit is used, or an idle client would grow it without evidence.
            self._set(self._estimate + 1.0 / self._estimate)

    def _decrease(self, now: float, factor: float, ewma: float | None) -> None:
        if now < self._calm_after:
            return
        self._calm_after = now + (ewma or 0.0)
        self._set(self._estimate * factor)

    def _set(self, estimate: float) -> None:
        self._estimate = min(float(self._ceiling), max(1.0, estimate))
        self._limit = int(self._estimate)
