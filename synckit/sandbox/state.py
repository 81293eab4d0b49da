"""The sandbox's in-memory bookkeeping: issued tokens, idempotency records, the rate window.

Each class guards itself with its own lock so the threaded server can call
it from any request thread.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEFAULT_ORG",
    "READ",
    "SCOPES",
    "WRITE",
    "IdempotencyCache",
    "RateLimiter",
    "StoredAnswer",
    "TokenInfo",
    "TokenTable",
]

READ = "contacts:read"
WRITE = "contacts:write"
SCOPES = (READ, WRITE)
#: The organisation of the static token, the OAuth client and tokens added without ``org``.
DEFAULT_ORG = "org_demo"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a bearer token may do.

    ``owner`` scopes idempotency keys (see IdempotencyCache); ``org`` is the
    organisation whose contacts the token sees. An owner belongs to one
    organisation, so idempotency records never cross organisations.
    """

    scopes: frozenset[str]
    expires_at: float | None
    owner: str
    org: str = DEFAULT_ORG


class TokenTable:
    """Tokens issued by ``/oauth/token`` or added by tests; expiry on the monotonic clock.

    Example:
        >>> table = TokenTable()
        >>> tok = table.issue(owner="client:demo", scopes=(READ,), ttl=60)
        >>> table.lookup(tok).scopes == frozenset({READ})
        True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, TokenInfo] = {}

    def add(
        self,
        token: str,
        *,
        scopes: tuple[str, ...],
        ttl: float | None,
        owner: str,
        org: str = DEFAULT_ORG,
    ) -> None:
        expires = None if ttl is None else time.monotonic() + ttl
        with self._lock:
            self._tokens[token] = TokenInfo(frozenset(scopes), expires, owner, org)

    def issue(
        self, *, owner: str, scopes: tuple[str, ...], ttl: float, org: str = DEFAULT_ORG
    ) -> str:
        token = "at_" + secrets.token_urlsafe(24)
        self.add(token, scopes=scopes, ttl=ttl, owner=owner, org=org)
        return token

    def lookup(self, token: str) -> TokenInfo | None:
        """The token's grant, or ``None`` when it is unknown or expired."""
        with self._lock:
            info = self._tokens.get(token)
            expires = info.expires_at if info is not None else None
            if expires is not None and time.monotonic() >= expires:
                del self._tokens[token]
                return None
        return info

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


class RateLimiter:
    """Fixed one-second windows shared by every client.

    At most ``limit`` requests are admitted per window; the windows are
    consecutive seconds counted from the limiter's creation. Refused
    requests do not count. In any span of ``t`` seconds at most
    ``limit * (ceil(t) + 1)`` requests pass: a full window can sit right
    before another (the one-second burst a fixed window allows).

    Example:
        >>> rl = RateLimiter()
        >>> [rl.hit(2)[0] for _ in range(3)]
        [True, True, False]
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._window = 0
        self._count = 0

    def hit(self, limit: int) -> tuple[bool, int, float]:
        """Count one request: (admitted, remaining in this window, seconds until the next)."""
        with self._lock:
            # The clock is read under the lock: a thread that read it before
            # another opened the next window would otherwise reopen the old
            # one, reset the count and let a second full window through.
            now = time.monotonic() - self._start
            window = math.floor(now)
            if window > self._window:
                self._window = window
                self._count = 0
            else:
                window = self._window
            reset = min(max(window + 1 - now, 0.001), 1.0)
            if self._count >= limit:
                return False, 0, reset
            self._count += 1
            return True, limit - self._count, reset

    def clear(self) -> None:
        with self._lock:
            self._count = 0


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A completed answer kept for replay."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _Record:
    fingerprint: str
    expires_at: float
    answer: StoredAnswer | None = None  # None while the first request still runs


IdemOutcome = Literal["new", "replay", "reused", "busy"]


@dataclass
class IdempotencyCache:
    """First answer per (credential owner, key), kept for ``ttl`` seconds (24 h).

    At most ``max_records`` keys are kept; beyond that the oldest are forgotten.

    Keys are scoped by the credential's owner -- the OAuth client id, or the
    static token -- so two callers never see each other's answers, while a
    client that renews its OAuth token mid-retry still gets its replay.

    Example:
        >>> cache = IdempotencyCache()
        >>> fp = IdempotencyCache.fingerprint("POST", "/v1/contacts", b"{}")
        >>> cache.begin("o", "k1", fp)[0]
        'new'
        >>> cache.finish("o", "k1", StoredAnswer(201, b"{}", ()))
        >>> cache.begin("o", "k1", fp)[0], cache.begin("o", "k1", "other")[0]
        ('replay', 'reused')
    """

    ttl: float = 24 * 3600
    #: Only the newest keys are kept: a retry comes within minutes, and a
    #: million-row sync against one sandbox would otherwise hold ~650 MB of answers.
    max_records: int = 200_000
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _records: dict[tuple[str, str], _Record] = field(default_factory=dict, repr=False)
    _next_purge: float = 0.0

    @staticmethod
    def fingerprint(method: str, path: str, body: bytes) -> str:
        return f"{method} {path} {hashlib.sha256(body).hexdigest()}"

    def begin(
        self, owner: str, key: str, fingerprint: str
    ) -> tuple[IdemOutcome, StoredAnswer | None]:
        """Claim ``key`` for a new request, or say why not (with the answer to replay)."""
        now = time.monotonic()
        with self._lock:
            if now >= self._next_purge:
                self._purge(now)
            record = self._records.get((owner, key))
            if record is not None and record.expires_at <= now:
                record = None
            if record is None:
                self._records.pop((owner, key), None)  # an expired one: re-insert as newest
                self._records[(owner, key)] = _Record(fingerprint, now + self.ttl)
                while len(self._records) > self.max_records:
                    del self._records[next(iter(self._records))]  # dicts keep insertion order
                return "new", None
            if record.fingerprint != fingerprint:
                return "reused", None
            if record.answer is None:
                return "busy", None
            return "replay", record.answer

    def finish(self, owner: str, key: str, answer: StoredAnswer) -> None:
        with self._lock:
            record = self._records.get((owner, key))
            if record is not None:
                record.answer = answer

    def abandon(self, owner: str, key: str) -> None:
        """Forget a claim whose request did no work (a fault), so a retry runs afresh."""
        with self._lock:
            record = self._records.get((owner, key))
            if record is not None and record.answer is None:
                del self._records[(owner, key)]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def _purge(self, now: float) -> None:
        # Called with the lock held, at most once a minute: expiry is lazy.
        self._next_purge = now + 60
        stale = [k for k, r in self._records.items() if r.expires_at <= now]
        for k in stale:
            del self._records[k]
