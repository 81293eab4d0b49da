"""Benchmark: synckit.validate vs the straightforward per-row loop, plus the CLI's peak RSS.

Run: ``python benchmarks/bench_validate.py`` (200k and 1M rows, then the RSS
check on a 1M-row file). Options: ``--rows 200000 1000000``, ``--no-rss``,
``--rss-only``.

Both wall-clock and CPU time (``time.process_time``) are printed: on a
shared machine the CPU figures are the steadier comparison. synckit runs
``--repeat`` times (median); the loop once (it takes a minute at 1M rows).

Both sides get the same DataFrame of fresh rows (unique emails, unique
mixed-format phones from ~24 countries; see ``_gen.py``) and are timed in the
same run. The baseline is the plain loop a careful analyst would write: a
``zip`` over the columns (not ``df.apply``, which is 2.5x slower), per row
phonenumbers ``parse`` + ``is_valid_number`` + ``format_number(E164)`` (+
``region_code_for_number`` for the SMS rule), email-validator syntax check,
consent enum checks and name lengths.

The RSS check writes a 1,000,000-row CSV to ``benchmarks/.data/`` (ignored
by git) and runs ``synckit validate`` on it as a subprocess, reading the
child's peak RSS from ``resource.getrusage(RUSAGE_CHILDREN)``.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import email_validator
import pandas as pd
import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _gen import make_contacts_csv, make_contacts_frame

import synckit
from synckit import rules
from synckit.validation import to_payloads

T = TypeVar("T")

DATA = Path(__file__).resolve().parent / ".data"
RSS_LIMIT_MB = 500


def per_row_loop(df: pd.DataFrame, region: str = "US") -> int:
    """The baseline: validate row by row; returns the number of valid rows."""
    e164_format = phonenumbers.PhoneNumberFormat.E164
    valid = 0
    columns = [df[c].tolist() for c in rules.FIELDS[:6]]
    for email, phone, first, last, ec, sc in zip(*columns, strict=True):
        ok = True
        email = email.strip().lower() if isinstance(email, str) and email.strip() else None
        phone = phone.strip() if isinstance(phone, str) and phone.strip() else None
        if email is None and phone is None:
            ok = False
        if email is not None:
            try:
                email_validator.validate_email(email, check_deliverability=False)
            except email_validator.EmailNotValidError:
                ok = False
        phone_region = None
        if phone is not None:
            try:
                number = phonenumbers.parse(phone, region)
                if phonenumbers.is_valid_number(number):
                    phone = phonenumbers.format_number(number, e164_format)
                    phone_region = phonenumbers.region_code_for_number(number)
                else:
                    ok = False
            except phonenumbers.NumberParseException:
                ok = False
        if isinstance(ec, str) and ec.strip().lower() not in rules.EMAIL_CONSENT_VALUES:
            ok = False
        sms_ok = isinstance(sc, str) and sc.strip().lower() in rules.SMS_CONSENT_VALUES
        if isinstance(sc, str) and not (sms_ok and phone_region in rules.DEFAULT_SMS_COUNTRIES):
            ok = False
        for name in (first, last):
            if isinstance(name, str) and len(name.strip()) > rules.NAME_MAX_LENGTH:
                ok = False
        valid += ok
    return valid


def _timed(func: Callable[[], T]) -> tuple[T, float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def bench(n: int, repeat: int) -> None:
    df = make_contacts_frame(n, seed=n)[list(rules.FIELDS[:6])]
    phones = df["phone_number"].str.strip()
    print(
        f"\n{n:,} rows: {phones.nunique():,} distinct phone texts, "
        f"{df['email'].nunique():,} distinct emails"
    )
    base_valid, loop_wall, loop_cpu = _timed(lambda: per_row_loop(df))
    print(
        f"  per-row loop      wall {loop_wall:7.2f} s ({loop_wall / n * 1e6:5.1f} µs/row)  "
        f"cpu {loop_cpu:7.2f} s  ({base_valid:,} valid)"
    )
    runs = [_timed(lambda: synckit.validate(df)) for _ in range(repeat)]
    check = runs[0][0]
    fast_wall = statistics.median(r[1] for r in runs)
    fast_cpu = statistics.median(r[2] for r in runs)
    print(
        f"  synckit.validate  wall {fast_wall:7.2f} s ({fast_wall / n * 1e6:5.1f} µs/row)  "
        f"cpu {fast_cpu:7.2f} s  ({check.n_valid:,} valid, {len(check.errors):,} errors; "
        f"median of {repeat})"
    )
    print(
        f"  speed-up          wall {loop_wall / fast_wall:5.1f}x   cpu {loop_cpu / fast_cpu:5.1f}x"
    )
    payloads, p_wall, _ = _timed(lambda: to_payloads(check.valid))
    print(f"  to_payloads       wall {p_wall:7.2f} s for {len(payloads):,} bodies")


def rss_check(n: int = 1_000_000) -> None:
    path = DATA / f"contacts_{n}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        make_contacts_csv(path, n, seed=42)
        size = path.stat().st_size / 1e6
        print(f"\nwrote {path} ({size:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    errors = DATA / "errors.csv"
    cmd = [sys.executable, "-m", "synckit", "validate", str(path), "--errors", str(errors)]
    # The CLI is started from a tiny helper process: a child forked from this
    # (large) process would report this process's pages as its own peak RSS.
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *cmd], capture_output=True, text=True, env={**os.environ}
    )
    wall = time.perf_counter() - t0
    peak_kib, code, *out = proc.stdout.splitlines()
    peak_mb = int(peak_kib) / 1024  # ru_maxrss is in KiB on Linux
    print(f"\n`synckit validate` on {n:,} rows: exit {code}, {wall:.1f} s wall")
    print("  " + (out[0] if out else proc.stderr[-500:]))
    verdict = "OK" if peak_mb < RSS_LIMIT_MB else "OVER"
    print(f"  peak RSS {peak_mb:.0f} MB (limit {RSS_LIMIT_MB} MB): {verdict}")


_PROBE = """
import resource, subprocess, sys
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(proc.returncode)
sys.stdout.write(proc.stdout)
sys.stderr.write(proc.stderr)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS check")
    parser.add_argument("--rss-only", action="store_true", help="only the peak-RSS check")
    parser.add_argument("--repeat", type=int, default=3, help="synckit runs per size (median)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, pandas {pd.__version__}, phonenumbers "
          f"{phonenumbers.__version__}, {os.cpu_count()} CPUs")  # fmt: skip
    if not args.rss_only:
        for n in args.rows:
            bench(n, args.repeat)
    if not args.no_rss:
        rss_check()


if __name__ == "__main__":
    main()
