"""``synckit forget --state PATH VALUE...``: erase people from a state ledger.

For a right-to-erasure request: every ledger entry, payload and failed row
holding one of the emails or phone numbers is removed and the file rewritten
so that the bytes are gone (see :meth:`synckit.ledger.Ledger.forget`). The
values are never printed; ``--from-file`` keeps them out of the process list
and the shell history too.

Example:
    $ synckit forget --state nightly.db ada@example.com "+44 7911 123456"
    forgot 2 values: removed 1 ledger entries, 0 runs, 0 other rows; state file rewritten ...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from synckit.errors import ConfigError, InputError


def register(subparsers: Any) -> None:
    """Add the ``forget`` subcommand."""
    parser = subparsers.add_parser(
        "forget",
        help="erase people (by email or phone) from a state ledger",
        description="Remove every trace of the given emails and phone numbers from a state "
        "file (entries, payloads, failed rows), then rewrite it so the bytes are gone. "
        "The platform keeps its own copy: delete the contacts there too.",
    )
    parser.add_argument("values", nargs="*", metavar="VALUE", help="an email or phone number")
    parser.add_argument("--state", required=True, metavar="PATH", help="the state file (SQLite)")
    parser.add_argument(
        "--from-file",
        metavar="PATH",
        help="read values from PATH, one per line ('-' for standard input): they then "
        "appear in neither the process list nor the shell history",
    )
    parser.add_argument(
        "--region", default="US", help="region for national phone numbers (default: US)"
    )
    parser.set_defaults(func=run)


def _values(args: argparse.Namespace) -> list[str]:
    values = list(args.values)
    if args.from_file:
        try:
            if args.from_file == "-":
                text = sys.stdin.read()
            else:
                text = Path(args.from_file).read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise InputError(f"cannot read values: {exc.strerror}", path=args.from_file) from None
        values += [line.strip() for line in text.splitlines() if line.strip()]
    if not values:
        raise ConfigError("give the emails or phone numbers to forget, or --from-file PATH")
    return values


def run(args: argparse.Namespace) -> int:
    from synckit.ledger import Ledger

    values = _values(args)
    state = Path(args.state)
    if not state.is_file():
        raise InputError("no such state file", path=str(state))
    with Ledger(state) as ledger:
        erased = ledger.forget(values, default_region=args.region.upper() or None)
    print(f"forgot {len(values)} values: {erased}")
    return 0
