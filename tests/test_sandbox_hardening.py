"""The sandbox is for loopback, but it still behaves: secrets out of ``ps``, a read timeout,
no public demo credentials on a public interface, the content type checked before parsing."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from synckit.errors import ConfigError
from synckit.sandbox import Sandbox, SandboxConfig, serve_sandbox

ROOT = Path(__file__).resolve().parents[1]


def start(*args: str, env: dict[str, str] | None = None, fds: int | None = None) -> tuple[
    subprocess.Popen[str], str
]:  # fmt: skip
    """``synckit sandbox ARGS`` in a subprocess (optionally under ``ulimit -n fds``)."""

    def limit() -> None:
        if fds is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (fds, fds))

    proc = subprocess.Popen(
        [sys.executable, "-m", "synckit", "sandbox", "--port", "0", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving" not in line:
        proc.kill()
        raise AssertionError(f"no banner: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    return proc, line.split()[-1]


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        proc.kill()
        proc.communicate(timeout=10)  # also closes the pipes


def finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Kill it; what it printed after the banner (read through the same text buffers)."""
    proc.kill()
    proc.wait(timeout=10)
    assert proc.stdout is not None and proc.stderr is not None
    return proc.stdout.read(), proc.stderr.read()


def cmdline(proc: subprocess.Popen[str]) -> str:
    return Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


# ------------------------------------------------------------------ secrets out of ps


def test_credentials_from_a_file_or_the_environment_stay_out_of_ps(
    tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    token, secret = "sk_from_file_0123456789", "cs_from_env_0123456789"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    proc, url = start("--token-file", str(token_file),
                      env={"SYNCKIT_SANDBOX_CLIENT_SECRET": secret})  # fmt: skip
    procs.append(proc)
    assert token not in cmdline(proc) and secret not in cmdline(proc)
    r = requests.get(url + "/contacts", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert r.status_code == 200
    r = requests.post(url + "/oauth/token", data={"grant_type": "client_credentials"},
                      auth=("synckit-demo", secret), timeout=5)  # fmt: skip
    assert r.status_code == 200
    out, err = finish(proc)
    assert token not in out + err and secret not in out + err  # the banner names the source
    assert "(from --token-file)" in out and "(from SYNCKIT_SANDBOX_CLIENT_SECRET)" in out


def test_the_old_flags_still_work_with_a_warning(procs: list[subprocess.Popen[str]]) -> None:
    proc, url = start("--token", "sk_old_flag_token")
    procs.append(proc)
    r = requests.get(url + "/contacts", headers={"Authorization": "Bearer sk_old_flag_token"},
                     timeout=5)  # fmt: skip
    assert r.status_code == 200
    _, err = finish(proc)
    assert "--token puts the value in the process list" in err and "--token-file" in err


# ------------------------------------------------------------------ public interfaces


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.10"])
def test_demo_credentials_are_refused_beyond_loopback(host: str) -> None:
    with pytest.raises(ConfigError, match="published demo credentials"):
        SandboxConfig(host=host).validate()
    with pytest.raises(ConfigError, match="published demo credentials"):
        SandboxConfig(host=host, token="sk_own_token_1234").validate()  # the secret is demo
    SandboxConfig(host=host, token="sk_own_token_1234", client_secret="own-secret").validate()


def test_cli_refuses_a_public_host_with_demo_credentials() -> None:
    # A documentation address (TEST-NET-1): never this machine's, so even a regression
    # could not end up listening beyond loopback; the refusal must come first.
    proc = subprocess.run(
        [sys.executable, "-m", "synckit", "sandbox", "--host", "192.0.2.10", "--port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "published demo credentials" in proc.stderr and "serving" not in proc.stdout


# ------------------------------------------------------------------ read timeout


def test_idle_connections_cannot_stall_other_clients(procs: list[subprocess.Popen[str]]) -> None:
    # 70 silent connections against a server allowed 64 file descriptors: without a
    # read timeout they hold every descriptor forever and accept() fails for everyone.
    proc, url = start("--read-timeout", "0.5", fds=64)
    procs.append(proc)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    idle = []
    try:
        for _ in range(70):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            idle.append(sock)
        idle[0].sendall(b"GET /v1/contacts HTTP/1.1\r\nHost: x\r\n")  # half a request too
        started = time.monotonic()
        r = requests.get(url + "/contacts", timeout=5,
                         headers={"Authorization": "Bearer sk_test_synckit_demo"})  # fmt: skip
        assert r.status_code == 200
        assert time.monotonic() - started < 5
        idle[1].settimeout(3)
        assert idle[1].recv(1) == b""  # the server closed the silent connection
    finally:
        for sock in idle:
            sock.close()


def test_read_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="read_timeout"):
        SandboxConfig(read_timeout=0).validate()


# ------------------------------------------------------------------ content type first


def test_token_endpoint_checks_the_content_type_before_parsing(sandbox: Sandbox) -> None:
    # 1,100 multipart parts: Werkzeug would parse them all (and stop at its part limit
    # with a 413) before the endpoint could say it only takes a urlencoded form.
    boundary = "b0undary"
    part = f'--{boundary}\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n'
    body = (part * 1100 + f"--{boundary}--\r\n").encode()
    r = requests.post(
        sandbox.url + "/oauth/token",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=10,
    )
    assert r.status_code == 400
    assert "application/x-www-form-urlencoded" in r.json()["message"]


def test_read_timeout_keeps_ordinary_keep_alive_working() -> None:
    with serve_sandbox(read_timeout=0.3) as sb, requests.Session() as s:
        headers = {"Authorization": f"Bearer {sb.token}"}
        assert s.get(sb.url + "/contacts", headers=headers, timeout=5).status_code == 200
        time.sleep(0.5)  # the server has closed the pooled connection meanwhile
        assert s.get(sb.url + "/contacts", headers=headers, timeout=5).status_code == 200
