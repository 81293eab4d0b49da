"""Nightly re-send of a full export: the second run over a file with 1 % changed rows.

One command (a few minutes)::

    python benchmarks/bench_incremental.py [--rows 100000]

Starts ``synckit sandbox`` in a separate process (zero latency, no rate
limit), writes a generated ``--rows`` CSV, syncs it with ``state=PATH`` (the
first night: every valid row is created), changes ``first_name`` on 1 % of
the created rows, and syncs the whole file again with the same ledger.
Prints both times, their ratio (goal: the second run takes at most 10 % of
the first), and the HTTP requests the second run sent per changed row
(goal: one).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _gen import make_contacts_csv

import synckit


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "synckit", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"serving (http://\S+)", line)
        if match:
            # Keep draining its output so the server never blocks on a full pipe.
            threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
            return proc, match.group(1)
    raise SystemExit("the sandbox did not start")


def sync(path: Path, url: str, state: Path) -> tuple[float, synckit.SyncReport]:
    with synckit.Client(url, token="sk_test_synckit_demo") as client:
        started = time.perf_counter()
        report = synckit.upsert(
            synckit.read_csv(path, chunksize=50_000), client, state=state, progress=False
        )
        return time.perf_counter() - started, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of rows changed")
    args = parser.parse_args()
    proc, url = start_sandbox()
    try:
        with tempfile.TemporaryDirectory(prefix="synckit-incr-") as tmp:
            first_file = make_contacts_csv(Path(tmp) / "night1.csv", args.rows, seed=21)
            state = Path(tmp) / "state.db"
            t1, r1 = sync(first_file, url, state)
            c1 = r1.counts()
            sent1 = int(r1.rows["attempts"].fillna(0).sum())
            print(f"night 1: {args.rows:,} rows in {t1:6.1f} s  {c1}  ({sent1:,} HTTP requests)")

            # Night 2: the same export with first_name changed on a share of the created rows.
            frame = pd.read_csv(first_file, dtype=str, keep_default_na=False)
            created = r1.rows.index[r1.rows["status"] == "created"].to_numpy()
            step = max(1, round(1 / args.changed))
            picked = created[::step]
            positions = picked - 2  # spreadsheet row -> 0-based data row
            frame.loc[positions, "first_name"] = frame.loc[positions, "first_name"] + " Jr"
            second_file = Path(tmp) / "night2.csv"
            frame.to_csv(second_file, index=False)

            t2, r2 = sync(second_file, url, state)
            c2 = r2.counts()
            attempts = r2.rows["attempts"].fillna(0)
            sent2 = int(attempts.sum())
            rows_sent = int((attempts > 0).sum())
            print(f"night 2: {args.rows:,} rows in {t2:6.1f} s  {c2}  ({sent2:,} HTTP requests)")
            print(
                f"changed rows {len(picked):,}; rows sent {rows_sent:,}; "
                f"requests per changed row {sent2 / max(len(picked), 1):.2f} (goal 1.00); "
                f"second/first time {100 * t2 / t1:.1f}% (goal <= 10%)"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
