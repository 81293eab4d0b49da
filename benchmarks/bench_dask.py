"""Benchmark: synckit.dask on a LocalCluster of 2 workers vs a single process.

Run: ``python benchmarks/bench_dask.py`` (5,000,000 rows in 20 files).
Options: ``--rows``, ``--files``, ``--workers``.

Data: ``_gen.py``'s contacts (unique mixed-format phones from ~24
countries, custom columns), written once to ``benchmarks/.data/dask_<rows>/``
as ``--files`` files of equal size, with 1% of the rows repeating an email
of the previous file (duplicates across files, found by the shuffle).

Each mode runs in a fresh subprocess (clean peak RSS) and does the same
work: ``synckit.dask.read_csv`` of the 20 files, ``synckit.validate`` (which
settles duplicates across files), then one ``dask.compute`` writing
``errors`` to CSV files and counting valid and invalid rows.

- ``single``: Dask's synchronous scheduler, everything in one process.
- ``cluster``: ``LocalCluster(n_workers=2, threads_per_worker=1,
  processes=True)``; the driver only builds the graph.
- ``stream``: the cluster again, then what ``synckit.upsert`` does on the
  driver without the HTTP: ``iter_validations`` partition by partition and
  ``to_payloads`` for each (the driver's memory stays about two partitions).

Printed: wall time, throughput (rows/s), scaling efficiency (cluster
throughput / single throughput / workers), the driver's peak RSS and each
worker's (``ru_maxrss`` read inside the worker with ``client.run``), how many
times each partition was validated (calls of the pandas validate counted in
the driver and, through ``client.run``, in each worker), and
how the duplicate groups were settled (label-propagation rounds before the
union-find, read from synckit.dask's debug log; rows, edges and union-find
rounds after).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

DATA = Path(__file__).resolve().parent / ".data"


def write_files(rows: int, files: int) -> list[Path]:
    """``files`` CSVs of ``rows // files`` contacts, phones and emails unique across all of them,
    except 1% of each file's rows that repeat an email of the previous file."""
    from _gen import _frame, _templates

    folder = DATA / f"dask_{rows}_{files}"
    paths = [folder / f"contacts_{i:02d}.csv" for i in range(files)]
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rng = np.random.default_rng(14)
    counts = np.zeros(len(_templates()[0]), np.int64)
    per_file = rows // files
    previous: np.ndarray | None = None
    for i, path in enumerate(paths):
        frame = _frame(per_file, rng, counts, i * per_file, True)
        if previous is not None:
            pick = rng.random(per_file) < 0.01
            frame.loc[pick, "email"] = rng.choice(previous, int(pick.sum()))
        previous = frame["email"].dropna().to_numpy(dtype=object)
        frame.to_csv(path, index=False)
    size = sum(p.stat().st_size for p in paths) / 1e6
    print(f"wrote {files} files, {rows:,} rows, {size:.0f} MB in {time.perf_counter() - t0:.0f} s")
    return paths


def _count_validations() -> None:
    """Count this process's calls of the pandas validate on a non-empty frame (each
    partition's validation calls it once per file; the empty meta is not counted)."""
    import synckit.validation as v

    if hasattr(v, "_bench_calls"):
        return
    real = v.validate
    v._bench_calls = 0  # type: ignore[attr-defined]

    def counting(data: Any, **options: Any) -> Any:
        if isinstance(data, pd.DataFrame) and len(data):
            v._bench_calls += 1  # type: ignore[attr-defined]
        return real(data, **options)

    v.validate = counting  # type: ignore[assignment]


def _validations() -> int:
    import synckit.validation as v

    return int(getattr(v, "_bench_calls", 0))


class _Rounds(logging.Handler):
    """Counts synckit.dask's "duplicate groups: round N" debug lines (label propagation)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.rounds = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("duplicate groups: round"):
            self.rounds += 1


def run(mode: str, folder: Path, workers: int) -> dict[str, object]:
    """One measured run (in its own process)."""
    import dask

    import synckit
    import synckit.dask as sdask
    from synckit.validation import to_payloads

    out: dict[str, object] = {"mode": mode}
    pattern = str(folder / "*.csv")
    client = cluster = None
    if mode != "single":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        dask.config.set(scheduler="synchronous")
    rounds = _Rounds()
    logger = logging.getLogger("synckit.dask")
    logger.addHandler(rounds)
    logger.setLevel(logging.DEBUG)
    _count_validations()
    if client is not None:
        client.run(_count_validations)  # (pickled by value: this module is __main__)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        check = synckit.validate(sdask.read_csv(pattern))
        # the one pass and the duplicate groups in one process; on a cluster validate()
        # only starts them (persist returns at once), so the wall time is the figure
        out["validate_s"] = time.perf_counter() - t0
        if mode == "stream":
            rows = bodies = 0
            for chunk in sdask.iter_validations(check):
                rows += chunk.n_rows
                bodies += len(to_payloads(chunk.valid))
            out.update(rows=rows, valid=bodies)
        else:
            errors = check.errors.to_csv(os.path.join(tmp, "errors-*.csv"), compute=False)
            _, n_valid, n_invalid = dask.compute(
                errors,
                check.valid.map_partitions(len).sum(),
                check.invalid.map_partitions(len).sum(),
            )
            out.update(rows=int(n_valid + n_invalid), valid=int(n_valid))
        out["wall_s"] = time.perf_counter() - t0
        stats = getattr(check, "group_stats", None)
        parts = check.valid.npartitions
    calls = _validations()
    if client is not None:
        calls += sum(client.run(_validations).values())
    out["validations_per_partition"] = calls / parts
    out["propagation_rounds"] = rounds.rounds
    if stats is not None:
        out["groups"] = {"rows": stats.rows, "edges": stats.edges, "rounds": stats.rounds}
    out["driver_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if client is not None:
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        out["workers_mb"] = sorted(peaks.values())
        client.close()
        cluster.close()  # type: ignore[union-attr]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--run", choices=["single", "cluster", "stream"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run(args.run, args.folder, args.workers)))
        return
    import dask

    print(
        f"python {sys.version.split()[0]}, pandas {pd.__version__}, dask {dask.__version__}, "
        f"{os.cpu_count()} CPUs (shared with other work: compare ratios, not seconds)"
    )
    paths = write_files(args.rows, args.files)
    results = {}
    for mode in ("single", "cluster", "stream"):
        cmd = [sys.executable, __file__, "--run", mode, "--folder", str(paths[0].parent)]
        cmd += ["--workers", str(args.workers)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{mode} failed:\n{proc.stderr[-3000:]}")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        results[mode] = res
        rate = res["rows"] / res["wall_s"]
        line = (
            f"{mode:8s} {res['rows']:,} rows ({res['valid']:,} valid) in {res['wall_s']:6.1f} s "
            f"= {rate:9,.0f} rows/s (validate() itself {res['validate_s']:.1f} s); "
            f"driver peak RSS {res['driver_mb']:.0f} MB"
        )
        if "workers_mb" in res:
            line += ", workers " + " / ".join(f"{m:.0f}" for m in res["workers_mb"]) + " MB"
        # (one file per partition here: calls of the pandas validate per partition)
        line += f"; each partition validated {res['validations_per_partition']:g} times"
        if res["propagation_rounds"]:
            line += f"; {res['propagation_rounds']} label-propagation rounds"
        if "groups" in res:
            g = res["groups"]
            line += (
                f"; groups: {g['rows']:,} rows, {g['edges']:,} edges, "
                f"{g['rounds']} union-find rounds"
            )
        print(line, flush=True)
    single = results["single"]["rows"] / results["single"]["wall_s"]
    cluster = results["cluster"]["rows"] / results["cluster"]["wall_s"]
    print(
        f"speed-up {cluster / single:.2f}x with {args.workers} workers: scaling efficiency "
        f"{cluster / single / args.workers:.0%} per worker"
    )


if __name__ == "__main__":
    main()
