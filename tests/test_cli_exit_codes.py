"""Exit codes a scheduler relies on, found by trying the nightly set-up as a new user would:
a bug is 70 (never 1, which a cron wrapper and ``SuccessExitStatus=1`` count as a normal
night), a set-up problem is 2, and messages about missing secrets stay readable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import synckit.cli._validate as validate_cli
from synckit._secrets import redact, register
from synckit.cli import main
from synckit.sandbox import Sandbox

CSV = "email,phone_number\nada@example.com,+447400123456\n"


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synckit", *args], env=env, text=True, capture_output=True,
        timeout=120,
    )  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCKIT_")}
    return {**env, **extra}


def test_a_bug_on_a_text_log_exits_70_with_the_traceback_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No real component of synckit fails on purpose: a command that raises stands in for a bug.
    register("sk_live_bug_secret_0123")

    def boom(args: object) -> int:
        raise RuntimeError("token sk_live_bug_secret_0123 in a bug's message")

    monkeypatch.setattr(validate_cli, "run", boom)
    src = tmp_path / "c.csv"
    src.write_text(CSV, encoding="utf-8")
    assert main(["validate", str(src)]) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError" in err
    assert "sk_live_bug_secret_0123" not in err and "[REDACTED]" in err
    assert "internal error (exit code 70)" in err


def test_a_config_file_that_is_not_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_text(CSV, encoding="utf-8")
    config = tmp_path / "latin1.toml"
    config.write_bytes(b'[sync]\nlog_format = "json"\n[sync.map]\n"Pr\xe9nom" = "first_name"\n')
    for command in (["validate", str(src)], ["sync", str(src), "--dry-run"]):
        done = cli([*command, "--config", str(config)], clean_env())
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert (
            f"config file {config} is not UTF-8 text (byte 0xe9 at offset 41)" in done.stderr
        )  # 7 + 20 + 11 + 3


def test_a_state_file_that_is_not_a_ledger_exits_2_and_is_left_alone(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    src = tmp_path / "c.csv"
    src.write_text(CSV, encoding="utf-8")
    before = src.read_bytes()
    env = clean_env(SYNCKIT_BASE_URL=sandbox.url, SYNCKIT_TOKEN=sandbox.token)
    done = cli(["sync", str(src), "--state", str(src), "--no-progress"], env)
    assert done.returncode == 2, done.stderr  # the set-up, not a wrong URL or credential (3)
    assert f"cannot open state file {src}" in done.stderr
    assert src.read_bytes() == before
    assert [r.method for r in sandbox.request_log() if r.method in ("POST", "PATCH")] == []


def test_messages_about_missing_secrets_are_not_masked_into_nonsense(tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_text(CSV, encoding="utf-8")
    base = ["sync", str(src), "--base-url", "http://127.0.0.1:9/v1", "--no-progress"]
    done = cli(base, clean_env())
    assert done.returncode == 2
    assert "no credentials found. Set SYNCKIT_TOKEN (or --token-env VAR)" in done.stderr
    done = cli([*base, "--token-env", "CRM_SYNC_TOKEN"], clean_env())
    assert done.returncode == 2
    assert "the environment variable CRM_SYNC_TOKEN (--token-env) is not set" in done.stderr
    assert "[REDACTED]" not in done.stderr


def test_the_word_token_after_bearer_is_prose_but_a_credential_is_still_masked() -> None:
    assert redact("The bearer token is missing, expired") == "The bearer token is missing, expired"
    assert redact("sent Bearer token123 to it") == "sent Bearer [REDACTED] to it"
    assert redact("sent Bearer abc.def to it") == "sent Bearer [REDACTED] to it"


def test_dash_is_refused_where_it_cannot_be_a_stream(tmp_path: Path) -> None:
    # `-` is stdin for FILE and stdout for --report / --errors; a ledger or a config file
    # cannot be a stream, and a file literally named "-" must not appear.
    src = tmp_path / "c.csv"
    src.write_text(CSV, encoding="utf-8")
    env = clean_env(SYNCKIT_BASE_URL="http://127.0.0.1:9/v1", SYNCKIT_TOKEN="t0k3n-for-test")
    done = subprocess.run(
        [sys.executable, "-m", "synckit", "sync", str(src), "--state", "-", "--no-progress"],
        env=env, text=True, capture_output=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "--state -: the ledger is a SQLite file, not a stream" in done.stderr
    done = cli(["validate", str(src), "--config", "-"], env)
    assert done.returncode == 2
    assert "--config -: the config is read from a file; give its path" in done.stderr
    assert not (tmp_path / "-").exists() and not (tmp_path / "-.lock").exists()
