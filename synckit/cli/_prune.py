"""``synckit prune --state PATH --older-than 90d``: apply a retention period to a state ledger.

Runs that started, and ledger entries last touched, before the cutoff are
removed and the file rewritten so that the bytes are gone (see
:meth:`synckit.ledger.Ledger.prune`). A pruned contact that comes back in a
later export is treated as new: one lookup, no duplicate.

Example:
    $ synckit prune --state nightly.db --older-than 90d
    removed 120 ledger entries, 85 runs, 0 other rows; state file rewritten (...)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from synckit.errors import InputError


def register(subparsers: Any) -> None:
    """Add the ``prune`` subcommand."""
    parser = subparsers.add_parser(
        "prune",
        help="remove old runs and entries from a state ledger (retention)",
        description="Remove runs and ledger entries older than a retention period, then "
        "rewrite the state file so their bytes are gone.",
    )
    parser.add_argument("--state", required=True, metavar="PATH", help="the state file (SQLite)")
    parser.add_argument(
        "--older-than",
        required=True,
        metavar="AGE",
        help="e.g. 90d, 12w, 36h (s, m, h, d, w)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from synckit.ledger import Ledger, parse_age

    age = parse_age(args.older_than)  # a typo fails before the file is touched
    state = Path(args.state)
    if not state.is_file():
        raise InputError("no such state file", path=str(state))
    with Ledger(state) as ledger:
        print(ledger.prune(age))
    return 0
