"""The ``synckit`` command: a thin layer that parses arguments and prints.

Every subcommand lives in its own module (``synckit/cli/_<name>.py``) with
``register(subparsers)``, which adds its parser and sets ``func`` to a
function ``(args) -> int`` (the exit code). The work itself is always a
library call a notebook can make too.

Exit codes: 0 success, 1 some rows invalid/failed/skipped, 2 usage,
configuration or unreadable input, 3 the endpoint or credential is wrong
(not the Contacts API, credentials, permission), 4 a bad night (the API
refused most rows, or could not be reached), 70 internal error (a bug),
130 interrupted (Ctrl-C), 141 the reader of stdout went away (``| head``),
143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence

from synckit import __version__
from synckit.errors import APIError, SynckitError

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
    """Run the command line; returns the exit code.

    SIGTERM is handled like Ctrl-C while a command runs (systemd and container
    runtimes stop a job with it): a sync finishes what is in flight, writes its
    report and ledger and exits 143 (130 after Ctrl-C). With ``--log-format
    json`` every failure is one ``run_failed`` log line, never a traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    with _sigterm_stops(), _log_set_up_undone():
        code = _run(args)
    _record_exit(args, code)
    return code


@contextlib.contextmanager
def _log_set_up_undone() -> Iterator[None]:
    """Take back the log handler a command installed once it is done.

    A process running the command exits anyway; a notebook or a test that calls
    :func:`main` would otherwise keep a handler bound to a stream that may be
    closed by then, and every later synckit log line would fail on it.
    """
    root, ours = logging.getLogger(), logging.getLogger("synckit")
    handlers, levels = list(root.handlers), (root.level, ours.level)
    showwarning = warnings.showwarning
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers and getattr(handler, "_synckit", False):
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(levels[0])
        ours.setLevel(levels[1])
        if warnings.showwarning is not showwarning:
            logging.captureWarnings(False)


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM raises :class:`~synckit.sync.execute.Terminated` for the command's duration."""
    from synckit.sync.execute import stop_on_sigterm

    try:
        before = signal.getsignal(signal.SIGTERM)
        stop_on_sigterm()
    except ValueError:  # not the main thread (main() called from a worker): leave it alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _run(args: argparse.Namespace) -> int:
    from synckit.sync.execute import Terminated

    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # `synckit runs --json | head`: the reader has gone. As the Python docs advise
        # (signal module, "Note on SIGPIPE"), point stdout at devnull so the interpreter's
        # final flush does not fail again, and exit as a process killed by SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + int(signal.SIGPIPE)
    except APIError as exc:
        # The endpoint or the credential is wrong (a run reports its own aborts; what
        # escapes to here is a request outside a run, e.g. a token that cannot be had).
        return _failed(args, exc, 3)
    except SynckitError as exc:
        # Configuration, unreadable input, a locked or unreadable state file: the set-up.
        return _failed(args, exc, 2)
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated)
        code = 143 if terminated else 130
        if _json_log(args):
            _log_failure(args, exc, code, "terminated (SIGTERM)" if terminated else "interrupted")
        else:
            print(f"synckit: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return code
    except OSError as exc:
        # A file that cannot be read or written (a full disk, a folder that went away):
        # the set-up, not a bug. The message names the file.
        # A rename names its target second (os.replace of a temporary file): that is the
        # path the user gave.
        path = exc.filename2 or exc.filename
        where = f": {path}" if path else ""
        return _failed(args, exc, 2, f"{exc.strerror or exc}{where}")
    except Exception as exc:
        # A bug. On a terminal the traceback helps the report; in a JSON log it would be
        # dozens of lines that are not JSON, so there it is one event naming where. Either
        # way the exit code is 70, never 1: a scheduler counts 1 as a normal night.
        if _json_log(args):
            return _failed(args, exc, INTERNAL_ERROR)
        from synckit.config import redact

        shown = "".join(traceback.format_exception(exc))
        print(redact(shown), end="", file=sys.stderr)
        print(f"synckit: internal error (exit code {INTERNAL_ERROR}); please report the "
              "traceback above", file=sys.stderr)  # fmt: skip
        return INTERNAL_ERROR


#: Exit code of an unexpected error (a bug in synckit): EX_SOFTWARE of sysexits.h.
INTERNAL_ERROR = 70


def _json_log(args: argparse.Namespace) -> bool:
    """Whether stderr carries the JSON log (configured, or asked for before an early error)."""
    from synckit.config import JsonLogFormatter

    for handler in logging.getLogger().handlers:
        if getattr(handler, "_synckit", False):
            return isinstance(handler.formatter, JsonLogFormatter)
    return getattr(args, "log_format", None) == "json"


def _failed(args: argparse.Namespace, exc: BaseException, code: int, text: str = "") -> int:
    if _json_log(args):
        _log_failure(args, exc, code, text or str(exc))
    else:
        print(f"synckit: {text or exc}", file=sys.stderr)
    return code


def _log_failure(args: argparse.Namespace, exc: BaseException, code: int, text: str) -> None:
    """One ``run_failed`` JSON line: what failed, the exit code, the run it belongs to."""
    from synckit.config import configure_logging, redact

    if not any(getattr(h, "_synckit", False) for h in logging.getLogger().handlers):
        configure_logging(fmt="json")  # failed before the command set up its log
    report = getattr(exc, "report", None)
    run = getattr(args, "_ledger_run", None)
    run_id = getattr(report, "run_id", None) or (run[1] if run else None)
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}" if tb else None
    logging.getLogger("synckit.cli").error(
        "synckit %s failed: %s (exit code %d)",
        args.command,
        redact(text),
        code,
        extra={
            "event": "run_failed",
            "run_id": run_id,
            "command": args.command,
            "error_type": type(exc).__name__,
            "error_message": redact(text),
            "error_at": where,
            "exit_code": code,
        },
    )


def _record_exit(args: argparse.Namespace, code: int) -> None:
    """Make the ledger's run record hold the exit code the process really returns."""
    run = getattr(args, "_ledger_run", None)
    if run is None or run[2] == code:
        return
    from synckit.ledger import Ledger

    state, run_id, _ = run
    # Best effort: the state file may be gone or locked by the next run (a different row,
    # but SQLite may still make this wait); the exit code itself is what matters most.
    with contextlib.suppress(SynckitError, OSError), Ledger(state) as ledger:
        ledger.set_exit_code(run_id, code)
