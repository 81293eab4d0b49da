"""Sandbox throughput: its keep-alive handler vs Werkzeug's stock handler, same app, same run.

    python benchmarks/bench_sandbox.py [--seconds 3] [--threads 1,4,8]

The baseline is the identical SandboxApp behind ``werkzeug.serving``'s own
``WSGIRequestHandler``, which closes the connection after every answer (so
each request pays a TCP connect and a new handler thread). The client is
``requests.Session`` in threads, as synckit's client uses it. Prints
requests per second for creates and for look-ups, and the ratio.
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
from collections.abc import Callable

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from synckit.sandbox import SandboxConfig
from synckit.sandbox.app import SandboxApp
from synckit.sandbox.server import SandboxServer

_ids = itertools.count()


def _drive(url: str, token: str, *, threads: int, seconds: float, kind: str) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    done: list[int] = []

    def work() -> None:
        n = 0
        end = time.monotonic() + seconds
        with requests.Session() as s:
            while time.monotonic() < end:
                if kind == "create":
                    body = {"email": f"b{next(_ids)}@example.com"}
                    r = s.post(url + "/contacts", json=body, headers=headers)
                    ok = r.status_code == 201
                else:
                    query = {"email": "b1@example.com"}
                    r = s.get(url + "/contacts", params=query, headers=headers)
                    ok = r.status_code == 200
                if not ok:
                    raise RuntimeError(f"unexpected {r.status_code}: {r.text[:200]}")
                n += 1
        done.append(n)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / (time.perf_counter() - start)


def _with_sandbox(fn: Callable[[str, str], float]) -> float:
    server = SandboxServer(SandboxConfig(port=0))
    server.start()
    try:
        return fn(server.url, server.config.token)
    finally:
        server.stop()


class _QuietStockHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: object) -> None:
        pass


def _with_stock_werkzeug(fn: Callable[[str, str], float]) -> float:
    app = SandboxApp(SandboxConfig(port=0))
    stock = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietStockHandler)
    thread = threading.Thread(target=stock.serve_forever, daemon=True)
    thread.start()
    try:
        return fn(f"http://127.0.0.1:{stock.server_address[1]}/v1", app.config.token)
    finally:
        stock.shutdown()
        stock.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", default="1,4,8")
    args = parser.parse_args()
    print(f"{'kind':<8}{'threads':>8}{'stock req/s':>14}{'sandbox req/s':>16}{'ratio':>8}")
    for kind in ("create", "lookup"):
        for threads in (int(t) for t in args.threads.split(",")):

            def run(url: str, token: str, threads: int = threads, kind: str = kind) -> float:
                return _drive(url, token, threads=threads, seconds=args.seconds, kind=kind)

            base = _with_stock_werkzeug(run)
            ours = _with_sandbox(run)
            print(f"{kind:<8}{threads:>8}{base:>14.0f}{ours:>16.0f}{ours / base:>7.2f}x")


if __name__ == "__main__":
    main()
