"""One rate budget, used fully: share of a 200/s limit used, and share answered 429.

Run: ``python benchmarks/bench_rate.py`` (about 4 minutes; ``--quick`` for
shorter runs, ``--cases defaults-50,file-2`` for some of them).

Every case runs a sandbox limited to 200 requests per second (one fixed
window per second, shared by every client, as a platform counts one
credential) in this process, and the jobs as separate processes syncing
generated contacts (custom column, mixed phone formats; ~6 % invalid rows are
reported, not sent):

- ``defaults-10`` / ``-50`` / ``-250``: one ``synckit sync FILE`` with its
  defaults, at 10, 50 and 250 ms server latency;
- ``file-2`` / ``file-4``: 2 and 4 ``synckit sync --rate-store DIR`` jobs at
  once, 50 ms latency;
- ``redis-2``: 2 ``synckit sync --rate-store redis://...`` jobs at once
  (a real ``redis-server`` on a free loopback port), 50 ms latency.

``--cpu`` instead measures what sharing costs the client: CPU per create
(this thread's ``thread_time``) with no store, a directory store and Redis,
against a sandbox in another process, rotated in rounds in one run.

Each case is measured twice in the same run: the new defaults, and the
baseline of today's behaviour (8 fixed workers, ``adaptive_concurrency=False``,
each process pacing on its own), run by this script's ``--baseline-job`` with
the same data. The figures come from the sandbox's request log: requests
admitted per second between the first and the last request, as a share of the
limit, and the share of requests answered 429.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

LIMIT = 200
SECONDS = 12.0  # how long each case should keep the server busy


@dataclass
class Case:
    name: str
    latency_ms: int
    jobs: int
    store: str | None  # None, "file" or "redis"


CASES = [
    Case("defaults-10", 10, 1, None),
    Case("defaults-50", 50, 1, None),
    Case("defaults-250", 250, 1, None),
    Case("file-2", 50, 2, "file"),
    Case("file-4", 50, 4, "file"),
    Case("redis-2", 50, 2, "redis"),
]


def _rows_for(rate: float, seconds: float) -> int:
    # Rows that keep a job sending for `seconds` at `rate` (~6 % are invalid, not sent).
    return max(200, int(rate * seconds / 0.94))


def _write_jobs(tmp: Path, name: str, rows: int, jobs: int) -> list[Path]:
    """One CSV per job, slices of one generated file (so no email repeats across jobs)."""
    import pandas as pd
    from _gen import make_contacts_csv

    whole = make_contacts_csv(tmp / f"{name}.csv", rows, seed=hash(name) % 1000)
    frame = pd.read_csv(whole, dtype=str, keep_default_na=False)
    paths = []
    for j in range(jobs):
        path = tmp / f"{name}-job{j}.csv"
        frame.iloc[j::jobs].to_csv(path, index=False)
        paths.append(path)
    return paths


def _env(url: str, token: str) -> dict[str, str]:
    return {
        **os.environ,
        "SYNCKIT_BASE_URL": url,
        "SYNCKIT_TOKEN": token,
        "PYTHONPATH": str(HERE.parent),
    }


def run_case(case: Case, mode: str, tmp: Path, redis_url: str | None, quick: bool) -> dict:
    from synckit.sandbox import serve_sandbox

    seconds = SECONDS / 2 if quick else SECONDS
    latency = case.latency_ms / 1000
    if mode == "baseline":
        per_job = min(LIMIT * 0.95, 8 / (latency + 0.002)) if case.jobs == 1 else LIMIT
        rate = min(LIMIT, per_job * case.jobs)
    else:
        rate = LIMIT
    files = _write_jobs(tmp, f"{case.name}-{mode}", _rows_for(rate, seconds), case.jobs)
    with serve_sandbox(rate_limit=LIMIT, latency_ms=case.latency_ms) as sb:
        env = _env(sb.url, sb.token)
        cmds = []
        for path in files:
            report = str(path.with_suffix(".report.csv"))
            if mode == "baseline":
                cmd = [sys.executable, __file__, "--baseline-job", str(path), "--report", report]
            else:
                cmd = [sys.executable, "-m", "synckit", "sync", str(path), "--no-progress"]
                cmd += ["--report", report]
                if case.store == "file":
                    cmd += ["--rate-store", str(tmp / f"budget-{case.name}")]
                elif case.store == "redis":
                    assert redis_url
                    cmd += ["--rate-store", redis_url]
            cmds.append(cmd)
        started = time.perf_counter()
        procs = [
            subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for c in cmds
        ]
        errors = [p.communicate()[1].decode() for p in procs]
        wall = time.perf_counter() - started
        log = [r for r in sb.request_log() if r.path.startswith("/v1/contacts")]
    bad = [(p.returncode, e[-300:]) for p, e in zip(procs, errors, strict=True) if p.returncode > 1]
    if bad:
        raise RuntimeError(f"{case.name} {mode}: a job failed: {bad}")
    times = sorted(r.time for r in log)
    span = times[-1] - times[0]
    admitted = sum(r.status != 429 for r in log)
    refused = sum(r.status == 429 for r in log)
    # The worst one-second span of admitted requests, from the server's log.
    ok_times = sorted(r.time for r in log if r.status != 429)
    worst = j = 0
    for i, t in enumerate(ok_times):
        while ok_times[j] <= t - 1.0:
            j += 1
        worst = max(worst, i - j + 1)
    return {
        "requests": len(log),
        "admitted": admitted,
        "span": span,
        "used": admitted / span / LIMIT,
        "share_429": refused / max(1, len(log)),
        "worst_second": worst,
        "wall": wall,
    }


def baseline_job(path: str, report: str) -> int:
    """Today's behaviour: 8 fixed workers, pacing in this process only."""
    import synckit
    from synckit.io import read_csv

    client = synckit.Client(
        os.environ["SYNCKIT_BASE_URL"],
        token=os.environ["SYNCKIT_TOKEN"],
        max_concurrency=8,
        adaptive_concurrency=False,
    )
    with client:
        result = synckit.upsert(read_csv(path, chunksize=20_000), client, workers=8, progress=False)
    result.to_csv(report)
    return int(result.exit_code())


def store_cpu(n: int = 1500) -> None:
    """CPU per create in this thread: no store, a directory store, Redis."""
    from bench_client import TOKEN, _payload, sandbox

    from synckit.client import Client

    with tempfile.TemporaryDirectory() as d, sandbox("--rate-limit", "100000") as url:
        server = _redis(Path(d))
        try:
            stores = {"none": None, "directory": f"{d}/budget", "redis": server.start()}
            clients = {k: Client(url, token=TOKEN, rate_store=v) for k, v in stores.items()}
            for name, c in clients.items():  # warm-up: connections, script load
                for i in range(50):
                    c.create_contact(_payload(i, f"warm{name}"))
            cpu = dict.fromkeys(clients, 0.0)
            rounds = 3
            for r in range(rounds):
                for name, c in clients.items():
                    t = time.thread_time()
                    for i in range(n // rounds):
                        c.create_contact(_payload(r * n + i, name))
                    cpu[name] += time.thread_time() - t
            for c in clients.values():
                c.close()
        finally:
            server.stop()
    base = cpu["none"] / n * 1e6
    print(f"[cpu] {n} sequential creates each, zero-latency sandbox in another process")
    for name in clients:
        per = cpu[name] / n * 1e6
        print(f"  rate_store={name:9s}: {per:5.0f} µs CPU/request ({per - base:+4.0f} µs)")


def _redis(tmp: Path):  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(HERE.parent / "tests"))
    from _redis import RedisServer

    return RedisServer(tmp / "redis")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="6 s per case instead of 12")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--cpu", action="store_true", help="CPU per request with each store")
    parser.add_argument("--baseline-job", metavar="CSV", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_job:
        sys.exit(baseline_job(args.baseline_job, args.report))
    if args.cpu:
        store_cpu()
        return

    chosen = [c for c in CASES if not args.cases or c.name in args.cases.split(",")]
    print(
        f"sandbox limit {LIMIT}/s (fixed one-second windows); jobs are separate processes; "
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'case':14} {'mode':9} {'requests':>8} {'span s':>7} {'used':>7} {'429s':>7} "
        f"{'worst 1s':>8}"
    )
    results: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        server = _redis(tmp) if any(c.store == "redis" for c in chosen) else None
        try:
            redis_url = server.start() if server else None
            for case in chosen:
                for mode in ("baseline", "new"):
                    m = run_case(case, mode, tmp, redis_url, args.quick)
                    results.setdefault(case.name, {})[mode] = m
                    print(
                        f"{case.name:14} {mode:9} {m['requests']:8d} {m['span']:7.1f} "
                        f"{m['used']:7.1%} {m['share_429']:7.2%} {m['worst_second']:8d}",
                        flush=True,
                    )
        finally:
            if server:
                server.stop()
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
