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
    assert 39 / 95 * 0.9 <= span < 39 / 95 + 0.5
    gaps = sorted(b - a for a, b in itertools.pairwise(stamps))
    assert 0.005 <= gaps[len(gaps) // 2] <= 0.02  # typical gap ~1/95 s: spaced, not bunched


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
    paused = threading.Event()
    returned: list[float] = []

    def other() -> None:
        paused.wait()  # a thread that never saw the 429 itself
        pacer.acquire()
        returned.append(time.monotonic())

    t = threading.Thread(target=other)
    t.start()
    before = time.monotonic()
    pacer.pause(0.3)
    paused.set()
    t.join()
    assert returned[0] >= before + 0.3


def test_a_pause_during_a_sleep_is_honoured() -> None:
    pacer = RatePacer(rate_limit=2 / 0.95)  # slots 500 ms apart
    pacer.acquire()
    returned: list[float] = []

    def other() -> None:
        pacer.acquire()
        returned.append(time.monotonic())

    t = threading.Thread(target=other)
    t.start()  # sleeps towards its slot, ~500 ms ahead
    time.sleep(0.05)
    before = time.monotonic()
    pacer.pause(0.5)
    t.join()
    if returned[0] > before:  # (on an overloaded machine the slot may come first)
        assert returned[0] >= before + 0.5


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
    pacer = RatePacer(rate_limit=10 / 0.95)  # slots exactly 100 ms apart
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
    time.sleep(0.02)  # all three sleep towards slots at 100, 200 and 300 ms
    paused_at = time.monotonic() - t0
    pacer.pause(0.3)
    pacer.pause(0.29)  # a later 429 of the same window: a tiny extension at most
    for t in threads:
        t.join()
    stamps.sort()
    # On a loaded machine the pause may come late; slots already due went out.
    moved = [s for s in stamps if s > paused_at + 0.01]
    assert moved, "the pause came after every slot: machine too loaded to tell"
    assert all(s >= paused_at + 0.29 for s in moved)
    # Moved together, not re-queued behind one another, and still spaced.
    assert moved[-1] - moved[0] < 0.1 * (len(moved) - 1) + 0.1
    assert all(b - a >= 0.07 for a, b in itertools.pairwise(moved))
