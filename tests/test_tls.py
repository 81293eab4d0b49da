"""TLS: no plain http:// beyond loopback, certificates always verified.

A real HTTPS server on 127.0.0.1 with a certificate from a throwaway CA
(trustme): the client must refuse it unless that CA is what it was told to
trust, whatever the environment says.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme
from _servers import serving
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from synckit.cli._sync import make_client
from synckit.client import Client
from synckit.errors import ConfigError, TransportError

TOKEN = "sk_tls_test_token_0123"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_url(ca: trustme.CA) -> Iterator[str]:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        body = json.dumps({"id": "ct_1", "email": "ada@example.com"})
        return Response(body, mimetype="application/json")(environ, start_response)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    with serving(server, scheme="https") as url:
        yield url


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# ------------------------------------------------------------------ plain http


@pytest.mark.parametrize(
    "url",
    ["http://api.example.com/v1", "http://10.0.0.5:8080/v1", "http://127.0.0.1.nip.io/v1",
     "http://localhost.example.com/v1", "http://[2001:db8::1]/v1"],
)  # fmt: skip
def test_plain_http_is_refused_beyond_loopback(url: str) -> None:
    with pytest.raises(ConfigError, match="unencrypted") as info:
        Client(url, token=TOKEN)
    assert TOKEN not in str(info.value)
    Client(url, token=TOKEN, allow_insecure_http=True).close()  # the explicit opt-in


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8765/v1", "http://127.1.2.3/v1", "http://localhost:9/v1",
     "http://LOCALHOST./v1", "http://[::1]:8765/v1", "https://api.example.com/v1"],
)  # fmt: skip
def test_loopback_and_https_need_no_opt_in(url: str) -> None:
    Client(url, token=TOKEN).close()


def test_cli_flag_allows_insecure_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCKIT_TOKEN", TOKEN)
    opts: dict[str, Any] = {"base_url": "http://api.example.com/v1"}
    with pytest.raises(ConfigError, match="allow-insecure-http"):
        make_client(opts)
    make_client({**opts, "allow_insecure_http": True}).close()


# ------------------------------------------------------------------ verification


def test_an_untrusted_certificate_fails_whatever_the_environment(
    https_url: str, clean_env: pytest.MonkeyPatch
) -> None:
    # Values that turn verification off elsewhere (curl, urllib, old requests bugs).
    clean_env.setenv("CURL_CA_BUNDLE", "")
    clean_env.setenv("REQUESTS_CA_BUNDLE", "")
    clean_env.setenv("PYTHONHTTPSVERIFY", "0")
    with Client(https_url, token=TOKEN, max_retries=0) as client:
        assert client._session.verify is True
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get_contact("ct_1")


def test_a_ca_bundle_from_the_environment_replaces_the_trust_store(
    https_url: str, ca: trustme.CA, tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        clean_env.setenv(name, str(bundle))
        with Client(https_url, token=TOKEN) as client:
            assert client.get_contact("ct_1")["id"] == "ct_1"
        clean_env.delenv(name)


def test_a_ca_bundle_that_does_not_exist_is_a_config_error(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="REQUESTS_CA_BUNDLE"):
        Client("https://api.example.com/v1", token=TOKEN)


def test_a_session_without_verification_is_refused() -> None:
    session = requests.Session()
    session.verify = False
    with pytest.raises(ConfigError, match="verify=False"):
        Client("https://api.example.com/v1", token=TOKEN, session=session)
    session.verify = True
    Client("https://api.example.com/v1", token=TOKEN, session=session).close()
