"""The adaptive in-flight limit: Little's law with a known limit, AIMD without, and its gate."""

from __future__ import annotations

import doctest
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import synckit
from synckit import _concurrency
from synckit._concurrency import NEUTRAL, OK, OVERLOAD, RATE_LIMITED, AdaptiveConcurrency
from synckit.client import Client
from synckit.sandbox import Sandbox

Factory = Callable[..., Sandbox]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _run(c: AdaptiveConcurrency, latency: float, n: int, signal: int = OK) -> None:
    """``n`` attempts one after the other, each answered after ``latency``."""
    for _ in range(n):
        c.acquire()
        c.release(latency, signal)


def _busy(c: AdaptiveConcurrency, clock: Clock, latency: float, rounds: int) -> None:
    """``rounds`` round trips of an executor that keeps the whole limit in flight."""
    while c.in_flight < c.limit:
        c.acquire()
    for _ in range(rounds):
        for _ in range(c.limit):
            clock.now += latency / c.limit
            c.release(latency, OK)
            while c.in_flight < c.limit:
                c.acquire()
    while c.in_flight:
        c.release(latency, OK)


def test_docstring_examples() -> None:
    result = doctest.testmod(_concurrency)
    assert result.attempted > 0 and result.failed == 0


def test_known_limit_follows_littles_law_both_ways() -> None:
    rate = 190.0  # 200/s paced at 95 %
    c = AdaptiveConcurrency(ceiling=100, rate=lambda: rate)
    assert c.limit == 8  # nothing measured yet: the old fixed default
    _run(c, 0.25, 1)
    # 190/s x 0.25 s = 47.5 in flight, x 1.25 + 2 = 61.4
    assert c.limit == 61
    _run(c, 0.05, 60)  # latency falls to 50 ms: the EWMA gets there, and so does the limit
    assert c.latency == pytest.approx(0.05, abs=1e-4)
    assert c.limit == 13  # 190 x 0.05 x 1.25 + 2 = 13.9
    _run(c, 0.10, 60)
    assert c.limit == 25  # 190 x 0.10 x 1.25 + 2 = 25.75
    _run(c, 0.01, 60)
    assert c.limit == 8  # 190 x 0.01 x 1.25 + 2 = 4.4: the floor, as the pacer holds the rate


def test_the_ceiling_caps_it() -> None:
    c = AdaptiveConcurrency(ceiling=64, rate=lambda: 190.0)
    _run(c, 2.0, 5)  # 190 x 2 s would be 477
    assert c.limit == 64 and c.ceiling == 64


def test_429_and_overload_halve_it_once_per_round_trip_when_no_limit_is_known() -> None:
    clock = Clock()
    c = AdaptiveConcurrency(ceiling=64, initial=16, clock=clock)
    _run(c, 0.1, 1)  # a latency sample: the round trip is 100 ms
    c.acquire()
    c.release(None, RATE_LIMITED)
    assert c.limit == 8
    _run(c, None, 3, RATE_LIMITED)  # the same burst of refusals: one signal
    assert c.limit == 8
    clock.now += 0.11
    c.acquire()
    c.release(None, OVERLOAD)  # a 503 or a dropped connection, a round trip later
    assert c.limit == 4
    clock.now += 0.11
    _run(c, None, 5, NEUTRAL)  # e.g. a bad URL: says nothing about the server
    assert c.limit == 4


def test_rising_latency_shrinks_it_and_steady_latency_grows_it_when_used() -> None:
    clock = Clock()
    c = AdaptiveConcurrency(ceiling=64, initial=10, clock=clock)
    _busy(c, clock, 0.05, 10)
    # About one more per round trip while the limit is used and latency is flat.
    assert 17 <= c.limit <= 20
    grown = c.limit
    _busy(c, clock, 0.5, 6)  # queueing: latency x10
    assert c.limit < grown * 0.9**3
    # An idle client (one request at a time) never grows it: no evidence.
    idle = AdaptiveConcurrency(ceiling=64, initial=10, clock=clock)
    for _ in range(200):
        idle.acquire()
        clock.now += 0.05
        idle.release(0.05, OK)
    assert idle.limit == 10


def test_fixed_mode_keeps_the_ceiling() -> None:
    c = AdaptiveConcurrency(ceiling=12, adaptive=False)
    _run(c, None, 5, RATE_LIMITED)
    _run(c, 0.3, 5)
    assert c.limit == 12 and not c.adaptive


def test_gate_holds_at_the_limit_and_serves_waiters_in_order() -> None:
    c = AdaptiveConcurrency(ceiling=1, adaptive=False)
    order: list[str] = []
    c.acquire()  # this thread holds the only place

    def wait_then_note(name: str) -> None:
        c.acquire()
        order.append(name)
        c.release(0.01)

    first = threading.Thread(target=wait_then_note, args=("first",), daemon=True)
    first.start()
    while not c._waiters:
        time.sleep(0.001)
    second = threading.Thread(target=wait_then_note, args=("second",), daemon=True)
    second.start()
    while len(c._waiters) < 2:
        time.sleep(0.001)
    assert c.in_flight == 1 and order == []
    # Freeing the place and asking again at once: the waiters go first
    # (a condition variable would let this thread barge in front of them).
    c.release(0.01)
    c.acquire()
    order.append("releaser")
    c.release(0.01)
    first.join(5)
    second.join(5)
    assert order == ["first", "second", "releaser"]
    assert c.in_flight == 0


def test_a_larger_limit_lets_several_waiters_in_at_once() -> None:
    rate: list[float | None] = [None]
    c = AdaptiveConcurrency(ceiling=10, initial=1, rate=lambda: rate[0])
    c.acquire()
    entered = threading.Semaphore(0)

    def enter() -> None:
        c.acquire()
        entered.release()

    threads = [threading.Thread(target=enter, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    while len(c._waiters) < 3:
        time.sleep(0.001)
    rate[0] = 100.0  # the first answer announces a limit: 100 x 0.1 x 1.25 + 2 = 14.5 -> 10
    c.release(0.1)
    for _ in range(3):
        assert entered.acquire(timeout=5)
    assert c.limit == 10 and c.in_flight == 3
    for t in threads:
        t.join(5)


# ------------------------------------------------------- through the client


def test_the_client_enforces_max_concurrency(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(latency_ms=100)
    with Client(sb.url, token=sb.token, max_concurrency=3, adaptive_concurrency=False) as client:
        made = client.create_contact({"email": "g@example.com"})

        def get(_: int) -> None:
            client.get_contact(made["id"])

        threads = [threading.Thread(target=get, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    times = sorted(r.time for r in sb.request_log() if r.method == "GET")
    assert len(times) == 12
    # Three in flight at most, each answered after 100 ms: the 4th request
    # after any request arrives at least ~100 ms after it.
    assert min(b - a for a, b in zip(times, times[3:], strict=False)) >= 0.09


def test_defaults_keep_what_the_limit_needs_in_flight(sandbox_factory: Factory) -> None:
    # 100/s and 200 ms: 8 fixed workers would manage 40/s; the limit needs
    # 95 x 0.2 = 19 in flight.
    sb = sandbox_factory(rate_limit=100, latency_ms=200)
    frame = synckit.validate(
        __import__("pandas").DataFrame({"email": [f"d{i}@example.com" for i in range(150)]})
    )
    with Client(sb.url, token=sb.token) as client:
        report = synckit.upsert(frame, client, progress=False)
        limit = client.concurrency.limit
    assert report.counts()["created"] == 150
    # 95/s x 0.2 s x 1.25 + 2 = 25.75; a loaded machine's slower answers raise
    # it a little, but it follows the need, not the ceiling (64).
    assert 25 <= limit <= 45
    log = sb.request_log()
    times = sorted(r.time for r in log if r.method == "POST")
    # More than 8 requests arrived within one 200 ms latency: more than the old 8 in flight.
    most = max(sum(1 for u in times[i:] if u - t < 0.19) for i, t in enumerate(times))
    assert most > 8
    assert sum(r.status == 429 for r in log) <= 1


def test_upsert_sizes_its_pool_to_the_ceiling(sandbox_factory: Factory) -> None:
    sb = sandbox_factory(latency_ms=200)
    frame = synckit.validate(
        __import__("pandas").DataFrame({"email": [f"p{i}@example.com" for i in range(20)]})
    )
    seen: list[int] = []
    with Client(sb.url, token=sb.token, max_concurrency=20, adaptive_concurrency=False) as c:
        original = c._session.request

        def counting(method: str, *args: Any, **kw: Any) -> Any:
            if method == "POST":  # the rows' creates (discovery's listing page runs first)
                seen.append(threading.get_ident())
            return original(method, *args, **kw)

        c._session.request = counting  # type: ignore[method-assign]
        synckit.upsert(frame, c, progress=False)
    assert len(set(seen)) == 20  # one thread per row: 20 threads, not the old 8
