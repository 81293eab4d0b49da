"""Config files, JSON logs and redaction."""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from synckit.config import (
    CONFIG_KEYS,
    JsonLogFormatter,
    apply_config,
    configure_logging,
    load_config,
    log_report,
    redact,
)
from synckit.errors import ConfigError
from synckit.report import SyncReport
from synckit.sandbox import Sandbox


def _write(tmp_path: Path, text: str, name: str = "synckit.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


FULL = """
[sync]
base-url = "http://127.0.0.1:8080"
region = "GB"
batch_size = 50
workers = 4
chunk-size = 20000
report = "out/report.csv"
dry-run = true
progress = false
state = "/var/lib/synckit/state.db"
retry_failed = false
allow_resubscribe = false
log_format = "json"
token_env = "CRM_TOKEN"
client_id = "app_1"
client_secret_env = "CRM_SECRET"

[sync.map]
"E-mail Address" = "email"
Mobile = "phone_number"
"""


def test_full_config(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, FULL))
    assert cfg["base_url"] == "http://127.0.0.1:8080"
    assert cfg["batch_size"] == 50 and cfg["workers"] == 4 and cfg["chunk_size"] == 20000
    assert cfg["dry_run"] is True and cfg["no_progress"] is True and "progress" not in cfg
    assert cfg["map"] == {"E-mail Address": "email", "Mobile": "phone_number"}
    assert cfg["report"] == str((tmp_path / "out" / "report.csv").resolve())
    assert cfg["state"] == "/var/lib/synckit/state.db"
    assert cfg["token_env"] == "CRM_TOKEN" and cfg["client_secret_env"] == "CRM_SECRET"
    assert set(cfg) <= CONFIG_KEYS


def test_top_level_and_map_as_list(tmp_path: Path) -> None:
    cfg = load_config(
        _write(tmp_path, 'workers = 2\nmap = ["Mail=email", " Tel = phone_number"]\n')
    )
    assert cfg == {"workers": 2, "map": {"Mail": "email", "Tel": "phone_number"}}


@pytest.mark.parametrize(
    "line",
    [
        'token = "tok_live_abc"',
        'client_secret = "s3cr3t"',
        'access-token = "x"',
        'password = "hunter2"',
        'crm_api_token = "tok_zq81"',
    ],
)
def test_secrets_refused(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError, match="only from the environment") as info:
        load_config(_write(tmp_path, f"[sync]\n{line}\n"))
    value = line.split('"')[1]
    assert value not in str(info.value)  # the secret itself is never echoed


def test_unknown_keys_listed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, "batchsize = 10\nworkerz = 3\ncolour = 'red'\n"))
    msg = str(info.value)
    assert "batchsize (did you mean batch_size?)" in msg
    assert "workerz (did you mean workers?)" in msg and "colour" in msg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("workers = 'four'", "workers must be a integer"),
        ("workers = true", "workers must be a integer"),
        ("batch_size = 0", "at least 1"),
        ("dry_run = 'yes'", "dry_run must be a boolean"),
        ("log_format = 'xml'", "log_format must be one of"),
        ("progress = true\nno_progress = true", "contradict"),
        ("map = ['nonsense']", "SOURCE=field"),
        ("workers = [", "not valid TOML"),
        ("[sync]\nworkers = 1\n[other]\nx = 1", "outside it: other"),
    ],
)
def test_bad_values(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")):
        load_config(_write(tmp_path, text + "\n"))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def _sentinel_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=argparse.SUPPRESS)
    parser.add_argument("--dry-run", action="store_true", default=None)
    parser.add_argument("--map", action="append")
    return parser


DEFAULTS = {"batch_size": 100, "workers": 8, "dry_run": False}


def test_apply_config_cli_wins(tmp_path: Path) -> None:
    parser = _sentinel_parser()
    cfg = load_config(_write(tmp_path, FULL))
    args = parser.parse_args(["--workers", "3", "--map", "X=email"])
    args = apply_config(args, cfg, parser, defaults=DEFAULTS)
    assert args.workers == 3  # given on the command line
    assert args.batch_size == 50 and args.dry_run is True  # from the file
    assert args.map == ["E-mail Address=email", "Mobile=phone_number", "X=email"]
    assert not hasattr(args, "region")  # options this command lacks are left alone


def test_apply_config_typed_value_equal_to_default_wins(tmp_path: Path) -> None:
    # The bug: `--batch-size 100` (the default's value) lost to `batch_size = 50`.
    parser = _sentinel_parser()
    cfg = load_config(_write(tmp_path, FULL))
    args = parser.parse_args(["--batch-size", "100", "--workers", "8"])
    args = apply_config(args, cfg, parser, defaults=DEFAULTS)
    assert (args.batch_size, args.workers) == (100, 8)
    # Neither typed nor in the file: the real default is filled in after the merge.
    args = apply_config(parser.parse_args([]), {}, parser, defaults=DEFAULTS)
    assert (args.batch_size, args.workers, args.dry_run, args.map) == (100, 8, False, None)


def test_apply_config_refuses_a_real_parser_default(tmp_path: Path) -> None:
    # With default=100 a typed 100 cannot be told from an untyped one: refuse loudly
    # instead of letting the file silently win.
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=100)
    with pytest.raises(ConfigError, match=r"batch_size.*default=None"):
        apply_config(parser.parse_args(["--batch-size", "100"]), {"batch_size": 50}, parser)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    handler = configure_logging(fmt="json", stream=buf, level=logging.DEBUG)
    try:
        yield buf
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger("synckit").setLevel(logging.NOTSET)
        logging.captureWarnings(False)


def _lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_json_lines_parse_with_extras(json_log: io.StringIO) -> None:
    log = logging.getLogger("synckit.sync")
    log.info("batch %d done", 3, extra={"run_id": "r1", "counts": {"created": 2}})
    log.warning('multi\nline "quoted"')
    try:
        raise ValueError("bad thing")
    except ValueError:
        log.exception("failed")
    logging.getLogger("urllib3").info("noise")  # other libraries: warnings only
    lines = _lines(json_log)
    assert len(lines) == 3
    first = lines[0]
    assert first["message"] == "batch 3 done" and first["level"] == "INFO"
    assert first["logger"] == "synckit.sync" and first["run_id"] == "r1"
    assert first["counts"] == {"created": 2}
    assert str(first["time"]).endswith("Z")
    assert lines[1]["message"] == 'multi\nline "quoted"'
    assert "ValueError: bad thing" in str(lines[2]["exception"])


def test_secrets_never_reach_the_log(json_log: io.StringIO) -> None:
    log = logging.getLogger("synckit.client")
    log.info("sending Authorization: Bearer tok_live_123", extra={"token": "tok_live_123"})
    log.info("oauth body %s", "client_id=app&client_secret=shh_456&grant_type=x")
    log.info("env", extra={"env": {"SYNCKIT_CLIENT_SECRET": "shh_456", "HOME": "/root"}})
    out = json_log.getvalue()
    assert "tok_live_123" not in out and "shh_456" not in out
    lines = _lines(json_log)
    assert lines[0]["token"] == "[REDACTED]"
    assert "client_id=app" in str(lines[1]["message"]) and "grant_type=x" in str(
        lines[1]["message"]
    )
    assert lines[2]["env"] == {"SYNCKIT_CLIENT_SECRET": "[REDACTED]", "HOME": "/root"}


def test_text_format_redacts_too() -> None:
    buf = io.StringIO()
    handler = configure_logging(fmt="text", stream=buf)
    try:
        logging.getLogger("synckit.x").warning("retrying with access_token=abc123")
    finally:
        logging.getLogger().removeHandler(handler)
    assert "abc123" not in buf.getvalue() and "access_token=[REDACTED]" in buf.getvalue()


def test_redact_keeps_ordinary_text() -> None:
    text = "row 5: unauthorized (request_id req_9) token_env=CRM_TOKEN"
    assert redact(text) == text
    assert redact("SYNCKIT_TOKEN=abc") == "SYNCKIT_TOKEN=[REDACTED]"


def test_log_report_lines(json_log: io.StringIO) -> None:
    rep = SyncReport.from_records(
        [{"row": 2, "status": "created"}, {"row": 3, "email": "x@", "status": "failed"}],
        [
            {
                "row": 3,
                "stage": "api",
                "field": "email",
                "code": "validation_failed",
                "message": "must be a valid email address",
                "value": "x@",
                "http_status": 422,
                "request_id": "req_77",
            }
        ],
        run_id="r9",
    )
    log_report(rep)
    lines = _lines(json_log)
    assert lines[0]["event"] == "run_finished" and lines[0]["run_id"] == "r9"
    assert lines[0]["counts"]["failed"] == 1 and lines[0]["exit_code"] == 1  # type: ignore[index]
    assert lines[1]["request_id"] == "req_77" and lines[1]["row"] == 3
    assert lines[1]["error_message"] == "must be a valid email address"
    assert "x@" not in json_log.getvalue().replace("must", "")  # values stay out


def test_formatter_survives_unserialisable_extras() -> None:
    rec = logging.LogRecord("synckit", logging.INFO, __file__, 1, "m", None, None)
    rec.thing = object()
    assert json.loads(JsonLogFormatter().format(rec))["thing"].startswith("<object")


def test_bad_log_format() -> None:
    with pytest.raises(ConfigError):
        configure_logging(fmt="yaml")


def test_log_report_says_problems_were_cut_only_when_they_were(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    import pandas as pd

    import synckit
    from synckit.config import log_report

    rows = pd.DataFrame({"email": ["bad1", "bad2", "bad3"]})  # three invalid rows, no request
    with synckit.Client(sandbox.url, token=sandbox.token) as client:
        report = synckit.upsert(rows, client, progress=False)
    assert len(report.errors) == 3
    with caplog.at_level(logging.INFO, logger="synckit.run"):
        log_report(report, max_errors=0)  # a text log: the summary counts them by code
    assert not [r for r in caplog.records if "not logged" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="synckit.run"):
        log_report(report, max_errors=1)
    assert [r.getMessage() for r in caplog.records if "not logged" in r.getMessage()] == [
        "2 more problems not logged; see the report file"
    ]
