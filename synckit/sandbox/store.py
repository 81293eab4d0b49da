"""Contacts kept in SQLite: in memory by default, or in a file that outlives the server.

One connection shared by all server threads behind one lock. That is the
simplest thing that is correct (the uniqueness check and the insert must be
atomic anyway) and fast enough: SQLite answers these look-ups in a few
microseconds, far below the HTTP handling around them.

Every contact belongs to one organisation. Ids are unique across all of them
(so a request for another organisation's contact can be told apart from one
for a missing contact); email and phone number are unique per organisation.

Example:
    >>> store = ContactStore(None)
    >>> with store.lock:
    ...     store.insert({"id": "ct_0000000001", "email": "ada@example.com"}, org="org_a")
    ...     store.insert({"id": "ct_0000000002", "email": "ada@example.com"}, org="org_b")
    >>> [c["id"] for c in store.all(org="org_b")], store.locate("ct_0000000001")[0]
    (['ct_0000000002'], 'org_a')
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Any

from synckit._files import private_file
from synckit.sandbox.state import DEFAULT_ORG

__all__ = ["ContactStore"]

_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    id    TEXT NOT NULL UNIQUE,
    org   TEXT NOT NULL DEFAULT '{default_org}',
    email TEXT,
    phone TEXT,
    body  TEXT NOT NULL,
    UNIQUE (org, email),
    UNIQUE (org, phone)
)
"""
_MIGRATION_TABLE = "contacts_org_migration"


def _table_sql(name: str) -> str:
    return _TABLE.format(name=name, default_org=DEFAULT_ORG)


class ContactStore:
    """Thread-safe contact table. Callers hold :attr:`lock` around check-then-write steps."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.lock = threading.RLock()
        # isolation_level=None: every statement commits at once, so a file DB
        # never holds an open transaction that a crash or restart could lose.
        if path:
            # Contacts are personal data, even made-up ones: owner-only, like the ledger.
            private_file(path)
        self._db = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        if path:
            # WAL + NORMAL: durable across a process restart without an fsync per write.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._upgrade()
        self._db.execute(_table_sql("contacts"))

    def _upgrade(self) -> None:
        """Give a contacts table written by the single-organisation sandbox its ``org`` column.

        Adding the column alone is not enough: the old table has email and
        phone UNIQUE across all rows, and SQLite cannot drop a column
        constraint, so the table is rebuilt (in one transaction) with
        uniqueness per organisation. Old rows join the default organisation
        and keep their sequence numbers, so issued cursors stay valid.
        """
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(contacts)")]
        if not columns or "org" in columns:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            last = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'contacts'").fetchone()
            db.execute(f"DROP TABLE IF EXISTS {_MIGRATION_TABLE}")
            db.execute(_table_sql(_MIGRATION_TABLE))
            db.execute(
                f"INSERT INTO {_MIGRATION_TABLE} (seq, id, org, email, phone, body) "
                "SELECT seq, id, ?, email, phone, body FROM contacts ORDER BY seq",
                (DEFAULT_ORG,),
            )
            db.execute("DROP TABLE contacts")
            db.execute(f"ALTER TABLE {_MIGRATION_TABLE} RENAME TO contacts")
            if last is not None:
                # AUTOINCREMENT never reuses a number; rows deleted at the end
                # of the old table must not have their numbers handed out again.
                cur = db.execute(
                    "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'contacts'",
                    (last[0],),
                )
                if cur.rowcount == 0:
                    db.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES ('contacts', ?)",
                        (last[0],),
                    )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self.lock:
            self._db.close()

    def locate(self, contact_id: str) -> tuple[str, dict[str, Any]] | None:
        """The organisation and the contact with this id (in any organisation), or ``None``."""
        with self.lock:
            row = self._db.execute(
                "SELECT org, body FROM contacts WHERE id = ?", (contact_id,)
            ).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def id_by_email(self, email: str, *, org: str) -> str | None:
        """Id of ``org``'s contact holding ``email`` (already lower-cased)."""
        with self.lock:
            row = self._db.execute(
                "SELECT id FROM contacts WHERE org = ? AND email = ?", (org, email)
            ).fetchone()
        return row[0] if row else None

    def id_by_phone(self, phone: str, *, org: str) -> str | None:
        """Id of ``org``'s contact holding ``phone``."""
        with self.lock:
            row = self._db.execute(
                "SELECT id FROM contacts WHERE org = ? AND phone = ?", (org, phone)
            ).fetchone()
        return row[0] if row else None

    def count(self, *, org: str | None = None) -> int:
        """How many contacts ``org`` holds (all organisations' when ``None``)."""
        with self.lock:
            if org is None:
                row = self._db.execute("SELECT COUNT(*) FROM contacts").fetchone()
            else:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM contacts WHERE org = ?", (org,)
                ).fetchone()
        return int(row[0])

    def insert(self, contact: dict[str, Any], *, org: str) -> None:
        """Add a new contact to ``org`` (``sqlite3.IntegrityError`` on a taken id/email/phone)."""
        with self.lock:
            self._db.execute(
                "INSERT INTO contacts (id, org, email, phone, body) VALUES (?, ?, ?, ?, ?)",
                (
                    contact["id"],
                    org,
                    contact.get("email"),
                    contact.get("phone_number"),
                    _dump(contact),
                ),
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
        org: str,
        after: int,
        limit: int,
        email: str | None = None,
        phone: str | None = None,
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Up to ``limit`` of ``org``'s contacts after sequence number ``after``, oldest first.

        Returns the contacts and the sequence number to continue after, or
        ``None`` when this was the last page.
        """
        where = ["seq > ?", "org = ?"]
        args: list[Any] = [after, org]
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

    def all(self, *, org: str | None = None) -> list[dict[str, Any]]:
        """Every contact of ``org`` (of every organisation when ``None``), oldest first."""
        with self.lock:
            if org is None:
                rows = self._db.execute("SELECT body FROM contacts ORDER BY seq").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT body FROM contacts WHERE org = ? ORDER BY seq", (org,)
                ).fetchall()
        return [json.loads(body) for (body,) in rows]

    def clear(self) -> None:
        with self.lock:
            self._db.execute("DELETE FROM contacts")


def _dump(contact: dict[str, Any]) -> str:
    return json.dumps(contact, ensure_ascii=False, separators=(",", ":"))
