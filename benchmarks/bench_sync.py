"""Sync engine throughput against a rate-limited, slow sandbox, and memory on a 1M-row file.

Default (one command, about a minute)::

    python benchmarks/bench_sync.py

syncs 5,000 generated contacts through ``synckit.upsert`` against an
in-process sandbox with ``rate_limit=200`` and ``latency_ms=50``, and prints
the sustained request rate as a share of the limit, the share of requests
answered 429, and the ratio to a plain sequential ``requests.post`` loop
measured in the same run (the loop runs on a 300-row sample against a fresh
sandbox with the same settings; its rate is extrapolated to 5,000 rows).

Memory (tens of minutes on 2 cores)::

    python benchmarks/bench_sync.py --million [--rows 1000000]

writes a 1,000,000-row CSV, starts ``synckit sandbox`` in a separate process
(zero latency, no rate limit, contacts in a SQLite file) and runs ``synckit
sync FILE`` in another, which prints its own peak RSS (goal: under 500 MB).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _gen import make_contacts_csv, make_contacts_frame

import synckit
from synckit.sandbox import serve_sandbox

RATE = 200
LATENCY_MS = 50


def baseline(payloads: list[dict[str, object]]) -> float:
    """Rows per second of the straightforward loop: one requests.post per row, in order."""
    with serve_sandbox(rate_limit=RATE, latency_ms=LATENCY_MS) as sb:
        headers = {"Authorization": f"Bearer {sb.token}"}
        started = time.perf_counter()
        for body in payloads:
            r = requests.post(sb.url + "/contacts", json=body, headers=headers, timeout=10)
            r.raise_for_status()
        return len(payloads) / (time.perf_counter() - started)


def _valid_frame(n: int, seed: int) -> pd.DataFrame:
    """``n`` generated contacts that pass validation (the generator mixes in bad ones)."""
    valid = synckit.validate(make_contacts_frame(n + n // 4 + 50, seed=seed)).valid
    return valid.head(n)


def throughput(n: int, workers: int) -> dict[str, float]:
    check = synckit.validate(_valid_frame(n, seed=11))
    with (
        serve_sandbox(rate_limit=RATE, latency_ms=LATENCY_MS) as sb,
        synckit.Client(sb.url, token=sb.token) as client,
    ):
        started = time.perf_counter()
        report = synckit.upsert(check, client, workers=workers, progress=False)
        elapsed = time.perf_counter() - started
        log = sb.request_log()
    contact_requests = [r for r in log if r.path.startswith("/v1/contacts")]
    answered_429 = sum(r.status == 429 for r in contact_requests)
    ok = [r for r in contact_requests if r.status < 400]
    # The steady rate: whole seconds between the first and the last request.
    times = sorted(r.time for r in contact_requests)
    span = times[-1] - times[0] if len(times) > 1 else elapsed
    return {
        "rows": len(check.valid),
        "created": int(report.counts()["created"]),
        "failed": int(report.counts()["failed"]),
        "elapsed": elapsed,
        "requests": len(contact_requests),
        "ok_requests": len(ok),
        "rate": len(contact_requests) / span,
        "ok_rate": len(ok) / span,
        "share_429": answered_429 / max(len(contact_requests), 1),
        "rows_per_s": len(check.valid) / elapsed,
    }


def run_throughput(n: int) -> None:
    print(f"sandbox: rate_limit={RATE}/s, latency={LATENCY_MS} ms; {n:,} generated contacts")
    sample = [body for _, body in _payloads(300)]
    base = baseline(sample)
    print(
        f"baseline  sequential requests.post, {len(sample)}-row sample: {base:7.1f} rows/s "
        f"-> {n / base:7.1f} s for {n:,} rows (extrapolated)"
    )
    for workers in (8, 16):
        m = throughput(n, workers)
        print(
            f"upsert    workers={workers:<2}  {m['rows']:,} rows in {m['elapsed']:6.1f} s = "
            f"{m['rows_per_s']:6.1f} rows/s | {m['requests']:,} requests, "
            f"{m['rate']:6.1f}/s = {100 * m['rate'] / RATE:5.1f}% of the limit "
            f"({100 * m['ok_rate'] / RATE:5.1f}% answered 2xx) | 429s "
            f"{100 * m['share_429']:.2f}% | created {m['created']:,}, failed {m['failed']} | "
            f"x{m['rows_per_s'] / base:.1f} the sequential loop"
        )


def _payloads(n: int) -> list[tuple[int, dict[str, object]]]:
    from synckit.validation import to_payloads

    return to_payloads(_valid_frame(n, seed=5))


_CLI_WITH_PEAK = (
    "import resource, sys\n"
    "from synckit.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
    "print(f'PEAK_RSS_MB {peak:.0f}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_million(rows: int, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="synckit-bench-") as tmp:
        path = Path(tmp) / "contacts_1m.csv"
        started = time.perf_counter()
        make_contacts_csv(path, rows, seed=3)
        print(f"wrote {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        db = Path(tmp) / "sandbox.db"
        proc = subprocess.Popen(
            [sys.executable, "-m", "synckit", "sandbox", "--port", "0", "--db", str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            url = ""
            for line in proc.stdout:
                match = re.search(r"serving (http://\S+)", line)
                if match:
                    url = match.group(1)
                    break
            if not url:
                raise SystemExit("the sandbox did not start")
            threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
            # `synckit sync` exactly as a user runs it, in its own process, which
            # reports its own peak RSS (the sandbox's memory is not counted).
            env = {**os.environ, "SYNCKIT_BASE_URL": url, "SYNCKIT_TOKEN": "sk_test_synckit_demo"}
            report = str(Path(tmp) / "report.csv")
            cmd = [sys.executable, "-c", _CLI_WITH_PEAK, "sync", str(path), "--no-progress",
                   "--workers", str(workers), "--report", report]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            print(done.stdout.strip())
            peak = re.search(r"PEAK_RSS_MB (\d+)", done.stderr)
            print(f"synckit sync: exit code {done.returncode}, {elapsed:.0f} s "
                  f"({rows / elapsed:.0f} rows/s)")  # fmt: skip
            print(
                f"peak RSS of the synckit sync process: {peak.group(1) if peak else '?'} MB "
                "(goal < 500 MB)"
            )
            if done.returncode not in (0, 1):
                print(done.stderr[-2000:])
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="rows (5000, or 1000000)")
    parser.add_argument("--million", action="store_true", help="the 1M-row memory run")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.million:
        run_million(args.rows or 1_000_000, args.workers)
    else:
        run_throughput(args.rows or 5000)


if __name__ == "__main__":
    main()
