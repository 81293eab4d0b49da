"""Unattended runs: a TOML config file for the CLI's options, and logs a machine can read.

A nightly job keeps its options in ``synckit.toml`` (``synckit sync --config
synckit.toml``) and its secrets in the environment: the config file may name
the variable that holds a secret (``token_env``, ``client_secret_env``) but
never the secret itself. ``--log-format json`` writes one JSON object per log
line; every line, text or JSON, passes through a redaction filter (:func:`redact`) that
masks every secret value a client holds, and anything that looks like a
credential, wherever it slipped into a message.

Example:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "synckit.toml")
    >>> _ = open(path, "w").write('[sync]\\nbatch-size = 50\\ndry_run = true\\n'
    ...                           '[sync.map]\\n"E-mail" = "email"\\n')
    >>> cfg = load_config(path)
    >>> cfg["batch_size"], cfg["dry_run"], cfg["map"]
    (50, True, {'E-mail': 'email'})
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from synckit._secrets import MASK, redact
from synckit.errors import ConfigError

__all__ = [
    "CONFIG_KEYS",
    "JsonLogFormatter",
    "RedactingFilter",
    "TextLogFormatter",
    "apply_config",
    "configure_logging",
    "load_config",
    "log_report",
    "redact",
]

# Option name -> expected TOML type; names are the CLI's (dashes become underscores).
_TYPES: Final[Mapping[str, type | tuple[type, ...]]] = {
    "base_url": str,
    "map": (dict, list),
    "region": str,
    "batch_size": int,
    "workers": int,
    "chunk_size": int,
    "report": str,
    "dry_run": bool,
    "no_progress": bool,
    "progress": bool,
    "state": str,
    "rate_store": str,
    "retry_failed": bool,
    "max_failure_rate": (int, float),  # a share from 0 to 1 (issue 12: loud bad nights)
    "allow_resubscribe": bool,
    "allow_insecure_http": bool,
    "log_format": str,
    "token_env": str,
    "client_id": str,
    "client_secret_env": str,
    # validate's value options: tables ({field = value}, {field = {from = to}}) or
    # lists of the CLI's "FIELD=VALUE" / "FIELD:FROM=TO" strings
    "set": (dict, list),
    "value": (dict, list),
    "invalid_fields": str,
    # rows sharing an email or phone ("last" or "error"; validate also "keep") and the
    # regions that accept SMS ("US,GB" or ["US", "GB"]): validate and sync alike
    "duplicates": str,
    "sms_countries": (str, list),
}
#: Keys a config file may hold (dashes or underscores), as the CLI names them.
CONFIG_KEYS: Final = frozenset(_TYPES)
# Keys that would hold a secret; the message says where secrets belong instead.
_SECRET_KEYS: Final = frozenset(
    {"token", "client_secret", "access_token", "password", "api_key", "api_token", "secret",
     "bearer", "authorization"}
)  # fmt: skip
_PATH_KEYS: Final = ("report", "state")
_LOG_FORMATS: Final = ("text", "json")


def _looks_secret(key: str) -> bool:
    if key in _SECRET_KEYS:
        return True
    if key.endswith("_env"):
        return False  # names a variable, holds no secret
    return any(word in key for word in ("secret", "password", "token"))


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config file into CLI option names (``--batch-size`` -> ``batch_size``).

    Options live in a ``[sync]`` table or at the top level. ``map`` is a table
    ``SOURCE = "field"`` (or a list of ``"SOURCE=field"`` strings) and comes
    back as a dict. ``progress = false`` becomes ``no_progress = True``.
    Relative ``report`` and ``state`` paths are taken relative to the config
    file's folder (cron starts jobs in the home directory).

    Raises :class:`~synckit.errors.ConfigError` for an unreadable file, a
    secret (``token``, ``client_secret``, ``password``...: secrets come only
    from the environment), unknown keys (all named at once) or a value of the
    wrong type.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "bad.toml")
        >>> _ = open(path, "w").write('token = "abc"\\n')
        >>> load_config(path)
        Traceback (most recent call last):
        ...
        synckit.errors.ConfigError: ...: 'token' looks like a secret; secrets come only from ...
    """
    file = Path(path)
    if str(path) == "-":
        raise ConfigError("--config -: the config is read from a file; give its path")
    try:
        with file.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {file} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        # TOML is UTF-8 by definition; a Windows editor's cp1252 (Prénom) is the usual cause.
        raise ConfigError(
            f"config file {file} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
            f"offset {exc.start}): save it as UTF-8"
        ) from None

    section: Mapping[str, Any] = doc
    if isinstance(doc.get("sync"), Mapping):
        section = doc["sync"]
        others = [k for k in doc if k != "sync"]
        if others:
            raise ConfigError(
                f"{file}: options belong in the [sync] table, found outside it: "
                + ", ".join(sorted(others))
            )

    raw = {str(k).replace("-", "_"): v for k, v in section.items()}
    secrets = sorted(k for k in raw if _looks_secret(k))
    if secrets:
        names = ", ".join(repr(k) for k in secrets)
        raise ConfigError(
            f"{file}: {names} looks like a secret; secrets come only from the environment "
            "(SYNCKIT_TOKEN, SYNCKIT_CLIENT_SECRET, or the variable named by "
            "token_env / client_secret_env)"
        )
    unknown = sorted(k for k in raw if k not in _TYPES)
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, list(_TYPES), n=1)
            hints.append(f"{k} (did you mean {close[0]}?)" if close else k)
        raise ConfigError(
            f"{file}: unknown option(s): {', '.join(hints)}; known: {', '.join(sorted(_TYPES))}"
        )

    out: dict[str, Any] = {}
    for key, value in raw.items():
        expected = _TYPES[key]
        # bool is an int in Python; `workers = true` must not pass as 1.
        wrong_bool = isinstance(value, bool) and expected is int
        if wrong_bool or not isinstance(value, expected):
            want = expected.__name__ if isinstance(expected, type) else "table"
            raise ConfigError(
                f"{file}: {key} must be a {_TOML_NAMES.get(want, want)}, not {type(value).__name__}"
            )
        out[key] = value

    for key in ("batch_size", "workers", "chunk_size"):
        if key in out and out[key] < 1:
            raise ConfigError(f"{file}: {key} must be at least 1, not {out[key]}")
    if "duplicates" in out and out["duplicates"] not in ("last", "error", "keep"):
        raise ConfigError(f"{file}: duplicates must be last, error or keep")
    countries = out.get("sms_countries")
    if isinstance(countries, list) and not all(isinstance(c, str) for c in countries):
        raise ConfigError(f'{file}: sms_countries must be region codes such as "US"')
    if "log_format" in out and out["log_format"] not in _LOG_FORMATS:
        raise ConfigError(f"{file}: log_format must be one of {', '.join(_LOG_FORMATS)}")
    if "progress" in out:
        progress = out.pop("progress")
        if "no_progress" in out and out["no_progress"] == progress:
            raise ConfigError(f"{file}: progress and no_progress contradict each other")
        out["no_progress"] = not progress
    if "map" in out:
        out["map"] = _parse_map(out["map"], file)
    for key in (*_PATH_KEYS, "rate_store"):
        if key in out and not (key == "rate_store" and "://" in out[key]):
            p = Path(out[key]).expanduser()
            out[key] = str(p if p.is_absolute() else (file.parent / p).resolve())
    return out


_TOML_NAMES: Final = {"str": "string", "int": "integer", "bool": "boolean (true/false)"}


def _parse_map(value: Any, file: Path) -> dict[str, str]:
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = []
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise ConfigError(f'{file}: map entries must look like "SOURCE=field": {item!r}')
            src, _, dst = item.partition("=")
            items.append((src, dst))
    out: dict[str, str] = {}
    for src, dst in items:
        if not isinstance(dst, str) or not dst.strip():
            raise ConfigError(f"{file}: map.{src} must name a contact field (a string)")
        out[str(src).strip()] = dst.strip()
    return out


def apply_config(
    args: argparse.Namespace,
    config: Mapping[str, Any],
    parser: argparse.ArgumentParser,
    *,
    defaults: Mapping[str, Any] | None = None,
) -> argparse.Namespace:
    """Merge ``config`` into ``args``: the command line wins, then the file, then ``defaults``.

    An option counts as typed whenever the command line gave it, even with the
    value its default has (``--batch-size 100`` beats ``batch_size = 50``). That
    is only knowable with sentinel defaults, so options a config file may set
    must be declared with ``default=None`` (or ``argparse.SUPPRESS``) and their
    real defaults passed as ``defaults``, filled in after the merge. An option
    the file sets whose parser default is a real value raises
    :class:`~synckit.errors.ConfigError` rather than silently letting the file
    win over a typed value. ``map`` becomes the CLI's list of
    ``"SOURCE=field"`` strings, the file's first, so a ``--map`` for the same
    source (a later pair wins) overrides it.

    Example:
        >>> p = argparse.ArgumentParser()
        >>> _ = p.add_argument("--batch-size", type=int, default=None)
        >>> _ = p.add_argument("--workers", type=int, default=argparse.SUPPRESS)
        >>> ns = apply_config(p.parse_args(["--batch-size", "100"]), {"batch_size": 10}, p,
        ...                   defaults={"batch_size": 100, "workers": 8})
        >>> ns.batch_size, ns.workers
        (100, 8)
    """
    dests = {a.dest: a for a in parser._actions}
    for key, value in config.items():
        action = dests.get(key)
        if action is None:
            continue  # an option this command lacks
        if action.default not in (None, argparse.SUPPRESS):
            raise ConfigError(
                f"option {key!r} has the parser default {action.default!r}: declare it with "
                "default=None and pass the real default in defaults=, or a value typed on the "
                "command line could not win over the config file"
            )
        current = getattr(args, key, None)
        if key == "map":
            pairs = [f"{s}={d}" for s, d in value.items()]
            setattr(args, key, pairs + list(current or []))
            continue
        if current is None:
            setattr(args, key, value)
    for key, value in (defaults or {}).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


# --------------------------------------------------------------------------- logging


def _redact_value(key: str, value: Any) -> Any:
    if _looks_secret(key.lower()) and value is not None:
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value("", v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message and extras before any handler formats it.

    Example:
        >>> rec = logging.LogRecord("x", logging.INFO, __file__, 1, "token=%s", ("abc",), None)
        >>> _ = RedactingFilter().filter(rec); rec.getMessage()
        'token=[REDACTED]'
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS:
                record.__dict__[key] = _redact_value(key, value)
        return True


_STANDARD_ATTRS: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "to_dict") and callable(value.to_dict):
        try:
            return value.to_dict()
        except Exception:
            return str(value)
    return str(value)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's extras.

    Extras are whatever the caller passed as ``extra=`` (``run_id``, ``counts``,
    ``request_id``...). Strings are redacted (see :func:`redact`) and values
    that JSON cannot hold are turned into text, so a log line never fails.

    Example:
        >>> rec = logging.LogRecord("synckit", logging.INFO, __file__, 1, "done", None, None)
        >>> rec.run_id = "r1"
        >>> json.loads(JsonLogFormatter().format(rec))["run_id"]
        'r1'
    """

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in out:
                out[key] = _redact_value(key, value)
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(out, default=_jsonable, ensure_ascii=False)


class TextLogFormatter(logging.Formatter):
    """``time level logger: message`` with credentials redacted (the default format)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(
    *, fmt: str = "text", level: int | str = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Route log records to ``stream`` (stderr) as text or JSON lines; for the CLI.

    synckit's loggers log at ``level``; other libraries only from WARNING, so a
    JSON log stays one object per line with nothing in between. Python warnings
    are logged too. Calling it again replaces the handler it installed before.

    Example:
        >>> import io
        >>> buf = io.StringIO()
        >>> handler = configure_logging(fmt="json", stream=buf)
        >>> logging.getLogger("synckit.demo").info("hi", extra={"run_id": "r1"})
        >>> json.loads(buf.getvalue())["run_id"]
        'r1'
        >>> logging.getLogger().removeHandler(handler); logging.captureWarnings(False)
    """
    if fmt not in _LOG_FORMATS:
        raise ConfigError(f"log format must be one of {', '.join(_LOG_FORMATS)}, not {fmt!r}")
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_synckit", False):
            root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler._synckit = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonLogFormatter() if fmt == "json" else TextLogFormatter())
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("synckit").setLevel(level)
    logging.captureWarnings(True)
    return handler


def log_report(report: Any, *, logger: logging.Logger | None = None, max_errors: int = 50) -> None:
    """Log a finished run: one summary line (run id, counts, exit code, aborted) and one
    line per problem (row, code, field, http status, request id; never the value).

    Example:
        >>> from synckit.report import SyncReport
        >>> log_report(SyncReport.empty(run_id="r1"))
    """
    log = logger or logging.getLogger("synckit.run")
    info = report.to_dict(max_errors=max_errors)
    errors = info.pop("errors")
    level = logging.INFO if info["exit_code"] == 0 else logging.WARNING
    counts = ", ".join(f"{k} {v}" for k, v in info["counts"].items())
    log.log(
        level,
        "sync %s: %s (exit code %s)",
        info["run_id"] or "-",
        counts,
        info["exit_code"],
        extra={"event": "run_finished", **info},
    )
    for err in errors:
        extra = {"event": "row_problem", "run_id": info["run_id"], **err}
        # "message" is reserved on LogRecord; the error's text goes in as error_message.
        extra["error_message"] = extra.pop("message")
        log.log(
            logging.WARNING if err.get("severity") == "error" else logging.INFO,
            "row %s: %s %s%s",
            err["row"],
            err["code"],
            err["message"],
            f" (request_id {err['request_id']})" if err.get("request_id") else "",
            extra=extra,
        )
    hidden = len(report.errors) - len(errors)
    # max_errors=0 means "none per row" (a text log, where the summary already counts
    # them by code): nothing was cut short, so say nothing.
    if hidden > 0 and max_errors > 0:
        log.warning(
            "%d more problems not logged; see the report file",
            hidden,
            extra={"event": "row_problem_truncated", "run_id": info["run_id"], "count": hidden},
        )
