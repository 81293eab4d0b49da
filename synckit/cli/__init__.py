"""The ``synckit`` command: a thin layer that parses arguments and prints.

Every subcommand lives in its own module (``synckit/cli/_<name>.py``) with
``register(subparsers)``, which adds its parser and sets ``func`` to a
function ``(args) -> int`` (the exit code). The work itself is always a
library call a notebook can make too.

Exit codes: 0 success, 1 some rows invalid/failed/skipped, 2 usage,
configuration or unreadable input, 3 the endpoint or credential is wrong
(not the Contacts API, credentials, permission), 4 a bad night (the API
refused most rows, or could not be reached).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from synckit import __version__
from synckit.errors import ConfigError, InputError, StateLockedError, SynckitError

# Subcommand modules, in the order `synckit --help` lists them.
_COMMANDS = ("_sync", "_validate", "_demo", "_runs", "_forget", "_prune", "_sandbox")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (subcommands whose module is missing are skipped)."""
    parser = argparse.ArgumentParser(
        prog="synckit",
        description="Validate contact CSVs and sync them to the Contacts API.",
    )
    parser.add_argument("--version", action="version", version=f"synckit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"synckit.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"synckit.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, InputError, StateLockedError) as exc:
        print(f"synckit: {exc}", file=sys.stderr)
        return 2
    except SynckitError as exc:
        print(f"synckit: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("synckit: interrupted", file=sys.stderr)
        return 130
