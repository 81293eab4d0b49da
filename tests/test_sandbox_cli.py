"""``synckit sandbox`` as a real subprocess: flags, banner, answers, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
DEMO_AUTH = {"Authorization": "Bearer sk_test_synckit_demo"}


def start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start the CLI, wait for its banner; returns the process and its base URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "synckit", "sandbox", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise AssertionError(f"no banner: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, line.split()[-1]


def stop_cli(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


def test_cli_serves_with_flags_and_stops_on_ctrl_c(tmp_path: Path, free_port: int) -> None:
    port = free_port
    db = tmp_path / "cli.db"
    proc, url = start_cli(
        "--port", str(port), "--host", "127.0.0.1", "--db", str(db),
        "--token", "sk_cli", "--client-id", "cli-app", "--client-secret", "cli-secret",
        "--token-ttl", "60", "--rate-limit", "50", "--latency", "0", "--fail-rate", "0",
        "--drop-rate", "0", "--contact-limit", "1", "--error-style", "platform",
    )  # fmt: skip
    try:
        assert url == f"http://127.0.0.1:{port}/v1"
        headers = {"Authorization": "Bearer sk_cli"}
        r = requests.post(url + "/contacts", json={"email": "a@example.com"}, headers=headers)
        assert r.status_code == 201
        assert r.headers["X-RateLimit-Limit"] == "50"
        r = requests.post(url + "/contacts", json={"email": "b@example.com"}, headers=headers)
        assert r.json()["error"]["code"] == "quota_exceeded"  # platform envelope + limit
        r = requests.post(url + "/contacts", json={"email": "bad"}, headers=headers)
        assert r.status_code == 400  # platform envelope: validation is 400
        token = requests.post(
            url + "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("cli-app", "cli-secret"),
        ).json()
        assert token["expires_in"] == 60
    finally:
        code, err = stop_cli(proc)
    assert code == 0, err
    assert "Traceback" not in err
    # Restarting on the same file keeps the contact.
    proc, url = start_cli("--port", "0", "--db", str(db))
    try:
        r = requests.get(url + "/contacts", headers=DEMO_AUTH)
        assert [c["email"] for c in r.json()["data"]] == ["a@example.com"]
    finally:
        assert stop_cli(proc)[0] == 0


def test_cli_banner_lists_demo_credentials() -> None:
    proc, url = start_cli("--port", "0")
    try:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        assert proc.stdout is not None
        rest = [proc.stdout.readline() for _ in range(4)]
        text = "".join(rest)
        assert "sk_test_synckit_demo" in text and "synckit-demo" in text
        assert "demo-secret" in text
        started = time.monotonic()
        r = requests.get(url + "/contacts", headers=DEMO_AUTH)
        assert r.status_code == 200 and time.monotonic() - started < 2
    finally:
        assert stop_cli(proc)[0] == 0


def test_cli_rejects_bad_flags() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "synckit", "sandbox", "--error-style", "nested"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "--error-style" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "synckit", "sandbox", "--port", "0", "--fail-rate", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2
    assert "fail_rate" in r.stderr


def test_cli_flags_reach_the_sandbox_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every fault flag with a value that changes behaviour (the subprocess test
    # above passes 0 for latency, fail and drop, which an unwired flag would too).
    from synckit.cli import _sandbox, main

    seen: list[Any] = []

    class FakeServer:
        def __init__(self, config: Any) -> None:
            seen.append(config)
            self.url = "http://127.0.0.1:1/v1"

        def serve_forever(self) -> None:
            pass

    monkeypatch.setattr(_sandbox, "SandboxServer", FakeServer)
    monkeypatch.setattr(_sandbox.signal, "signal", lambda *a: None)
    code = main(
        [
            "sandbox", "--host", "127.0.0.2", "--port", "0", "--db", "x.db",
            "--token", "t1", "--client-id", "c1", "--client-secret", "s1",
            "--token-ttl", "30", "--rate-limit", "7", "--latency", "25",
            "--fail-rate", "0.25", "--drop-rate", "0.5", "--contact-limit", "3",
            "--error-style", "platform",
        ]
    )  # fmt: skip
    assert code == 0
    (cfg,) = seen
    assert (cfg.host, cfg.port, cfg.db) == ("127.0.0.2", 0, "x.db")
    assert (cfg.token, cfg.client_id, cfg.client_secret) == ("t1", "c1", "s1")
    assert (cfg.token_ttl, cfg.rate_limit, cfg.latency_ms) == (30, 7, 25)
    assert (cfg.fail_rate, cfg.drop_rate, cfg.contact_limit) == (0.25, 0.5, 3)
    assert cfg.error_style == "platform"


def test_cli_banner_never_echoes_credentials_given_as_flags(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from synckit.cli import _sandbox, main

    class FakeServer:
        def __init__(self, config: Any) -> None:
            self.url = "http://127.0.0.1:1/v1"

        def serve_forever(self) -> None:
            pass

    monkeypatch.setattr(_sandbox, "SandboxServer", FakeServer)
    monkeypatch.setattr(_sandbox.signal, "signal", lambda *a: None)
    args = ["sandbox", "--token", "sk_live_real_token_9", "--client-secret", "real-secret-9"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "sk_live_real_token_9" not in out and "real-secret-9" not in out
    assert "--token" in out and "--client-secret" in out
