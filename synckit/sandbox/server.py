"""Running the sandbox: Werkzeug's threaded server, a handler that can drop answers, and
:func:`serve_sandbox`, the context manager tests and notebooks use.

Example:
    >>> import requests
    >>> with serve_sandbox() as sb:
    ...     r = requests.get(sb.url + "/contacts", headers={"Authorization": f"Bearer {sb.token}"})
    >>> r.status_code
    200
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import io
import json
import secrets
import socket
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from synckit.errors import ConfigError
from synckit.sandbox.app import DROP_ENVIRON_KEY, MAX_BODY_BYTES, SandboxApp
from synckit.sandbox.config import RequestRecord, SandboxConfig
from synckit.sandbox.state import DEFAULT_ORG, READ

__all__ = ["Sandbox", "SandboxServer", "serve_sandbox"]


class _Discard:
    """Stands in for the socket writer of a dropped request: the answer goes nowhere."""

    closed = False

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class _Handler(WSGIRequestHandler):
    # Headers and body go out in separate sends; without TCP_NODELAY the
    # second waits for the client's delayed ACK (~40 ms), see field notes.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        # Every read (request line, headers, body, the wait for the next keep-alive
        # request) gives up after this and the connection closes. Without it a silent
        # client held a thread and a file descriptor forever; enough of them and
        # accept() failed for everyone.
        read_timeout = getattr(self.server, "synckit_read_timeout", None)
        if read_timeout:
            self.connection.settimeout(read_timeout)
        conns = getattr(self.server, "synckit_connections", None)
        if conns is not None:
            conns.add(self.connection)

    def finish(self) -> None:
        conns = getattr(self.server, "synckit_connections", None)
        if conns is not None:
            conns.discard(self.connection)
        super().finish()

    def handle_expect_100(self) -> bool:
        # http.server would send "100 Continue" while parsing the headers, and
        # run_wsgi (Werkzeug's or ours) sends it again before reading the body:
        # one interim answer per request is enough, so leave it to run_wsgi.
        return True

    def run_wsgi(self) -> None:
        """Answer one request and keep the connection open for the next.

        Werkzeug's own ``run_wsgi`` closes every connection, because it cannot
        know where an unread body ends. A fresh TCP connection (and handler
        thread) per request cost more than the request itself, so here a body
        with a plain Content-Length is read in full before the app runs,
        which leaves the stream at the next request line. Chunked, oversized
        or odd bodies still take Werkzeug's path (drain, then close).
        """
        length = self._plain_body_length()
        if length is None:
            super().run_wsgi()
            return
        if length and self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return
        self.environ = environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        status = "500 INTERNAL SERVER ERROR"
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        def start_response(
            new_status: str, new_headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            nonlocal status, headers
            status, headers = new_status, new_headers
            return chunks.append

        result = self.server.app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        payload = b"".join(chunks)
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        self.send_response(code, reason)
        has_length = False
        for key, value in headers:
            self.send_header(key, value)
            has_length = has_length or key.lower() == "content-length"
        if not has_length and code >= 200 and code not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    def _plain_body_length(self) -> int | None:
        if "Transfer-Encoding" in self.headers:
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        try:
            length = int(raw)
        except ValueError:
            return None
        return length if 0 <= length <= MAX_BODY_BYTES else None

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[DROP_ENVIRON_KEY] = self._drop_answer
        return environ

    def _drop_answer(self) -> None:
        # The write is already committed; swap the writer so the status line,
        # headers and body are discarded, then the server closes the socket
        # after the request: the client sees the connection end with no answer.
        real = self.wfile
        self.wfile = _Discard()  # type: ignore[assignment]
        self.close_connection = True
        with contextlib.suppress(OSError):
            real.flush()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server answers unparsable request lines with an HTML page; keep
        # the contract's promise of a JSON envelope and an X-Request-Id instead.
        app = getattr(self.server, "app", None)
        style = getattr(getattr(app, "config", None), "error_style", "contacts")
        text = message or "Malformed HTTP request"
        code_name = "bad_request" if code < 500 else "internal_error"
        inner = {"code": code_name, "message": text}
        body = json.dumps({"error": inner} if style == "platform" else inner).encode()
        self.close_connection = True
        # Garbage request lines are read as HTTP/0.9, which has no status line
        # or headers; answer as HTTP/1.0 so the client sees a status.
        self.request_version = "HTTP/1.0"
        try:
            self.send_response(code, message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Request-Id", "req_" + secrets.token_hex(8))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    def log(self, type: str, message: str, *args: Any) -> None:
        # One line per request would cost more than the request itself.
        pass


class SandboxServer:
    """The WSGI app bound to a listening socket; ``start()`` serves it from a background thread.

    :func:`serve_sandbox` is the usual way in; this class is for code that
    manages the lifetime itself (the CLI serves in the foreground).

    Example:
        >>> server = SandboxServer(SandboxConfig(port=0))
        >>> server.start()
        >>> server.url.startswith("http://127.0.0.1:")
        True
        >>> server.stop()
    """

    def __init__(self, config: SandboxConfig) -> None:
        config.validate()
        self.config = config
        try:
            self.app = SandboxApp(config)
        except (sqlite3.Error, OSError) as exc:
            raise ConfigError(f"cannot open the sandbox database {config.db!r}: {exc}") from exc
        try:
            self._server: BaseWSGIServer = make_server(
                config.host, config.port, self.app, threaded=True, request_handler=_Handler
            )
        except (OSError, SystemExit) as exc:
            # Werkzeug reports a taken port by printing and calling sys.exit(1);
            # a library (and a notebook) needs an exception instead.
            self.app.store.close()
            raise ConfigError(f"cannot listen on {config.host}:{config.port}") from exc
        # Threads idling on keep-alive connections must not hold up shutdown;
        # _close() ends those connections instead.
        self._server.block_on_close = False  # type: ignore[attr-defined]
        self._server.synckit_connections = set()  # type: ignore[attr-defined]
        self._server.synckit_read_timeout = config.read_timeout  # type: ignore[attr-defined]
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}/v1"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # Shutdown waits for the next poll: short, because tests start and stop
            # a sandbox per test.
            kwargs={"poll_interval": 0.01},
            name=f"synckit-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`stop` or KeyboardInterrupt."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._close()

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close()

    def _close(self) -> None:
        conns: set[socket.socket] = self._server.synckit_connections  # type: ignore[attr-defined]
        for conn in list(conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        self.app.store.close()


class Sandbox:
    """A running sandbox: its base URL, demo credentials, and a window into its state.

    ``config`` is live: assigning e.g. ``sb.config.fail_rate = 0.3`` changes
    how the next request is answered.

    Example:
        >>> with serve_sandbox(contact_limit=10) as sb:
        ...     sb.url.startswith("http://127.0.0.1:"), sb.contacts()
        (True, [])
    """

    def __init__(self, server: SandboxServer) -> None:
        self._server = server
        self.config: SandboxConfig = server.config
        self.url: str = server.url

    @property
    def token(self) -> str:
        return self.config.token

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    @property
    def port(self) -> int:
        return self._server.port

    def contacts(self, *, org: str | None = None) -> list[dict[str, Any]]:
        """Stored contacts, oldest first (read straight from the store).

        Every organisation's by default; ``org`` keeps only that one's.

        Example:
            >>> with serve_sandbox() as sb:
            ...     sb.contacts(org="org_elsewhere")
            []
        """
        return self._server.app.store.all(org=org)

    def add_token(
        self,
        token: str,
        *,
        scopes: tuple[str, ...] = (READ,),
        ttl: float | None = None,
        org: str = DEFAULT_ORG,
    ) -> None:
        """Make ``token`` valid with ``scopes``, expiring after ``ttl`` seconds (None = never).

        The token acts for organisation ``org``: it sees and changes only that
        organisation's contacts, and another organisation's contact id answers
        ``403 forbidden``. The static token and the OAuth client belong to
        ``"org_demo"``.

        Example:
            >>> with serve_sandbox() as sb:
            ...     sb.add_token("tok_acme", scopes=("contacts:read", "contacts:write"), org="acme")
        """
        if not org:
            raise ConfigError("org must not be empty")
        digest = hashlib.sha256(token.encode()).hexdigest()
        self._server.app.tokens.add(
            token,
            scopes=tuple(scopes),
            ttl=ttl,
            # The org is part of the owner: re-adding a token for another
            # organisation must not replay answers given to the first one.
            owner=f"added:{org}:{digest}",
            org=org,
        )

    def request_log(self) -> list[RequestRecord]:
        """Every request seen so far, in arrival order (the most recent 200,000 of a long run)."""
        return self._server.app.request_log()

    def reset(self) -> None:
        """Forget contacts, issued tokens, idempotency records and the request log."""
        self._server.app.reset()

    def __repr__(self) -> str:
        return f"Sandbox(url={self.url!r}, error_style={self.config.error_style!r})"

    def _repr_html_(self) -> str:
        cfg = self.config
        rows = {
            "base URL": self.url,
            "contacts": str(len(self.contacts())),
            "error style": cfg.error_style,
            "rate limit": f"{cfg.rate_limit}/s" if cfg.rate_limit else "unlimited",
            "faults": f"latency {cfg.latency_ms} ms, fail {cfg.fail_rate:.0%}, "
            f"drop {cfg.drop_rate:.0%}",
        }
        body = "".join(
            f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows.items()
        )
        return f"<table><caption>synckit sandbox</caption>{body}</table>"


@contextlib.contextmanager
def serve_sandbox(config: SandboxConfig | None = None, **overrides: Any) -> Iterator[Sandbox]:
    """Run a sandbox in a background thread for the ``with`` block; yields a :class:`Sandbox`.

    Without ``port`` (in ``config`` or ``overrides``) it listens on a free
    port. The server stops and its connections close when the block ends.

    Example:
        >>> with serve_sandbox(error_style="platform", rate_limit=100) as sb:
        ...     print(sb.url)  # doctest: +ELLIPSIS
        http://127.0.0.1:.../v1
    """
    if config is None:
        config = SandboxConfig(port=0)
    if overrides:
        unknown = set(overrides) - set(SandboxConfig.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown sandbox setting(s): {', '.join(sorted(unknown))}")
        config = replace(config, **overrides)
    server = SandboxServer(config)
    server.start()
    try:
        yield Sandbox(server)
    finally:
        server.stop()
