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
contact for a one-pass stream, whose later keys are unknown). The planner
reads it a slice of rows at a time; rows it still cannot answer are looked up
then, just before they are planned.

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

__all__ = ["Discovery", "KeyFilter", "LookupJob", "Pending", "Snapshot", "needs_lookup"]

# SQLite builds before 3.32 allow 999 host parameters per statement; stay under it.
_MAX_VARS: Final = 900
_KEEP_FIELDS: Final = ("id", *rules.FIELDS)


_HASH_BATCH: Final = 100_000
# A second, independent 64-bit hash, where a false match would cost a row (claims, seen keys).
_CONFIRM_KEY: Final = "synckit:confirm!"


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
            CREATE TABLE claims (h INTEGER PRIMARY KEY, h2 INTEGER, pos INTEGER, row INTEGER);
            CREATE TABLE seen (h INTEGER PRIMARY KEY, h2 INTEGER, pos INTEGER, row INTEGER);
            CREATE TEMP TABLE batch (i INTEGER, h INTEGER, h2 INTEGER, pos INTEGER, row INTEGER);
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

    # ------------------------------------------------------------------ claims
    def _first_holders(
        self, table: str, keys: Sequence[str], owners: Sequence[tuple[int, int]]
    ) -> list[tuple[int, int]]:
        """For each key, in order, the ``(pos, row)`` of the first owner ever given for it.

        Keys are stored as two 64-bit hashes (an integer primary key and a
        check), so a million keys cost a few seconds of SQLite, not memory.
        """
        h1 = _hashes(list(keys)).view(np.int64).tolist()
        h2 = _hashes(list(keys), confirm=True).view(np.int64).tolist()
        batch = [
            (i, a, b, pos, row)
            for i, (a, b, (pos, row)) in enumerate(zip(h1, h2, owners, strict=True))
        ]
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            db.execute("DELETE FROM batch")
            db.executemany("INSERT INTO batch VALUES (?, ?, ?, ?, ?)", batch)
            # The first row of this batch for each new key, then everything already held.
            db.execute(
                f"INSERT OR IGNORE INTO {table} (h, h2, pos, row) "
                "SELECT h, h2, pos, row FROM batch ORDER BY i"
            )
            held = db.execute(
                f"SELECT b.i, t.h2, b.h2, t.pos, t.row FROM batch b JOIN {table} t ON t.h = b.h"
            ).fetchall()
            db.execute("COMMIT")
        out = list(owners)
        for i, have, want, pos, row in held:
            if have == want:  # (a differing check hash: two keys, one 64-bit hash; not the same)
                out[i] = (int(pos), int(row))
        return out

    def claim(self, wanted: Sequence[tuple[str, int, int]]) -> dict[str, tuple[int, int]]:
        """Claim contacts for rows, in order: ``(contact_id, pos, row)`` each.

        Returns every asked contact's holder ``(pos, row)``: the first row
        ever to claim it in this run (earlier chunks included).
        """
        if not wanted:
            return {}
        holders = self._first_holders(
            "claims", [w[0] for w in wanted], [(w[1], w[2]) for w in wanted]
        )
        return {w[0]: h for w, h in zip(wanted, holders, strict=True)}

    # ------------------------------------------------------------------ seen keys (streams)
    def first_seen(self, kind: str, values: Sequence[tuple[str, int]]) -> dict[str, int]:
        """Record keys of a one-pass stream; return those an earlier row already had (-> row).

        ``values`` are ``(key, row)``; a key repeated within ``values`` is
        reported for its later copies too.
        """
        if not values:
            return {}
        keys = [f"{kind}:{v}" for v, _ in values]
        holders = self._first_holders("seen", keys, [(r, r) for _, r in values])
        return {v: h[1] for (v, r), h in zip(values, holders, strict=True) if h[1] != r}


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
    """The rows discovery has to answer for, and how far the listing has answered them.

    Only hashes and flags, about 37 bytes a row (a million rows: 37 MB): the
    sorted hashes of each row's email and phone, whether a listed contact
    holds the email (and with the row's phone too), and whether one holds the
    phone. A row is resolved when its plan no longer depends on anything
    unlisted. A false match (two 64-bit hashes colliding) could only make
    the listing stop a page early; the planner reads the snapshot by the
    exact text, so it never changes what is sent.
    """

    def __init__(self, emails: Any, phones: Any) -> None:
        eh = _hashes(emails)
        self._ph = _hashes(phones)
        n = len(eh)
        self.has_e = eh != 0
        self.has_p = self._ph != 0
        self.e_found = np.zeros(n, dtype=bool)
        self.e_phone_same = np.zeros(n, dtype=bool)  # the email's contact holds the row's phone
        self.p_found = np.zeros(n, dtype=bool)
        index = np.int32 if n < 2**31 else np.int64
        self._e_order = np.argsort(eh, kind="stable").astype(index)
        self._e_sorted = eh[self._e_order]
        del eh
        self._p_order = np.argsort(self._ph, kind="stable").astype(index)
        self._p_sorted = self._ph[self._p_order]

    def __len__(self) -> int:
        return len(self.has_e)

    @staticmethod
    def _matches(
        sorted_: np.ndarray, order: np.ndarray, hashes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(contact index, row) pairs with the same hash."""
        lo = np.searchsorted(sorted_, hashes, "left")
        hi = np.searchsorted(sorted_, hashes, "right")
        hit = np.flatnonzero((hi > lo) & (hashes != 0))
        if not len(hit):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        ks = np.repeat(hit, (hi - lo)[hit])
        rows = np.concatenate([order[lo[k] : hi[k]] for k in hit.tolist()]).astype(np.int64)
        return ks, rows

    def see(self, contacts: Sequence[Mapping[str, Any]]) -> None:
        """Mark what these listed contacts answer."""
        if not len(self) or not contacts:
            return
        ph = _hashes([_phone_of(c) for c in contacts])
        ks, rows = self._matches(
            self._e_sorted, self._e_order, _hashes([_email_of(c) for c in contacts])
        )
        self.e_found[rows] = True
        self.e_phone_same[rows] = self.has_p[rows] & (self._ph[rows] == ph[ks])
        _, rows = self._matches(self._p_sorted, self._p_order, ph)
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


def needs_lookup(email: str | None, phone: str | None, known: Known, *, dry_run: bool) -> bool:
    """Whether a row's plan still depends on something a look-up would tell.

    Example:
        >>> needs_lookup("a@x.io", "+441", Known(by_email=None, by_phone=UNKNOWN), dry_run=False)
        False
        >>> needs_lookup("a@x.io", "+441", Known(by_email=None, by_phone=UNKNOWN), dry_run=True)
        True
    """
    if email and known.by_email is UNKNOWN:
        return True
    if phone and known.by_phone is UNKNOWN:
        a = known.by_email
        if not email:
            return True
        if isinstance(a, Mapping):
            return a.get("phone_number") != phone  # the two-contacts check
        return a is None and dry_run  # a real run's create is the phone check
    return False


class Discovery:
    """Runs the listing and the look-ups of a run, keeping the tally across chunks.

    ``list_page(cursor)`` returns ``(contacts, next_cursor)`` or raises
    :class:`~synckit.errors.APIError`; ``look_up(jobs)`` runs look-ups (in
    parallel, in the executor) and returns ``(job, known, requests)`` for
    each; ``stopped()`` tells when the run is stopping.
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

    def stats(self) -> dict[str, Any]:
        """Requests spent on discovery: pages listed, look-ups, whether the listing finished."""
        return {"pages": self.pages, "lookups": self.lookups, "listing_complete": self.complete}

    def list_for(self, pending: Pending, keep: KeyFilter | None) -> None:
        """List the account while that is the cheaper way to answer ``pending`` (module docs).

        The rows still unresolved afterwards are looked up when they are
        planned (:meth:`look_up`), where their text is at hand.
        """
        while (
            len(pending)
            and not self.complete
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

    def look_up(
        self,
        rows: Sequence[tuple[int, str | None, str | None]],
        knowns: dict[int, Known],
        *,
        dry_run: bool,
    ) -> None:
        """Look up the ``(pos, email, phone)`` rows whose plan still depends on an unknown;
        their entries in ``knowns`` are replaced by what the look-ups found."""
        if self.complete or self._stopped():
            return
        jobs = []
        for pos, email, phone in rows:
            known = knowns[pos]
            if needs_lookup(email, phone, known, dry_run=dry_run):
                jobs.append(LookupJob(pos, email, phone, known.by_email, known.by_phone))
        if not jobs:
            return
        found: list[Mapping[str, Any]] = []
        for job, known, requests in self._look_up(jobs):
            self.lookups += requests
            found.extend(c for c in (known.by_email, known.by_phone) if isinstance(c, Mapping))
            knowns[job.pos] = known
        self.snapshot.add(found)

    def known_for(self, rows: Sequence[tuple[int, str | None, str | None]]) -> dict[int, Known]:
        """What the snapshot tells for ``(pos, email, phone)`` rows (a finished listing: all)."""
        emails = [e for _, e, _ in rows if e]
        phones = [p for _, _, p in rows if p]
        seen = self.snapshot.size > 0  # nothing listed or looked up yet: nothing to ask
        by_email = self.snapshot.by_email(emails) if emails and seen else {}
        by_phone = self.snapshot.by_phone(phones) if phones and seen else {}
        absent: Any = None if self.complete else UNKNOWN
        out: dict[int, Known] = {}
        for pos, email, phone in rows:
            a = by_email.get(email, absent) if email else UNKNOWN
            b = by_phone.get(phone, absent) if phone else UNKNOWN
            out[pos] = Known(a, b)
        return out
