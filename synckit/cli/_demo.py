"""``synckit demo``: sync the sample files into an in-process sandbox and print what happened."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="sync the sample CSVs into a local sandbox (no setup, nothing leaves the machine)",
        description=(
            "Start the sandbox in this process on a free loopback port, sync "
            "sample_data/contacts.csv, then sample_data/contacts_updated.csv (the next day, "
            "with a state ledger), and print both summaries. Invalid rows in the messy sample "
            "are expected; the exit code is 0 when the demo ran as intended."
        ),
    )
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the two sample CSVs")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit code."""
    from synckit.demo import demo_exit_code, run_demo

    reports = run_demo(args.data_dir, progress=args.progress)
    return demo_exit_code(reports)
