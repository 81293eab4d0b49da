"""Shared fixtures: a real sandbox server on a free loopback port (and a real Redis).

``sandbox`` gives each test a fresh default sandbox; ``sandbox_factory``
starts sandboxes with settings of the test's choosing and stops them all
when the test ends::

    def test_quota(sandbox_factory):
        sb = sandbox_factory(contact_limit=1, error_style="platform")
"""

from __future__ import annotations

import contextlib
import socket
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _redis import RedisServer

from synckit.sandbox import Sandbox, SandboxConfig, serve_sandbox


def find_free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for subprocess servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    """A free loopback port number, for servers started as subprocesses."""
    return find_free_port()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox with default settings on a free port."""
    with serve_sandbox() as sb:
        yield sb


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Call with SandboxConfig fields (or ``config=``) to start a sandbox; all stop at teardown."""
    with contextlib.ExitStack() as stack:

        def start(config: SandboxConfig | None = None, **overrides: Any) -> Sandbox:
            if config is None:
                overrides.setdefault("port", 0)
            return stack.enter_context(serve_sandbox(config, **overrides))

        yield start


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0``: a real redis-server for this session, on loopback only."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """Every SQLite connection opened during the test (the real ones, only watched)."""
    opened: list[sqlite3.Connection] = []
    real = sqlite3.connect

    def watch(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(sqlite3, "connect", watch)
    return opened
