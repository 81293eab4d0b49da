"""``synckit sync FILE``: validate a contacts CSV and upsert it, writing a row-by-row report.

Thin: parses options (command line, then ``--config`` TOML, then environment),
builds a :class:`~synckit.client.Client`, hands :func:`synckit.upsert` a function
that reads the file in chunks (so the engine reads it twice: once to find
duplicate keys across the whole file and what to ask the platform, once to
send), prints the summary and writes the report CSV.
Secrets come only from the environment (``SYNCKIT_TOKEN``,
``SYNCKIT_CLIENT_SECRET``, or the variables ``--token-env`` /
``--client-secret-env`` name).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synckit.cli._options import (
    STDIO,
    add_input_options,
    check_at_least_one,
    input_file,
    mapping,
    output_file,
    sms_countries,
)
from synckit.errors import ConfigError, InputError, SynckitError
from synckit.report import DEFAULT_MAX_FAILURE_RATE

#: Rows per chunk read from the file: bounded memory for files of any size (a 20k-row
#: chunk's validation needs about 70 MB less peak memory than a 50k one).
DEFAULT_CHUNK_ROWS = 20_000

# Option -> default, for values neither the command line nor the config gives.
_DEFAULTS: dict[str, Any] = {
    "base_url": None,
    "token_env": None,
    "client_id": None,
    "client_secret_env": None,
    "map": None,
    "region": "US",
    "batch_size": 100,
    "workers": None,  # the client's max_concurrency (64); requests in flight adapt below it
    "rate_store": None,
    "report": None,
    "dry_run": False,
    "no_progress": False,
    "state": None,
    "retry_failed": False,
    "allow_resubscribe": False,
    "allow_insecure_http": False,
    "duplicates": "last",
    "sms_countries": None,  # the contract's list
    "log_format": "text",
    "chunk_size": DEFAULT_CHUNK_ROWS,
    "set": None,
    "value": None,
    "invalid_fields": "reject",
    "max_failure_rate": DEFAULT_MAX_FAILURE_RATE,
}


def register(subparsers: Any) -> None:
    """Add the ``sync`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "sync",
        help="validate a contacts CSV and upsert it to the Contacts API",
        description=(
            "Validate FILE locally, create or update every valid row in the Contacts API, "
            "print a summary and write one report row per input row (default: "
            "<stem>.report.csv beside FILE; a dry run writes <stem>.plan.csv instead). "
            "Before sending, it checks the report and state folders, the --map columns, the "
            "endpoint and the credential. Exit codes: 0 all rows created/updated/unchanged, "
            "1 some rows invalid, failed or skipped, 2 usage/configuration/unreadable input "
            "or state locked, 3 the URL is not the Contacts API or the credential is refused, "
            "4 a bad night (the API refused more than --max-failure-rate of the rows sent, or "
            "could not be reached), 70 internal error, 130 interrupted (Ctrl-C), 143 stopped "
            "by SIGTERM."
        ),
    )
    # FILE, --config, --map, --region, --chunk-size, --duplicates, --sms-countries and the
    # value options: the same definitions as `synckit validate` (cli/_options.py).
    add_input_options(p, command="sync")
    # Every option defaults to None so the --config file can fill what is not given.
    p.add_argument("--base-url", metavar="URL", help="API base URL (env SYNCKIT_BASE_URL)")
    p.add_argument(
        "--token-env", metavar="VAR", help="environment variable holding an API token "
        "(default SYNCKIT_TOKEN)",
    )  # fmt: skip
    p.add_argument("--client-id", metavar="ID", help="OAuth client id (env SYNCKIT_CLIENT_ID)")
    p.add_argument(
        "--client-secret-env", metavar="VAR",
        help="environment variable holding the OAuth client secret (default SYNCKIT_CLIENT_SECRET)",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, metavar="N", help="rows per batch (100)")
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="most requests in flight (64); within it the number adapts to the rate limit",
    )
    p.add_argument(
        "--rate-store",
        metavar="DIR|URL",
        help="share one rate budget with other jobs on the same credential: a directory "
        "(processes on this host) or redis://host:port/N (several hosts); a Redis password "
        "comes from SYNCKIT_RATE_STORE_PASSWORD",
    )
    p.add_argument(
        "--report", metavar="PATH",
        help="report CSV (default <stem>.report.csv; - writes it to stdout and the summary "
        "to stderr); a dry run writes <stem>.plan.csv beside it instead",
    )  # fmt: skip
    p.add_argument(
        "--dry-run", action="store_true", default=None,
        help="send no write: learn what the platform holds and report the plan",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", default=None, help="no progress bar")
    p.add_argument("--state", metavar="PATH", help="SQLite state ledger (incremental runs)")
    p.add_argument(
        "--retry-failed", action="store_true", default=None,
        help="with --state: send only the rows that failed, were invalid or skipped last time "
        "(and rows never sent)",
    )  # fmt: skip
    p.add_argument(
        "--allow-resubscribe", action="store_true", default=None,
        help="let updates opt people back in after they unsubscribed",
    )  # fmt: skip
    p.add_argument(
        "--allow-insecure-http", action="store_true", default=None,
        help="allow a plain http:// base URL to a host other than loopback (the credential "
        "then travels unencrypted)",
    )  # fmt: skip
    p.add_argument(
        "--max-failure-rate", type=float, metavar="SHARE",
        help="exit 4 when the API refused more than this share of the rows sent, with at "
        f"least 10 failed ({DEFAULT_MAX_FAILURE_RATE}; 1 turns it off)",
    )  # fmt: skip
    p.add_argument("--log-format", choices=("text", "json"), help="log line format (text)")
    p.set_defaults(func=run, _sync_parser=p)


def _merge_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Command line wins (whenever typed), then the config file, then the defaults."""
    from synckit.config import apply_config, load_config

    loaded: dict[str, Any] = {}
    if args.config:
        loaded = load_config(args.config)
        unknown = sorted(set(loaded) - set(_DEFAULTS))
        if unknown:
            raise ConfigError(f"{args.config}: unknown option(s) for sync: {', '.join(unknown)}")
    merged = apply_config(argparse.Namespace(**vars(args)), loaded, parser, defaults=_DEFAULTS)
    return {name: getattr(merged, name) for name in _DEFAULTS}


def _client_options(opts: dict[str, Any]) -> dict[str, Any]:
    """Client options other than the credential: the in-flight cap and a shared budget."""
    extra: dict[str, Any] = {}
    if opts.get("workers") is not None:
        extra["max_concurrency"] = int(opts["workers"])
    store = opts.get("rate_store")
    if store:
        extra["rate_store"] = _rate_store_url(str(store))
    return extra


def _rate_store_url(store: str) -> str:
    """``store`` with the Redis password from ``SYNCKIT_RATE_STORE_PASSWORD`` (never typed)."""
    from urllib.parse import quote, urlsplit

    if not store.startswith(("redis://", "rediss://")):
        return store
    parts = urlsplit(store)
    if parts.password is not None or "password=" in parts.query.lower():
        raise ConfigError(
            "rate_store: no password in the URL (it would show in the process list or sit in "
            "a config file); set SYNCKIT_RATE_STORE_PASSWORD instead"
        )
    password = os.environ.get("SYNCKIT_RATE_STORE_PASSWORD")
    if not password:
        return store
    user = quote(parts.username or "", safe="")
    netloc = f"{user}:{quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}"
    return parts._replace(netloc=netloc).geturl()


def make_client(opts: dict[str, Any]) -> Any:
    """The API client the options describe; secrets only from the environment."""
    from synckit.client import Client

    env = os.environ
    extra = _client_options(opts)
    base_url = opts.get("base_url") or env.get("SYNCKIT_BASE_URL")
    if not base_url:
        raise ConfigError("no API base URL: pass --base-url or set SYNCKIT_BASE_URL")
    extra["allow_insecure_http"] = bool(opts.get("allow_insecure_http"))
    token_env = opts.get("token_env")
    client_id = opts.get("client_id")
    secret_env = opts.get("client_secret_env")
    if token_env and (client_id or secret_env):
        raise ConfigError("give --token-env or --client-id/--client-secret-env, not both")
    if token_env:
        token = env.get(token_env)
        if not token:
            raise ConfigError(f"the environment variable {token_env} (--token-env) is not set")
        return Client(base_url, token=token, **extra)
    if client_id or secret_env:
        client_id = client_id or env.get("SYNCKIT_CLIENT_ID")
        secret_var = secret_env or "SYNCKIT_CLIENT_SECRET"
        secret = env.get(secret_var)
        if not client_id:
            raise ConfigError("OAuth needs a client id: --client-id or SYNCKIT_CLIENT_ID")
        if not secret:
            raise ConfigError(
                f"OAuth needs the client secret in the environment variable {secret_var}"
            )
        return Client(base_url, client_id=client_id, client_secret=secret, **extra)
    token = env.get("SYNCKIT_TOKEN")
    if token:
        return Client(base_url, token=token, **extra)
    cid, secret = env.get("SYNCKIT_CLIENT_ID"), env.get("SYNCKIT_CLIENT_SECRET")
    if cid and secret:
        return Client(base_url, client_id=cid, client_secret=secret, **extra)
    raise ConfigError(
        # Worded so that no word follows "credentials:" -- redaction would take it for one.
        "no credentials found. Set SYNCKIT_TOKEN (or --token-env VAR), or SYNCKIT_CLIENT_ID and "
        "SYNCKIT_CLIENT_SECRET (or --client-id ID --client-secret-env VAR)"
    )


def _use_system_allocator_for_arrow() -> None:
    """Let pandas' arrow-backed strings use malloc in this (our own) process.

    Arrow's default allocator caches pages freed by each chunk's validation;
    over a million-row file that cache alone is ~50 MB of peak RSS. The
    library never changes this global; the command may, since it owns the
    process.
    """
    try:
        import pyarrow as pa
    except ImportError:
        return
    try:
        pa.set_memory_pool(pa.system_memory_pool())
    except Exception:  # an exotic build without the system pool: keep the default
        return


def plan_path(report_path: Path) -> Path:
    """Where a dry run writes its plan: beside the report, never over it.

    Example:
        >>> plan_path(Path("out/contacts.report.csv")).as_posix()
        'out/contacts.plan.csv'
        >>> plan_path(Path("out/nightly.csv")).as_posix()
        'out/nightly.plan.csv'
    """
    name = report_path.name
    if name.endswith(".report.csv"):
        return report_path.with_name(name[: -len(".report.csv")] + ".plan.csv")
    return report_path.with_name(f"{report_path.stem}.plan{report_path.suffix or '.csv'}")


class _Output:
    """Where the report and the summary go: a file and stdout, or (``--report -``) the
    report to stdout and the summary to stderr, so a pipe gets the CSV alone."""

    def __init__(self, target: str | Path, fmt: str) -> None:
        self.target = target
        self.fmt = fmt
        self.to_stdout = str(target) == STDIO

    def summary(self, report: Any, shown: str) -> None:
        out = sys.stderr if self.to_stdout else sys.stdout
        print(f"synckit sync {shown}", file=out)
        print(report, file=out)

    def write(self, report: Any) -> None:
        if self.to_stdout:
            with output_file(STDIO) as tmp:
                assert tmp is not None
                report.to_csv(tmp)
            return
        report.to_csv(self.target)
        if self.fmt != "json":
            kind = "plan" if report.dry_run else "report"
            print(f"{kind} written to {self.target}", file=sys.stderr)

    def finish(self, report: Any, shown: str) -> None:
        self.summary(report, shown)
        self.write(report)
        _log_result(report, self.fmt)


def _remember_run(args: argparse.Namespace, opts: dict[str, Any], report: Any) -> None:
    """Let ``main`` correct the ledger's exit code if the process ends with another one."""
    if report is not None and opts["state"] and not opts["dry_run"] and report.run_id:
        args._ledger_run = (str(opts["state"]), str(report.run_id), int(report.exit_code()))


def run(args: argparse.Namespace) -> int:
    """Parse, sync, print, write; returns the exit code."""
    opts = _merge_config(args, args._sync_parser)
    fmt = str(opts["log_format"])
    if fmt not in ("text", "json"):
        raise ConfigError("log_format must be text or json")
    from synckit.config import configure_logging

    configure_logging(fmt=fmt)
    if args.file == STDIO and not opts["report"]:
        raise ConfigError(
            "FILE - reads stdin, which has no folder for the report: give --report PATH "
            "(or --report - for stdout)"
        )
    with input_file(args.file) as source:
        return _run(args, opts, source, fmt)


def _run(args: argparse.Namespace, opts: dict[str, Any], source: Path, fmt: str) -> int:
    from synckit.io import read_csv
    from synckit.sync import default_report_path, last_report, upsert
    from synckit.sync.execute import Terminated

    shown = "stdin" if args.file == STDIO else str(source)
    if not source.is_file():
        raise InputError("no such file", path=str(source))
    target: str | Path = opts["report"] or default_report_path(source)
    if str(target) != STDIO:
        target = Path(target)
        if opts["dry_run"]:
            target = plan_path(target)  # the last real run's report stays as it was
    output = _Output(target, fmt)
    check_at_least_one(opts, "batch_size", "workers", "chunk_size")
    if opts["state"] is not None and str(opts["state"]) == STDIO:
        raise ConfigError("--state -: the ledger is a SQLite file, not a stream; give its path")
    if opts["retry_failed"] and not opts["state"]:
        raise ConfigError("--retry-failed needs --state PATH (the ledger of earlier runs)")

    from synckit._steps import check_options
    from synckit.cli._validate import constants, value_maps

    validate_options: dict[str, Any] = {
        "defaults": constants(opts["set"]),
        "values": value_maps(opts["value"]),
        "invalid_fields": str(opts["invalid_fields"]),
    }
    # bad values fail here, before any request or ledger entry
    check_options(region_column="country", **validate_options)
    columns = mapping(opts["map"])
    max_failure_rate = _share(opts["max_failure_rate"])
    _preflight_files(source, columns, target if isinstance(target, Path) else None, opts)
    _use_system_allocator_for_arrow()
    client = make_client(opts)
    chunk_size = int(opts["chunk_size"])
    read_before = False

    def chunks() -> Any:
        # A function, not an iterator: the engine reads the file twice (scan, then
        # send). Which columns feed which field is shown on the first read only.
        nonlocal read_before
        frames = read_csv(source, columns=columns, chunksize=chunk_size)
        if read_before:
            return frames
        read_before = True
        return _shown(frames, fmt)

    if not opts["no_progress"]:
        # The progress bar's total (and so its ETA) while the file is first read.
        from synckit.cli._options import estimated_rows

        chunks.total = estimated_rows(source)  # type: ignore[attr-defined]
    # What run_started logs besides the engine's own options (secrets never: only the
    # names of the variables that hold them, and those are left out too).
    log_fields = {k: v for k, v in opts.items() if v is not None and k not in ("set", "value")}
    log_fields.update(file=shown, report=str(target))

    report = None
    try:
        report = upsert(
            chunks,
            client,
            batch_size=int(opts["batch_size"]),
            workers=None if opts["workers"] is None else int(opts["workers"]),
            dry_run=bool(opts["dry_run"]),
            progress=not opts["no_progress"],
            default_region=str(opts["region"]),
            sms_countries=sms_countries(opts["sms_countries"]),
            state=opts["state"],
            retry_failed=bool(opts["retry_failed"]),
            allow_resubscribe=bool(opts["allow_resubscribe"]),
            duplicates=str(opts["duplicates"]),
            source=shown,
            validate_options=validate_options,
            log_fields=log_fields,
            max_failure_rate=max_failure_rate,
        )
    except KeyboardInterrupt as exc:
        # Ctrl-C or SIGTERM: the engine stopped cleanly and hands over the report.
        interrupted = getattr(exc, "report", None) or last_report()
        _remember_run(args, opts, interrupted)
        if interrupted is not None:
            output.finish(interrupted, shown)
        terminated = isinstance(exc, Terminated)
        if fmt != "json":  # the JSON log's run_finished says it (aborted.code)
            print(f"synckit: {'terminated (SIGTERM)' if terminated else 'interrupted'}",
                  file=sys.stderr)  # fmt: skip
        return 143 if terminated else 130
    except SynckitError as exc:
        # e.g. the file turned unreadable half-way: rows already sent are reported.
        partial = getattr(exc, "report", None)
        _remember_run(args, opts, partial)
        if partial is not None:
            output.finish(partial, shown)
        raise
    finally:
        client.close()
    _remember_run(args, opts, report)
    output.finish(report, shown)
    return int(report.exit_code())


def _share(value: Any) -> float:
    """``--max-failure-rate`` / ``max_failure_rate`` as a share from 0 to 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"--max-failure-rate must be a share from 0 to 1, not {value!r}")
    return float(value)


def _preflight_files(
    source: Path,
    columns: Mapping[str, str | None] | None,
    report: Path | None,
    opts: dict[str, Any],
) -> None:
    """Configuration a night would trip on, before the client exists (exit 2, nothing
    sent): the report and state folders, and every mapped column in the file's header.
    The endpoint and the credential are checked by the run, before its first request."""
    from synckit.sync.preflight import file_columns, preflight

    headers, unmatched = file_columns(source, columns) if columns else ([], [])
    state = None if opts["dry_run"] else opts["state"]  # a dry run never writes the ledger
    preflight(report=report, state=state, mapped=unmatched, headers=headers).raise_for_problems()


def _shown(chunks: Any, fmt: str) -> Any:
    """The chunks, telling which columns feed which field before the first is sent:
    printed to stderr, or one ``columns`` log record with ``--log-format json``."""
    from synckit.validation import _shown_columns

    for i, chunk in enumerate(chunks):
        columns = _shown_columns(chunk) if i == 0 else None
        if columns is not None and fmt == "json":
            logging.getLogger("synckit.cli").info(
                "columns",
                extra={
                    "event": "columns",
                    "layout": columns.layout,
                    "mapping": columns.mapping,
                    "suggestions": columns.suggestions,
                },
            )
        elif columns is not None:
            print(columns.text(), file=sys.stderr)
        yield chunk


def _log_result(report: Any, fmt: str) -> None:
    from synckit.config import log_report

    # JSON logs carry every problem (with request ids); on a terminal the
    # printed summary already shows them, one log line is enough.
    log_report(report, max_errors=50 if fmt == "json" else 0)
