"""Contacts kept in SQLite: in memory by default, or in a file that outlives the server.

One connection shared by all server threads behind one lock. That is the
simplest thing that is correct (the uniqueness check and the insert must be
atomic anyway) and fast enough: SQLite answers these look-ups in a few
microseconds, far below the HTTP handling around them.

Example:
    >>> store = ContactStore(None)
    >>> with store.lock:
    ...     store.insert({"id": "ct_0000000001", "email": "ada@example.com"})
    >>> [c["id"] for c in store.all()]
    ['ct_0000000001']
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

__all__ = ["ContactStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    id    TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    phone TEXT UNIQUE,
    body  TEXT NOT NULL
)
"""


class ContactStore:
    """Thread-safe contact table. Callers hold :attr:`lock` around check-then-write steps."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.lock = threading.RLock()
        # isolation_level=None: every statement commits at once, so a file DB
        # never holds an open transaction that a crash or restart could lose.
        self._db = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        if path:
            # WAL + NORMAL: durable across a process restart without an fsync per write.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    def _one(self, sql: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
        with self.lock:
            row = self._db.execute(sql, args).fetchone()
        return json.loads(row[0]) if row else None

    def get(self, contact_id: str) -> dict[str, Any] | None:
        """The contact with this id, or ``None``."""
        return self._one("SELECT body FROM contacts WHERE id = ?", (contact_id,))

    def id_by_email(self, email: str) -> str | None:
        """Id of the contact holding ``email`` (already lower-cased)."""
        with self.lock:
            row = self._db.execute("SELECT id FROM contacts WHERE email = ?", (email,)).fetchone()
        return row[0] if row else None

    def id_by_phone(self, phone: str) -> str | None:
        """Id of the contact holding ``phone``."""
        with self.lock:
            row = self._db.execute("SELECT id FROM contacts WHERE phone = ?", (phone,)).fetchone()
        return row[0] if row else None

    def count(self) -> int:
        with self.lock:
            return int(self._db.execute("SELECT COUNT(*) FROM contacts").fetchone()[0])

    def insert(self, contact: dict[str, Any]) -> None:
        """Add a new contact (raises ``sqlite3.IntegrityError`` on a taken id/email/phone)."""
        with self.lock:
            self._db.execute(
                "INSERT INTO contacts (id, email, phone, body) VALUES (?, ?, ?, ?)",
                (contact["id"], contact.get("email"), contact.get("phone_number"), _dump(contact)),
            )

    def replace(self, contact: dict[str, Any]) -> None:
        """Overwrite the stored contact with the same id."""
        with self.lock:
            self._db.execute(
                "UPDATE contacts SET email = ?, phone = ?, body = ? WHERE id = ?",
                (contact.get("email"), contact.get("phone_number"), _dump(contact), contact["id"]),
            )

    def delete(self, contact_id: str) -> bool:
        """Remove a contact; False if there was none."""
        with self.lock:
            cur = self._db.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
        return cur.rowcount > 0

    def page(
        self,
        *,
        after: int,
        limit: int,
        email: str | None = None,
        phone: str | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Up to ``limit`` contacts after sequence number ``after``, oldest first.

        Returns the contacts and the sequence number to continue after, or
        ``None`` when this was the last page.
        """
        where = ["seq > ?"]
        args: list[Any] = [after]
        if email is not None:
            where.append("email = ?")
            args.append(email)
        if phone is not None:
            where.append("phone = ?")
            args.append(phone)
        sql = f"SELECT seq, body FROM contacts WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        args.append(limit + 1)
        with self.lock:
            rows = self._db.execute(sql, args).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return [json.loads(body) for _, body in rows], (rows[-1][0] if more else None)

    def all(self) -> list[dict[str, Any]]:
        """Every contact, oldest first."""
        with self.lock:
            rows = self._db.execute("SELECT body FROM contacts ORDER BY seq").fetchall()
        return [json.loads(body) for (body,) in rows]

    def clear(self) -> None:
        with self.lock:
            self._db.execute("DELETE FROM contacts")


def _dump(contact: dict[str, Any]) -> str:
    return json.dumps(contact, ensure_ascii=False, separators=(",", ":"))
