"""Client cases the sandbox cannot produce, against a tiny scripted server on loopback.

The sandbox only sends ``Retry-After`` in seconds, never an HTML page, and a
``409 request_in_progress`` only in a sub-millisecond window; these tests
script exact answers instead (still real HTTP through the client's session).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from synckit.client import Client
from synckit.errors import (
    BusinessRuleError,
    Conflict,
    RateLimited,
    ServerError,
    ValidationFailed,
)

TOKEN = "stub-static-token-do-not-leak"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float


@dataclass
class Stub:
    """A scripted HTTP server: answers are popped in order; the last one repeats."""

    url: str = ""
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, status: int, body: Any = None, **headers: str) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body else b""
        headers = {k.replace("_", "-"): v for k, v in headers.items()}
        headers.setdefault("Content-Type", "application/json")
        self.script.append((status, headers, raw))

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        req = Request(environ)
        with self.lock:
            self.seen.append(
                Seen(req.method, req.path, dict(req.headers), req.get_data(), time.monotonic())
            )
            status, headers, body = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        headers = {"X-Request-Id": f"req_stub_{len(self.seen)}", **headers}
        return Response(body, status=status, headers=headers)(environ, start_response)


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    server = make_server("127.0.0.1", 0, s.app, threaded=True)
    s.url = f"http://127.0.0.1:{server.server_port}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield s
    finally:
        server.shutdown()
        thread.join(5)


CONTACT = {"id": "ct_1", "email": "ada@example.com"}


def _client(stub: Stub, **kw: Any) -> Client:
    kw.setdefault("backoff_base", 0.01)
    return Client(stub.url, token=TOKEN, **kw)


def test_retry_after_http_date_is_honoured_and_key_is_reused(stub: Stub) -> None:
    # An HTTP date has one-second resolution: two seconds ahead means a wait of 1 to 2 s.
    stub.answer(
        429,
        {"code": "rate_limited", "message": "slow down"},
        Retry_After=formatdate(time.time() + 2, usegmt=True),
    )
    stub.answer(201, CONTACT)
    with _client(stub) as client:
        started = time.monotonic()
        got = client.create_contact({"email": "ada@example.com"})
        took = time.monotonic() - started
        info = client.last_call
    assert got == CONTACT
    assert 0.9 <= took < 3.0
    assert info is not None and info.attempts == 2 and info.status == 201
    keys = [s.headers.get("Idempotency-Key") for s in stub.seen]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert stub.seen[1].time - stub.seen[0].time >= 0.9


def test_retry_after_fractional_seconds(stub: Stub) -> None:
    stub.answer(429, {"code": "rate_limited", "message": "slow down"}, Retry_After="0.4")
    stub.answer(200, CONTACT)
    with _client(stub) as client:
        assert client.get_contact("ct_1") == CONTACT
        assert client.last_call is not None and client.last_call.attempts == 2
    gap = stub.seen[1].time - stub.seen[0].time
    assert 0.35 <= gap < 1.5


def test_retry_after_is_capped(stub: Stub) -> None:
    stub.answer(429, {"code": "rate_limited", "message": "slow"}, Retry_After="3600")
    stub.answer(200, CONTACT)
    with _client(stub, max_retry_after=0.2) as client:
        started = time.monotonic()
        client.get_contact("ct_1")
        assert time.monotonic() - started < 2.0


def test_retry_after_beyond_the_time_budget_gives_up_at_once(stub: Stub) -> None:
    stub.answer(429, {"code": "rate_limited", "message": "slow"}, Retry_After="30")
    with _client(stub, max_retry_time=1.0) as client:
        started = time.monotonic()
        with pytest.raises(RateLimited) as info:
            client.get_contact("ct_1")
        assert time.monotonic() - started < 1.0
    assert info.value.retry_after is not None and info.value.retry_after > 25
    assert info.value.attempts == 1 and len(stub.seen) == 1


def test_html_502_from_a_proxy_becomes_a_readable_server_error(stub: Stub, caplog: Any) -> None:
    page = (
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
        b"</body>\r\n</html>\r\n"
    )
    stub.answer(502, page, Content_Type="text/html")
    caplog.set_level(logging.INFO, logger="synckit")
    with _client(stub, max_retries=2) as client, pytest.raises(ServerError) as info:
        client.get_contact("ct_1")
    err = info.value
    assert err.status == 502 and err.attempts == 3 and err.retryable
    assert "502 Bad Gateway" in str(err) and "<" not in err.message
    assert err.request_id == "req_stub_3"
    retry_lines = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    assert len(retry_lines) == 2
    for n, record in enumerate(retry_lines, start=1):
        text = record.getMessage()
        # method, path, status, request id and the wait, one line per retry
        assert "GET /contacts/ct_1" in text and "after 502" in text
        assert f"request_id=req_stub_{n}" in text and re.search(r"in \d+\.\d\ds", text)


def test_503_retry_after_then_success(stub: Stub) -> None:
    stub.answer(503, {"code": "unavailable", "message": "busy"}, Retry_After="0.2")
    stub.answer(200, CONTACT)
    with _client(stub) as client:
        assert client.get_contact("ct_1") == CONTACT
    assert stub.seen[1].time - stub.seen[0].time >= 0.18


def test_request_in_progress_is_retried_with_the_same_key(stub: Stub) -> None:
    stub.answer(409, {"code": "request_in_progress", "message": "still running"}, Retry_After="0.1")
    stub.answer(201, CONTACT, Idempotent_Replayed="true")
    with _client(stub) as client:
        assert client.create_contact({"email": "ada@example.com"}, idempotency_key="k-1") == CONTACT
        info = client.last_call
    assert info is not None and info.replayed and info.attempts == 2
    assert [s.headers.get("Idempotency-Key") for s in stub.seen] == ["k-1", "k-1"]


@pytest.mark.parametrize(
    ("status", "body", "exc"),
    [
        (
            400,
            {
                "error": {
                    "code": "validation_failed",
                    "message": "bad",
                    "details": {"email": ["must be a valid email address"]},
                }
            },
            ValidationFailed,
        ),
        (409, {"code": "conflict", "message": "taken", "id": "ct_9"}, Conflict),
        (422, {"code": "idempotency_key_reused", "message": "reused"}, BusinessRuleError),
    ],
)
def test_final_4xx_on_a_keyed_post_is_not_retried(
    stub: Stub, status: int, body: Any, exc: type[Exception]
) -> None:
    stub.answer(status, body)
    with _client(stub) as client, pytest.raises(exc) as info:
        client.create_contact({"email": "x@example.com"})
    assert len(stub.seen) == 1
    assert info.value.attempts == 1  # type: ignore[attr-defined]


def test_5xx_retry_stops_after_max_retries(stub: Stub) -> None:
    stub.answer(500, {"code": "internal_error", "message": "boom"})
    with _client(stub, max_retries=3) as client, pytest.raises(ServerError) as info:
        client.update_contact("ct_1", {"first_name": "A"})
    assert len(stub.seen) == 4 and info.value.attempts == 4
    keys = {s.headers.get("Idempotency-Key") for s in stub.seen}
    assert len(keys) == 1 and None not in keys
    assert client.last_call is not None and client.last_call.status == 500


def test_every_request_carries_timeout_auth_and_user_agent(stub: Stub) -> None:
    stub.answer(200, {"data": [CONTACT], "next_cursor": None})
    with _client(stub, user_agent="ua-test/1") as client:
        assert client.find_contacts(email="ada@example.com") == [CONTACT]
    seen = stub.seen[0]
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["User-Agent"] == "ua-test/1"
    assert "Idempotency-Key" not in seen.headers


def test_a_callers_session_is_used_and_left_open(stub: Stub) -> None:
    import requests

    stub.answer(200, CONTACT)
    session = requests.Session()
    session.headers["X-Trace"] = "mine"
    with Client(stub.url, token=TOKEN, session=session) as client:
        client.get_contact("ct_1")
    assert stub.seen[0].headers.get("X-Trace") == "mine"
    assert session.get(stub.url + "/contacts/ct_1", timeout=5).status_code == 200  # still open
    session.close()


def test_argument_errors_are_config_errors(stub: Stub) -> None:
    from synckit.errors import ConfigError

    stub.answer(200, CONTACT)
    with _client(stub) as client:
        with pytest.raises(ConfigError):
            client.find_contacts()
        with pytest.raises(ConfigError):
            list(client.iter_contacts(limit=0))
        with pytest.raises(ConfigError):
            client.get_contact("")
        with pytest.raises(ConfigError):
            client.create_contact({"email": "a@example.com"}, idempotency_key="k" * 256)
    with pytest.raises(ConfigError, match="closed"):
        client.get_contact("ct_1")
    assert stub.seen == []


def test_unsendable_arguments_are_config_errors_and_send_nothing(stub: Stub) -> None:
    # Library code raises only SynckitError: a payload JSON cannot carry, or an
    # Idempotency-Key no HTTP header can, is the caller's error, found before sending.
    from synckit.errors import ConfigError

    stub.answer(201, CONTACT)
    with _client(stub) as client:
        for payload in (
            {"email": "a@example.com", "custom_fields": {"n": float("nan")}},
            {"email": "a@example.com", "custom_fields": {"when": object()}},
        ):
            with pytest.raises(ConfigError, match="JSON"):
                client.create_contact(payload)
            with pytest.raises(ConfigError, match="JSON"):
                client.update_contact("ct_1", payload)
        for key in ("ключ-1", "line\nbreak", "tab\tkey"):
            with pytest.raises(ConfigError, match="idempotency_key"):
                client.create_contact({"email": "a@example.com"}, idempotency_key=key)
        assert stub.seen == []
        assert client.create_contact({"email": "a@example.com"}, idempotency_key="ok-1") == CONTACT
    assert stub.seen[0].headers["Content-Type"] == "application/json"
    assert json.loads(stub.seen[0].body) == {"email": "a@example.com"}


def test_429s_without_rate_headers_shrink_the_requests_in_flight(stub: Stub) -> None:
    # A server that announces no limit: the only signal is the 429 itself.
    # Back off (halve what is in flight), then carry on once it answers.
    stub.answer(429, {"error": {"code": "rate_limited", "message": "slow down"}}, Retry_After="0")
    stub.answer(201, CONTACT)
    client = _client(stub)
    assert client.concurrency.limit == 8
    client.create_contact({"email": "ada@example.com"})
    assert client.concurrency.limit == 4
    assert [s.method for s in stub.seen] == ["POST", "POST"]
    client.close()
