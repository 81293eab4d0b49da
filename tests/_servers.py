"""Helpers shared by tests that run real servers on loopback or drive a sync subprocess."""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from synckit.sandbox import Sandbox


@contextlib.contextmanager
def serving(server: http.server.HTTPServer | Any, *, scheme: str = "http") -> Iterator[str]:
    """Serve ``server`` (``http.server`` or Werkzeug's) from a thread for the block;
    yields its loopback URL with ``/v1``."""
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        thread.join(5)


def posts(sb: Sandbox) -> int:
    """How many POSTs the sandbox has answered so far."""
    return sum(r.method == "POST" for r in sb.request_log())


def wait_for_posts(
    sb: Sandbox, proc: subprocess.Popen[str], n: int, *, timeout: float = 30.0
) -> None:
    """Until the sandbox has answered ``n`` POSTs; fails if ``proc`` ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if posts(sb) >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"the run did not get to {n} creates (exit {proc.poll()})")
