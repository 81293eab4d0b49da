"""Memory of a 1,000,000-row SyncReport: compact dtypes vs plain object columns.

Run: python benchmarks/bench_report_memory.py [N]

Builds the rows frame from the same tuples two ways -- ``SyncReport.from_records``
(categorical status/error code/message/changes, nullable Int64, arrow-backed
strings) and a plain ``DataFrame`` of Python objects -- and prints
``memory_usage(deep=True)`` of both and their ratio.
"""

from __future__ import annotations

import sys
import time

import pandas as pd

from synckit.report import ROW_FIELDS, SyncReport


def make_rows(n: int) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for i in range(n):
        k = i % 100
        if k < 90:
            status, http, code, msg = "created", 201, None, None
        elif k < 95:
            status, http, code, msg = "updated", 200, None, None
        elif k < 98:
            status, http, code, msg = "unchanged", None, None, None
        elif k < 99:
            status, http, code, msg = (
                "invalid",
                None,
                "invalid_email",
                "must be a valid email address",
            )
        else:
            status, http, code, msg = "failed", 503, "server_error", "Service unavailable"
        rows.append(
            (i + 2, f"user{i}@example.com", f"+1415555{i % 10000:04d}", status,
             None if status == "invalid" else f"ct_{i:010x}", http, code, msg,
             None if http is None else f"req_{i:016x}", None if http is None else 1,
             "first_name" if status == "updated" else "")
        )  # fmt: skip
    return rows


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    rows = make_rows(n)
    t0 = time.perf_counter()
    report = SyncReport.from_records(rows, [])
    build = time.perf_counter() - t0
    compact = report.rows.memory_usage(deep=True)
    naive = (
        pd.DataFrame.from_records(rows, columns=["row", *ROW_FIELDS])
        .set_index("row")
        .astype(object)
        .memory_usage(deep=True)
    )
    print(f"rows: {n:,}  from_records: {build:.2f} s")
    print(pd.DataFrame({"compact_MB": compact / 1e6, "object_MB": naive / 1e6}).round(1))
    print(f"total compact {compact.sum() / 1e6:.1f} MB, object {naive.sum() / 1e6:.1f} MB, "
          f"ratio {naive.sum() / compact.sum():.1f}x smaller")  # fmt: skip
    print(report.summary().to_dict())


if __name__ == "__main__":
    main()
