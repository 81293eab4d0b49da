"""The shared pacer on its own: spacing, pauses across threads, following the server's headers."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from synckit._ratelimit import RatePacer


def test_unknown_limit_does_not_pace() -> None:
    pacer = RatePacer()
    started = time.monotonic()
    for _ in range(200):
        pacer.acquire()
    assert pacer.limit is None and time.monotonic() - started < 0.1


def test_slots_are_evenly_spaced_across_threads() -> None:
    pacer = RatePacer(rate_limit=100)  # paced at 95/s
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            pacer.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    span = stamps[-1] - stamps[0]
    # 40 slots at 95/s: 39 gaps of ~10.5 ms, whatever the thread count.
    assert 39 / 95 * 0.9 <= span < 39 / 95 + 0.25
    gaps = sorted(b - a for a, b in itertools.pairwise(stamps))
    assert 0.007 <= gaps[len(gaps) // 2] <= 0.014  # typical gap ~1/95 s: spaced, not bunched


def test_server_limit_lowers_but_never_raises_the_callers_ceiling() -> None:
    pacer = RatePacer(rate_limit=50)
    pacer.observe({"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "19"})
    assert pacer.limit == 20 and pacer.rate == pytest.approx(19.0)
    pacer.observe({"X-RateLimit-Limit": "500", "X-RateLimit-Remaining": "499"})
    assert pacer.limit == 50
    free = RatePacer()
    free.observe({"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "10"})
    assert free.limit == 200
    free.observe({"X-RateLimit-Limit": "junk"})
    assert free.limit == 200


def test_pause_holds_every_thread() -> None:
    pacer = RatePacer()
    waited: list[float] = []

    def other() -> None:
        time.sleep(0.05)  # arrives after the pause began
        waited.append(pacer.acquire())

    t = threading.Thread(target=other)
    t.start()
    pacer.pause(0.3)
    t.join()
    assert 0.2 <= waited[0] < 0.6


def test_a_pause_during_a_sleep_is_honoured() -> None:
    pacer = RatePacer(rate_limit=5)  # slots ~210 ms apart
    pacer.acquire()
    result: list[float] = []
    t = threading.Thread(target=lambda: result.append(pacer.acquire()))
    t.start()  # sleeps towards its slot
    time.sleep(0.05)
    pacer.pause(0.5)
    t.join()
    assert result[0] >= 0.45


def test_spent_window_holds_until_reset() -> None:
    pacer = RatePacer()
    pacer.observe(
        {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.2"}
    )
    started = time.monotonic()
    pacer.acquire()
    assert 0.15 <= time.monotonic() - started < 0.5


def test_rejects_a_non_positive_limit() -> None:
    with pytest.raises(ValueError):
        RatePacer(rate_limit=0)


def test_slots_reserved_before_a_pause_move_behind_it_keeping_their_spacing() -> None:
    pacer = RatePacer(rate_limit=20 / 0.95)  # slots exactly 50 ms apart
    t0 = time.monotonic()
    pacer.acquire()
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        pacer.acquire()
        with lock:
            stamps.append(time.monotonic() - t0)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.02)  # all three sleep towards slots at 50, 100 and 150 ms
    pacer.pause(0.3)  # until ~320 ms
    pacer.pause(0.29)  # a later 429 of the same window: a tiny extension at most
    for t in threads:
        t.join()
    stamps.sort()
    assert stamps[0] >= 0.3
    assert stamps[-1] < 0.3 + 0.15 + 0.12  # not re-queued behind one another
    assert stamps[1] - stamps[0] >= 0.035 and stamps[2] - stamps[1] >= 0.035
