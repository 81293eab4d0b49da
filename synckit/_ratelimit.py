"""The request pacer one :class:`synckit.Client` shares across all its threads.

Why pacing instead of a token bucket: the server counts requests per second
(``X-RateLimit-*``), and any burst we allow ourselves lands in the server's
window on top of whatever is already in flight. Spacing requests evenly at a
little under the announced limit (95 %) keeps every server window (fixed,
sliding or bucket) under the limit, so 429s become rare, while 16 threads
waiting on their slots still fill every slot. Slots missed while every thread
was busy may be caught up within half the remaining headroom (a GCRA
tolerance), so a one-second span never holds more than the limit.

Example:
    >>> pacer = RatePacer(rate_limit=100)
    >>> pacer.rate
    95.0
    >>> pacer.acquire() >= 0.0
    True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

__all__ = ["RatePacer"]

# Pace at this share of the limit: clock jitter between us and the server and
# the request that sneaks into the next window must not tip a window over.
DEFAULT_HEADROOM = 0.95


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
    requests go out unpaced until the first answer announces a limit.
    :meth:`pause` (called on a 429) holds every thread until ``Retry-After``.
    """

    def __init__(
        self, rate_limit: float | None = None, *, headroom: float = DEFAULT_HEADROOM
    ) -> None:
        if rate_limit is not None and rate_limit <= 0:
            raise ValueError("rate_limit must be positive")
        self._lock = threading.Lock()
        self._user_limit = rate_limit
        self._server_limit: float | None = None
        self._headroom = headroom
        self._interval = 0.0
        self._tolerance = 0.0
        self._next = 0.0  # monotonic time of the next free slot
        self._paused_until = 0.0
        self._shift = 0.0  # total pause time added so far (see acquire)
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
        limit = self.limit
        return None if limit is None else limit * self._headroom

    @property
    def paused_until(self) -> float:
        """Monotonic time until which every thread waits (0 when not paused)."""
        return self._paused_until

    def _recompute(self) -> None:
        rate, limit = self.rate, self.limit
        self._interval = 1.0 / rate if rate else 0.0
        # Slots missed while every thread was busy may be caught up, but only
        # so far that any one-second span still holds at most rate * (1 + tol)
        # + 1 requests: half the headroom, so the limit is never reached.
        self._tolerance = max(0.0, 0.5 * (limit - 1 - rate) / rate) if rate and limit else 0.0

    def acquire(self) -> float:
        """Block until this thread may send; returns the seconds waited."""
        started = time.monotonic()
        with self._lock:
            slot = max(started, self._paused_until)
            if self._interval:
                slot = max(slot, self._next - self._tolerance)
                self._next = max(self._next, slot) + self._interval
            shift = self._shift
        while True:
            wait = slot - time.monotonic()
            if wait <= 0:
                return time.monotonic() - started
            time.sleep(wait)
            with self._lock:
                # A pause that began (or grew) while we slept moved every
                # reserved slot by the same amount: spacing is kept, and no
                # slot is thrown away and re-queued behind the others.
                slot += self._shift - shift
                shift = self._shift

    def observe(self, headers: Mapping[str, str]) -> None:
        """Follow the server's ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset``.

        ``headers`` must be case-insensitive (a requests response's headers are).
        """
        limit = _header_float(headers, "X-RateLimit-Limit")
        remaining = _header_float(headers, "X-RateLimit-Remaining")
        reset = _header_float(headers, "X-RateLimit-Reset")
        if limit is None and remaining is None:
            return
        with self._lock:
            if limit is not None and limit > 0 and limit != self._server_limit:
                self._server_limit = limit
                self._recompute()
            if remaining is not None and remaining <= 0 and reset is not None and reset > 0:
                # The window is spent (maybe by someone else sharing the
                # credential): nobody sends before it refills.
                self._hold(min(reset, 60.0))

    def pause(self, seconds: float) -> None:
        """Hold every thread for ``seconds`` (a 429's ``Retry-After``)."""
        with self._lock:
            self._hold(seconds)

    def _hold(self, seconds: float) -> None:
        now = time.monotonic()
        until = now + max(0.0, seconds)
        start = max(now, self._paused_until)
        if until <= start:
            return
        delta = until - start
        self._paused_until = until
        self._shift += delta  # sleeping threads move their slots by this much
        self._next = self._next + delta if self._next > now else until

    def __repr__(self) -> str:
        return f"RatePacer(limit={self.limit!r}, rate={self.rate!r})"
