"""``synckit.Client``: the one place that speaks HTTP to the Contacts API.

One client is meant to be shared by many threads: it holds one
``requests.Session`` whose pool fits ``pool_size`` concurrent requests, one
credential (renewed by one thread at a time), one rate pacer (optionally
drawing on a budget shared with other processes and hosts) and one adaptive
limit on the requests in flight. Every call is bounded in attempts and time;
retries follow contract section 6.

Example:
    >>> import synckit
    >>> with synckit.serve_sandbox() as sb:                      # doctest: +SKIP
    ...     with synckit.Client(sb.url, token=sb.token) as client:
    ...         created = client.create_contact({"email": "ada@example.com"})
    ...         client.get_contact(created["id"])["email"]
    'ada@example.com'
"""

from __future__ import annotations

import http.cookiejar
import json
import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.auth
from requests.adapters import HTTPAdapter

from synckit import __version__
from synckit._concurrency import NEUTRAL, OK, OVERLOAD, RATE_LIMITED, AdaptiveConcurrency
from synckit._ratelimit import RatePacer
from synckit._secrets import Secret, is_loopback_host
from synckit.errors import (
    APIError,
    AuthError,
    ConfigError,
    Conflict,
    RateLimited,
    ServerError,
    TransportError,
    error_from_response,
)

__all__ = ["CallInfo", "Client"]

log = logging.getLogger("synckit")

_MUTATING = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Connection-level failures after which the request may or may not have
# reached the server: safe to repeat only when the request is idempotent.
_TRANSIENT_TRANSPORT = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_DEFAULT_SCOPE = "contacts:read contacts:write"
# Answers that say the server (or a proxy before it) is overloaded.
_OVERLOADED = frozenset({502, 503, 504})


@dataclass(frozen=True)
class CallInfo:
    """What happened on one client call (its final outcome, after any retries).

    ``status`` is ``None`` when no answer arrived; ``replayed`` is True when
    the server answered from its idempotency store (``Idempotent-Replayed``);
    ``elapsed`` is seconds from the call to its end, waits included.

    Example:
        >>> CallInfo("GET", "/contacts/ct_1", 200, "req_1", 1, False, 0.01).attempts
        1
    """

    method: str
    path: str
    status: int | None
    request_id: str | None
    attempts: int
    replayed: bool
    elapsed: float


class _BearerAuth(requests.auth.AuthBase):
    """Adds ``Authorization: Bearer <token>`` while requests prepares the request.

    The header value is the one plain ``str`` holding the token, and it exists
    only inside requests' prepared request -- never in a local variable of
    ours, where a traceback that shows locals (IPython's verbose mode,
    ``pytest --showlocals``, rich, Sentry) would print it.
    """

    def __init__(self, token: Secret) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = "Bearer " + self._token.reveal()
        return r

    def __repr__(self) -> str:
        return "<bearer token ***>"


class _ClientCredentials(requests.auth.AuthBase):
    """Puts the OAuth client-credentials form (client secret included) into the request body
    while requests prepares it, for the same reason as :class:`_BearerAuth`."""

    def __init__(self, client_id: str, secret: Secret, scope: str) -> None:
        self._client_id = client_id
        self._secret = secret
        self._scope = scope

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret.reveal(),
            "scope": self._scope,
        }
        r.prepare_body(form, None)
        return r

    def __repr__(self) -> str:
        return f"<client credentials {self._client_id!r} ***>"


def _ca_bundle_from_env() -> str | None:
    """``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` (as requests reads them), checked once.

    A bundle replaces the trusted certificates (a company proxy's CA, say); it
    can never turn verification off. An empty variable is ignored, as requests
    ignores it; one naming no file or folder is a :class:`ConfigError` now
    rather than a failure on every request.
    """
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = os.environ.get(name)
        if value:
            if not os.path.exists(value):
                raise ConfigError(
                    f"{name} names a CA bundle that does not exist ({value}): point it at a "
                    "PEM file or certificate folder, or unset it to use the default trust store"
                )
            return value
    return None


class _Token:
    __slots__ = ("expires_at", "generation", "renew_at", "value")

    def __init__(self, value: Secret, generation: int, renew_at: float, expires_at: float) -> None:
        self.value = value
        self.generation = generation
        self.renew_at = renew_at
        self.expires_at = expires_at


class Client:
    """Thread-safe client for the Contacts API.

    Credentials: a static ``token`` (API token) or OAuth ``client_id`` +
    ``client_secret`` (the access token is fetched lazily, cached, renewed
    shortly before it expires and once after a ``401 unauthorized``).

    Options: ``timeout`` (seconds, or ``(connect, read)``) applies to every
    request; ``max_retries`` bounds the retries of one call and
    ``max_retry_time`` the seconds spent retrying it (a started request may
    still run its ``timeout``); ``rate_limit`` (requests per second) caps the
    pace for all threads together, and the server's ``X-RateLimit-Limit``
    lowers it; ``rate_store`` shares that budget with every other client on
    the same credential and base URL: a directory path for processes on one
    host, ``redis://host:port/N`` for several hosts (checked at once: a
    :class:`~synckit.errors.ConfigError` if it cannot be reached);
    ``max_concurrency`` caps the requests in flight, and within it
    :attr:`concurrency` follows what the limit needs (limit x latency), or
    stays at the cap with ``adaptive_concurrency=False``; ``session`` lets
    you bring your own ``requests.Session`` (its adapters are then left as
    they are); ``pool_size`` sizes the connection pool (default
    ``max_concurrency``: no more are ever in flight);
    ``backoff_base`` / ``backoff_cap`` shape the exponential backoff with full
    jitter after 5xx and connection errors; ``max_retry_after`` caps a
    server's ``Retry-After``.

    Retries: 429 and ``409 request_in_progress`` after ``Retry-After``; 5xx
    and connection errors only for GETs and keyed writes (every write gets an
    ``Idempotency-Key``, the same for all its retries); never other 4xx. Each
    retry logs one line on the ``synckit`` logger. :attr:`last_call` tells
    this thread how its last call went (attempts, status, request id).

    Secrets: the token, client secret and every access token are held as
    :class:`~synckit._secrets.Secret` (prints ``***``, cannot be sliced) and
    registered, so that every message synckit produces -- exceptions, log
    lines, report messages, even text a server echoed back -- masks them by
    value. A token an HTTP header cannot carry (non-Latin-1, control
    characters) is a :class:`ConfigError` here, not a failure per request.

    TLS: ``http://`` is refused for any host but loopback (``localhost``,
    127.0.0.0/8, ``::1``) unless ``allow_insecure_http=True``. Certificates are
    always verified: ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` may replace the
    trusted CAs (checked to exist), nothing in the environment turns
    verification off, and a given ``session`` with ``verify=False`` is refused.

    Example:
        >>> client = Client("http://127.0.0.1:8765/v1", token="secret")  # no request yet
        >>> client
        Client('http://127.0.0.1:8765/v1', auth='token')
        >>> client.close()
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | Secret | None = None,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        scope: str = _DEFAULT_SCOPE,
        timeout: float | tuple[float, float] = 10.0,
        max_retries: int = 6,
        max_retry_time: float = 60.0,
        rate_limit: float | None = None,
        session: requests.Session | None = None,
        pool_size: int | None = None,
        user_agent: str | None = None,
        backoff_base: float = 0.25,
        backoff_cap: float = 8.0,
        max_retry_after: float = 60.0,
        allow_insecure_http: bool = False,
        max_concurrency: int = 64,
        adaptive_concurrency: bool = True,
        rate_store: Any = None,
    ) -> None:
        # Wrapped before anything can raise: a traceback that shows this frame's
        # locals then shows Secret('***'), not the credential.
        token = Secret(token) if token else None
        client_secret = Secret(client_secret) if client_secret else None
        if not base_url or urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigError(
                "base_url must be an http(s) URL such as https://api.example.com/v1, "
                f"got {base_url!r}"
            )
        if token and (client_id or client_secret):
            raise ConfigError("give either token or client_id + client_secret, not both")
        if not token and not (client_id and client_secret):
            if client_id or client_secret:
                missing = "client_secret" if client_id else "client_id"
                raise ConfigError(f"OAuth client credentials need {missing} too")
            raise ConfigError(
                "no credential: pass token=... (SYNCKIT_TOKEN) or client_id=... and "
                "client_secret=... (SYNCKIT_CLIENT_ID, SYNCKIT_CLIENT_SECRET)"
            )
        split = urlsplit(base_url)
        insecure = split.scheme == "http" and not is_loopback_host(split.hostname)
        if insecure and not allow_insecure_http:
            raise ConfigError(
                f"refusing plain http:// to {split.hostname}: the credential would travel "
                "unencrypted. Use https://, or pass allow_insecure_http=True "
                "(--allow-insecure-http) for a test server on a network you trust"
            )
        problem = token.header_problem() if token else None
        if problem:
            raise ConfigError(
                f"the API token cannot be sent in an HTTP header: {problem}; "
                "check that SYNCKIT_TOKEN holds the token exactly as issued"
            )
        if max_retries < 0 or max_retry_time < 0:
            raise ConfigError("max_retries and max_retry_time must not be negative")
        if pool_size is not None and pool_size < 1:
            raise ConfigError("pool_size must be at least 1")
        if (
            not isinstance(max_concurrency, int)
            or isinstance(max_concurrency, bool)
            or max_concurrency < 1
        ):
            raise ConfigError(
                f"max_concurrency must be a whole number >= 1, not {max_concurrency!r}"
            )
        if min(backoff_base, backoff_cap, max_retry_after) < 0:
            # A negative wait would reach time.sleep() mid-retry as a ValueError.
            raise ConfigError("backoff_base, backoff_cap and max_retry_after must not be negative")
        if rate_limit is not None and rate_limit <= 0:
            raise ConfigError("rate_limit must be a positive number of requests per second")
        parts = timeout if isinstance(timeout, tuple) else (timeout,)
        if (
            not parts
            or len(parts) > 2
            or not all(isinstance(x, (int, float)) and x > 0 for x in parts)
        ):
            # A request without a timeout can hang a worker thread forever.
            raise ConfigError("timeout must be positive seconds, or a (connect, read) pair of them")
        self.base_url = base_url.rstrip("/")
        split = urlsplit(self.base_url)
        # Where we talk to, for messages: never the URL's user:password part.
        self._host = split.hostname or "?"
        if split.port:
            self._host += f":{split.port}"
        self._shown_url = split._replace(netloc=self._host).geturl()
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_time = max_retry_time
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.scope = scope
        # Secrets live in private attributes as Secret objects: never a str to print.
        self._static_token = token
        self._client_id = client_id
        self._client_secret = client_secret
        self._token: _Token | None = None
        self._token_lock = threading.Lock()
        self._generation = 0
        budget = None
        self._rate_store = None
        if rate_store is not None:
            from synckit._ratestore import budget_key, describe_store, open_budget

            # Jobs on the same credential and endpoint share one budget; the
            # key is a hash, so no secret lands in a Redis key or file name.
            credential = f"token:{token}" if token else f"oauth:{client_id}"
            budget = open_budget(rate_store, key=budget_key(base_url, credential))
            self._rate_store = describe_store(rate_store)
        self._pacer = RatePacer(rate_limit, budget=budget)
        pacer = self._pacer
        self._concurrency = AdaptiveConcurrency(
            ceiling=max_concurrency, rate=lambda: pacer.rate, adaptive=adaptive_concurrency
        )
        self._local = threading.local()
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            # Our loop owns retries (urllib3's Retry would silently give up
            # on POST); the pool holds a connection per concurrent thread.
            adapter = HTTPAdapter(
                pool_connections=4, pool_maxsize=pool_size or max_concurrency, max_retries=0
            )
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            # The API sets no cookies; refusing them keeps threads from
            # sharing (and racing on) a mutable cookie jar.
            session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
            # requests re-reads proxy, netrc and CA-bundle settings from the
            # environment on every request (measurable CPU per call); read
            # them once here instead. Proxies still honour NO_PROXY.
            session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
            ca_bundle = _ca_bundle_from_env()
            if ca_bundle:
                session.verify = ca_bundle
            session.trust_env = False
        elif session.verify is False and split.scheme == "https":
            raise ConfigError(
                "the given session has verify=False: synckit sends credentials only over "
                "verified TLS; give it verify='/path/to/ca.pem' for a private CA"
            )
        self._session = session
        self._headers = {
            "Accept": "application/json",
            "User-Agent": user_agent
            or f"synckit/{__version__} python-requests/{requests.__version__}",
        }
        self._closed = False
        self._endpoint_verified = False

    # ------------------------------------------------------------------ setup

    @classmethod
    def from_env(cls, **overrides: Any) -> Client:
        """A client configured from ``SYNCKIT_BASE_URL``, ``SYNCKIT_TOKEN``,
        ``SYNCKIT_CLIENT_ID`` and ``SYNCKIT_CLIENT_SECRET``; keyword arguments win.

        Credentials given as overrides replace those in the environment.

        Example:
            >>> Client.from_env(rate_limit=50)  # SYNCKIT_* set  # doctest: +SKIP
            Client('http://127.0.0.1:8765/v1', auth='token', rate_limit=50)
        """
        env = os.environ
        base_url = overrides.pop("base_url", None) or env.get("SYNCKIT_BASE_URL")
        if not base_url:
            raise ConfigError(
                "no API base URL: set SYNCKIT_BASE_URL (e.g. https://api.example.com/v1)"
            )
        cred_keys = ("token", "client_id", "client_secret")
        if not any(overrides.get(k) for k in cred_keys):
            # Wrapped at once: no frame of ours holds them as plain str.
            token = Secret(env["SYNCKIT_TOKEN"]) if env.get("SYNCKIT_TOKEN") else None
            cid = env.get("SYNCKIT_CLIENT_ID") or None
            secret = (
                Secret(env["SYNCKIT_CLIENT_SECRET"]) if env.get("SYNCKIT_CLIENT_SECRET") else None
            )
            if token and (cid or secret):
                raise ConfigError(
                    "both SYNCKIT_TOKEN and SYNCKIT_CLIENT_ID/SYNCKIT_CLIENT_SECRET are set: "
                    "unset one of them"
                )
            overrides.update(token=token, client_id=cid, client_secret=secret)
        return cls(base_url, **overrides)

    @property
    def shown_url(self) -> str:
        """The base URL as it may be shown in a message (without any ``user:password@``)."""
        return self._shown_url

    @property
    def endpoint_verified(self) -> bool:
        """True once this client got a page of contacts in the contract's shape from its
        base URL with its credential: the endpoint is the Contacts API (a run's preflight
        then needs no request of its own)."""
        return self._endpoint_verified

    @property
    def auth_kind(self) -> str:
        """``"token"`` or ``"oauth"``."""
        return "token" if self._static_token else "oauth"

    @property
    def rate_limit(self) -> float | None:
        """The requests-per-second limit being followed (None while unknown)."""
        return self._pacer.limit

    @property
    def concurrency(self) -> AdaptiveConcurrency:
        """The limit on requests in flight: ``.limit`` now (an int), ``.ceiling``, ``.latency``.

        Executors size their in-flight work by ``client.concurrency.limit``;
        the client enforces it around every attempt either way.

        Example:
            >>> Client("http://127.0.0.1:8765/v1", token="t").concurrency.limit
            8
        """
        return self._concurrency

    @property
    def rate_store(self) -> str | None:
        """The shared budget's location as it may be shown (no password), or None."""
        return self._rate_store

    @property
    def last_call(self) -> CallInfo | None:
        """This thread's last completed call (success or failure), or None."""
        return getattr(self._local, "call", None)

    def __repr__(self) -> str:
        user_limit = self._pacer.user_limit
        extra = f", rate_limit={user_limit!r}" if user_limit else ""
        if self._rate_store:
            extra += f", rate_store={self._rate_store!r}"
        return f"Client({self._shown_url!r}, auth={self.auth_kind!r}{extra})"

    def close(self) -> None:
        """Close the connection pool (only when the client created the session)."""
        self._closed = True
        self._pacer.close()
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- endpoints

    def create_contact(
        self, payload: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """``POST /contacts``: the created contact.

        Raises :class:`~synckit.errors.Conflict` (``.existing_id``) when the
        email or phone belongs to a contact already.

        Example:
            >>> client.create_contact({"email": "ada@example.com"})["id"]  # doctest: +SKIP
            'ct_7f3a9c1e2b'
        """
        return self._json(
            self._call("POST", "/contacts", body=payload, idempotency_key=idempotency_key)
        )

    def get_contact(self, contact_id: str) -> dict[str, Any]:
        """``GET /contacts/{id}``; :class:`~synckit.errors.NotFound` if absent.

        Example:
            >>> client.get_contact("ct_7f3a9c1e2b")["email"]  # doctest: +SKIP
            'ada@example.com'
        """
        return self._json(self._call("GET", self._contact_path(contact_id)))

    def update_contact(
        self, contact_id: str, payload: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """``PATCH /contacts/{id}``: set the given fields (``None`` clears one).

        Example:
            >>> client.update_contact("ct_7f3a9c1e2b", {"first_name": "Ada"})  # doctest: +SKIP
            {'id': 'ct_7f3a9c1e2b', 'first_name': 'Ada', ...}
        """
        return self._json(
            self._call(
                "PATCH",
                self._contact_path(contact_id),
                body=payload,
                idempotency_key=idempotency_key,
            )
        )

    def delete_contact(self, contact_id: str, *, idempotency_key: str | None = None) -> None:
        """``DELETE /contacts/{id}``.

        Example:
            >>> client.delete_contact("ct_7f3a9c1e2b")  # doctest: +SKIP
        """
        self._call("DELETE", self._contact_path(contact_id), idempotency_key=idempotency_key)

    def find_contacts(
        self, email: str | None = None, phone_number: str | None = None
    ) -> list[dict[str, Any]]:
        """Contacts matching ``email`` and/or ``phone_number`` (``GET /contacts?...``).

        Example:
            >>> [c["id"] for c in client.find_contacts(email="ada@example.com")]  # doctest: +SKIP
            ['ct_7f3a9c1e2b']
        """
        params: dict[str, str] = {}
        if email is not None:
            params["email"] = email
        if phone_number is not None:
            params["phone_number"] = phone_number
        if not params:
            raise ConfigError("find_contacts needs email or phone_number (iter_contacts lists all)")
        found: list[dict[str, Any]] = []
        for page in self._pages(params):
            found.extend(page)
        return found

    def list_page(
        self, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of ``GET /contacts`` (oldest first): its contacts and the next cursor.

        The cursor is None after the last page. For callers that decide page
        by page whether to go on (the sync engine's discovery).

        Example:
            >>> contacts, cursor = client.list_page(limit=100)  # doctest: +SKIP
        """
        if not 1 <= limit <= 100:
            raise ConfigError("limit must be between 1 and 100")
        params = {"limit": str(limit)}
        if cursor:
            params["cursor"] = cursor
        resp = self._call("GET", "/contacts", params=params)
        body = self._json(resp)
        data, nxt = body.get("data"), body.get("next_cursor")
        if not (
            isinstance(data, list)
            and all(isinstance(c, dict) for c in data)
            and (nxt is None or isinstance(nxt, str))
        ):
            # Some other JSON API: read as "no contacts", every row would be created anew.
            keys = ", ".join(sorted(map(str, body))[:6]) or "none"
            raise APIError(
                f"HTTP {resp.status_code} answer is not a page of contacts (no 'data' list of "
                f"contacts and 'next_cursor'; its keys: {keys})",
                status=resp.status_code,
                code="not_contacts_page",
                request_id=resp.headers.get("X-Request-Id"),
                method="GET",
                path="/contacts",
                content_type=resp.headers.get("Content-Type"),
            )
        self._endpoint_verified = True
        return list(data), (str(nxt) if nxt and nxt != cursor else None)

    def iter_contacts(self, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Every contact, oldest first, fetched ``limit`` per page (follows ``next_cursor``).

        Example:
            >>> sum(1 for _ in client.iter_contacts())  # doctest: +SKIP
            42
        """
        if not 1 <= limit <= 100:
            raise ConfigError("limit must be between 1 and 100")
        for page in self._pages({"limit": str(limit)}):
            yield from page

    def _pages(self, params: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            query = dict(params)
            if cursor:
                query["cursor"] = cursor
            body = self._json(self._call("GET", "/contacts", params=query))
            data = body.get("data") or []
            yield list(data)
            cursor = body.get("next_cursor")
            if not cursor or cursor in seen:  # a repeating cursor would loop forever
                return
            seen.add(cursor)

    @staticmethod
    def _contact_path(contact_id: str) -> str:
        if not contact_id or not isinstance(contact_id, str):
            raise ConfigError(f"contact id must be a non-empty string, got {contact_id!r}")
        return "/contacts/" + quote(contact_id, safe="")

    @staticmethod
    def _json(resp: requests.Response) -> dict[str, Any]:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            content_type = resp.headers.get("Content-Type")
            raise APIError(
                f"HTTP {resp.status_code} answer is not a JSON object "
                f"(Content-Type {content_type or 'missing'}: {_snippet(resp.content)!r})",
                status=resp.status_code,
                code="not_json",
                request_id=resp.headers.get("X-Request-Id"),
                method=resp.request.method if resp.request is not None else None,
                path=urlsplit(resp.url).path if resp.url else None,
                content_type=content_type,
            )
        return body

    # ------------------------------------------------------------------- auth

    def _current_token(self) -> _Token:
        tok = self._token
        now = time.monotonic()
        if tok is not None and now < tok.renew_at:
            return tok
        if tok is not None and now < tok.expires_at:
            # Still valid: one thread renews early, the others carry on.
            if self._token_lock.acquire(blocking=False):
                try:
                    if self._token is tok:
                        self._fetch_token()
                except (TransportError, ServerError, RateLimited) as err:
                    # The old token still works: a flaky token endpoint must
                    # not fail this call; the next call tries again.
                    log.warning("early access token renewal failed, will retry: %s", err)
                finally:
                    self._token_lock.release()
            return self._token or tok
        with self._token_lock:
            if self._token is tok:
                self._fetch_token()
            assert self._token is not None
            return self._token

    def _renew_after_401(self, failed: _Token) -> None:
        """Renew unless another thread already replaced the rejected token."""
        with self._token_lock:
            if self._token is failed or self._token is None:
                self._fetch_token()

    def _fetch_token(self) -> None:
        """Exchange the client credentials (caller holds ``_token_lock``)."""
        if self._static_token:
            self._generation += 1
            self._token = _Token(self._static_token, self._generation, float("inf"), float("inf"))
            return
        sent_at = time.monotonic()
        assert self._client_secret is not None
        # The form is built by requests inside the auth hook: the client secret is
        # never a plain str in a frame of ours.
        credentials = _ClientCredentials(self._client_id or "", self._client_secret, self.scope)
        try:
            resp = self._send_with_retries(
                "POST",
                "/oauth/token",
                content_type="application/x-www-form-urlencoded",
                authenticated=False,
                auth=credentials,
                record=False,
            )
        except AuthError as err:
            raise self._explain_token_error(err) from None
        except APIError as err:
            if err.code in ("invalid_client", "invalid_scope"):
                raise self._explain_token_error(err) from None
            raise
        body = self._json(resp)
        # Out of the dict and into a Secret at once; registered for masking by value.
        raw = body.pop("access_token", None)
        access = Secret(raw) if isinstance(raw, str) and raw else None
        del raw
        problem = access.header_problem() if access is not None else "it is missing"
        if access is None or problem:
            raise AuthError(
                f"the token endpoint answered without a usable access_token: {problem}",
                status=resp.status_code,
                request_id=resp.headers.get("X-Request-Id"),
                method="POST",
                path="/oauth/token",
            )
        try:
            lifetime = float(body.get("expires_in", 7200))
        except (TypeError, ValueError):
            lifetime = 7200.0
        # Renew early by a tenth of the lifetime, at least 2 s (half of a very
        # short lifetime), at most a minute: a request queued, paced or slowed
        # by a busy machine must still arrive before its token dies.
        margin = min(60.0, max(lifetime * 0.1, min(2.0, lifetime * 0.5)))
        self._generation += 1
        self._token = _Token(
            access, self._generation, sent_at + lifetime - margin, sent_at + lifetime
        )

    def _explain_token_error(self, err: APIError) -> AuthError:
        if err.code == "invalid_scope":
            hint = (
                f"the requested scope {self.scope!r} is not enabled on this OAuth application: "
                "enable it for the application or pass a narrower scope="
            )
        elif err.code == "invalid_client":
            hint = (
                "the client id or client secret is incorrect: check client_id/client_secret "
                "(SYNCKIT_CLIENT_ID, SYNCKIT_CLIENT_SECRET)"
            )
        else:
            hint = f"could not obtain an access token: {err.message}"
        return AuthError(
            hint,
            status=err.status,
            code=err.code,
            details=err.details,
            request_id=err.request_id,
            retryable=False,
            method=err.method,
            path=err.path,
            attempts=err.attempts,
        )

    # --------------------------------------------------------- the one loop

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> requests.Response:
        if method in _MUTATING:
            if idempotency_key is None:
                # Chosen once, before the loop: every retry repeats the same
                # logical operation, so the server can replay instead of redo.
                idempotency_key = f"synckit-{uuid.uuid4().hex}"
            elif (
                not isinstance(idempotency_key, str)
                or not 1 <= len(idempotency_key) <= 255
                or not (idempotency_key.isascii() and idempotency_key.isprintable())
            ):
                # A header value: anything else fails inside http.client, not here.
                raise ConfigError(
                    "idempotency_key must be a string of 1 to 255 printable ASCII characters"
                )
        data: bytes | None = None
        if body is not None:
            # Encoded once for all attempts, and here, so that a value JSON
            # cannot carry (NaN, a datetime, an object) is the caller's error,
            # not a transport failure or a bare TypeError from requests.
            try:
                data = json.dumps(body, allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"the payload cannot be sent as JSON: {exc}") from None
        return self._send_with_retries(
            method,
            path,
            data=data,
            content_type="application/json" if data is not None else None,
            params=params,
            idempotency_key=idempotency_key,
            authenticated=True,
        )

    def _send_with_retries(
        self,
        method: str,
        path: str,
        *,
        data: bytes | str | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        authenticated: bool,
        record: bool = True,
        auth: requests.auth.AuthBase | None = None,
    ) -> requests.Response:
        if self._closed:
            raise ConfigError("this client is closed")
        started = time.monotonic()
        deadline = started + self.max_retry_time
        # GETs and keyed requests may be repeated after an ambiguous failure;
        # the token request is harmless to repeat (it only mints a token).
        idempotent = method == "GET" or idempotency_key is not None or not authenticated
        url = self.base_url + path
        attempts = 0
        retries = 0
        renewed = False
        gate = self._concurrency
        while True:
            attempts += 1
            # In-flight places are taken per attempt (never held through a
            # backoff sleep). The token request runs inside the attempt that
            # needed it, so it takes no place: it would wait on itself.
            if authenticated:
                gate.acquire()
            latency: float | None = None
            signal = NEUTRAL
            resp: requests.Response | None = None
            failure: requests.RequestException | None = None
            try:
                # Wait for our slot first: a pause (429) must not be spent
                # holding a token that could expire meanwhile.
                self._pacer.acquire()
                headers = dict(self._headers)
                token: _Token | None = None
                if authenticated:
                    try:
                        token = self._current_token()
                    except APIError as exc:
                        # The call fails for want of a credential: report it as this call.
                        self._finish(
                            record,
                            method,
                            path,
                            exc.status,
                            exc.request_id,
                            attempts,
                            False,
                            started,
                        )
                        raise
                    auth = _BearerAuth(token.value)
                if idempotency_key is not None:
                    headers["Idempotency-Key"] = idempotency_key
                if content_type is not None:
                    headers["Content-Type"] = content_type
                sent = time.monotonic()
                try:
                    resp = self._session.request(
                        method,
                        url,
                        params=params,
                        data=data,
                        headers=headers,
                        auth=auth,
                        timeout=self.timeout,
                        allow_redirects=False,
                    )
                except requests.RequestException as exc:
                    failure = exc
                    if isinstance(exc, _TRANSIENT_TRANSPORT):
                        signal = OVERLOAD
                else:
                    latency = time.monotonic() - sent
                    code = resp.status_code
                    signal = (
                        RATE_LIMITED if code == 429 else OVERLOAD if code in _OVERLOADED else OK
                    )
            finally:
                if authenticated:
                    gate.release(latency, signal)
            if resp is None:
                assert failure is not None
                if not isinstance(failure, _TRANSIENT_TRANSPORT) or _never_heals(failure):
                    self._finish(record, method, path, None, None, attempts, False, started)
                    raise TransportError(
                        f"request to {self._host} failed: {_describe(failure)}",
                        method=method,
                        path=path,
                        attempts=attempts,
                        retryable=False,
                    ) from _without_frames(failure)
                err: APIError = TransportError(
                    f"no answer from {self._host}: {_describe(failure)}",
                    method=method,
                    path=path,
                    attempts=attempts,
                    retryable=idempotent,
                )
                wait = self._backoff(retries) if idempotent else None
                if wait is not None and self._may_retry(retries, wait, deadline):
                    self._log_retry(
                        method, path, "connection error", None, wait, attempts, logging.WARNING
                    )
                    retries += 1
                    time.sleep(wait)
                    continue
                self._finish(record, method, path, None, None, attempts, False, started)
                raise err from _without_frames(failure)

            status = resp.status_code
            request_id = resp.headers.get("X-Request-Id")
            self._pacer.observe(resp.headers)
            if 200 <= status < 300:
                replayed = resp.headers.get("Idempotent-Replayed", "").lower() == "true"
                self._finish(record, method, path, status, request_id, attempts, replayed, started)
                return resp

            err = error_from_response(
                status, resp.content, resp.headers, method=method, path=path, attempts=attempts
            )
            if (
                status == 401
                and authenticated
                and token is not None
                and err.code in (None, "unauthorized")
            ):
                if self._static_token:
                    err = _with_message(
                        err,
                        f"{err.message} -- the API token was rejected (expired, revoked or wrong): "
                        "create a new token and set SYNCKIT_TOKEN",
                    )
                elif not renewed:
                    renewed = True
                    try:
                        self._renew_after_401(token)
                    except APIError as exc:
                        self._finish(
                            record,
                            method,
                            path,
                            exc.status,
                            exc.request_id,
                            attempts,
                            False,
                            started,
                        )
                        raise
                    log.info(
                        "renewed the access token after 401 on %s %s (request_id=%s)",
                        method,
                        path,
                        request_id,
                    )
                    continue  # the contract's one repeat; no wait, no retry budget
                else:
                    err = _with_message(
                        err,
                        f"{err.message} -- still unauthorized with a freshly obtained "
                        "access token: check that the OAuth application may use this API",
                    )
            wait = self._retry_wait(err, idempotent, retries)
            if isinstance(err, RateLimited) and wait is not None:
                # Everyone waits, not just us (even if we give up): the budget is shared.
                self._pacer.pause(wait)
            if wait is not None and self._may_retry(retries, wait, deadline):
                level = (
                    logging.INFO if isinstance(err, (RateLimited, Conflict)) else logging.WARNING
                )
                self._log_retry(method, path, str(status), request_id, wait, attempts, level)
                retries += 1
                if not isinstance(err, RateLimited):  # a 429's wait is the pacer's pause
                    time.sleep(wait)
                continue
            self._finish(record, method, path, status, request_id, attempts, False, started)
            raise err

    def _retry_wait(self, err: APIError, idempotent: bool, retries: int) -> float | None:
        """Seconds to wait before repeating, or None when this error is final."""
        if not (
            # A 429 was not processed: safe to repeat whatever the method.
            isinstance(err, RateLimited)
            or (isinstance(err, Conflict) and err.code == "request_in_progress")
            # 501/505 say "never" (retryable=False): repeating them only wastes the window.
            or (isinstance(err, ServerError) and idempotent and err.retryable)
        ):
            return None
        after = err.retry_after
        return min(after, self.max_retry_after) if after is not None else self._backoff(retries)

    def _backoff(self, retries: int) -> float:
        # Full jitter: threads that failed together do not retry together.
        return random.uniform(0.0, min(self.backoff_cap, self.backoff_base * (2**retries)))

    def _may_retry(self, retries: int, wait: float, deadline: float) -> bool:
        return retries < self.max_retries and time.monotonic() + wait <= deadline

    def _log_retry(
        self,
        method: str,
        path: str,
        status: str,
        request_id: str | None,
        wait: float,
        attempts: int,
        level: int,
    ) -> None:
        log.log(
            level,
            "retrying %s %s after %s (request_id=%s) in %.2fs [attempt %d of %d]",
            method,
            path,
            status,
            request_id or "-",
            wait,
            attempts + 1,
            self.max_retries + 1,
        )

    def _finish(
        self,
        record: bool,
        method: str,
        path: str,
        status: int | None,
        request_id: str | None,
        attempts: int,
        replayed: bool,
        started: float,
    ) -> None:
        if not record:  # the token request is part of the call that needed it
            return
        self._local.call = CallInfo(
            method, path, status, request_id, attempts, replayed, time.monotonic() - started
        )


def _never_heals(exc: requests.RequestException) -> bool:
    """A TLS failure that repeating cannot fix: a certificate that does not verify, or no
    protocol version both sides accept (requests reports both as ``SSLError``, a kind of
    ``ConnectionError``). A TLS handshake cut short by the network (EOF, reset) may heal."""
    if not isinstance(exc, requests.exceptions.SSLError):
        return False
    text = str(exc).upper()
    return any(
        mark in text
        for mark in (
            "CERTIFICATE_VERIFY_FAILED",
            "CERTIFICATE VERIFY FAILED",
            "HOSTNAME MISMATCH",
            "UNSUPPORTED_PROTOCOL",
            "UNSUPPORTED PROTOCOL",
            "VERSION",  # TLSV1_ALERT_PROTOCOL_VERSION, WRONG_VERSION_NUMBER, NO_PROTOCOLS...
            "NO_PROTOCOLS_AVAILABLE",
            "NO PROTOCOLS AVAILABLE",
            "WRONG_SSL_VERSION",
            "HANDSHAKE_FAILURE",  # no common cipher: configuration, not weather
        )
    )


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of a transport failure.

    requests wraps urllib3 wraps socket errors; the innermost one says what
    actually happened ("Connection refused", "Read timed out").
    """
    inner: BaseException = exc
    for _ in range(6):
        nested = getattr(inner, "reason", None)
        if not isinstance(nested, BaseException):
            nested = next((a for a in inner.args if isinstance(a, BaseException)), None)
        if not isinstance(nested, BaseException):
            break
        inner = nested
    text = str(inner)
    if "): " in text and text.startswith(("HTTPConnection", "HTTPSConnection")):
        text = text.split("): ", 1)[1]  # drop the pool's repr; the host is named already
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _snippet(content: bytes, limit: int = 80) -> str:
    """The start of a body as one short line of text (what came back, for a message)."""
    text = " ".join(content[: limit * 4].decode("utf-8", "replace").split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _without_frames(exc: BaseException) -> BaseException:
    """``exc`` and the exceptions chained to it, stripped of their stack frames.

    Those frames are requests', urllib3's and http.client's, whose locals
    hold the encoded request (the Authorization header, the token form with
    the client secret); a traceback that prints locals would show them. The
    exception types and messages stay, which is what says what went wrong.
    """
    todo: list[BaseException | None] = [exc]
    seen: set[int] = set()
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        item.__traceback__ = None
        todo += [item.__cause__, item.__context__]
    return exc


def _with_message(err: APIError, message: str) -> APIError:
    err.message = message
    err.args = (message,)
    return err
