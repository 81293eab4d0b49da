"""The ledger: what the API last confirmed for each contact, across runs (``--state PATH``).

A nightly job re-sends a full export every night. The ledger (one SQLite file)
remembers, per match key (normalised email, else phone), the contact id, the
payload the API last confirmed and its hash, the last outcome and the run that
produced it; plus one row per run. With it a rerun sends only what changed,
PATCHes known contacts directly, and resumes after a crash without duplicates.

Crash safety: the database runs in WAL mode with ``synchronous=NORMAL``. Each
:meth:`Ledger.record` call is one transaction; its commit appends the
transaction to the ``-wal`` file with a ``write()`` before ``record`` returns.
Once written, the bytes live in the operating system's page cache, which
outlives the process: a SIGKILL (or a crash, or an OOM kill) of the sync
loses nothing committed, and the next open replays the WAL. Only an OS crash
or power loss can drop the last few commits (NORMAL skips the fsync per
commit); those rows are then simply not "confirmed" and the next run re-sends
them with the same idempotency keys, which the API replays instead of
creating twice. ``Ledger(path, durable=True)`` fsyncs every commit
(``synchronous=FULL``) for those who want that too.

Example:
    >>> import tempfile, os
    >>> with Ledger(os.path.join(tempfile.mkdtemp(), "state.db")) as led, led.lock():
    ...     run = led.begin_run(source="contacts.csv")
    ...     key = match_key({"email": "Ada@Example.com"})
    ...     outcome = LedgerOutcome(key, 2, "created", "ct_1", {"email": "ada@example.com"})
    ...     led.record(run, [outcome])
    ...     led.end_run(run, counts={"created": 1}, exit_code=0)
    ...     led.get([key])[key].contact_id
    'ct_1'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import sqlite3
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pandas as pd

from synckit._files import check_file_mode, narrow_mode, private_file
from synckit._rows import canonical_json, is_missing
from synckit.errors import ConfigError, StateLockedError, SynckitError
from synckit.report import STATUSES  # runs() lists counts in the report's status order
from synckit.rules import E164_PATTERN, READ_ONLY_FIELDS

__all__ = [
    "CONFIRMED_STATUSES",
    "RETRY_STATUSES",
    "Erasure",
    "Ledger",
    "LedgerEntry",
    "LedgerOutcome",
    "erasure_terms",
    "match_key",
    "parse_age",
    "payload_hash",
    "safe_options",
]

#: Outcomes that mean the API holds this payload (contact id + payload + hash are stored).
CONFIRMED_STATUSES: Final = frozenset({"created", "updated", "unchanged"})
#: Outcomes that :meth:`Ledger.failed_keys` returns for ``--retry-failed``.
RETRY_STATUSES: Final = ("failed", "skipped", "invalid")
# A dry run plans; it never changes the ledger.
_DRY_RUN_STATUSES: Final = frozenset({"would_create", "would_update"})
# SQLite builds before 3.32 allow 999 host parameters per statement; stay under it.
_MAX_VARS: Final = 900
# How long a statement waits for another connection's lock (the connection's timeout=30.0).
_BUSY_TIMEOUT_MS: Final = 30_000
# How long taking the run lock waits for a holder that wrote no pid (see Ledger._acquire).
_PROBE_WAIT_S: Final = 0.5
# How long an erasure waits for other readers before it reports the -wal file not emptied.
_SCRUB_WAIT_MS = 5_000
# Option names that may hold secrets: never stored in runs.options_json.
_SECRET_HINTS: Final = ("token", "secret", "password", "authorization", "api_key", "apikey")


def match_key(payload: Mapping[str, Any]) -> str | None:
    """The ledger key of a contact: ``"email:<lower email>"``, else ``"phone:<E.164>"``, else None.

    Email wins because the API matches on it first (a 409 names the contact
    matched by email). Whitespace is trimmed; an empty string counts as absent.

    Example:
        >>> match_key({"email": " Ada@Example.COM ", "phone_number": "+447911123456"})
        'email:ada@example.com'
        >>> match_key({"email": "", "phone_number": "+447911123456"}), match_key({})
        ('phone:+447911123456', None)
    """
    email = payload.get("email")
    if not is_missing(email) and str(email).strip():
        return "email:" + str(email).strip().lower()
    phone = payload.get("phone_number")
    if not is_missing(phone) and str(phone).strip():
        return "phone:" + str(phone).strip()
    return None


def _plain(value: Any) -> Any:
    """JSON-ready value: NaN/NA -> None, numpy scalars -> Python, mappings -> dicts."""
    if type(value) in (str, int, bool):  # the common case, first
        return value
    if is_missing(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def canonical_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as the hash sees it.

    Read-only fields (``id``, ``created_at``, ``updated_at``) and absent values
    (None, NaN, NA) at the top level are dropped, so an API answer and the row
    that produced it compare equal; ``email`` is trimmed and lower-cased (the
    server stores it lower-cased); nested ``custom_fields`` keep their ``None``
    values (the API reads those as "remove this key").

    Example:
        >>> canonical_payload({"id": "ct_1", "email": "A@B.com", "first_name": None})
        {'email': 'a@b.com'}
    """
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if key in READ_ONLY_FIELDS:
            continue
        if type(value) is str:  # most cells: no missing check, no conversion
            out[str(key)] = value.strip().lower() if key == "email" else value
        elif not is_missing(value):
            out[str(key)] = _plain(value)
    return out


def payload_hash(payload: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``payload`` (sorted keys at every level, no spaces).

    Key order never matters, ``custom_fields`` included; see
    :func:`canonical_payload` for what is normalised.

    Example:
        >>> a = payload_hash({"email": "a@b.com", "custom_fields": {"x": 1, "y": "2"}})
        >>> a == payload_hash({"custom_fields": {"y": "2", "x": 1}, "email": "A@b.com"})
        True
        >>> a == payload_hash({"email": "a@b.com", "custom_fields": {"x": 1, "y": "3"}})
        False
    """
    return hashlib.sha256(canonical_json(canonical_payload(payload)).encode("utf-8")).hexdigest()


def safe_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` without the ones whose name suggests a secret (token, secret, password...),
    as plain JSON-ready values: what a run records and logs about how it was started.

    Example:
        >>> safe_options({"batch_size": 100, "token_env": "CRM_TOKEN", "client_secret": "x"})
        {'batch_size': 100}
    """
    return {
        str(k): _plain(v)
        for k, v in options.items()
        if not any(h in str(k).lower() for h in _SECRET_HINTS)
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows about one key.

    ``payload``/``payload_hash`` are the last payload the API confirmed (empty
    dict / ``""`` if none was ever confirmed); ``status``/``error_code``/``run_id``
    are the last outcome, confirmed or not.
    """

    key: str
    contact_id: str | None
    payload: dict[str, Any]
    payload_hash: str
    status: str
    run_id: str
    error_code: str | None = None
    updated_at: str | None = None


@dataclass(frozen=True)
class LedgerOutcome:
    """One row's outcome, as the engine hands it to :meth:`Ledger.record`.

    ``payload`` is the FULL payload the API confirmed (None when not confirmed,
    e.g. an ``unchanged`` row that was not sent keeps the stored one).
    """

    key: str
    row: int
    status: str
    contact_id: str | None = None
    payload: dict[str, Any] | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class Erasure:
    """What :meth:`Ledger.forget` or :meth:`Ledger.prune` removed.

    ``contacts``: ledger entries (confirmed payloads, failed and skipped rows
    alike); ``runs``: run records; ``other``: rows of any other table that
    held one of the values. ``bytes_after`` is the state file's size once
    rewritten. The values themselves are never kept or shown.

    Example:
        >>> str(Erasure(contacts=2, runs=0, other=0, bytes_after=12288))
        'removed 2 ledger entries, 0 runs, 0 other rows; state file rewritten (12288 bytes)'
    """

    contacts: int
    runs: int
    other: int
    bytes_after: int

    def __str__(self) -> str:
        return (
            f"removed {self.contacts} ledger entries, {self.runs} runs, {self.other} other rows; "
            f"state file rewritten ({self.bytes_after} bytes)"
        )


_PHONE_PUNCTUATION: Final = re.compile(r"[\s().\-/]")
_AGE: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", re.IGNORECASE)
_AGE_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str | timedelta) -> timedelta:
    """``"90d"``, ``"12h"``, ``"2w"``, ``"30m"``, ``"45s"`` (or a timedelta) as a timedelta.

    Example:
        >>> parse_age("90d").days, parse_age("36h")
        (90, datetime.timedelta(days=1, seconds=43200))
    """
    if isinstance(text, timedelta):
        age = text
    else:
        match = _AGE.fullmatch(str(text))
        if not match:
            raise ConfigError(f"an age looks like 90d, 12h, 2w, 30m or 45s, not {text!r}")
        age = timedelta(seconds=float(match.group(1)) * _AGE_UNITS[match.group(2).lower()])
    if age <= timedelta(0):
        raise ConfigError("the age must be more than zero")
    return age


def erasure_terms(values: Iterable[str], *, default_region: str | None = "US") -> list[str]:
    """The forms in which the ledger stores each email or phone number of ``values``.

    An email (anything with an ``@``) is trimmed and lower-cased, as the
    ledger stores it; a phone number is normalised to E.164 exactly as
    :func:`synckit.validate` does (``default_region`` for national formats).
    A value that is neither raises :class:`~synckit.errors.ConfigError`
    naming its position, never the value.

    Example:
        >>> erasure_terms([" Ada@Example.COM ", "(201) 555-1208", "+447911123456"])
        ['ada@example.com', '+12015551208', '+447911123456']
    """
    from synckit._phone import slow_normalize_one

    terms: list[str] = []
    for position, raw in enumerate(values, 1):
        text = str(raw).strip()
        if "@" in text:
            local, _, domain = text.rpartition("@")
            if not local or not domain:
                raise ConfigError(f"value {position} is not an email address")
            terms.append(text.lower())
            continue
        found = slow_normalize_one(text, default_region) if text else None
        compact = _PHONE_PUNCTUATION.sub("", text)
        if found is None and E164_PATTERN.fullmatch(compact):
            # Not valid by today's metadata, but the ledger may hold it from an older one.
            found = (compact, "")
        if found is None:
            raise ConfigError(
                f"value {position} is neither an email address nor a phone number "
                f"(national numbers are read for region {default_region or 'none'}: "
                "write them with + and the country code)"
            )
        terms.append(found[0])
    return list(dict.fromkeys(terms))


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    source TEXT,
    options_json TEXT,
    counts_json TEXT,
    exit_code INTEGER,
    pid INTEGER
);
CREATE TABLE IF NOT EXISTS contacts (
    key TEXT PRIMARY KEY,
    contact_id TEXT,
    payload_json TEXT,
    payload_hash TEXT,
    status TEXT NOT NULL,
    error_code TEXT,
    run_id TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS contacts_status ON contacts(status);
"""


class Ledger:
    """A SQLite state ledger (WAL mode); safe to share between threads.

    One connection guarded by a lock: SQLite serialises writers anyway, and
    the engine writes once per batch, so a lock costs nothing measurable and
    keeps every :meth:`record` one atomic transaction.

    The file and its ``-wal``, ``-shm`` and ``.lock`` companions are created
    ``0600`` (owner only) whatever the umask, or with ``file_mode``; an
    existing ledger that grants more is narrowed to it when opened.

    Example:
        >>> import tempfile, os
        >>> led = Ledger(os.path.join(tempfile.mkdtemp(), "s.db"))
        >>> led.failed_keys()
        set()
        >>> led.close()
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = False,
        readonly: bool = False,
        file_mode: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._mutex = threading.RLock()
        self._lock_file: Any = None
        self.file_mode = check_file_mode(file_mode)
        if not readonly:
            try:
                # The ledger holds every contact's confirmed payload: owner-only (0600) from
                # the first byte. SQLite gives the -wal and -shm files the database's mode.
                if str(path) != ":memory:":
                    private_file(self.path, file_mode=self.file_mode)
                for companion in ("-wal", "-shm", ".lock"):
                    narrow_mode(self.path.with_name(self.path.name + companion), self.file_mode)
            except OSError as exc:
                raise SynckitError(f"cannot open state file {self.path}: {exc.strerror}") from exc
        try:
            if readonly:
                # A dry run reads what earlier runs confirmed and must not create or
                # change the file: mode=ro refuses both (a missing file is an error).
                uri = "file:" + urllib.parse.quote(str(self.path.absolute())) + "?mode=ro"
                self._conn = sqlite3.connect(
                    uri, uri=True, timeout=30.0, check_same_thread=False, isolation_level=None
                )
                self._conn.execute("SELECT 1 FROM contacts LIMIT 0")
            else:
                self._conn = sqlite3.connect(
                    str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
                )
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._conn.executescript(_SCHEMA)
                if not self._has_pid():  # a state file from before runs had a pid
                    self._conn.execute("ALTER TABLE runs ADD COLUMN pid INTEGER")
        except sqlite3.DatabaseError as exc:
            raise SynckitError(f"cannot open state file {self.path}: {exc}") from exc

    @classmethod
    def open_existing(cls, path: str | os.PathLike[str]) -> Ledger | None:
        """The ledger at ``path`` opened read-only, or None when there is no file there.

        What a dry run uses: it plans with what earlier runs confirmed, and a
        dry run against a new path must not leave a state file behind.

        Example:
            >>> import tempfile, os
            >>> Ledger.open_existing(os.path.join(tempfile.mkdtemp(), "new.db")) is None
            True
        """
        if not Path(path).exists():
            return None
        return cls(path, readonly=True)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the database (and release the lock if held)."""
        with self._mutex:
            self._release()
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise SynckitError(f"state file {self.path}: {exc}") from exc
                raise

    # ------------------------------------------------------------------ lock
    @property
    def lock_path(self) -> Path:
        """The file :meth:`lock` locks (the state file's name plus ``.lock``)."""
        return self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the state file exclusively for one run, across processes.

        An OS file lock (``flock``) on ``<state>.lock``: the kernel drops it when
        the process dies, however it dies, so a killed run never leaves a stale
        lock. Raises :class:`~synckit.errors.StateLockedError` at once if another
        run holds it.

        Example:
            >>> import tempfile, os
            >>> with Ledger(os.path.join(tempfile.mkdtemp(), "s.db")) as led, led.lock():
            ...     pass
        """
        self._acquire()
        try:
            yield
        finally:
            self._release()

    def _acquire(self) -> None:
        if self._lock_file is not None:
            raise StateLockedError(f"state file {self.path} is already locked by this ledger")
        fd = os.open(private_file(self.lock_path, file_mode=self.file_mode), os.O_RDWR)
        handle = os.fdopen(fd, "r+")  # kept open while locked
        deadline = time.monotonic() + _PROBE_WAIT_S
        while True:
            try:
                _try_lock(handle)
                break
            except OSError:
                handle.seek(0)
                holder = handle.read().strip()
            # A holder that wrote no pid is `synckit runs` looking (lock_holder() takes
            # the lock for an instant) or a run about to write its own: worth a moment.
            if not holder.isdigit() and time.monotonic() < deadline:
                time.sleep(0.005)
                continue
            handle.close()
            who = f" (process {holder})" if holder.isdigit() else ""
            raise StateLockedError(
                f"state file {self.path} is in use by another synckit run{who}; "
                f"wait for it to finish (lock: {self.lock_path})"
            ) from None
        handle.truncate()  # at 0 (nothing read): a killed run's pid may still be there
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def _release(self) -> None:
        handle, self._lock_file = self._lock_file, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
                _unlock(handle)
            handle.close()

    # ------------------------------------------------------------------ runs
    def begin_run(
        self, *, source: str | None = None, options: Mapping[str, Any] | None = None
    ) -> str:
        """Start a run; returns its id (``YYYYmmddTHHMMSSZ-xxxxxx``).

        Options whose name suggests a secret (token, secret, password...) are
        not stored.

        Example:
            >>> import tempfile, os
            >>> with Ledger(os.path.join(tempfile.mkdtemp(), "s.db")) as led:
            ...     len(led.begin_run(source="x.csv", options={"batch_size": 100}))
            23
        """
        safe = safe_options(options or {})
        with self._tx() as db:
            # Six hex digits tell apart the runs of one second; a job (or a test) starting
            # thousands of runs a second can still draw one twice, so draw again.
            while True:
                run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
                taken = db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,))
                if taken.fetchone() is None:
                    break
            # The pid tells `synckit runs` whether a run without an end is still going
            # (its process holds the lock) or was killed.
            db.execute(
                "INSERT INTO runs(run_id, started_at, source, options_json, pid) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    run_id,
                    _now(),
                    source,
                    json.dumps(safe, default=str, sort_keys=True, ensure_ascii=False),
                    os.getpid(),
                ),
            )
        return run_id

    def end_run(self, run_id: str, *, counts: Mapping[str, int], exit_code: int) -> None:
        """Record a run's end: its counts by status and exit code."""
        plain = {str(k): int(v) for k, v in counts.items()}
        with self._tx() as db:
            cur = db.execute(
                "UPDATE runs SET finished_at=?, counts_json=?, exit_code=? WHERE run_id=?",
                (_now(), json.dumps(plain), int(exit_code), run_id),
            )
            if cur.rowcount == 0:
                raise SynckitError(f"unknown run id {run_id!r} in state file {self.path}")

    def set_exit_code(self, run_id: str, exit_code: int) -> None:
        """Record the exit code the process really returned, once it is known.

        :meth:`end_run` records the report's; the command line may still end
        otherwise (the report file could not be written, a second Ctrl-C...),
        and ``synckit runs`` must show what the job's supervisor saw. A run
        that never ended gets its end time too.

        Example:
            >>> import tempfile, os
            >>> with Ledger(os.path.join(tempfile.mkdtemp(), "s.db")) as led:
            ...     run = led.begin_run(source="x.csv")
            ...     led.end_run(run, counts={"created": 1}, exit_code=0)
            ...     led.set_exit_code(run, 2)
            ...     int(led.runs()["exit_code"].iloc[0])
            2
        """
        with self._tx() as db:
            cur = db.execute(
                "UPDATE runs SET exit_code=?, finished_at=COALESCE(finished_at, ?) WHERE run_id=?",
                (int(exit_code), _now(), run_id),
            )
            if cur.rowcount == 0:
                raise SynckitError(f"unknown run id {run_id!r} in state file {self.path}")

    def lock_holder(self) -> int | None:
        """The process id of the run holding :meth:`lock` now, or None when no one holds it.

        Asks the kernel (a lock taken and dropped at once), so a killed run's
        lock is never mistaken for a live one; changes nothing in the files.

        Example:
            >>> import tempfile, os
            >>> with Ledger(os.path.join(tempfile.mkdtemp(), "s.db")) as led:
            ...     before = led.lock_holder()
            ...     with led.lock():
            ...         held = led.lock_holder() == os.getpid()
            ...     before, held
            (None, True)
        """
        try:
            handle = open(self.lock_path)  # noqa: SIM115 - closed below, lock or not
        except OSError:
            return None  # never locked
        with handle:
            try:
                _try_lock(handle)
            except OSError:
                text = handle.read().strip()
                return int(text) if text.isdigit() else -1
            _unlock(handle)
            return None

    def runs(self) -> pd.DataFrame:
        """Past runs, oldest first: run_id, started_at, finished_at, source, one count column
        per status (zeros included; NA while a run has not finished), exit_code, and
        ``state``: ``finished``, ``running`` (its process holds the lock now) or ``killed``
        (no end, and its process is gone: SIGKILL, a crash, a reboot).

        Example:
            >>> import tempfile, os
            >>> with Ledger(os.path.join(tempfile.mkdtemp(), "s.db")) as led:
            ...     list(led.runs().columns)[:4]
            ['run_id', 'started_at', 'finished_at', 'source']
        """
        with self._mutex:
            rows = self._conn.execute(
                "SELECT run_id, started_at, finished_at, source, counts_json, exit_code, "
                f"{'pid' if self._has_pid() else 'NULL'} FROM runs ORDER BY started_at, rowid"
            ).fetchall()
        holder = self.lock_holder() if any(r[2] is None for r in rows) else None
        last_open = max((i for i, r in enumerate(rows) if r[2] is None), default=-1)
        counts = [json.loads(r[4]) if r[4] else None for r in rows]
        extra = sorted({k for c in counts if c for k in c} - set(STATUSES))
        data: dict[str, Any] = {
            "run_id": pd.Series([r[0] for r in rows], dtype="str"),
            "started_at": pd.to_datetime(pd.Series([r[1] for r in rows], dtype=object), utc=True),
            "finished_at": pd.to_datetime(pd.Series([r[2] for r in rows], dtype=object), utc=True),
            "source": pd.Series([r[3] for r in rows], dtype="str"),
        }
        for status in (*STATUSES, *extra):
            data[status] = pd.array(
                [None if c is None else int(c.get(status, 0)) for c in counts], dtype="Int64"
            )
        data["exit_code"] = pd.array([r[5] for r in rows], dtype="Int64")
        data["state"] = pd.Series(
            [_run_state(r, i == last_open, holder) for i, r in enumerate(rows)], dtype="str"
        )
        return pd.DataFrame(data)

    def _has_pid(self) -> bool:
        # A read-only ledger from before the pid column cannot be migrated; it has none.
        return any(r[1] == "pid" for r in self._conn.execute("PRAGMA table_info(runs)"))

    # ------------------------------------------------------------------ contacts
    def get(self, keys: Sequence[str] | Iterable[str]) -> dict[str, LedgerEntry]:
        """The entries the ledger holds for ``keys`` (unknown keys are left out).

        Looks keys up in chunks, so any number of keys works.

        Example:
            >>> import tempfile, os
            >>> with Ledger(os.path.join(tempfile.mkdtemp(), "s.db")) as led:
            ...     led.get(["email:nobody@example.com"])
            {}
        """
        wanted = list(dict.fromkeys(k for k in keys if k is not None))
        out: dict[str, LedgerEntry] = {}
        with self._mutex:
            for start in range(0, len(wanted), _MAX_VARS):
                chunk = wanted[start : start + _MAX_VARS]
                marks = ",".join("?" * len(chunk))
                for row in self._conn.execute(
                    "SELECT key, contact_id, payload_json, payload_hash, status, run_id, "
                    f"error_code, updated_at FROM contacts WHERE key IN ({marks})",
                    chunk,
                ):
                    out[row[0]] = LedgerEntry(
                        key=row[0],
                        contact_id=row[1],
                        payload=json.loads(row[2]) if row[2] else {},
                        payload_hash=row[3] or "",
                        status=row[4],
                        run_id=row[5],
                        error_code=row[6],
                        updated_at=row[7],
                    )
        return out

    def record(self, run_id: str, outcomes: Iterable[LedgerOutcome]) -> None:
        """Store a batch of outcomes in one transaction (all or nothing).

        Confirmed statuses (created/updated/unchanged) store the contact id and,
        when given, the confirmed payload and its hash. Failed, skipped and
        invalid keep the last confirmed payload, hash and contact id (a new key
        takes the outcome's contact id) and set status, error code and run id.
        Dry-run statuses (``would_*``) and outcomes without a key are ignored.
        Safe to call from several threads.

        Example:
            >>> import tempfile, os
            >>> with Ledger(os.path.join(tempfile.mkdtemp(), "s.db")) as led:
            ...     led.record("r1", [LedgerOutcome("phone:+447911123456", 2, "failed",
            ...                                      error_code="server_error")])
            ...     led.failed_keys()
            {'phone:+447911123456'}
        """
        now = _now()
        confirmed: list[tuple[Any, ...]] = []
        confirmed_keep: list[tuple[Any, ...]] = []
        other: list[tuple[Any, ...]] = []
        for o in outcomes:
            if not o.key or o.status in _DRY_RUN_STATUSES:
                continue
            if o.status in CONFIRMED_STATUSES:
                if o.payload is not None:
                    canon = canonical_payload(o.payload)
                    text = canonical_json(canon)
                    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
                    confirmed.append((o.key, o.contact_id, text, digest, o.status, run_id, now))
                else:
                    confirmed_keep.append((o.key, o.contact_id, o.status, run_id, now))
            else:
                other.append((o.key, o.contact_id, o.status, o.error_code, run_id, now))
        if not (confirmed or confirmed_keep or other):
            return
        with self._tx() as db:
            if confirmed:
                db.executemany(
                    "INSERT INTO contacts(key, contact_id, payload_json, payload_hash, status, "
                    "error_code, run_id, updated_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET "
                    "contact_id=COALESCE(excluded.contact_id, contacts.contact_id), "
                    "payload_json=excluded.payload_json, payload_hash=excluded.payload_hash, "
                    "status=excluded.status, error_code=NULL, run_id=excluded.run_id, "
                    "updated_at=excluded.updated_at",
                    confirmed,
                )
            if confirmed_keep:
                db.executemany(
                    "INSERT INTO contacts(key, contact_id, status, run_id, updated_at) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                    "contact_id=COALESCE(excluded.contact_id, contacts.contact_id), "
                    "status=excluded.status, error_code=NULL, run_id=excluded.run_id, "
                    "updated_at=excluded.updated_at",
                    confirmed_keep,
                )
            if other:
                db.executemany(
                    "INSERT INTO contacts(key, contact_id, status, error_code, run_id, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                    "contact_id=COALESCE(contacts.contact_id, excluded.contact_id), "
                    "status=excluded.status, error_code=excluded.error_code, "
                    "run_id=excluded.run_id, updated_at=excluded.updated_at",
                    other,
                )

    def failed_keys(self) -> set[str]:
        """Keys whose last outcome was failed, skipped or invalid (for ``--retry-failed``).

        Example:
            >>> import tempfile, os
            >>> with Ledger(os.path.join(tempfile.mkdtemp(), "s.db")) as led:
            ...     led.failed_keys()
            set()
        """
        marks = ",".join("?" * len(RETRY_STATUSES))
        with self._mutex:
            rows = self._conn.execute(
                f"SELECT key FROM contacts WHERE status IN ({marks})", RETRY_STATUSES
            ).fetchall()
        return {key for (key,) in rows}

    def __len__(self) -> int:
        with self._mutex:
            (count,) = self._conn.execute("SELECT COUNT(*) FROM contacts").fetchone()
            return int(count)

    # ------------------------------------------------------------------ erasure
    def forget(self, values: Iterable[str], *, default_region: str | None = "US") -> Erasure:
        """Remove every trace of these people's emails and phone numbers from the ledger.

        For a right-to-erasure request. Each value is an email or a phone
        number (see :func:`erasure_terms`). Removed: the ledger entry keyed
        by it, any entry whose payload holds it (as email, phone number or
        any custom field value: confirmed payloads, failed and skipped rows
        alike) and any row of any other table holding it. Then the file is
        rewritten so that the bytes are gone, not just unlinked: see
        :meth:`_scrub`. The next run treats such a person as new (one lookup,
        no duplicate). Takes the run lock (``StateLockedError`` while a sync
        runs). The platform still holds its own copy: delete the contact there
        too (``DELETE /contacts/{id}``).

        Example:
            >>> import tempfile, os
            >>> with Ledger(os.path.join(tempfile.mkdtemp(), "s.db")) as led:
            ...     led.record("r1", [LedgerOutcome("email:ada@example.com", 2, "created",
            ...                                     "ct_1", {"email": "ada@example.com"})])
            ...     led.forget(["Ada@Example.com"]).contacts, len(led)
            (1, 0)
        """
        terms = erasure_terms(values, default_region=default_region)
        with self._locked():
            contacts = runs = other = 0
            with self._tx() as db:
                for table, columns in self._columns(db):
                    # Four host parameters per column and term: at most _MAX_VARS a statement.
                    per = max(1, _MAX_VARS // (4 * len(columns)))
                    removed = 0
                    for start in range(0, len(terms), per):
                        removed += self._delete_matching(
                            db, table, columns, terms[start : start + per]
                        )
                    if table == "contacts":
                        contacts += removed
                    elif table == "runs":
                        runs += removed
                    else:
                        other += removed
            return Erasure(contacts, runs, other, self._scrub())

    def prune(self, older_than: str | timedelta, *, now: datetime | None = None) -> Erasure:
        """Remove runs, and ledger entries no run has touched, older than ``older_than``.

        For a retention period (``"90d"``, ``"12h"``, a timedelta...): an entry
        whose last outcome is older than that belongs to a contact no longer
        in the exports; if it comes back it is treated as new (one lookup,
        no duplicate). Then the file is rewritten like :meth:`forget` does.

        Example:
            >>> import tempfile, os
            >>> with Ledger(os.path.join(tempfile.mkdtemp(), "s.db")) as led:
            ...     led.record("r1", [LedgerOutcome("email:ada@example.com", 2, "created", "ct_1")])
            ...     later = datetime.now(UTC) + timedelta(days=100)
            ...     led.prune("90d").contacts, led.prune("90d", now=later).contacts
            (0, 1)
        """
        cutoff = ((now or datetime.now(UTC)) - parse_age(older_than)).astimezone(UTC)
        text = cutoff.isoformat(timespec="milliseconds")
        with self._locked():
            with self._tx() as db:
                contacts = db.execute("DELETE FROM contacts WHERE updated_at < ?", (text,)).rowcount
                runs = db.execute("DELETE FROM runs WHERE started_at < ?", (text,)).rowcount
            return Erasure(contacts, runs, 0, self._scrub())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The run lock for an erasure: held already by this ledger, or taken for it."""
        if self._lock_file is not None:
            yield
            return
        with self.lock():
            yield

    @staticmethod
    def _columns(db: sqlite3.Connection) -> list[tuple[str, list[str]]]:
        """Every table (ours and any added later) with every one of its columns.

        Whatever a column's declared type: SQLite keeps text that does not look
        like a number as text even in an INTEGER or NUMERIC column, so an email
        can sit in any of them.
        """
        tables = [
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return [
            (table, [r[1] for r in db.execute(f"PRAGMA table_info({_quote_name(table)})")])
            for table in tables
        ]

    @staticmethod
    def _delete_matching(
        db: sqlite3.Connection, table: str, columns: Sequence[str], terms: Sequence[str]
    ) -> int:
        # A cell matches when it IS the value, is the ledger key of it, or holds it as a
        # JSON string anywhere (payload fields, custom fields, options): lower-cased, as
        # emails are stored, in UTF-8 or with \\u escapes (options written before issue
        # 16 were). Whole-string matches only: forgetting +1201555120 must not remove
        # +12015551208.
        clauses: list[str] = []
        params: list[str] = []
        for col in columns:
            cell = f"lower(CAST({_quote_name(col)} AS TEXT))"
            for term in terms:
                low = term.lower()
                kind = "email:" if "@" in term else "phone:"
                clauses.append(
                    f"({cell} = ? OR {cell} = ? OR instr({cell}, ?) > 0 OR instr({cell}, ?) > 0)"
                )
                params += [low, kind + low, json.dumps(low, ensure_ascii=False), json.dumps(low)]
        sql = f"DELETE FROM {_quote_name(table)} WHERE " + " OR ".join(clauses)
        return int(db.execute(sql, params).rowcount)

    def _scrub(self) -> int:
        """Rewrite the file so that deleted rows' bytes are gone; returns its size.

        ``secure_delete`` zeroes what the deletes freed; ``VACUUM`` rebuilds
        the database (in memory: ``temp_store``), which also drops what
        earlier updates left in free pages; ``wal_checkpoint(TRUNCATE)``
        copies the result into the main file and empties the ``-wal`` file,
        which still held every old page image. Another process holding the
        file open with a read transaction blocks the last step: then this
        raises, and running it again once that process is done finishes it.
        """
        with self._mutex:
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute("PRAGMA temp_store=MEMORY")
            try:
                self._conn.execute("VACUUM")
                # Wait a little for readers to finish, not the 30 s a writer may wait.
                self._conn.execute(f"PRAGMA busy_timeout={int(_SCRUB_WAIT_MS)}")
                busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.Error as exc:
                raise SynckitError(f"state file {self.path}: cannot rewrite it: {exc}") from exc
            finally:
                self._conn.execute("PRAGMA secure_delete=OFF")
                self._conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        if busy:
            raise SynckitError(
                f"state file {self.path}: the entries are deleted, but another process has the "
                "file open, so its -wal file could not be emptied yet; run the command again "
                "once that process has finished"
            )
        return self.path.stat().st_size


def _run_state(row: Sequence[Any], last_open: bool, holder: int | None) -> str:
    """``finished``, ``running`` or ``killed`` for a runs row (see :meth:`Ledger.runs`)."""
    if row[2] is not None:
        return "finished"
    pid = row[6]
    if holder is None:
        return "killed"  # no process holds the lock: whoever ran it is gone
    if pid is not None and holder > 0:
        return "running" if pid == holder else "killed"
    # No pid recorded (an older synckit), or the holder has not written its own yet: runs
    # take turns under the lock, so only the latest run without an end can be holding it.
    return "running" if last_open else "killed"


def _quote_name(name: str) -> str:
    """An SQL identifier, quoted (table and column names come from the file itself)."""
    return '"' + name.replace('"', '""') + '"'


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: Any) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(handle: Any) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)


if sys.platform != "win32":  # not an else: coverage (and mutation testing) skip the if above
    import fcntl

    def _try_lock(handle: Any) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle: Any) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
