"""The pacer (``RatePacer``) with real threads on a virtual clock.

Every thread calls the real :meth:`RatePacer.acquire`; only time is simulated:
``sleep`` parks the thread until the test moves the clock past its wake-up,
and the clock moves only once every thread is parked or done. So a run is
exact (no scheduler jitter, no real waiting) and the send times a test checks
are the ones the pacer decided.

The promises checked: no one-second window holds more than the limit, after
idle threads burst too; a ``Retry-After`` pause (or a spent window's
``X-RateLimit-Reset``, capped at 60 s) holds every thread; after a pause, a
new caller never goes ahead of a slot reserved before it; and a response with
only one of ``X-RateLimit-Limit`` / ``-Remaining`` does what that header says.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from synckit._ratelimit import (
    BudgetUnavailable,
    MemoryBudget,
    RatePacer,
    Schedule,
    reserve_slot,
    tolerance_for,
)

EPS = 1e-9  # float slack for times computed as sums of intervals
# A pacer bug can make a test wait forever (mutation testing plants such bugs): fail instead.
pytestmark = pytest.mark.timeout(30)


class VirtualTime:
    """A clock that moves only when the test says so and every thread is asleep.

    Example (one thread sleeping 2.5 s of virtual time)::

        vt = VirtualTime()
        vt.spawn(lambda: vt.sleep(2.5))
        vt.run_out()
        assert vt.now == 2.5
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._cond = threading.Condition()
        self._running = 0
        self._sleepers: dict[int, float] = {}  # ticket -> virtual wake-up time
        self._tickets = itertools.count()
        self._spawned: set[int] = set()  # thread idents of spawn()ed threads
        self.errors: list[BaseException] = []

    def clock(self) -> float:
        # Only read while the controller is waiting for threads, so never torn.
        return self.now

    def sleep(self, seconds: float) -> None:
        if threading.get_ident() not in self._spawned:
            # The test's own thread moves the clock: if it slept, nobody would wake it.
            raise AssertionError(f"the test thread was made to wait {seconds} s")
        with self._cond:
            ticket = next(self._tickets)
            self._sleepers[ticket] = self.now + max(0.0, seconds)
            self._running -= 1
            self._cond.notify_all()
            # The controller counts us as running again before it wakes us.
            self._cond.wait_for(lambda: ticket not in self._sleepers)

    def spawn(self, fn: Callable[[], None]) -> None:
        with self._cond:
            self._running += 1

        def run() -> None:
            with self._cond:
                self._spawned.add(threading.get_ident())
            try:
                fn()
            except BaseException as exc:  # reported by settle(): a thread must not fail quietly
                self.errors.append(exc)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

        threading.Thread(target=run, daemon=True).start()

    def settle(self) -> None:
        """Wait until every thread is asleep or done."""
        with self._cond:
            assert self._cond.wait_for(lambda: self._running == 0, timeout=30), "a thread hangs"
        assert not self.errors, self.errors

    def advance_to(self, t: float) -> None:
        """Move the clock to ``t``, waking each sleeper at its own time on the way."""
        for _ in range(1_000_000):  # a thread sleeping 0 s over and over never gets there
            self.settle()
            with self._cond:
                due = min(self._sleepers.values(), default=None)
                if due is None or due > t:
                    self.now = max(self.now, t)
                    return
                self.now = max(self.now, due)
                woken = [k for k, w in self._sleepers.items() if w <= self.now]
                for k in woken:
                    del self._sleepers[k]
                self._running += len(woken)
                self._cond.notify_all()
        raise AssertionError(f"threads keep sleeping without time passing (at {self.now})")

    def run_out(self) -> None:
        """Let every thread finish."""
        while True:
            self.settle()
            with self._cond:
                due = min(self._sleepers.values(), default=None)
            if due is None:
                return
            self.advance_to(due)


@dataclass
class Sends:
    """When each caller sent, with the number of the event that started it."""

    times: list[tuple[int, float]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def caller(self, pacer: RatePacer, vt: VirtualTime, event: int) -> Callable[[], None]:
        def call() -> None:
            pacer.acquire()
            with self.lock:
                self.times.append((event, vt.clock()))

        return call

    @property
    def sorted(self) -> list[float]:
        return sorted(t for _, t in self.times)


def worst_second(times: list[float]) -> int:
    """The most send times in any one-second span [t, t + 1)."""
    times = sorted(times)
    worst = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0 + EPS:
            j += 1
        worst = max(worst, i - j + 1)
    return worst


def headers(**values: str) -> CaseInsensitiveDict[str]:
    # As a requests response carries them (the pacer reads them case-insensitively).
    return CaseInsensitiveDict({f"X-RateLimit-{k}": v for k, v in values.items()})


def paced(limit: float | None) -> tuple[RatePacer, VirtualTime, Sends]:
    vt = VirtualTime()
    return RatePacer(rate_limit=limit, clock=vt.clock, sleep=vt.sleep), vt, Sends()


# --------------------------------------------------------------- pinned by hand


def test_an_idle_burst_gets_its_catch_up_then_the_pace() -> None:
    """Limit 100: paced at 95/s (1/95 s apart); tolerance 0.5 * (100 - 1 - 95) / 95 =
    2/95 s, i.e. two slots early: three callers go at once, then one per 1/95 s."""
    pacer, vt, sends = paced(100)
    for _ in range(20):
        vt.spawn(sends.caller(pacer, vt, 0))
    vt.run_out()
    assert sends.sorted == pytest.approx([0.0, 0.0, 0.0] + [k / 95 for k in range(1, 18)])


def test_a_large_idle_burst_fills_but_never_exceeds_a_second() -> None:
    """200 callers at once, limit 100: 3 at t=0, then k/95 for k = 1..94 before t=1
    (95/95 is 1.0, outside [0, 1)): 97 in the first second, the most in any second."""
    pacer, vt, sends = paced(100)
    for _ in range(200):
        vt.spawn(sends.caller(pacer, vt, 0))
    vt.run_out()
    times = sends.sorted
    assert sum(t < 1.0 for t in times) == 97
    assert worst_second(times) == 97
    assert times[-1] == pytest.approx(197 / 95)  # 200 - 3 catch-up slots, 1/95 s apart


def test_a_spent_window_pauses_until_reset_but_never_beyond_60_s() -> None:
    pacer, vt, sends = paced(None)
    vt.advance_to(10.0)
    pacer.observe(headers(Limit="10", Remaining="0", Reset="3600"))
    assert pacer.paused_until == 70.0  # 10 + min(3600, 60)
    vt.spawn(sends.caller(pacer, vt, 0))
    vt.run_out()
    assert sends.sorted == [70.0]

    pacer, vt, sends = paced(None)
    pacer.observe(headers(Limit="10", Remaining="0", Reset="30"))
    assert pacer.paused_until == 30.0  # under the cap: the server's own figure
    pacer.observe(headers(Limit="10", Remaining="0", Reset="0"))  # no reset announced
    assert pacer.paused_until == 30.0


def test_only_the_limit_header_sets_the_pace() -> None:
    """No Remaining: the limit is still followed (20/s -> paced at 19/s)."""
    pacer, vt, sends = paced(None)
    pacer.observe(headers(Limit="20"))
    assert pacer.limit == 20.0 and pacer.rate == pytest.approx(19.0)
    for _ in range(4):
        vt.spawn(sends.caller(pacer, vt, 0))
    vt.run_out()
    # Tolerance 0.5 * (20 - 1 - 19) / 19 = 0: no catch-up, one per 1/19 s.
    assert sends.sorted == pytest.approx([0.0, 1 / 19, 2 / 19, 3 / 19])
    assert pacer.paused_until == 0.0


def test_only_the_remaining_header_pauses_a_spent_window_and_nothing_else() -> None:
    pacer, vt, sends = paced(None)
    pacer.observe(headers(Remaining="5", Reset="2"))  # not spent: nothing happens
    pacer.observe(headers(Remaining="1", Reset="2"))  # one left: still not spent
    assert pacer.paused_until == 0.0 and pacer.limit is None
    pacer.observe(headers(Remaining="0", Reset="2"))  # spent, limit unknown: pause, no pace
    assert pacer.paused_until == 2.0 and pacer.limit is None and pacer.rate is None
    for _ in range(3):
        vt.spawn(sends.caller(pacer, vt, 0))
    vt.run_out()
    assert sends.sorted == [2.0, 2.0, 2.0]  # unpaced, but not before the reset


def test_a_reserved_slot_keeps_its_place_in_front_of_callers_after_a_pause() -> None:
    """Limit 10/0.95: slots exactly 0.1 s apart, no catch-up. Five callers at t=0
    take 0.0 .. 0.4; a 1 s pause at t=0.15 moves the three still asleep (0.2, 0.3,
    0.4) to 1.2, 1.3, 1.4, and two callers arriving at t=0.5 come after them."""
    pacer, vt, sends = paced(10 / 0.95)
    for _ in range(5):
        vt.spawn(sends.caller(pacer, vt, 0))
    vt.advance_to(0.15)
    pacer.pause(1.0)
    vt.advance_to(0.5)
    for _ in range(2):
        vt.spawn(sends.caller(pacer, vt, 1))
    vt.run_out()
    assert sorted(sends.times) == [
        (0, 0.0),
        (0, pytest.approx(0.1)),
        (0, pytest.approx(1.2)),
        (0, pytest.approx(1.3)),
        (0, pytest.approx(1.4)),
        (1, pytest.approx(1.5)),
        (1, pytest.approx(1.6)),
    ]


# --------------------------------------------------------------- the property

_HEADERS = [
    {"Limit": "{limit}"},  # only the limit
    {"Limit": "{higher}", "Remaining": "50"},  # a higher server limit never raises ours
    {"Remaining": "7"},  # only Remaining, window not spent: nothing to do
    {"Remaining": "0", "Reset": "{reset}"},  # only Remaining, spent: pause until Reset
    {"Limit": "{limit}", "Remaining": "0", "Reset": "{reset}"},
]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, list[tuple[str, float, float]]]:
    limit = draw(st.integers(min_value=2, max_value=300))
    kinds = st.sampled_from(["burst", "burst", "burst", "retry_after", "headers"])
    events = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        kind = draw(kinds)
        idle = draw(st.sampled_from([0.0, 0.0, 0.05, 0.3, 1.0, 2.5]))
        if kind == "burst":
            events.append((kind, idle, float(draw(st.integers(min_value=1, max_value=40)))))
        elif kind == "retry_after":
            events.append((kind, idle, draw(st.sampled_from([0.1, 0.5, 1.0, 2.0]))))
        else:
            events.append((kind, idle, float(draw(st.integers(0, len(_HEADERS) - 1)))))
    return limit, events


@settings(max_examples=60, deadline=None)
@given(scenarios())
def test_no_second_over_the_limit_pauses_held_and_no_one_jumps_the_queue(
    scenario: tuple[int, list[tuple[str, float, float]]],
) -> None:
    limit, events = scenario
    pacer, vt, sends = paced(limit)
    pauses: list[tuple[int, float, float]] = []  # (event number, from, until)
    for n, (kind, idle, x) in enumerate(events):
        vt.advance_to(vt.now + idle)
        if kind == "burst":
            for _ in range(int(x)):
                vt.spawn(sends.caller(pacer, vt, n))
        elif kind == "retry_after":
            pacer.pause(x)
            pauses.append((n, vt.now, vt.now + x))
        else:
            reset = 1.5 if n % 2 else 90.0  # 90 s: capped at 60
            raw = {
                k: v.format(limit=limit, higher=limit * 5, reset=reset)
                for k, v in _HEADERS[int(x)].items()
            }
            before = pacer.paused_until
            pacer.observe(headers(**raw))
            assert pacer.limit == limit  # ours is the lower one; never raised
            if raw.get("Remaining") == "0":
                pauses.append((n, vt.now, vt.now + min(reset, 60.0)))
            else:
                assert pacer.paused_until == before
    vt.run_out()
    times = sends.sorted
    assert len(times) == sum(int(x) for kind, _, x in events if kind == "burst")
    # 1. No one-second window holds more than the limit.
    assert worst_second(times) <= limit
    for n, start, until in pauses:
        # 2. Nobody sends inside a pause (a slot due at its very start went out first).
        assert not [t for t in times if start + EPS < t < until - EPS], (start, until)
        # 3. Whoever reserved before the pause and was still waiting goes before anyone
        #    who arrived after it.
        waiting = [t for e, t in sends.times if e < n and t > start + EPS]
        later = [t for e, t in sends.times if e > n]
        if waiting and later:
            assert max(waiting) <= min(later) + EPS


def test_a_schedule_up_to_an_hour_ahead_is_obeyed_beyond_it_started_afresh() -> None:
    """MAX_AHEAD = 3600 s: a queue (or pause) ending exactly an hour from now is real;
    half a second more is a clock that jumped back, and the slot is now."""
    now = 1000.0
    assert reserve_slot(Schedule(next=now + 3600), now, 1.0, 0.0) == 4600.0
    assert reserve_slot(Schedule(next=now + 3600.5), now, 1.0, 0.0) == now
    assert reserve_slot(Schedule(paused_until=now + 3600), now, 1.0, 0.0) == 4600.0
    assert reserve_slot(Schedule(paused_until=now + 3600.5), now, 1.0, 0.0) == now
    fresh = Schedule(next=now + 3600.5, paused_until=now + 3600.5)
    reserve_slot(fresh, now, 1.0, 0.0)
    assert (fresh.next, fresh.paused_until) == (now + 1.0, now)


class OutageBudget:
    """A shared budget that is down on cue (the Budget protocol; the schedule itself is a
    MemoryBudget on the same virtual clock).

    A real outage (a Redis server stopped mid-run) is test_ratestore's
    test_a_store_lost_mid_run_falls_back_to_local_pacing, in real time with the
    retry delay patched down; pinning the 5 s and 30 s themselves needs a clock
    the test moves, which a real store's failure cannot be timed against.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.inner = MemoryBudget(clock=clock)
        self.down = False
        self.asked: list[str] = []
        self.reserved: list[tuple[float, float]] = []  # (interval, tolerance) asked for
        self.limit = 0.0  # the limit another holder published (0: none yet)
        self.published: list[tuple[float, float, float]] = []

    def _ask(self, what: str) -> None:
        self.asked.append(what)
        if self.down:
            raise BudgetUnavailable("store down (test)")

    def reserve(self, interval: float, tolerance: float) -> tuple[float, float, float]:
        self._ask("reserve")
        self.reserved.append((interval, tolerance))
        wait, shift, _ = self.inner.reserve(interval, tolerance)
        return wait, shift, self.limit

    def hold(self, seconds: float) -> None:
        self._ask("hold")
        self.inner.hold(seconds)

    def publish(self, limit: float, interval: float, tolerance: float) -> None:
        self._ask("publish")
        self.published.append((limit, interval, tolerance))

    def seen_shift(self) -> float:
        return self.inner.seen_shift()

    def close(self) -> None:
        self.asked.append("close")


def test_a_failed_shared_budget_is_asked_again_after_5_s_not_before() -> None:
    vt = VirtualTime()
    store = OutageBudget(vt.clock)
    pacer = RatePacer(budget=store, clock=vt.clock, sleep=vt.sleep)
    store.down = True
    pacer.acquire()  # fails over to local pacing at t=0
    store.down = False
    for t in (1.0, 4.9):
        vt.advance_to(t)
        pacer.acquire()
        pacer.pause(0.0)
        pacer.observe(headers(Limit="50"))
    assert store.asked == ["reserve"]  # not asked while degraded: no reserve, hold, publish
    vt.advance_to(5.0)
    pacer.acquire()
    pacer.pause(0.0)
    assert store.asked == ["reserve", "reserve", "hold"]


@pytest.mark.parametrize(("second_failure", "warnings"), [(29.5, 1), (30.0, 2), (30.5, 2)])
def test_an_unavailable_budget_is_warned_about_at_most_every_30_s(
    caplog: pytest.LogCaptureFixture, second_failure: float, warnings: int
) -> None:
    vt = VirtualTime()
    store = OutageBudget(vt.clock)
    pacer = RatePacer(budget=store, clock=vt.clock, sleep=vt.sleep)
    store.down = True
    caplog.set_level(logging.WARNING, logger="synckit")
    pacer.acquire()  # t=0: warned
    vt.advance_to(second_failure)
    pacer.acquire()  # asked again (more than 5 s later), fails again
    assert store.asked == ["reserve", "reserve"]
    said = [r.getMessage() for r in caplog.records if "rate budget unavailable" in r.getMessage()]
    assert len(said) == warnings


def test_a_pacer_asks_its_budget_for_its_pace_and_catch_up() -> None:
    """Unknown limit: interval 0 (unpaced), no catch-up. Limit 100: 1/95 s apart, 2/95 s
    early at most (a shared budget runs these numbers for every process)."""
    vt = VirtualTime()
    store = OutageBudget(vt.clock)
    pacer = RatePacer(budget=store, clock=vt.clock, sleep=vt.sleep)
    pacer.acquire()
    pacer.observe(headers(Limit="100"))
    vt.spawn(pacer.acquire)
    vt.run_out()
    assert store.reserved == [(0.0, 0.0), (pytest.approx(1 / 95), pytest.approx(2 / 95))]
    assert pacer.budget is store and pacer.user_limit is None


@pytest.mark.parametrize(
    ("limit", "rate", "expected"),
    [
        (100, 95, 2 / 95),  # 0.5 * (100 - 1 - 95) / 95
        (200, 190, 4.5 / 190),
        (10, 9.5, 0.0),  # less than one request of headroom: no catch-up, never negative
        (100, 0, 0.0),  # no pace: nothing to catch up
        (0, 95, 0.0),
    ],
)
def test_tolerance_by_hand(limit: float, rate: float, expected: float) -> None:
    assert tolerance_for(limit, rate) == pytest.approx(expected)


def test_limits_and_properties_by_hand() -> None:
    assert RatePacer(rate_limit=0.5).limit == 0.5  # one request every two seconds is a limit
    assert RatePacer(rate_limit=50).user_limit == 50
    for bad in (0, -0.5):
        with pytest.raises(ValueError, match="rate_limit must be positive"):
            RatePacer(rate_limit=bad)
    budget = MemoryBudget(clock=lambda: 7.0)
    assert repr(budget) == "MemoryBudget()" and budget.paused_until == 0.0
    budget.hold(2.0)
    assert budget.paused_until == 9.0
    pacer, vt, _ = paced(10)
    vt.advance_to(5.0)
    pacer.pause(0.0)  # a zero pause holds nobody: still "not paused"
    pacer.pause(-1.0)
    assert pacer.paused_until == 0.0


def test_a_limit_published_later_by_another_holder_is_adopted_until_the_server_speaks() -> None:
    vt = VirtualTime()
    store = OutageBudget(vt.clock)
    pacer = RatePacer(budget=store, clock=vt.clock, sleep=vt.sleep)
    pacer.acquire()  # nobody has published a limit yet
    assert pacer.limit is None
    store.limit = 40.0  # another process learnt it from the server
    pacer.acquire()
    assert (pacer.limit, pacer.rate) == (40.0, 38.0)
    pacer.observe(headers(Limit="20"))  # our own answer wins
    store.limit = 60.0
    pacer.acquire()
    assert pacer.limit == 20.0


def test_acquire_returns_the_seconds_it_waited() -> None:
    pacer, vt, _ = paced(10 / 0.95)  # slots exactly 0.1 s apart, no catch-up
    vt.advance_to(3.0)
    waited: list[float] = []
    for _ in range(3):
        vt.spawn(lambda: waited.append(pacer.acquire()))
    vt.run_out()
    assert sorted(waited) == pytest.approx([0.0, 0.1, 0.2])


def test_the_servers_limit_is_published_once_per_change_and_only_when_positive() -> None:
    vt = VirtualTime()
    store = OutageBudget(vt.clock)
    pacer = RatePacer(budget=store, clock=vt.clock, sleep=vt.sleep)
    pacer.observe(headers(Limit="0", Remaining="0"))  # nonsense: ignored, no division by 0
    pacer.observe(headers(Limit="-3"))
    assert pacer.limit is None and store.published == []
    pacer.observe(headers(Limit="1"))  # one request a second is a limit
    pacer.observe(headers(Limit="1", Remaining="0.5"))  # the same again: nothing to tell
    pacer.observe(headers(Limit="100"))
    assert pacer.limit == 100.0
    assert store.published == [
        (1.0, pytest.approx(1 / 0.95), 0.0),  # 0.5 * (1 - 1 - 0.95) < 0: no catch-up
        (100.0, pytest.approx(1 / 95), pytest.approx(2 / 95)),
    ]


def test_a_pause_the_shared_budget_cannot_take_is_held_here_and_the_budget_rested() -> None:
    vt = VirtualTime()
    store = OutageBudget(vt.clock)
    pacer = RatePacer(budget=store, clock=vt.clock, sleep=vt.sleep)
    store.down = True
    pacer.pause(1.5)  # a 429: the store is down, this process holds anyway
    assert pacer.paused_until == 1.5
    vt.advance_to(1.5)
    pacer.acquire()  # within 5 s of the failure: paced here, the store not asked
    assert store.asked == ["hold"]
    pacer.close()
    assert store.asked == ["hold", "close"]  # close() lets go of the shared budget
    assert repr(RatePacer(rate_limit=100)) == "RatePacer(limit=100, rate=95.0)"
