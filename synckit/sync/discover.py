"""Discovery: learning which rows' contacts the platform holds, and how, before any write.

Two ways to find out, with opposite costs:

- **listing** the account (``GET /contacts?limit=100``, following ``next_cursor``):
  one request per 100 contacts, whatever the file holds;
- **looking rows up** (``?email=``, then ``?phone_number=`` only when it can change
  the plan): about one request per row.

The account's size is not known in advance, so neither can be chosen up front.
The rule (the ski-rental rule, 2-competitive): keep listing while the pages
spent are fewer than the look-ups the rows still unresolved would cost, counting
look-ups already spent (a stream pays them chunk by chunk); once they are not,
stop and look the rest up. Each page also resolves the rows whose contacts it
holds, so the look-up bill shrinks as the listing goes. Whichever way the
account turns out, discovery costs at most about twice the cheaper way: a
3,000-row file against a 3,000-contact account lists 30 pages and looks
nothing up; a 40-row file against 20,000 contacts stops listing after about 40
pages and looks the rest up.

What is learnt goes into a :class:`Snapshot`: a temporary SQLite file (not
memory) holding only the contacts that match the input's keys (every listed
contact for a one-pass stream, whose later keys are unknown), and the keys a
look-up found no contact for. The planner reads it chunk by chunk.

Example:
    >>> snap = Snapshot()
    >>> snap.add([{"id": "ct_1", "email": "Ada@Example.com", "phone_number": "+441"}])
    >>> snap.by_email(["ada@example.com"])["ada@example.com"]["id"]
    'ct_1'
    >>> snap.close()
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from synckit import rules
from synckit.errors import APIError
from synckit.sync.plan import UNKNOWN, Known

__all__ = ["Discovery", "KeyFilter", "Pending", "Snapshot"]

# SQLite builds before 3.32 allow 999 host parameters per statement; stay under it.
_MAX_VARS: Final = 900
_KEEP_FIELDS: Final = ("id", *rules.FIELDS)


# Two independent 64-bit hashes: the first finds candidates, the second confirms them
# (a false match would need both to collide: about 2**-128 per pair).
_CONFIRM_KEY: Final = "synckit:confirm!"


_HASH_BATCH: Final = 100_000


def _hashes(values: Any, *, confirm: bool = False) -> np.ndarray:
    """64-bit hashes of text values (missing or empty -> 0): compact keys to match contacts.

    ``values`` is a list, or a pandas text array (a million emails stay arrow
    strings: they become Python strings only a batch at a time, here).
    """
    n = len(values)
    out = np.zeros(n, dtype=np.uint64)
    for start in range(0, n, _HASH_BATCH):
        part = values[start : start + _HASH_BATCH]
        if isinstance(part, list):
            arr = np.array([v if isinstance(v, str) else "" for v in part], dtype=object)
        else:
            arr = np.asarray(pd.array(part, dtype="str").to_numpy(dtype=object, na_value=""))
        if confirm:
            h = pd.util.hash_array(arr, hash_key=_CONFIRM_KEY, categorize=False)
        else:
            h = pd.util.hash_array(arr, categorize=False)
        h[arr == ""] = 0
        out[start : start + len(h)] = h
    return out


def _email_of(contact: Mapping[str, Any]) -> str | None:
    email = contact.get("email")
    return email.lower() if isinstance(email, str) and email else None


def _phone_of(contact: Mapping[str, Any]) -> str | None:
    phone = contact.get("phone_number")
    return phone if isinstance(phone, str) and phone else None


class Snapshot:
    """The platform contacts this run has seen, and the keys known to be free.

    A private temporary SQLite database (``sqlite3.connect("")``: a file the
    OS deletes on close): a million listed contacts cost disk, not memory.
    Also the run's registry of which row holds which contact (:meth:`claim`).
    Safe to share between threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        self._db.executescript(
            """
            PRAGMA journal_mode=OFF;
            PRAGMA synchronous=OFF;
            CREATE TABLE contacts (id TEXT PRIMARY KEY, email TEXT, phone TEXT, body TEXT);
            CREATE INDEX contacts_email ON contacts(email);
            CREATE INDEX contacts_phone ON contacts(phone);
            CREATE TABLE absent (kind TEXT, value TEXT, PRIMARY KEY (kind, value)) WITHOUT ROWID;
            CREATE TABLE claims (contact_id TEXT PRIMARY KEY, pos INTEGER, row INTEGER);
            CREATE TABLE seen (kind TEXT, value TEXT, row INTEGER, PRIMARY KEY (kind, value))
                WITHOUT ROWID;
            """
        )
        self.size = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ contacts
    def add(self, contacts: Iterable[Mapping[str, Any]]) -> None:
        """Remember contacts (the contract's fields and id only)."""
        rows = []
        for c in contacts:
            if not c.get("id"):
                continue
            body = {k: c.get(k) for k in _KEEP_FIELDS}
            rows.append((str(c["id"]), _email_of(c), _phone_of(c), json.dumps(body)))
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
            self.size += len(rows)

    def add_absent(self, kind: str, values: Iterable[str]) -> None:
        """Remember that no contact holds these emails (``kind="email"``) or phones."""
        rows = [(kind, v) for v in values if v]
        if not rows:
            return
        with self._lock:
            self._db.executemany("INSERT OR IGNORE INTO absent VALUES (?, ?)", rows)

    def _select(self, sql: str, values: Sequence[str]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        wanted = list(dict.fromkeys(v for v in values if v))
        with self._lock:
            for start in range(0, len(wanted), _MAX_VARS):
                part = wanted[start : start + _MAX_VARS]
                marks = ",".join("?" * len(part))
                out.extend(self._db.execute(sql.format(marks=marks), part).fetchall())
        return out

    def by_email(self, emails: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The contacts holding these (lower-case) emails."""
        rows = self._select("SELECT email, body FROM contacts WHERE email IN ({marks})", emails)
        return {r[0]: json.loads(r[1]) for r in rows}

    def by_phone(self, phones: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The contacts holding these phone numbers."""
        rows = self._select("SELECT phone, body FROM contacts WHERE phone IN ({marks})", phones)
        return {r[0]: json.loads(r[1]) for r in rows}

    def absent(self, kind: str, values: Sequence[str]) -> set[str]:
        """Which of ``values`` a look-up found no contact for."""
        rows = self._select(
            "SELECT value FROM absent WHERE kind = '" + kind + "' AND value IN ({marks})", values
        )
        return {r[0] for r in rows}

    # ------------------------------------------------------------------ claims
    def claim(self, wanted: Sequence[tuple[str, int, int]]) -> dict[str, tuple[int, int]]:
        """Claim contacts for rows, in order: ``(contact_id, pos, row)`` each.

        Returns every asked contact's holder ``(pos, row)``: the first row
        ever to claim it in this run (earlier chunks included).
        """
        if not wanted:
            return {}
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO claims VALUES (?, ?, ?)", wanted)
            self._db.execute("COMMIT")
        ids = [w[0] for w in wanted]
        rows = self._select(
            "SELECT contact_id, pos, row FROM claims WHERE contact_id IN ({marks})", ids
        )
        return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    # ------------------------------------------------------------------ seen keys (streams)
    def first_seen(self, kind: str, values: Sequence[tuple[str, int]]) -> dict[str, int]:
        """Record keys of a one-pass stream; return those an earlier chunk already had (-> row)."""
        keys = [v for v, _ in values]
        rows = self._select(
            "SELECT value, row FROM seen WHERE kind = '" + kind + "' AND value IN ({marks})", keys
        )
        earlier = {r[0]: int(r[1]) for r in rows}
        fresh = [(kind, v, r) for v, r in values if v not in earlier]
        with self._lock:
            self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", fresh)
        return earlier


@dataclass
class KeyFilter:
    """Hashes of every email and phone of the input: which listed contacts are worth keeping."""

    hashes: np.ndarray

    @classmethod
    def of(cls, emails: Any, phones: Any) -> KeyFilter:
        both = np.concatenate([_hashes(emails), _hashes(phones)])
        return cls(np.unique(both[both != 0]))

    def _has(self, h: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(self.hashes, h), max(len(self.hashes) - 1, 0))
        found: np.ndarray = (h != 0) & (self.hashes[at] == h) if len(self.hashes) else h != h
        return found

    def keep(self, contacts: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        if not contacts:
            return []
        e = _hashes([_email_of(c) for c in contacts])
        p = _hashes([_phone_of(c) for c in contacts])
        hit = self._has(e) | self._has(p)
        return [c for c, h in zip(contacts, hit.tolist(), strict=True) if h]


class Pending:
    """The rows discovery has to answer for, and how far the listing has answered.

    Per row: its email and phone (two hashes each; the text kept compactly,
    read back only for the rows looked up), whether a listed contact holds
    the email (and with the row's phone too), and whether one holds the
    phone. A row is resolved when the plan no longer depends on anything
    unlisted.
    """

    def __init__(self, pos: Any, emails: Any, phones: Any) -> None:
        self.pos = np.asarray(pos, dtype=np.int64)
        n = len(self.pos)
        if isinstance(emails, list):
            emails = [e if isinstance(e, str) and e else None for e in emails]
        if isinstance(phones, list):
            phones = [p if isinstance(p, str) and p else None for p in phones]
        self.emails = pd.array(emails, dtype="str")
        self.phones = pd.array(phones, dtype="str")
        self._eh, self._eh2 = _hashes(self.emails), _hashes(self.emails, confirm=True)
        self._ph, self._ph2 = _hashes(self.phones), _hashes(self.phones, confirm=True)
        self.has_e = self._eh != 0
        self.has_p = self._ph != 0
        self.e_found = np.zeros(n, dtype=bool)
        self.e_phone_same = np.zeros(n, dtype=bool)  # the email's contact holds the row's phone
        self.p_found = np.zeros(n, dtype=bool)
        self._e_order = np.argsort(self._eh, kind="stable")
        self._e_sorted = self._eh[self._e_order]
        self._p_order = np.argsort(self._ph, kind="stable")
        self._p_sorted = self._ph[self._p_order]

    def __len__(self) -> int:
        return len(self.pos)

    @staticmethod
    def _matches(
        sorted_: np.ndarray,
        order: np.ndarray,
        confirm: np.ndarray,
        hashes: np.ndarray,
        hashes2: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(contact index, row) pairs whose two hashes agree."""
        lo = np.searchsorted(sorted_, hashes, "left")
        hi = np.searchsorted(sorted_, hashes, "right")
        hit = np.flatnonzero((hi > lo) & (hashes != 0))
        if not len(hit):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        ks = np.repeat(hit, (hi - lo)[hit])
        rows = np.concatenate([order[lo[k] : hi[k]] for k in hit.tolist()])
        ok = confirm[rows] == hashes2[ks]
        return ks[ok], rows[ok]

    def see(self, contacts: Sequence[Mapping[str, Any]]) -> None:
        """Mark what these listed contacts answer."""
        if not len(self.pos) or not contacts:
            return
        emails = [_email_of(c) for c in contacts]
        phones = [_phone_of(c) for c in contacts]
        ph, ph2 = _hashes(phones), _hashes(phones, confirm=True)
        ks, rows = self._matches(
            self._e_sorted, self._e_order, self._eh2, _hashes(emails), _hashes(emails, confirm=True)
        )
        self.e_found[rows] = True
        self.e_phone_same[rows] = (
            self.has_p[rows] & (self._ph[rows] == ph[ks]) & (self._ph2[rows] == ph2[ks])
        )
        _, rows = self._matches(self._p_sorted, self._p_order, self._ph2, ph, ph2)
        self.p_found[rows] = True

    def unresolved(self) -> np.ndarray:
        """Which rows still need a look-up."""
        with_email = self.has_e & (
            ~self.e_found | (self.has_p & ~self.e_phone_same & ~self.p_found)
        )
        without_email = ~self.has_e & self.has_p & ~self.p_found
        out: np.ndarray = with_email | without_email
        return out

    def lookup_cost(self) -> int:
        """Look-ups the unresolved rows would cost now (the listing's budget)."""
        email_lookups = self.has_e & ~self.e_found
        phone_lookups = (
            self.has_p & ~self.p_found & (~self.has_e | (self.e_found & ~self.e_phone_same))
        )
        return int(email_lookups.sum() + phone_lookups.sum())


@dataclass(frozen=True)
class LookupJob:
    """One row to look up: what listing already found is passed on, not asked again."""

    pos: int
    email: str | None
    phone: str | None
    by_email: Any = UNKNOWN
    by_phone: Any = UNKNOWN


class Discovery:
    """Runs the listing and the look-ups for a run, keeping the tally across chunks.

    ``list_page(cursor)`` returns ``(contacts, next_cursor)`` or raises
    :class:`~synckit.errors.APIError`; ``look_up(jobs)`` runs the look-ups
    (in parallel, in the executor) and returns ``(job, known, requests)``
    for each; ``stopped()`` tells when the run is stopping.
    """

    def __init__(
        self,
        snapshot: Snapshot,
        *,
        list_page: Callable[[str | None], tuple[list[dict[str, Any]], str | None]],
        look_up: Callable[[list[LookupJob]], list[tuple[LookupJob, Known, int]]],
        stopped: Callable[[], bool],
        on_page: Callable[[int], None] | None = None,
    ) -> None:
        self.snapshot = snapshot
        self._list_page = list_page
        self._look_up = look_up
        self._stopped = stopped
        self._on_page = on_page
        self.pages = 0
        self.lookups = 0
        self.complete = False
        self.listing_failed: APIError | None = None
        self._cursor: str | None = None
        self._failed: dict[int, APIError] = {}

    def stats(self) -> dict[str, Any]:
        """Requests spent on discovery: pages listed, look-ups, whether the listing finished."""
        return {"pages": self.pages, "lookups": self.lookups, "listing_complete": self.complete}

    def resolve(self, pending: Pending, keep: KeyFilter | None) -> None:
        """Learn what the platform holds for ``pending``'s rows (see the module docs)."""
        if not len(pending) or self.complete:
            return
        while (
            not self.complete
            and self.listing_failed is None
            and not self._stopped()
            and self.pages < self.lookups + pending.lookup_cost()
        ):
            try:
                contacts, cursor = self._list_page(self._cursor)
            except APIError as err:
                # Look the rows up instead (if the server is gone, the executor's
                # breaker stops the run there).
                self.listing_failed = err
                break
            self.pages += 1
            if self._on_page is not None:
                self._on_page(len(contacts))
            self.snapshot.add(contacts if keep is None else keep.keep(contacts))
            pending.see(contacts)
            self._cursor = cursor
            self.complete = cursor is None
        if self.complete or self._stopped():
            return
        todo = np.flatnonzero(pending.unresolved())
        if not len(todo):
            return
        jobs = []
        by_email = self.snapshot.by_email([pending.emails[i] for i in todo if pending.e_found[i]])
        by_phone = self.snapshot.by_phone([pending.phones[i] for i in todo if pending.p_found[i]])
        for i in todo.tolist():
            email = pending.emails[i] if pending.has_e[i] else None
            phone = pending.phones[i] if pending.has_p[i] else None
            jobs.append(
                LookupJob(
                    int(pending.pos[i]),
                    email,
                    phone,
                    by_email.get(email, UNKNOWN) if email else UNKNOWN,
                    by_phone.get(phone, UNKNOWN) if phone else UNKNOWN,
                )
            )
        found: list[Mapping[str, Any]] = []
        free_e: list[str] = []
        free_p: list[str] = []
        for job, known, requests in self._look_up(jobs):
            self.lookups += requests
            found.extend(c for c in (known.by_email, known.by_phone) if isinstance(c, Mapping))
            if job.email and known.by_email is None:
                free_e.append(job.email)
            if job.phone and known.by_phone is None:
                free_p.append(job.phone)
            if known.error is not None:
                self._failed[job.pos] = known.error
        self.snapshot.add(found)
        self.snapshot.add_absent("email", free_e)
        self.snapshot.add_absent("phone", free_p)

    def known_for(self, rows: Sequence[tuple[int, str | None, str | None]]) -> dict[int, Known]:
        """What is known for ``(pos, email, phone)`` rows, from the snapshot."""
        emails = [e for _, e, _ in rows if e]
        phones = [p for _, _, p in rows if p]
        by_email = self.snapshot.by_email(emails) if emails else {}
        by_phone = self.snapshot.by_phone(phones) if phones else {}
        free_e: set[str] = set()
        free_p: set[str] = set()
        if not self.complete:
            free_e = self.snapshot.absent("email", emails) if emails else set()
            free_p = self.snapshot.absent("phone", phones) if phones else set()
        out: dict[int, Known] = {}
        for pos, email, phone in rows:
            a: Any = UNKNOWN
            b: Any = UNKNOWN
            if email:
                a = by_email.get(email)
                if a is None and not (self.complete or email in free_e):
                    a = UNKNOWN
            if phone:
                b = by_phone.get(phone)
                if b is None and not (self.complete or phone in free_p):
                    b = UNKNOWN
            out[pos] = Known(a, b, error=self._failed.get(pos))
        return out
