"""The sandbox's settings and the record it keeps of every request."""

from __future__ import annotations

from dataclasses import dataclass

from synckit import rules
from synckit._secrets import is_loopback_host
from synckit.errors import ConfigError

__all__ = [
    "DEMO_CLIENT_SECRET",
    "DEMO_TOKEN",
    "ERROR_STYLES",
    "RequestRecord",
    "SandboxConfig",
]

ERROR_STYLES = ("contacts", "platform")
#: The published demo credentials: fine on loopback, an open door anywhere else.
DEMO_TOKEN = "sk_test_synckit_demo"
DEMO_CLIENT_SECRET = "demo-secret"


@dataclass
class SandboxConfig:
    """How a sandbox behaves; every field may be changed while it runs.

    The server reads the config on each request, so a test can turn faults
    on and off mid-run (``sb.config.fail_rate = 0.3``). Only ``host``,
    ``port`` and ``db`` are fixed once the server has started.

    Example:
        >>> cfg = SandboxConfig(port=0, rate_limit=50, error_style="platform")
        >>> cfg.validate().rate_limit
        50
    """

    host: str = "127.0.0.1"
    #: 0 picks any free port.
    port: int = 8765
    #: SQLite file; ``None`` keeps contacts in memory. A restart with the same file keeps them.
    db: str | None = None
    #: Static API token holding both scopes.
    token: str = DEMO_TOKEN
    client_id: str = "synckit-demo"
    client_secret: str = DEMO_CLIENT_SECRET
    #: Lifetime of OAuth access tokens, in seconds.
    token_ttl: float = 7200
    #: Requests per second across all clients (fixed one-second window); 0 = unlimited.
    rate_limit: int = 0
    #: Added to every authenticated request before it is handled.
    latency_ms: float = 0
    #: Share of contact requests answered 500/503 before any work is done.
    fail_rate: float = 0.0
    #: Share of contact writes that are committed and then answered by closing the connection.
    drop_rate: float = 0.0
    #: Most contacts the "plan" allows; creates beyond it get 422 quota_exceeded.
    contact_limit: int | None = None
    #: "contacts" (flat envelope, 422 validation) or "platform" (nested, 400 validation).
    error_style: str = "contacts"
    sms_countries: frozenset[str] = rules.DEFAULT_SMS_COUNTRIES
    #: Seeds the fail/drop dice so a sequential run is reproducible.
    seed: int | None = None
    #: Seconds a connection may stay silent (while the server waits for a request line,
    #: headers or body) before the server closes it, so that idle or half-open
    #: connections cannot hold every thread and file descriptor. Fixed once started.
    read_timeout: float = 10.0

    def __repr__(self) -> str:
        # Credentials are left out on purpose: configs end up in logs and notebooks.
        return (
            f"SandboxConfig(host={self.host!r}, port={self.port!r}, db={self.db!r}, "
            f"token_ttl={self.token_ttl!r}, rate_limit={self.rate_limit!r}, "
            f"latency_ms={self.latency_ms!r}, fail_rate={self.fail_rate!r}, "
            f"drop_rate={self.drop_rate!r}, contact_limit={self.contact_limit!r}, "
            f"error_style={self.error_style!r}, seed={self.seed!r}, "
            f"read_timeout={self.read_timeout!r})"
        )

    def validate(self) -> SandboxConfig:
        """Raise :class:`~synckit.errors.ConfigError` on an impossible setting; return self."""
        if self.error_style not in ERROR_STYLES:
            raise ConfigError(f"error_style must be one of {', '.join(ERROR_STYLES)}")
        if not 0 <= self.port <= 65535:
            raise ConfigError("port must be between 0 and 65535")
        for name in ("fail_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1")
        if self.rate_limit < 0:
            raise ConfigError("rate_limit must be 0 (unlimited) or more")
        if self.latency_ms < 0:
            raise ConfigError("latency_ms must not be negative")
        if self.token_ttl <= 0:
            raise ConfigError("token_ttl must be positive")
        if self.contact_limit is not None and self.contact_limit < 0:
            raise ConfigError("contact_limit must not be negative")
        if not self.token or not self.client_id or not self.client_secret:
            raise ConfigError("token, client_id and client_secret must not be empty")
        if not self.read_timeout > 0:
            raise ConfigError("read_timeout must be positive seconds")
        demo = self.token == DEMO_TOKEN or self.client_secret == DEMO_CLIENT_SECRET
        if demo and not is_loopback_host(self.host):
            raise ConfigError(
                f"refusing to serve the published demo credentials on {self.host or 'every'} "
                "interface: anyone who can reach it could use them. Listen on 127.0.0.1, or "
                "set your own token and client secret (--token-file / --client-secret-file, "
                "or SYNCKIT_SANDBOX_TOKEN / SYNCKIT_SANDBOX_CLIENT_SECRET)"
            )
        return self


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the sandbox saw, as :meth:`Sandbox.request_log` lists it.

    ``status`` is the answer the server produced; ``dropped`` says the
    connection was then closed without sending it. ``time`` is the wall clock
    (``time.time()``) when the request arrived.

    Example:
        >>> import requests
        >>> from synckit.sandbox import serve_sandbox
        >>> with serve_sandbox() as sb:
        ...     _ = requests.get(sb.url + "/contacts")
        ...     rec = sb.request_log()[0]
        >>> rec.method, rec.path, rec.status, rec.replayed
        ('GET', '/v1/contacts', 401, False)
    """

    method: str
    path: str
    status: int
    idempotency_key: str | None
    replayed: bool
    time: float
    request_id: str
    dropped: bool = False
