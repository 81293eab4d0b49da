"""Organisations in the sandbox (contract section 4: ``403 forbidden``), over real HTTP on loopback.

Every credential belongs to one organisation: the static token and the OAuth
client to ``org_demo``, tokens from ``Sandbox.add_token(..., org=...)`` to
the one named. A caller sees only its organisation's contacts, and another
organisation's contact id answers ``403 forbidden``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

import synckit
from synckit.errors import ConfigError
from synckit.sandbox import Sandbox, serve_sandbox

RW = ("contacts:read", "contacts:write")
ADA = {"email": "ada@example.com", "phone_number": "+447400123456", "first_name": "Ada"}
ACME = "org_acme"


def call(sb: Sandbox, token: str, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
    return requests.request(method, sb.url + path, headers=headers, timeout=10, **kw)


def code_of(resp: requests.Response) -> str:
    body = resp.json()
    return str(body["error"]["code"] if "error" in body else body["code"])


def two_orgs(sb: Sandbox) -> str:
    """Give ``sb`` a read-write token for org_acme beside the demo token; return it."""
    sb.add_token("tok_acme", scopes=RW, org=ACME)
    return "tok_acme"


@pytest.mark.parametrize("style", ["contacts", "platform"])
def test_another_orgs_contact_is_403_forbidden(
    sandbox_factory: Callable[..., Sandbox], style: str
) -> None:
    sb = sandbox_factory(error_style=style)
    acme = two_orgs(sb)
    demo_id = call(sb, sb.token, "POST", "/contacts", json=ADA).json()["id"]
    acme_id = call(sb, acme, "POST", "/contacts", json={"email": "wile@acme.example.com"}).json()[
        "id"
    ]
    for token, foreign in [(acme, demo_id), (sb.token, acme_id)]:
        for method, body in [("GET", None), ("PATCH", {"first_name": "X"}), ("DELETE", None)]:
            r = call(sb, token, method, f"/contacts/{foreign}", json=body)
            assert r.status_code == 403, (method, r.text)
            assert code_of(r) == "forbidden", method
            assert r.headers["X-Request-Id"].startswith("req_")
            if style == "platform":
                assert set(r.json()) == {"error"}
            else:
                assert "error" not in r.json()
        # An id no organisation holds is still 404, so 403 means "elsewhere".
        r = call(sb, token, "GET", "/contacts/ct_0000000000")
        assert (r.status_code, code_of(r)) == (404, "not_found")
    # Nothing was changed or removed by the refused writes.
    assert [c["first_name"] for c in sb.contacts()] == ["Ada", None]
    assert call(sb, sb.token, "GET", f"/contacts/{demo_id}").json()["first_name"] == "Ada"
    assert call(sb, acme, "GET", f"/contacts/{acme_id}").status_code == 200


def test_scope_is_checked_before_the_organisation(sandbox: Sandbox) -> None:
    sandbox.add_token("tok_acme_reader", org=ACME)  # contacts:read only
    demo_id = call(sandbox, sandbox.token, "POST", "/contacts", json=ADA).json()["id"]
    r = call(sandbox, "tok_acme_reader", "DELETE", f"/contacts/{demo_id}")
    assert (r.status_code, code_of(r)) == (403, "insufficient_scope")
    r = call(sandbox, "tok_acme_reader", "GET", f"/contacts/{demo_id}")
    assert (r.status_code, code_of(r)) == (403, "forbidden")


def test_listing_and_lookup_see_only_the_callers_org(sandbox: Sandbox) -> None:
    acme = two_orgs(sandbox)
    demo_ids, acme_ids = [], []
    for i in range(3):
        body = {"email": f"p{i}@example.com", "phone_number": f"+44740012345{i}"}
        demo_ids.append(call(sandbox, sandbox.token, "POST", "/contacts", json=body).json()["id"])
        # Interleaved, and acme holds the same identifiers: only the org tells them apart.
        acme_ids.append(call(sandbox, acme, "POST", "/contacts", json=body).json()["id"])
    acme_ids.append(
        call(sandbox, acme, "POST", "/contacts", json={"email": "only@acme.example.com"}).json()[
            "id"
        ]
    )

    def listed(token: str) -> list[str]:
        ids: list[str] = []
        params: dict[str, Any] = {"limit": 1}
        while True:
            page = call(sandbox, token, "GET", "/contacts", params=params).json()
            ids += [c["id"] for c in page["data"]]
            if page["next_cursor"] is None:
                return ids
            params["cursor"] = page["next_cursor"]

    assert listed(sandbox.token) == demo_ids
    assert listed(acme) == acme_ids
    for token, ids in [(sandbox.token, demo_ids), (acme, acme_ids)]:
        by_email = call(sandbox, token, "GET", "/contacts", params={"email": "P1@example.com"})
        assert [c["id"] for c in by_email.json()["data"]] == [ids[1]]
        by_phone = call(
            sandbox, token, "GET", "/contacts", params={"phone_number": "+447400123452"}
        )
        assert [c["id"] for c in by_phone.json()["data"]] == [ids[2]]
    r = call(sandbox, sandbox.token, "GET", "/contacts", params={"email": "only@acme.example.com"})
    assert r.json() == {"data": [], "next_cursor": None}
    # The test window sees everything, or one organisation when asked.
    assert [c["id"] for c in sandbox.contacts()] == [
        x for pair in zip(demo_ids, acme_ids, strict=False) for x in pair
    ] + [acme_ids[-1]]
    assert [c["id"] for c in sandbox.contacts(org=ACME)] == acme_ids
    assert [c["id"] for c in sandbox.contacts(org="org_demo")] == demo_ids
    assert all("org" not in c for c in sandbox.contacts())  # not part of the resource


def test_uniqueness_is_per_org(sandbox: Sandbox) -> None:
    acme = two_orgs(sandbox)
    demo = call(sandbox, sandbox.token, "POST", "/contacts", json=ADA)
    theirs = call(sandbox, acme, "POST", "/contacts", json=ADA)
    assert (demo.status_code, theirs.status_code) == (201, 201)
    assert demo.json()["id"] != theirs.json()["id"]
    # Within one organisation the 409 names that organisation's contact.
    for token, own in [(sandbox.token, demo.json()["id"]), (acme, theirs.json()["id"])]:
        r = call(sandbox, token, "POST", "/contacts", json={"phone_number": ADA["phone_number"]})
        assert (r.status_code, r.json()["id"]) == (409, own)
    # PATCH may take an identifier that only another organisation holds.
    bob = call(sandbox, acme, "POST", "/contacts", json={"email": "bob@acme.example.com"}).json()
    shared = call(sandbox, sandbox.token, "POST", "/contacts", json={"email": "eve@example.com"})
    r = call(sandbox, acme, "PATCH", f"/contacts/{bob['id']}", json={"email": "EVE@example.com"})
    assert (r.status_code, r.json()["email"]) == (200, "eve@example.com")
    assert shared.status_code == 201
    r = call(sandbox, acme, "PATCH", f"/contacts/{bob['id']}", json={"email": ADA["email"]})
    assert (r.status_code, r.json()["id"]) == (409, theirs.json()["id"])


def test_quota_counts_per_org(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(contact_limit=2)
    acme = two_orgs(sb)
    for i in range(2):
        assert call(sb, sb.token, "POST", "/contacts", json={"email": f"d{i}@example.com"}).ok
    r = call(sb, sb.token, "POST", "/contacts", json={"email": "d9@example.com"})
    assert (r.status_code, code_of(r)) == (422, "quota_exceeded")
    # The demo organisation's full plan does not stop acme's creates.
    for i in range(2):
        assert (
            call(sb, acme, "POST", "/contacts", json={"email": f"a{i}@example.com"}).status_code
            == 201
        )
    r = call(sb, acme, "POST", "/contacts", json={"email": "a9@example.com"})
    assert (r.status_code, code_of(r)) == (422, "quota_exceeded")
    assert len(sb.contacts()) == 4


def test_idempotency_records_never_cross_orgs(sandbox: Sandbox) -> None:
    acme = two_orgs(sandbox)
    key = {"Idempotency-Key": "same-key"}
    first = call(sandbox, sandbox.token, "POST", "/contacts", json=ADA, headers=key)
    other = call(sandbox, acme, "POST", "/contacts", json=ADA, headers=key)
    assert (first.status_code, other.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in other.headers
    assert other.json()["id"] != first.json()["id"]
    # The same token text moved to another organisation is a new credential owner.
    sandbox.add_token(acme, scopes=RW, org="org_moved")
    moved = call(sandbox, acme, "POST", "/contacts", json=ADA, headers=key)
    assert moved.status_code == 201 and "Idempotent-Replayed" not in moved.headers
    assert [c["id"] for c in sandbox.contacts(org="org_moved")] == [moved.json()["id"]]
    # Within one organisation the key still replays.
    again = call(sandbox, acme, "POST", "/contacts", json=ADA, headers=key)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == moved.json()


@pytest.mark.parametrize("style", ["contacts", "platform"])
def test_client_raises_permission_denied_forbidden(
    sandbox_factory: Callable[..., Sandbox], style: str
) -> None:
    sb = sandbox_factory(error_style=style)
    acme = two_orgs(sb)
    with synckit.Client(sb.url, token=sb.token) as demo, synckit.Client(sb.url, token=acme) as ac:
        cid = demo.create_contact(ADA)["id"]
        calls: list[Callable[[], object]] = [
            lambda: ac.get_contact(cid),
            lambda: ac.update_contact(cid, {"first_name": "X"}),
            lambda: ac.delete_contact(cid),
        ]
        for attempt in calls:
            with pytest.raises(synckit.PermissionDenied) as info:
                attempt()
            err = info.value
            assert (err.status, err.code, err.retryable) == (403, "forbidden", False)
            assert err.request_id is not None and err.request_id.startswith("req_")
            last = ac.last_call
            assert last is not None and (last.status, last.attempts) == (403, 1)  # no retry
            assert acme not in str(err) and sb.token not in str(err)
        assert ac.find_contacts(email=ADA["email"]) == []
        assert demo.get_contact(cid)["first_name"] == "Ada"


def test_add_token_needs_an_org(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError, match="org"):
        sandbox.add_token("tok_x", org="")


# The contacts table as the single-organisation sandbox created it.
_OLD_SCHEMA = """
CREATE TABLE contacts (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    id    TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    phone TEXT UNIQUE,
    body  TEXT NOT NULL
)
"""


def _old_database(path: Path) -> dict[str, Any]:
    db = sqlite3.connect(path)
    db.execute(_OLD_SCHEMA)
    ada = {**ADA, "id": "ct_00000000aa", "created_at": "2026-11-01T00:00:00Z"}
    ada["updated_at"] = ada["created_at"]
    for seq, cid, email in [
        (1, "ct_00000000aa", ADA["email"]),
        (2, "ct_00000000bb", "b@example.com"),
    ]:
        body = ada if cid == ada["id"] else {"id": cid, "email": email}
        db.execute(
            "INSERT INTO contacts (seq, id, email, phone, body) VALUES (?, ?, ?, ?, ?)",
            (seq, cid, email, body.get("phone_number"), json.dumps(body)),
        )
    # A third contact was created and deleted: its number must not come back.
    db.execute("INSERT INTO contacts (seq, id, body) VALUES (3, 'ct_00000000cc', '{}')")
    db.execute("DELETE FROM contacts WHERE seq = 3")
    db.commit()
    db.close()
    return ada


def test_old_database_joins_the_default_org(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    ada = _old_database(path)
    with serve_sandbox(db=str(path)) as sb:
        acme = two_orgs(sb)
        assert call(sb, sb.token, "GET", f"/contacts/{ada['id']}").json() == ada
        r = call(sb, acme, "GET", f"/contacts/{ada['id']}")
        assert (r.status_code, code_of(r)) == (403, "forbidden")
        assert [c["id"] for c in sb.contacts(org="org_demo")] == ["ct_00000000aa", "ct_00000000bb"]
        r = call(sb, sb.token, "POST", "/contacts", json={"email": ADA["email"]})
        assert (r.status_code, r.json()["id"]) == (409, ada["id"])
        # The old table's global UNIQUE(email) is gone: acme may hold the same address.
        theirs = call(sb, acme, "POST", "/contacts", json=ADA)
        assert theirs.status_code == 201
    # Reopening the upgraded file changes nothing, and organisations persist.
    with serve_sandbox(db=str(path)) as sb:
        acme = two_orgs(sb)
        assert call(sb, acme, "GET", f"/contacts/{theirs.json()['id']}").status_code == 200
        r = call(sb, sb.token, "GET", f"/contacts/{theirs.json()['id']}")
        assert (r.status_code, code_of(r)) == (403, "forbidden")
        assert len(sb.contacts()) == 3
    db = sqlite3.connect(path)
    rows = db.execute("SELECT seq, id, org FROM contacts ORDER BY seq").fetchall()
    db.close()
    assert rows[:2] == [(1, "ct_00000000aa", "org_demo"), (2, "ct_00000000bb", "org_demo")]
    assert rows[2][0] == 4 and rows[2][2] == ACME  # seq 3 stayed retired


def test_unrelated_contacts_table_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE contacts (name TEXT)")
    db.execute("INSERT INTO contacts VALUES ('someone')")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="database"):
        serve_sandbox(db=str(path)).__enter__()
    db = sqlite3.connect(path)  # the failed upgrade was rolled back
    assert db.execute("SELECT name FROM contacts").fetchall() == [("someone",)]
    db.close()
