"""Client benchmark: CPU cost per create, and throughput held under a rate limit.

Run: ``python benchmarks/bench_client.py`` (about 45 s; ``--quick`` for ~20 s).

1. CPU per create against a zero-latency sandbox (a separate process, so its
   work is not counted): the client thread's CPU time per ``create_contact``,
   next to a bare ``requests.Session`` loop posting the same payloads with the
   same headers in the same run (the baseline), and their ratio.
2. Throughput against ``--rate-limit 200 --latency 50`` with 16 threads
   sharing one client: achieved rate / limit, and the share of requests the
   server answered 429 (read from the client's own per-attempt counts).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synckit.client import Client

TOKEN = "sk_bench_token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sandbox(*flags: str) -> Iterator[str]:
    """A sandbox in its own process (its CPU is not ours); yields the base URL."""
    port = _free_port()
    cmd = [sys.executable, "-m", "synckit", "sandbox", "--port", str(port)]
    env = dict(
        os.environ,
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
        SYNCKIT_SANDBOX_TOKEN=TOKEN,  # not --token: that would show in `ps`
    )
    proc = subprocess.Popen(
        [*cmd, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("sandbox did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _payload(i: int, tag: str) -> dict[str, object]:
    return {"email": f"bench-{tag}-{i}@example.com", "first_name": "Bench", "last_name": str(i)}


def cpu_per_create(n: int) -> None:
    with sandbox() as url:
        headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
        # Baselines: a default Session, and one that (like the client) skips
        # requests' per-request environment look-ups (proxies, netrc, CA bundle).
        plain = requests.Session()
        tuned = requests.Session()
        tuned.trust_env = False
        client = Client(url, token=TOKEN)

        def bare(session: requests.Session, tag: str) -> Callable[[int, int], None]:
            def run(lo: int, hi: int) -> None:
                for i in range(lo, hi):
                    resp = session.post(
                        url + "/contacts",
                        json=_payload(i, tag),
                        headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                        timeout=10,
                    )
                    assert resp.status_code == 201, resp.status_code
                    resp.json()

            return run

        def ours(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                client.create_contact(_payload(i, "client"))

        runners = {
            "bare requests.Session (defaults)": bare(plain, "plain"),
            "bare Session, trust_env=False": bare(tuned, "tuned"),
            "synckit.Client": ours,
        }
        for fn in runners.values():  # warm-up: imports, first connections
            fn(10**6, 10**6 + 20)
        # Rotate the order in rounds so drift (server warm-up, store growth) hits all alike.
        cpu = dict.fromkeys(runners, 0.0)
        wall = dict.fromkeys(runners, 0.0)
        rounds = 6
        step = n // rounds
        n = step * rounds
        names = list(runners)
        for r in range(rounds):
            for name in names[r % 3 :] + names[: r % 3]:
                cpu0, wall0 = time.thread_time(), time.perf_counter()
                runners[name](r * step, (r + 1) * step)
                cpu[name] += time.thread_time() - cpu0
                wall[name] += time.perf_counter() - wall0
        client.close()
        plain.close()
        tuned.close()

    print(f"[cpu] {n} sequential creates each, zero-latency sandbox in another process")
    for name in names:
        print(
            f"  {name:34s}: {cpu[name] / n * 1e6:6.0f} µs CPU/request "
            f"({n / wall[name]:5.0f} req/s wall)"
        )
    ours_cpu = cpu["synckit.Client"]
    for name in names[:2]:
        print(
            f"  client / {name:34s}: {ours_cpu / cpu[name]:.2f} "
            f"({(ours_cpu - cpu[name]) / n * 1e6:+.0f} µs/request)"
        )


def held_rate(seconds: float, threads: int = 16, limit: int = 200) -> None:
    with sandbox("--rate-limit", str(limit), "--latency", "50") as url:
        client = Client(url, token=TOKEN, pool_size=threads)
        client.get_contact  # noqa: B018 (bound early; keeps the loop tight)
        stop = time.monotonic() + seconds
        lock = threading.Lock()
        totals = {"calls": 0, "attempts": 0, "rate_limited": 0, "errors": 0}
        seq = iter(range(10**9))

        def worker() -> None:
            calls = attempts = errors = 0
            while time.monotonic() < stop:
                with lock:
                    i = next(seq)
                try:
                    client.create_contact(_payload(i, "rate"))
                except Exception:
                    errors += 1
                info = client.last_call
                calls += 1
                attempts += info.attempts if info else 1
            with lock:
                totals["calls"] += calls
                totals["attempts"] += attempts
                totals["errors"] += errors

        # 429s are counted from the log lines the client writes per retry.
        import logging

        class Count(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage().startswith("retrying") and " 429 " in record.getMessage():
                    with lock:
                        totals["rate_limited"] += 1

        logger = logging.getLogger("synckit")
        handler = Count()
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        started = time.monotonic()
        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        took = time.monotonic() - started
        logger.removeHandler(handler)
        client.close()

    rate = totals["calls"] / took
    share = totals["rate_limited"] / max(1, totals["attempts"])
    print(
        f"[rate] {threads} threads, one client, sandbox --rate-limit {limit} --latency 50, "
        f"{took:.1f} s"
    )
    print(
        f"  completed creates: {totals['calls']} ({rate:.1f}/s) = {rate / limit:.1%} of the limit"
    )
    print(
        f"  requests sent: {totals['attempts']}, answered 429: {totals['rate_limited']} "
        f"({share:.2%}), failed calls: {totals['errors']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests, shorter run")
    parser.add_argument("--rate-only", action="store_true", help="skip the CPU part")
    parser.add_argument("--threads", type=int, default=16, help="threads sharing the client")
    args = parser.parse_args()
    if not args.rate_only:
        cpu_per_create(500 if args.quick else 2000)
    held_rate(8.0 if args.quick else 20.0, threads=args.threads)


if __name__ == "__main__":
    main()
