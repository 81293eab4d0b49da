"""Rate budgets shared by several processes (a file) or several hosts (Redis).

Jobs that run side by side on one credential draw on one server limit. Each
paces itself against a *shared* schedule: every request takes the next slot of
one evenly spaced sequence (GCRA, see ``synckit._ratelimit``), atomically,
whoever asks. So everyone together stays under the limit, and any one of them
may use all of it when the others are idle.

- **A directory** (``rate_store="/var/lib/synckit/rate"``): one small file per
  budget, updated under ``flock``. The kernel drops the lock when its process
  dies, so a killed job leaves nothing locked; the schedule is in wall-clock
  time (``time.time()``), which every process of a host shares. POSIX only.
- **Redis** (``rate_store="redis://host:6379/0"``; ``rediss://`` and
  ``unix://`` too, or a ready ``redis.Redis``): one hash per budget, stepped by
  a Lua script (atomic on the server) in the server's own clock (``TIME``), so
  hosts need not agree on the time. Keys expire ten minutes after last use.

Why not pyrate-limiter's Redis/SQLite buckets: they keep one sorted-set (or
table) entry per request in a sliding window and admit a whole window at once,
so a window opens with a burst; a blocked caller polls (sleep, try again) with
a round trip per try; the rate is fixed at construction; and the Redis bucket
uses each client's clock. A GCRA reservation is one round trip per request,
O(1) state, evenly spaced sends, the server's clock, and it can follow the
server's ``X-RateLimit-Limit`` and share a 429's pause.

The budget's key is a hash of the API's base URL and the credential (the
token, or the OAuth client id): jobs on the same credential and endpoint share
a budget, and no secret appears in a key or a file name.

Example:
    >>> import tempfile
    >>> b = open_budget(tempfile.mkdtemp(), key=budget_key("https://api.example.com/v1", "t"))
    >>> b.reserve(0.01, 0.0)[0] <= 0.0
    True
    >>> b.close()
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from synckit._ratelimit import (
    BudgetUnavailable,
    Schedule,
    hold_schedule,
    reserve_slot,
)
from synckit.errors import ConfigError

__all__ = ["FileBudget", "RedisBudget", "budget_key", "describe_store", "open_budget"]

#: Seconds a shared schedule is kept after its last slot or pause.
IDLE_TTL = 600.0
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def budget_key(base_url: str, credential: str) -> str:
    """The name of the budget for one endpoint and credential: 32 hex digits of a SHA-256.

    Example:
        >>> budget_key("https://API.example.com/v1/", "token:abc") == budget_key(
        ...     "https://api.example.com/v1", "token:abc")
        True
    """
    parts = urlsplit(base_url.strip().rstrip("/"))
    url = parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()
    return hashlib.sha256(f"{url}\n{credential}".encode()).hexdigest()[:32]


def describe_store(spec: Any) -> str:
    """A store as it may be shown: a Redis URL without its user and password.

    Example:
        >>> describe_store("redis://:hunter2@cache.internal:6380/2")
        'redis://cache.internal:6380/2'
    """
    if hasattr(spec, "register_script"):
        return f"<{type(spec).__name__}>"
    text = os.fspath(spec) if isinstance(spec, os.PathLike) else str(spec)
    if text.startswith(_REDIS_SCHEMES):
        parts = urlsplit(text)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc, query="", fragment="").geturl()
    return text


def open_budget(
    spec: Any,
    *,
    key: str,
    connect_timeout: float = 2.0,
    clock: Callable[[], float] | None = None,
) -> FileBudget | RedisBudget:
    """The shared budget ``spec`` names, checked now: a :class:`ConfigError` if it
    cannot be reached or used (never a hang: connecting gives up after
    ``connect_timeout`` seconds).

    ``spec``: a directory path, a ``redis://``/``rediss://``/``unix://`` URL,
    or a ``redis.Redis`` client. ``clock`` overrides the budget's clock (tests).
    """
    if hasattr(spec, "register_script"):
        return RedisBudget(spec, key=key, shown=describe_store(spec), clock=clock)
    if not isinstance(spec, (str, os.PathLike)) or not os.fspath(spec):
        raise ConfigError(
            "rate_store must be a directory path or a redis://host:port/N URL, "
            f"not {type(spec).__name__}"
        )
    text = os.fspath(spec)
    if not isinstance(text, str):
        text = os.fsdecode(text)
    if text.startswith(_REDIS_SCHEMES):
        return RedisBudget.from_url(text, key=key, connect_timeout=connect_timeout, clock=clock)
    if "://" in text:
        raise ConfigError(
            f"rate_store {describe_store(text)!r}: unknown scheme; use a directory path "
            "(processes on one host) or redis://host:port/N (several hosts)"
        )
    return FileBudget.in_directory(Path(text).expanduser(), key=key, clock=clock)


# --------------------------------------------------------------------- file


class FileBudget:
    """A schedule in a 52-byte file, stepped under an exclusive ``flock``.

    Threads of one process take a lock first (a ``flock`` is per open file,
    so it does not exclude threads sharing it); a child after ``fork`` opens
    the file anew for the same reason.
    """

    _FORMAT = struct.Struct("<4s6d")  # magic, next, paused_until, shift, limit, interval, tol
    _MAGIC = b"SKR1"

    def __init__(self, path: Path, *, clock: Callable[[], float] | None = None) -> None:
        try:
            import fcntl
        except ImportError:  # Windows
            raise ConfigError(
                "a rate_store directory needs a POSIX system (Linux, macOS); "
                "use redis://host:port/N instead"
            ) from None
        self._flock = fcntl.flock
        self._ex, self._un = fcntl.LOCK_EX, fcntl.LOCK_UN
        self.path = path
        self._clock = clock or time.time
        self._lock = threading.Lock()
        self._seen = 0.0
        self._fd = -1
        self._pid = -1
        try:
            self._open()
            self._locked(lambda s, shared: (None, False))
        except (OSError, BudgetUnavailable) as exc:
            self.close()
            raise ConfigError(f"rate_store {path}: cannot use it: {exc}") from None

    @classmethod
    def in_directory(
        cls, directory: Path, *, key: str, clock: Callable[[], float] | None = None
    ) -> FileBudget:
        if directory.exists() and not directory.is_dir():
            raise ConfigError(
                f"rate_store {directory} is a file; give a directory (one budget file per "
                "credential and endpoint is kept in it)"
            )
        if not directory.parent.is_dir():
            raise ConfigError(f"rate_store {directory}: its parent directory does not exist")
        try:
            directory.mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"rate_store {directory}: cannot create it: {exc.strerror}") from None
        return cls(directory / f"synckit-rate-{key}.bin", clock=clock)

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        self._pid = os.getpid()

    def _locked(self, step: Callable[[Schedule, list[float]], tuple[Any, bool]]) -> Any:
        with self._lock:
            try:
                if self._pid != os.getpid():
                    self._open()  # forked: our lock must not be the parent's
                self._flock(self._fd, self._ex)
                try:
                    raw = os.pread(self._fd, self._FORMAT.size, 0)
                    if len(raw) == self._FORMAT.size and raw[:4] == self._MAGIC:
                        values = self._FORMAT.unpack(raw)[1:]
                    else:  # new (or foreign) file: a fresh schedule
                        values = (0.0,) * 6
                    s = Schedule(values[0], values[1], values[2])
                    shared = list(values[3:])
                    result, dirty = step(s, shared)
                    if dirty:
                        values = (s.next, s.paused_until, s.shift, *shared)
                        os.pwrite(self._fd, self._FORMAT.pack(self._MAGIC, *values), 0)
                finally:
                    self._flock(self._fd, self._un)
            except OSError as exc:
                raise BudgetUnavailable(f"{self.path}: {exc.strerror or exc}") from None
            return result

    def reserve(self, interval: float, tolerance: float) -> tuple[float, float, float]:
        def step(s: Schedule, shared: list[float]) -> tuple[Any, bool]:
            now = self._clock()  # read under the lock: slots stay in order
            i, t = (shared[1], shared[2]) if shared[1] > interval else (interval, tolerance)
            slot = reserve_slot(s, now, i, t)
            return (slot - now, s.shift, shared[0]), bool(i)

        wait, shift, limit = self._locked(step)
        self._seen = shift
        return wait, shift, limit

    def hold(self, seconds: float) -> None:
        def step(s: Schedule, shared: list[float]) -> tuple[Any, bool]:
            hold_schedule(s, self._clock(), seconds)
            return s.shift, True

        self._seen = self._locked(step)

    def publish(self, limit: float, interval: float, tolerance: float) -> None:
        def step(s: Schedule, shared: list[float]) -> tuple[Any, bool]:
            shared[:] = [limit, interval, tolerance]
            return None, True

        self._locked(step)

    def seen_shift(self) -> float:
        return self._seen

    def close(self) -> None:
        if self._fd >= 0 and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = -1

    def __repr__(self) -> str:
        return f"FileBudget({str(self.path)!r})"


# -------------------------------------------------------------------- redis

# The steps of reserve_slot / hold_schedule (synckit/_ratelimit.py), in the
# server's clock. ARGV: op, now ("" = the server's TIME; tests pass a time),
# then the op's numbers. Numbers travel as strings: Redis would truncate a Lua
# float reply to an integer.
_LUA = """
local key = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local f = redis.call('HMGET', key, 'next', 'paused', 'shift', 'limit', 'interval', 'tolerance')
local nxt = tonumber(f[1]) or 0
local paused = tonumber(f[2]) or 0
local shift = tonumber(f[3]) or 0
local limit = tonumber(f[4]) or 0
local s_int = tonumber(f[5]) or 0
local s_tol = tonumber(f[6]) or 0
local max_ahead = tonumber(ARGV[3])
local idle_ms = tonumber(ARGV[4])
local function fmt(x) return string.format('%.6f', x) end
if nxt > now + max_ahead or paused > now + max_ahead then
  nxt = now
  paused = now
end
local wait = 0
if op == 'reserve' then
  local interval = tonumber(ARGV[5])
  local tol = tonumber(ARGV[6])
  if s_int > interval then
    interval = s_int
    tol = s_tol
  end
  local slot = now
  if paused > slot then slot = paused end
  if interval > 0 then
    if nxt - tol > slot then slot = nxt - tol end
    if slot > nxt then nxt = slot end
    nxt = nxt + interval
    redis.call('HSET', key, 'next', fmt(nxt), 'paused', fmt(paused))
  end
  wait = slot - now
elseif op == 'hold' then
  local untl = now + tonumber(ARGV[5])
  local start = now
  if paused > start then start = paused end
  if untl > start then
    local delta = untl - start
    paused = untl
    shift = shift + delta
    if nxt > now then nxt = nxt + delta else nxt = untl end
    redis.call('HSET', key, 'next', fmt(nxt), 'paused', fmt(paused), 'shift', fmt(shift))
  end
elseif op == 'publish' then
  limit = tonumber(ARGV[5])
  redis.call('HSET', key, 'limit', ARGV[5], 'interval', ARGV[6], 'tolerance', ARGV[7])
end
local last = nxt
if paused > last then last = paused end
if redis.call('EXISTS', key) == 1 then
  redis.call('PEXPIRE', key, math.max(0, math.ceil((last - now) * 1000)) + idle_ms)
end
return {fmt(wait), fmt(shift), fmt(limit)}
"""


class RedisBudget:
    """A schedule in a Redis hash (``synckit:rate:<key>``), stepped by one Lua script."""

    def __init__(
        self,
        client: Any,
        *,
        key: str,
        shown: str,
        clock: Callable[[], float] | None = None,
        owns_client: bool = False,
    ) -> None:
        import redis

        self._errors = (redis.RedisError, OSError)
        self._redis = client
        self._owns = owns_client
        self.key = f"synckit:rate:{key}"
        self._shown = shown
        self._clock = clock
        self._seen = 0.0
        self._script = client.register_script(_LUA)
        from synckit._ratelimit import MAX_AHEAD

        self._fixed = (str(MAX_AHEAD), str(int(IDLE_TTL * 1000)))
        try:
            client.ping()
            # Loads the script (and so checks the server allows Lua) once.
            client.script_load(_LUA)
        except redis.AuthenticationError:
            self.close()
            raise ConfigError(
                f"rate_store {shown}: the Redis server refused the credentials "
                "(check the password: SYNCKIT_RATE_STORE_PASSWORD for the command line)"
            ) from None
        except self._errors as exc:
            self.close()
            raise ConfigError(
                f"rate_store {shown}: cannot reach the Redis server: {_describe(exc)}"
            ) from None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key: str,
        connect_timeout: float = 2.0,
        clock: Callable[[], float] | None = None,
    ) -> RedisBudget:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise ConfigError(
                "a redis:// rate_store needs the redis package: pip install 'synckit[redis]'"
            ) from None
        shown = describe_store(url)
        try:
            # Short timeouts everywhere: an unreachable store is an error at
            # start and a few seconds of local pacing mid-run, never a hang.
            # A bounded pool: calls are short and the GIL serialises them anyway.
            pool = redis.BlockingConnectionPool.from_url(
                url,
                max_connections=16,
                timeout=connect_timeout,
                socket_connect_timeout=connect_timeout,
                socket_timeout=connect_timeout,
                retry=Retry(NoBackoff(), 1),
                client_name="synckit-rate",
            )
        except ValueError as exc:
            raise ConfigError(f"rate_store {shown}: not a usable Redis URL: {exc}") from None
        return cls(
            redis.Redis(connection_pool=pool), key=key, shown=shown, clock=clock, owns_client=True
        )

    def _run(self, op: str, *numbers: float) -> tuple[float, float, float]:
        now = "" if self._clock is None else repr(self._clock())
        try:
            reply = self._script(keys=[self.key], args=[op, now, *self._fixed, *map(repr, numbers)])
        except self._errors as exc:
            raise BudgetUnavailable(f"{self._shown}: {_describe(exc)}") from None
        wait, shift, limit = (float(x) for x in reply)
        self._seen = shift
        return wait, shift, limit

    def reserve(self, interval: float, tolerance: float) -> tuple[float, float, float]:
        return self._run("reserve", interval, tolerance)

    def hold(self, seconds: float) -> None:
        self._run("hold", seconds)

    def publish(self, limit: float, interval: float, tolerance: float) -> None:
        self._run("publish", limit, interval, tolerance)

    def seen_shift(self) -> float:
        return self._seen

    def close(self) -> None:
        if self._owns:
            with contextlib.suppress(*self._errors):
                self._redis.close()

    def __repr__(self) -> str:
        return f"RedisBudget({self._shown!r})"


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if len(text) > 200:
        text = text[:200] + "..."
    return text
