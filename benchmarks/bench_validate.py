"""Benchmark: synckit.read_csv + validate vs the straightforward per-row loop, plus peak RSS.

Run: ``python benchmarks/bench_validate.py`` (200k and 1M rows, then the RSS
check on a 1M-row file). Options: ``--rows 200000 1000000``, ``--no-rss``,
``--rss-only``, ``--repeat``.

Both wall-clock and CPU time (``time.process_time``) are printed: on a
shared machine the CPU figures are the steadier comparison. synckit runs
``--repeat`` times (median; each result but the first dropped once timed, as
a re-run cell replaces its result); the loop once (it takes minutes at 1M rows).

The data (``_gen.py``) is what an export looks like: the contract's fields
with unique emails, unique mixed-format phones from ~24 countries, consents
in assorted spellings, and two custom columns (``custom.plan``, a few words;
``custom.seats``, numbers), written to a CSV under ``benchmarks/.data/``
(ignored by git, reused between runs). Both sides start from that file and
are timed in the same run:

- synckit: ``synckit.validate(synckit.read_csv(path))``; the breakdown
  (read, validate, then ``to_payloads`` for the bodies a sync would send) is
  printed below it.
- the baseline: the plain loop a careful analyst would write: ``csv.reader``
  over the file, then per row phonenumbers ``parse`` + ``is_valid_number`` +
  ``format_number(E164)`` (+ ``region_code_for_number`` for the SMS rule),
  email-validator's syntax check, consent enum checks, name lengths, and the
  row's ``custom_fields`` dict from its ``custom.*`` cells checked with
  ``rules.check_custom_fields``.

The RSS check runs ``synckit validate`` on a 1,000,000-row file of the same
data as a subprocess, reading the child's peak RSS from
``resource.getrusage(RUSAGE_CHILDREN)``.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import re
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
from _gen import make_contacts_csv

import synckit
from synckit import rules
from synckit.validation import to_payloads

T = TypeVar("T")

DATA = Path(__file__).resolve().parent / ".data"
RSS_LIMIT_MB = 500


def consent(text: str) -> str:
    """``Never Subscribed`` -> ``never_subscribed``, as synckit reads consents."""
    return re.sub(r"[ \t-]+", "_", text.strip().lower())


def per_row_loop(path: Path, region: str = "US") -> int:
    """The baseline: read and validate row by row; returns the number of valid rows.

    It applies the same rules as synckit (extensions refused, ``00`` read as
    ``+``, ``Never Subscribed`` read as ``never_subscribed``), so both count
    the same valid rows on this data (which has no duplicates).
    """
    e164_format = phonenumbers.PhoneNumberFormat.E164
    valid = 0
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        where = [header.index(f) for f in rules.FIELDS[:6]]
        custom = [(i, h[len("custom.") :]) for i, h in enumerate(header) if h.startswith("custom.")]
        for cells in reader:
            email, phone, first, last, ec, sc = (cells[i] for i in where)
            ok = True
            email = email.strip().lower() or None
            phone = phone.strip() or None
            if email is None and phone is None:
                ok = False
            if email is not None:
                try:
                    email_validator.validate_email(email, check_deliverability=False)
                except email_validator.EmailNotValidError:
                    ok = False
            phone_region = None
            if phone is not None:
                if phone.startswith("00"):  # international prefix, whatever the region's own
                    phone = "+" + phone[2:]
                try:
                    number = phonenumbers.parse(phone, region)
                    if number.extension is None and phonenumbers.is_valid_number(number):
                        phone = phonenumbers.format_number(number, e164_format)
                        phone_region = phonenumbers.region_code_for_number(number)
                    else:
                        ok = False
                except phonenumbers.NumberParseException:
                    ok = False
            if ec.strip() and consent(ec) not in rules.EMAIL_CONSENT_VALUES:
                ok = False
            if sc.strip():
                sms_ok = consent(sc) in rules.SMS_CONSENT_VALUES
                if not (sms_ok and phone_region in rules.DEFAULT_SMS_COUNTRIES):
                    ok = False
            for name in (first, last):
                if len(name.strip()) > rules.NAME_MAX_LENGTH:
                    ok = False
            fields = {key: cells[i].strip() for i, key in custom if cells[i].strip()}
            if fields and not rules.check_custom_fields(fields):
                ok = False
            valid += ok
    return valid


def _timed(func: Callable[[], T]) -> tuple[T, float, float]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def data_file(n: int, seed: int) -> Path:
    path = DATA / f"contacts_{n}_seed{seed}.csv"
    if not path.exists():
        t0 = time.perf_counter()
        make_contacts_csv(path, n, seed=seed)
        size = path.stat().st_size / 1e6
        print(f"\nwrote {path} ({size:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    return path


def bench(n: int, repeat: int) -> None:
    path = data_file(n, seed=n)
    base_valid, loop_wall, loop_cpu = _timed(lambda: per_row_loop(path))
    print(f"\n{n:,} rows ({path.name}, {path.stat().st_size / 1e6:.0f} MB)")
    print(
        f"  per-row loop          wall {loop_wall:7.2f} s ({loop_wall / n * 1e6:5.1f} µs/row)  "
        f"cpu {loop_cpu:7.2f} s  ({base_valid:,} valid)"
    )
    # The first result is kept for the checks below; later ones are dropped as soon as
    # they are timed, as a notebook cell run again replaces its result. (Keeping all
    # of them made each run fault in fresh pages for the harness's own list: up to
    # 0.28 s of system time per run, more than a third of synckit's CPU time.)
    check: synckit.Validation | None = None
    runs: list[tuple[float, float]] = []
    for _ in range(repeat):
        result, wall, cpu = _timed(lambda: synckit.validate(synckit.read_csv(path)))
        check = result if check is None else check
        runs.append((wall, cpu))
        del result
    assert check is not None
    fast_wall = statistics.median(r[0] for r in runs)
    fast_cpu = statistics.median(r[1] for r in runs)
    print(
        f"  read_csv + validate   wall {fast_wall:7.2f} s ({fast_wall / n * 1e6:5.1f} µs/row)  "
        f"cpu {fast_cpu:7.2f} s  ({check.n_valid:,} valid, {len(check.errors):,} errors; "
        f"median of {repeat})"
    )
    agree = "same valid rows" if check.n_valid == base_valid else "VALID COUNTS DIFFER"
    print(
        f"  speed-up              wall {loop_wall / fast_wall:5.1f}x   "
        f"cpu {loop_cpu / fast_cpu:5.1f}x   ({agree})"
    )
    df, r_wall, _ = _timed(lambda: synckit.read_csv(path))
    _, v_wall, _ = _timed(lambda: synckit.validate(df))
    payloads, p_wall, _ = _timed(lambda: to_payloads(check.valid))
    print(
        f"  breakdown             read_csv {r_wall:.2f} s, validate {v_wall:.2f} s; "
        f"to_payloads {p_wall:.2f} s for {len(payloads):,} bodies (at send time)"
    )


def rss_check(n: int = 1_000_000) -> None:
    """Peak RSS of the CLI (chunks of 50k) and of a notebook's one-shot read_csv + validate."""
    path = data_file(n, seed=42)
    errors = DATA / "errors.csv"
    one_shot = (
        "import sys, synckit; v = synckit.validate(synckit.read_csv(sys.argv[1])); "
        "print(f'{v.n_rows} rows: {v.n_valid} valid, {v.n_invalid} invalid')"
    )
    for label, cmd in (
        ("`synckit validate`", [sys.executable, "-m", "synckit", "validate", str(path),
                                "--errors", str(errors)]),
        ("validate(read_csv(path))", [sys.executable, "-c", one_shot, str(path)]),
    ):  # fmt: skip
        # Started from a tiny helper process: a child forked from this (large)
        # process would report this process's pages as its own peak RSS.
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, *cmd], capture_output=True, text=True, env={**os.environ}
        )
        wall = time.perf_counter() - t0
        peak_kib, code, *out = proc.stdout.splitlines()
        peak_mb = int(peak_kib) / 1024  # ru_maxrss is in KiB on Linux
        print(f"\n{label} on {n:,} rows: exit {code}, {wall:.1f} s wall")
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
