"""Secrets masked by value: long tokens in rich tracebacks, servers that echo them, patterns.

The scripted server below answers what a hostile or careless platform could:
error messages that quote the caller's credential back, raw, URL-encoded or
JSON-escaped. Nothing synckit prints, logs, raises or writes may contain it.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import secrets
import string
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from synckit._secrets import MASK, Secret, redact
from synckit.cli import main
from synckit.client import Client
from synckit.errors import APIError, ConfigError, SynckitError
from synckit.sandbox import Sandbox

# 200 characters with the punctuation tokens really contain (/ + = ! ~ .) and no two alike.
ALPHABET = string.ascii_letters + string.digits + "/+=!~._-"


def long_secret(prefix: str) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(200 - len(prefix)))


def forms(value: str) -> list[str]:
    """The value and the encodings a leak could take, plus its first 24 characters (rich
    cuts long strings to 80 characters and prints the slice)."""
    return [
        value,
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
        value[:24],
        value[-24:],
    ]


def assert_hidden(text: str, *values: str) -> None:
    for value in values:
        for form in forms(value):
            assert form not in text, f"{form[:12]}... leaked"


# ------------------------------------------------------------------ a scripted server


class Echo:
    """Answers every request with ``status`` and a body quoting the request's credential."""

    def __init__(self) -> None:
        self.status = 401
        self.url = ""

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        req = Request(environ)
        header = req.headers.get("Authorization", "")
        secret = header.partition(" ")[2] or req.form.get("client_secret", "")
        body = {
            "code": "unauthorized" if self.status == 401 else "validation_failed",
            "message": f"the token {secret} was revoked",
            "details": [
                {"field": "authorization", "message": f"got Authorization: Token {secret}"},
                {"field": "query", "message": f"GET /x?sig={quote(secret, safe='')}&key=abc"},
                {"field": "form", "message": f"client_secret%3D{quote(secret, safe='')}"},
                {"field": "json", "message": json.dumps({"sent": {"access_token": secret}})},
            ],
        }
        resp = Response(json.dumps(body), status=self.status, mimetype="application/json")
        return resp(environ, start_response)


@pytest.fixture
def echo() -> Iterator[Echo]:
    e = Echo()
    server = make_server("127.0.0.1", 0, e.app, threaded=True)
    e.url = f"http://127.0.0.1:{server.server_port}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield e
    finally:
        server.shutdown()
        thread.join(5)


def test_an_echoed_token_is_masked_in_errors_and_logs(
    echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    token = long_secret("sk_live_")
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    for status in (401, 422):
        echo.status = status
        with (
            Client(echo.url, token=token, max_retries=0) as client,
            pytest.raises(APIError) as info,
        ):
            client.create_contact({"email": "ada@example.com"})
        err = info.value
        texts += [str(err), repr(err), json.dumps(err.to_dict()), json.dumps(err.body)]
        texts += [err.message_with_details()]
        assert MASK in err.message
    texts += [r.getMessage() for r in caplog.records]
    assert_hidden("\n".join(texts), token)


def test_an_echoed_client_secret_and_access_token_are_masked(echo: Echo) -> None:
    secret = long_secret("cs_prod_")
    client = Client(echo.url, client_id="app", client_secret=secret, max_retries=0)
    with client, pytest.raises(SynckitError) as info:
        client.get_contact("ct_1")
    assert_hidden(str(info.value) + repr(info.value.__dict__), secret)


def test_cli_run_against_an_echoing_server_leaks_nowhere(
    echo: Echo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = long_secret("sk_live_")
    monkeypatch.setenv("SYNCKIT_BASE_URL", echo.url)
    monkeypatch.setenv("SYNCKIT_TOKEN", token)
    for name in ("SYNCKIT_CLIENT_ID", "SYNCKIT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    src = tmp_path / "in.csv"
    src.write_text("email\nada@example.com\nbob@example.com\n", encoding="utf-8")
    report = tmp_path / "report.csv"
    for status in (401, 422):
        echo.status = status
        code = main(["sync", str(src), "--report", str(report), "--log-format", "json",
                     "--no-progress", "--workers", "1"])  # fmt: skip
        assert code == (3 if status == 401 else 1)
        out = capsys.readouterr()
        written = report.read_text(encoding="utf-8")
        assert MASK in written and MASK in out.err  # the messages are kept, masked
        assert_hidden(out.out + out.err + written, token)


# ------------------------------------------------------------------ tracebacks


Factory = Callable[..., Sandbox]


def test_rich_tracebacks_with_locals_show_no_secret(
    sandbox_factory: Factory, free_port: int
) -> None:
    from rich.console import Console
    from rich.traceback import Traceback

    secret, static_token = long_secret("cs_prod_"), long_secret("sk_live_")
    sb = sandbox_factory(client_secret=secret, token=static_token)
    dead = f"http://127.0.0.1:{free_port}/v1"  # nothing listens here
    clients = [
        lambda: Client(sb.url, token=static_token),
        lambda: Client(sb.url, client_id=sb.client_id, client_secret=secret),
        lambda: Client(sb.url, client_id=sb.client_id, client_secret=secret + "x"),
        lambda: Client(sb.url, token=static_token + "x"),
        lambda: Client(dead, token=static_token, max_retries=0),
        lambda: Client(dead, client_id=sb.client_id, client_secret=secret, max_retries=0),
        # construction itself fails: the frame of __init__ holds the arguments
        lambda: Client("http://api.example.com/v1", token=static_token),
    ]
    access: list[str] = []
    for make in clients:
        with pytest.raises(SynckitError) as info:
            client = make()
            try:
                client.create_contact({"email": "not-an-email"})
            finally:
                if client._token is not None and client._token.value.reveal() != static_token:
                    access.append(client._token.value.reveal())
                del client
        err = info.value
        assert err.__traceback__ is not None
        tb: Any = err.__traceback__
        while "/synckit/" not in tb.tb_frame.f_code.co_filename:
            tb = tb.tb_next  # this test's own frames hold the secrets; synckit's must not
        console = Console(file=io.StringIO(), width=200, record=True)
        console.print(Traceback.from_exception(type(err), err, tb, show_locals=True))
        shown = console.export_text()
        assert "Traceback" in shown
        assert_hidden(shown, secret, static_token, *access)
    assert access  # the OAuth client did obtain a token, and it stayed hidden


# ------------------------------------------------------------------ the token itself


@pytest.mark.parametrize("bad", ["tok€n_value_1234", "token\nX-Evil: 1", " token_with_space"])
def test_a_token_no_header_can_carry_is_a_config_error_at_construction(bad: str) -> None:
    with pytest.raises(ConfigError, match="cannot be sent in an HTTP header") as info:
        Client("http://127.0.0.1:1/v1", token=bad)
    assert bad.strip() not in str(info.value)


def test_cli_with_a_non_latin1_token_exits_2_with_one_message(
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SYNCKIT_BASE_URL", sandbox.url)
    monkeypatch.setenv("SYNCKIT_TOKEN", "sk_test_ünïcödé_€uro")
    for name in ("SYNCKIT_CLIENT_ID", "SYNCKIT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    src = tmp_path / "in.csv"
    src.write_text("email\na@example.com\nb@example.com\n", encoding="utf-8")
    assert main(["sync", str(src), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not Latin-1 (U+20AC)" in err and "UnicodeEncodeError" not in err
    assert len(sandbox.request_log()) == 0


def test_secret_wrapper_never_becomes_text() -> None:
    s = Secret(long_secret("sk_"))
    assert repr(s) == "Secret('***')" and str(s) == "***" and f"{s:>10}" == "***"
    assert "%s %r" % (s, s) == "*** Secret('***')"  # noqa: UP031 (old-style formatting too)
    with pytest.raises(TypeError):
        s[:10]  # type: ignore[index]
    with pytest.raises(TypeError):
        "".join([s])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        "Bearer " + s  # type: ignore[operator]
    with pytest.raises(TypeError):
        pickle.dumps(s)
    assert s == Secret(s.reveal()) and s != Secret(s.reveal() + "x")


# ------------------------------------------------------------------ patterns


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Token abc123def", "Authorization: Token [REDACTED]"),
        ("Proxy-Authorization: Digest username=\"a\", response=\"b\"",
         "Proxy-Authorization: Digest [REDACTED]"),
        ("{'Authorization': 'ApiKey k-1', 'Accept': 'x'}",
         "{'Authorization': 'ApiKey [REDACTED]', 'Accept': 'x'}"),
        ("Authorization: sk_live_abc and more", "Authorization: [REDACTED]"),
        ("GET /f?key=AKIA123&sig=abc%2Bdef&x=1", "GET /f?key=[REDACTED]&sig=[REDACTED]&x=1"),
        ("body client_secret%3Dab%21cd%26scope%3Dx", "body client_secret%3D[REDACTED]%26scope%3Dx"),
        ('{\\"client_secret\\":\\"a b!c\\"}', '{\\"client_secret\\":\\"[REDACTED]\\"}'),
        ('{"password": "two words!", "user": "ada"}',
         '{"password": "[REDACTED]", "user": "ada"}'),
        ("sent Bearer abc!def~1 then", "sent Bearer [REDACTED] then"),
        ("%22api_key%22%3A%22k1%22", "%22api_key%22%3A[REDACTED]"),
    ],
)  # fmt: skip
def test_patterns_mask_credentials_synckit_never_held(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "row 5: unauthorized (request_id req_9) token_env=CRM_TOKEN",
        "retrying POST /contacts after 503 (request_id=req_1) in 0.25s [attempt 2 of 7]",
        "Idempotency-Key: synckit-0123456789abcdef",
        "email ada@example.com must be a valid email address; the token expired",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_short_values_are_not_masked_by_value() -> None:
    Secret("abc")  # would otherwise mask every "abc" in every message
    assert redact("abcdef abc") == "abcdef abc"
