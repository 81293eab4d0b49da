"""A rate budget shared by processes (a file) and hosts (a real Redis server).

The promise: everyone holding one budget takes slots from one evenly spaced
sequence, so together they stay under the limit (no one-second window holds
more) while any of them may use all of it.
"""

from __future__ import annotations

import doctest
import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from synckit import _ratelimit, _ratestore
from synckit._ratelimit import RatePacer, Schedule, hold_schedule, reserve_slot, tolerance_for
from synckit._ratestore import FileBudget, RedisBudget, budget_key, open_budget
from synckit.client import Client
from synckit.errors import ConfigError
from synckit.sandbox import Sandbox

Factory = Callable[..., Sandbox]
ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _worst_second(times: list[float]) -> int:
    """The most timestamps in any one-second span [t, t + 1)."""
    times = sorted(times)
    worst = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        worst = max(worst, i - j + 1)
    return worst


def test_docstring_examples() -> None:
    for module in (_ratelimit, _ratestore):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# ------------------------------------------------------------ the promise


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(min_value=2, max_value=400),
    # (idle seconds before, requests arriving together, seconds of pause a 429 asks)
    events=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=1.5),
            st.integers(min_value=1, max_value=80),
            st.sampled_from([0.0, 0.0, 0.0, 0.2, 1.0]),
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_no_one_second_window_exceeds_the_limit(
    limit: int, events: list[tuple[float, int, float]]
) -> None:
    """Whatever the arrival pattern (bursts after idle spells, steady streams,
    429 pauses), the slots handed out never put more than ``limit`` requests
    in one second."""
    rate = limit * _ratelimit.DEFAULT_HEADROOM
    interval, tol = 1.0 / rate, tolerance_for(limit, rate)
    s = Schedule()
    now = 0.0
    slots = []
    for idle, burst, pause in events:
        now += idle
        if pause:
            hold_schedule(s, now, pause)
        slots += [reserve_slot(s, now, interval, tol) for _ in range(burst)]
    assert _worst_second(slots) <= limit
    assert all(b >= a for a, b in itertools.pairwise(slots))  # handed out in order


def test_a_busy_budget_is_used_at_its_pace() -> None:
    s = Schedule()
    slots = [reserve_slot(s, 0.0, 1 / 190, tolerance_for(200, 190)) for _ in range(1900)]
    # Everyone asking at once: 1900 slots spread over 10 s at 190/s (95 % of 200).
    assert slots[-1] == pytest.approx(1899 / 190, abs=0.03)
    assert _worst_second(slots) <= 200


# ------------------------------------------------------------------ file


def test_file_budget_is_one_schedule_for_everyone_holding_it(tmp_path: Path) -> None:
    clock = Clock()
    a = open_budget(tmp_path, key="k1", clock=clock)
    b = open_budget(tmp_path, key="k1", clock=clock)
    other = open_budget(tmp_path, key="k2", clock=clock)
    try:
        # Slots 0.1 s apart, whoever asks: a, b, a, b... take consecutive slots.
        waits = [x.reserve(0.1, 0.0)[0] for x in (a, b, a, b)]
        assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])
        assert other.reserve(0.1, 0.0)[0] == 0.0  # another credential: its own budget
        # A pause by one holds the other, and slots already given move with it.
        b.hold(1.0)
        wait, shift, _ = a.reserve(0.1, 0.0)
        assert wait == pytest.approx(1.4) and shift == pytest.approx(1.0)
        # The limit one process learnt is the other's: a joins at b's pace.
        b.publish(10.0, 0.2, 0.0)
        clock.now += 5
        assert a.reserve(0.0, 0.0) == (0.0, pytest.approx(1.0), 10.0)
        assert a.reserve(0.0, 0.0)[0] == pytest.approx(0.2)
    finally:
        for x in (a, b, other):
            x.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "synckit-rate-k1.bin",
        "synckit-rate-k2.bin",
    ]


@pytest.mark.parametrize("store", ["file", "redis"])
def test_a_429_pause_in_one_process_holds_the_others(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    spec = str(tmp_path) if store == "file" else request.getfixturevalue("redis_url")
    key = f"pause-{store}-{time.time()}"
    one = RatePacer(budget=open_budget(spec, key=key))
    other = RatePacer(budget=open_budget(spec, key=key))
    try:
        one.observe({"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "49"})
        assert other.acquire() < 0.05 and other.limit == 50  # learnt from the budget
        one.pause(0.4)  # a 429 with Retry-After: 0.4 answered to the first
        assert other.acquire() >= 0.35
        # A spent window (Remaining 0) is a pause for everyone too.
        one.observe(
            {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0.3"}
        )
        assert other.acquire() >= 0.25
    finally:
        one.close()
        other.close()


def test_a_process_killed_inside_the_lock_leaves_nothing_locked(tmp_path: Path) -> None:
    # A job killed (SIGKILL: no cleanup runs) in the middle of a budget step,
    # while it holds the budget's lock: the others carry on at once.
    child = textwrap.dedent(
        f"""
        import os, time
        from synckit._ratestore import open_budget
        budget = open_budget({str(tmp_path)!r}, key="dead")
        def stuck(fd, n, offset):  # the step reads the schedule under the lock
            print("locked", flush=True)
            time.sleep(60)
        os.pread = stuck
        budget.reserve(0.01, 0.0)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, env=env)
    budget = None
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        started = time.monotonic()
        budget = open_budget(tmp_path, key="dead")
        assert budget.reserve(0.01, 0.0)[0] <= 0.01
        assert time.monotonic() - started < 1.0
    finally:
        if holder.poll() is None:
            holder.kill()
        if budget is not None:
            budget.close()


def test_a_corrupt_or_foreign_file_starts_a_fresh_schedule(tmp_path: Path) -> None:
    clock = Clock()
    (tmp_path / "synckit-rate-k.bin").write_bytes(b"\x7f" * 64)  # huge numbers if read
    b = open_budget(tmp_path, key="k", clock=clock)
    assert b.reserve(0.5, 0.0)[0] == 0.0 and b.reserve(0.5, 0.0)[0] == 0.5
    b.close()


def test_a_schedule_far_ahead_is_a_clock_that_jumped_back(tmp_path: Path) -> None:
    clock = Clock(10_000.0)
    b = open_budget(tmp_path, key="k", clock=clock)
    b.reserve(1.0, 0.0)
    clock.now -= 2 * 3600  # the wall clock was stepped back two hours
    assert b.reserve(1.0, 0.0)[0] == 0.0  # not a two-hour wait
    b.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{tmp}/file.txt", "is a file; give a directory"),
        ("{tmp}/missing/budget", "parent directory does not exist"),
        ("ftp://example.com/x", "unknown scheme"),
        ("", "must be a directory path"),
    ],
)
def test_bad_stores_are_config_errors(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigError, match=message):
        open_budget(spec.format(tmp=tmp_path), key="k")


def test_budget_key_hashes_the_credential() -> None:
    key = budget_key("https://api.example.com/v1", "token:sk_live_secret")
    assert len(key) == 32 and "secret" not in key
    assert key == budget_key("HTTPS://API.EXAMPLE.COM/v1/", "token:sk_live_secret")
    assert key != budget_key("https://api.example.com/v1", "token:sk_live_other")
    assert key != budget_key("https://api.example.org/v1", "token:sk_live_secret")


# ----------------------------------------------------------------- redis


@pytest.fixture
def rclient(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_redis_budget_is_one_schedule_and_expires(redis_url: str, rclient: redis.Redis) -> None:
    a = open_budget(redis_url, key="shared-1")
    b = open_budget(redis_url, key="shared-1")
    try:
        assert isinstance(a, RedisBudget)
        waits = [x.reserve(0.1, 0.0)[0] for x in (a, b, a, b)]
        # The server's clock moves a little between calls; the slots do not.
        assert [w + 0.1 * i for i, w in enumerate([0, 0.1, 0.2, 0.3])] == pytest.approx(
            [w + 0.1 * i for i, w in enumerate(waits)], abs=0.02
        )
        b.hold(0.5)
        assert a.reserve(0.1, 0.0)[1] == pytest.approx(0.5, abs=0.02)
        ttl = rclient.pttl("synckit:rate:shared-1")
        # Kept ten minutes after its last slot, then gone: nothing to clean up.
        assert 600_000 <= ttl <= 602_000
    finally:
        a.close()
        b.close()


def test_lua_and_python_take_the_same_steps(rclient: redis.Redis, tmp_path: Path) -> None:
    """The Redis script and the Python functions, fed the same times, agree exactly."""
    ops = [
        ("reserve", 0.1, 0.0, 0.0),
        ("reserve", 0.1, 0.0, 0.0),
        ("reserve", 0.1, 0.05, 0.02),
        ("hold", 0.3, 0, 0.03),
        ("reserve", 0.1, 0.05, 0.05),
        ("publish", 0.25, 0.01, 0.06),  # a slower pace (4/s) published by someone
        ("reserve", 0.1, 0.05, 0.5),
        ("reserve", 0.0, 0.0, 0.5),
        ("hold", 0.2, 0, 3.0),
        ("hold", 0.1, 0, 3.05),  # inside the first pause: no growth
        ("reserve", 0.1, 0.0, 5.0),
        ("reserve", 0.1, 0.0, 4000.0),  # far later: the queue is long gone
    ]
    clock = Clock(1_000_000.0)
    lua = RedisBudget(rclient, key="differential", shown="test", clock=clock)
    py = FileBudget(tmp_path / "differential.bin", clock=clock)
    rclient.delete("synckit:rate:differential")
    for op, x, y, at in ops:
        clock.now = 1_000_000.0 + at
        for budget in (lua, py):
            if op == "reserve":
                got = budget.reserve(x, y)
            elif op == "hold":
                budget.hold(x)
                got = (0.0, budget.seen_shift(), 0.0)
            else:
                budget.publish(4.0, x, y)
                got = (0.0, 0.0, 0.0)
            if budget is lua:
                expected = got
            else:
                assert got == pytest.approx(expected, abs=2e-6), (op, at)
    py.close()


def test_unreachable_redis_is_a_config_error_at_once(free_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"cannot reach the Redis server") as info:
        Client(
            "http://127.0.0.1:1/v1",
            token="t",
            rate_store=f"redis://:hunter2@127.0.0.1:{free_port}/0",
        )
    assert time.monotonic() - started < 5
    assert "hunter2" not in str(info.value) and f"127.0.0.1:{free_port}" in str(info.value)


def test_wrong_redis_password_is_a_config_error_without_the_password(tmp_path: Path) -> None:
    from _redis import RedisServer

    server = RedisServer(tmp_path)
    url = server.start()
    try:
        redis.Redis.from_url(url).config_set("requirepass", "right-pass")
        port = url.rsplit(":", 1)[1]
        with pytest.raises(ConfigError, match="refused the credentials") as info:
            open_budget(f"redis://:wrong-pass@127.0.0.1:{port}", key="k")
        assert "wrong-pass" not in str(info.value)
        good = open_budget(f"redis://:right-pass@127.0.0.1:{port}", key="k")
        assert good.reserve(0.1, 0.0)[0] == 0.0
        assert "right-pass" not in repr(good)
        good.close()
    finally:
        server.stop()


def test_a_store_lost_mid_run_falls_back_to_local_pacing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _redis import RedisServer

    server = RedisServer(tmp_path)
    url = server.start()
    budget = open_budget(url, key="lost", connect_timeout=0.5)
    asked = []
    reserve = budget.reserve

    def counting(interval: float, tolerance: float) -> tuple[float, float, float]:
        asked.append(time.monotonic())
        return reserve(interval, tolerance)

    budget.reserve = counting  # type: ignore[method-assign]
    pacer = RatePacer(rate_limit=100 / 0.95, budget=budget)
    caplog.set_level(logging.WARNING, logger="synckit")
    monkeypatch.setattr(_ratelimit, "RETRY_SHARED_AFTER", 0.05)
    try:
        pacer.acquire()
        server.stop()
        started = time.monotonic()
        for _ in range(30):
            pacer.acquire()  # paced here at 100/s instead; the store is asked again
        took = time.monotonic() - started
        assert 0.2 < took < 2.0
        # Asked again every 50 ms (not on every request), warned once.
        assert 3 <= len(asked) - 1 <= 12
        warnings = [r.getMessage() for r in caplog.records if "rate budget" in r.getMessage()]
        assert len(warnings) == 1 and "pacing this process on its own" in warnings[0]
    finally:
        server.stop()
        pacer.close()


# --------------------------------------------- across processes, for real

_WORKER = """
import json, sys, threading, time
from synckit._ratelimit import RatePacer
from synckit._ratestore import open_budget
spec, seconds = sys.argv[1], float(sys.argv[2])
budget = open_budget(spec, key="xproc")
slots, sent = [], []
reserve = budget.reserve
def recording(interval, tolerance):
    got = reserve(interval, tolerance)
    slots.append(time.time() + got[0])  # the slot the schedule gave (same clock)
    return got
budget.reserve = recording
pacer = RatePacer(rate_limit=50, budget=budget)
print("ready", flush=True)
start = float(sys.stdin.readline())
def work():
    while time.time() < start:
        time.sleep(0.002)
    while time.time() < start + seconds:
        pacer.acquire()
        sent.append(time.time())
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps([slots, sent]))
"""


@pytest.mark.parametrize("store", ["file", "redis"])
def test_three_processes_together_stay_under_the_limit_and_use_it(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    spec = str(tmp_path) if store == "file" else request.getfixturevalue("redis_url")
    if store == "redis":
        redis.Redis.from_url(spec).delete("synckit:rate:xproc")
    seconds = 2.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, spec, repr(seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:  # all imported and holding the budget: start together
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    start = time.time() + 0.1
    slots: list[float] = []
    sent: list[float] = []
    per_process = []
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(f"{start!r}\n")
        p.stdin.flush()
    for p in procs:
        out, _ = p.communicate(timeout=60)
        got_slots, got_sent = json.loads(out)
        per_process.append(len(got_sent))
        slots += got_slots
        sent += got_sent
    # 3 processes x 4 threads, each free to take every slot: together they
    # are given 47.5 slots a second (95 % of 50), never more than 50 in one...
    assert _worst_second(slots) <= 50
    # ...send when given (a loaded machine wakes a thread late, and a late send
    # bunches with the next: the server's fixed windows see at most one more)...
    assert _worst_second(sent) <= 55
    # ...and use the budget: >= 90 % of the limit from the first send to the last.
    assert (len(sent) - 1) / (max(sent) - min(sent)) >= 0.9 * 50
    assert min(per_process) > 0  # everyone got slots


_RACER = """
import json, sys
from synckit._ratestore import open_budget
budget = open_budget(sys.argv[1], key="race", clock=lambda: 0.0)
print("ready", flush=True)
sys.stdin.readline()
print(json.dumps([budget.reserve(1.0, 0.0)[0] for _ in range(int(sys.argv[2]))]))
"""


@pytest.mark.parametrize("store", ["file", "redis"])
def test_every_step_is_atomic_across_processes(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Three processes reserve as fast as they can from a clock stopped at 0 with
    1 s slots: one schedule hands out 0, 1, 2, ... each exactly once. (A lost
    update, two processes reading the same state, would hand a slot out twice.)"""
    spec = str(tmp_path) if store == "file" else request.getfixturevalue("redis_url")
    if store == "redis":
        redis.Redis.from_url(spec).delete("synckit:rate:race")
    n = 400
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, spec, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    slots: list[float] = []
    for p in procs:
        slots += json.loads(p.communicate(timeout=60)[0])
    assert sorted(slots) == [float(i) for i in range(3 * n)]


# ------------------------------------------------------- through the client


def test_two_clients_on_one_store_share_the_servers_limit(
    sandbox_factory: Factory, tmp_path: Path
) -> None:
    sb = sandbox_factory(rate_limit=20)
    from concurrent.futures import ThreadPoolExecutor

    clients = [Client(sb.url, token=sb.token, rate_store=tmp_path) for _ in range(2)]
    try:
        made = clients[0].create_contact({"email": "x@example.com"})
        stop = time.monotonic() + 2.0

        def work(c: Client) -> None:
            while time.monotonic() < stop:
                c.get_contact(made["id"])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(work, clients * 4))
        # The second client learnt the limit from the first through the store.
        assert clients[1].rate_limit == 20
    finally:
        for c in clients:
            c.close()
    log = sb.request_log()
    # The server's fixed windows: no 429 (one, if a loaded machine's late
    # wake-ups bunch two sends across a window's edge). Arrivals in any
    # sliding second: 20 at 19/s, a little more only by such bunching.
    assert sum(r.status == 429 for r in log) <= 1
    assert _worst_second([r.time for r in log]) <= 22
    assert len(log) >= 0.85 * 19 * 2.0  # and together they used the budget
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and sb.token not in files[0].name
    assert sb.token.encode() not in files[0].read_bytes()


def test_client_repr_names_the_store(redis_url: str, tmp_path: Path) -> None:
    with Client("http://127.0.0.1:9/v1", token="t", rate_store=redis_url) as client:
        assert client.rate_store == redis_url
        assert repr(client).endswith(f"rate_store={redis_url!r})")
    with Client("http://127.0.0.1:9/v1", token="t") as plain:
        assert plain.rate_store is None and "rate_store" not in repr(plain)


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name in ("SYNCKIT_CLIENT_ID", "SYNCKIT_CLIENT_SECRET", "SYNCKIT_RATE_STORE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SYNCKIT_BASE_URL", sandbox.url)
    monkeypatch.setenv("SYNCKIT_TOKEN", sandbox.token)
    return sandbox


def _csv(path: Path, n: int) -> Path:
    path.write_text("email\n" + "".join(f"c{i}@example.com\n" for i in range(n)))
    return path


def test_cli_rate_store_directory(
    env: Sandbox, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from synckit.cli import main

    src = _csv(tmp_path / "people.csv", 5)
    store = tmp_path / "budget"
    assert main(["sync", str(src), "--no-progress", "--rate-store", str(store)]) == 0
    assert len(env.contacts()) == 5
    assert [p.name.startswith("synckit-rate-") for p in store.iterdir()] == [True]


def test_cli_unreachable_store_exits_2_at_once(
    env: Sandbox, tmp_path: Path, free_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from synckit.cli import main

    src = _csv(tmp_path / "people.csv", 3)
    started = time.monotonic()
    code = main(
        ["sync", str(src), "--no-progress", "--rate-store", f"redis://127.0.0.1:{free_port}/0"]
    )
    assert code == 2 and time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert f"rate_store redis://127.0.0.1:{free_port}/0: cannot reach the Redis server" in err
    assert env.request_log() == []  # nothing was sent


def test_cli_refuses_a_password_in_the_url_and_takes_it_from_the_environment(
    env: Sandbox,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from _redis import RedisServer

    from synckit.cli import main

    src = _csv(tmp_path / "people.csv", 3)
    server = RedisServer(tmp_path / "redis")
    url = server.start()
    try:
        redis.Redis.from_url(url).config_set("requirepass", "s3cret-pass")
        with_password = url.replace("redis://", "redis://:s3cret-pass@")
        assert main(["sync", str(src), "--no-progress", "--rate-store", with_password]) == 2
        err = capsys.readouterr().err
        assert "SYNCKIT_RATE_STORE_PASSWORD" in err and "s3cret-pass" not in err
        assert main(["sync", str(src), "--no-progress", "--rate-store", f"{url}?password=x"]) == 2
        assert "SYNCKIT_RATE_STORE_PASSWORD" in capsys.readouterr().err
        assert main(["sync", str(src), "--no-progress", "--rate-store", url]) == 2
        assert "refused the credentials" in capsys.readouterr().err
        monkeypatch.setenv("SYNCKIT_RATE_STORE_PASSWORD", "s3cret-pass")
        env.config.rate_limit = 50  # a limit to share: the budget then has a schedule
        assert main(["sync", str(src), "--no-progress", "--rate-store", url]) == 0
        assert len(env.contacts()) == 3
        keys = redis.Redis.from_url(with_password).keys("synckit:rate:*")
        assert len(keys) == 1 and env.token.encode() not in keys[0]
    finally:
        server.stop()


def test_config_key_rate_store(tmp_path: Path) -> None:
    from synckit.config import load_config

    (tmp_path / "a.toml").write_text('rate_store = "budget"\n')
    (tmp_path / "b.toml").write_text('[sync]\nrate_store = "redis://cache:6379/1"\n')
    assert load_config(tmp_path / "a.toml") == {"rate_store": str(tmp_path / "budget")}
    assert load_config(tmp_path / "b.toml") == {"rate_store": "redis://cache:6379/1"}
