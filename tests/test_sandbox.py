"""The sandbox against contract sections 1 to 5, over real HTTP on loopback."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import requests

from synckit import rules
from synckit.sandbox import Sandbox, serve_sandbox

READ_WRITE = "contacts:read contacts:write"
ADA = {"email": "ada@example.com", "phone_number": "+447400123456", "first_name": "Ada"}

# The contract's messages (section 2), typed from the contract on purpose:
# these tests check that rules.py and the sandbox say exactly this.
MSG_UNKNOWN = "is not a recognised field"
MSG_REQUIRED = "email or phone_number is required"
MSG_EMAIL = "must be a valid email address"
MSG_PHONE = "must be a valid phone number in E.164 format"
MSG_EMAIL_CONSENT = "must be one of: subscribed, unsubscribed, never_subscribed, suppressed"
MSG_SMS_CONSENT = "must be one of: subscribed, unsubscribed, never_subscribed, single_opt_in"
MSG_SMS_COUNTRY = "requires a phone number from a supported country"
MSG_NAME = "must be a string of at most 100 characters"
MSG_CUSTOM = "must be a flat key-value object (no nested values)"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Api:
    """Tiny helper: requests against one sandbox with its static token."""

    def __init__(self, sb: Sandbox, token: str | None = None) -> None:
        self.sb = sb
        self.headers = auth(token or sb.token)

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.request(method, self.sb.url + path, headers=headers, timeout=10, **kw)

    def create(self, body: dict[str, Any], **kw: Any) -> requests.Response:
        return self("POST", "/contacts", json=body, **kw)


def oauth(sb: Sandbox, **form: str) -> requests.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": sb.client_id,
        "client_secret": sb.client_secret,
        "scope": READ_WRITE,
    }
    data.update(form)
    return requests.post(sb.url + "/oauth/token", data=data, timeout=10)


def details(resp: requests.Response) -> list[tuple[str, str]]:
    return [(d["field"], d["message"]) for d in resp.json()["details"]]


# ---------------------------------------------------------------- section 1: authentication


def test_static_token_reads_and_writes(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    assert api("GET", "/contacts").status_code == 200
    assert api.create(ADA).status_code == 201


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": ""}],
)
def test_missing_or_unknown_token_is_401(sandbox: Sandbox, headers: dict[str, str]) -> None:
    r = requests.get(sandbox.url + "/contacts", headers=headers, timeout=10)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_oauth_client_credentials_token(sandbox: Sandbox) -> None:
    r = oauth(sandbox)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 7200
    assert body["scope"] == READ_WRITE
    assert body["access_token"].startswith("at_")
    api = Api(sandbox, body["access_token"])
    assert api.create(ADA).status_code == 201
    assert api("GET", "/contacts").json()["data"][0]["email"] == ADA["email"]


def test_oauth_without_scope_grants_both(sandbox: Sandbox) -> None:
    r = requests.post(
        sandbox.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(sandbox.client_id, sandbox.client_secret),  # HTTP Basic, RFC 6749 2.3.1
        timeout=10,
    )
    assert r.status_code == 200
    assert r.json()["scope"] == READ_WRITE


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"scope": "contacts:read contacts:admin"}, 401, "invalid_scope"),
        ({"grant_type": "password"}, 400, "bad_request"),
    ],
)
def test_oauth_errors(sandbox: Sandbox, form: dict[str, str], status: int, code: str) -> None:
    r = oauth(sandbox, **form)
    assert r.status_code == status
    assert r.json()["code"] == code
    assert "access_token" not in r.text


def test_oauth_token_needs_form_encoding(sandbox: Sandbox) -> None:
    r = requests.post(
        sandbox.url + "/oauth/token",
        json={"grant_type": "client_credentials", "client_id": sandbox.client_id},
        timeout=10,
    )
    assert r.status_code == 400
    assert r.json()["code"] == "bad_request"


def test_read_scope_cannot_write(sandbox: Sandbox) -> None:
    cid = Api(sandbox).create(ADA).json()["id"]
    token = oauth(sandbox, scope="contacts:read").json()["access_token"]
    api = Api(sandbox, token)
    assert api("GET", f"/contacts/{cid}").status_code == 200
    for method, path, body in [
        ("POST", "/contacts", {"email": "bob@example.com"}),
        ("PATCH", f"/contacts/{cid}", {"first_name": "B"}),
        ("DELETE", f"/contacts/{cid}", None),
    ]:
        r = api(method, path, json=body)
        assert (r.status_code, r.json()["code"]) == (403, "insufficient_scope"), method
    assert len(sandbox.contacts()) == 1
    assert sandbox.contacts()[0]["first_name"] == "Ada"


def test_write_only_scope_cannot_read(sandbox: Sandbox) -> None:
    token = oauth(sandbox, scope="contacts:write").json()["access_token"]
    r = Api(sandbox, token)("GET", "/contacts")
    assert (r.status_code, r.json()["code"]) == (403, "insufficient_scope")


def test_oauth_token_expires(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(token_ttl=0.4)
    r = oauth(sb)
    assert r.json()["expires_in"] == 0.4
    api = Api(sb, r.json()["access_token"])
    assert api("GET", "/contacts").status_code == 200
    time.sleep(0.5)
    r = api("GET", "/contacts")
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    # A fresh token works again: what a client does after a 401.
    assert Api(sb, oauth(sb).json()["access_token"])("GET", "/contacts").status_code == 200


def test_add_token_with_scopes_and_ttl(sandbox: Sandbox) -> None:
    sandbox.add_token("tok_reader", ttl=0.3)
    sandbox.add_token("tok_writer", scopes=("contacts:read", "contacts:write"))
    reader, writer = Api(sandbox, "tok_reader"), Api(sandbox, "tok_writer")
    assert reader("GET", "/contacts").status_code == 200
    assert reader.create(ADA).status_code == 403
    assert writer.create(ADA).status_code == 201
    time.sleep(0.35)
    assert reader("GET", "/contacts").status_code == 401
    assert writer("GET", "/contacts").status_code == 200


def test_static_token_follows_config(sandbox: Sandbox) -> None:
    old = sandbox.token
    sandbox.config.token = "sk_rotated"
    assert Api(sandbox, old)("GET", "/contacts").status_code == 401
    assert Api(sandbox, "sk_rotated")("GET", "/contacts").status_code == 200


def test_repr_hides_credentials(sandbox: Sandbox) -> None:
    for text in (repr(sandbox), repr(sandbox.config), str(sandbox)):
        assert sandbox.token not in text
        assert sandbox.client_secret not in text


# ---------------------------------------------------------------- section 2: the resource


def test_create_returns_full_contact(sandbox: Sandbox) -> None:
    body = {
        **ADA,
        "email": "Ada@Example.COM",
        "last_name": "Lovelace",
        "email_consent": "subscribed",
        "sms_consent": "single_opt_in",
        "custom_fields": {"plan": "pro", "seats": 3, "vip": True, "ratio": 0.5, "gone": None},
    }
    r = Api(sandbox).create(body)
    assert r.status_code == 201
    c = r.json()
    assert re.fullmatch(r"ct_[0-9a-f]{10}", c["id"])
    assert r.headers["Location"] == f"/v1/contacts/{c['id']}"
    assert c["email"] == "ada@example.com"  # stored lower-cased
    assert c["custom_fields"] == {"plan": "pro", "seats": 3, "vip": True, "ratio": 0.5}
    for stamp in ("created_at", "updated_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c[stamp])
        datetime.strptime(c[stamp], "%Y-%m-%dT%H:%M:%SZ")
    assert set(c) == {
        "id", "email", "phone_number", "first_name", "last_name", "email_consent",
        "sms_consent", "custom_fields", "created_at", "updated_at",
    }  # fmt: skip
    assert sandbox.contacts() == [c]


def test_phone_only_contact_with_null_fields(sandbox: Sandbox) -> None:
    r = Api(sandbox).create({"phone_number": "+14155552671", "email": None, "first_name": None})
    assert r.status_code == 201
    assert r.json()["email"] is None
    assert r.json()["phone_number"] == "+14155552671"


def test_get_and_delete(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    cid = api.create(ADA).json()["id"]
    got = api("GET", f"/contacts/{cid}")
    assert got.status_code == 200 and got.json()["id"] == cid
    r = api("DELETE", f"/contacts/{cid}")
    assert r.status_code == 204 and r.content == b""
    for method in ("GET", "DELETE", "PATCH"):
        r = api(method, f"/contacts/{cid}", json={"first_name": "x"})
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), method
    assert sandbox.contacts() == []


A = "a@example.com"
GB = "+447400123456"
GG = "+447911123456"  # Guernsey: region GG, not a supported SMS country
RULE_CASES = [
    ({"email": A, "nickname": "x"}, [("nickname", MSG_UNKNOWN)]),
    ({"email": A, "id": "ct_0000000000"}, [("id", MSG_UNKNOWN)]),
    ({}, [("email / phone_number", MSG_REQUIRED)]),
    ({"email": "", "phone_number": None}, [("email / phone_number", MSG_REQUIRED)]),
    ({"first_name": "Ada"}, [("email / phone_number", MSG_REQUIRED)]),
    ({"email": "ada@@example.com"}, [("email", MSG_EMAIL)]),
    ({"email": "a" * 243 + "@example.com"}, [("email", MSG_EMAIL)]),  # 255 characters
    ({"email": " ada@example.com"}, [("email", MSG_EMAIL)]),
    ({"email": 42}, [("email", MSG_EMAIL)]),
    ({"phone_number": "+44 7400 123456"}, [("phone_number", MSG_PHONE)]),
    ({"phone_number": "07400123456"}, [("phone_number", MSG_PHONE)]),
    ({"phone_number": "+15555550123"}, [("phone_number", MSG_PHONE)]),  # not a valid number
    ({"phone_number": 447400123456}, [("phone_number", MSG_PHONE)]),
    ({"email": A, "email_consent": "Subscribed"}, [("email_consent", MSG_EMAIL_CONSENT)]),
    ({"email": A, "email_consent": "single_opt_in"}, [("email_consent", MSG_EMAIL_CONSENT)]),
    ({"phone_number": GB, "sms_consent": "yes"}, [("sms_consent", MSG_SMS_CONSENT)]),
    ({"phone_number": GG, "sms_consent": "subscribed"}, [("sms_consent", MSG_SMS_COUNTRY)]),
    ({"email": A, "sms_consent": "subscribed"}, [("sms_consent", MSG_SMS_COUNTRY)]),
    ({"email": A, "first_name": "x" * 101}, [("first_name", MSG_NAME)]),
    ({"email": A, "last_name": 7}, [("last_name", MSG_NAME)]),
    ({"email": A, "custom_fields": {"a": {"b": 1}}}, [("custom_fields", MSG_CUSTOM)]),
    ({"email": A, "custom_fields": {"a": [1]}}, [("custom_fields", MSG_CUSTOM)]),
    ({"email": A, "custom_fields": ["a"]}, [("custom_fields", MSG_CUSTOM)]),
    ({"email": A, "custom_fields": {"": 1}}, [("custom_fields", MSG_CUSTOM)]),
    ({"email": A, "custom_fields": {"k" * 65: 1}}, [("custom_fields", MSG_CUSTOM)]),
    (
        {"email": A, "custom_fields": {f"k{i}": i for i in range(101)}},
        [("custom_fields", MSG_CUSTOM)],
    ),
]


@pytest.mark.parametrize(("body", "expected"), RULE_CASES)
def test_field_rules(
    sandbox: Sandbox, body: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    r = Api(sandbox).create(body)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_failed"
    assert r.json()["message"] == "One or more fields failed validation"
    assert details(r) == expected
    assert sandbox.contacts() == []


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a" * 64 + "@" + "b" * 63 + ".example.com"},
        {"phone_number": "+447400123456", "sms_consent": "subscribed"},
        {"email": A, "first_name": "x" * 100, "last_name": ""},
        {"email": A, "custom_fields": {"k" * 64: None, **{f"k{i}": i for i in range(99)}}},
        {"email": A, "email_consent": None, "sms_consent": None, "custom_fields": None},
    ],
)  # fmt: skip
def test_boundary_values_accepted(sandbox: Sandbox, body: dict[str, Any]) -> None:
    r = Api(sandbox).create(body)
    assert r.status_code == 201, r.text


def test_all_broken_rules_in_one_422(sandbox: Sandbox) -> None:
    body = {
        "nickname": "x",
        "email": "not-an-email",
        "phone_number": "+1 555",
        "email_consent": "yes",
        "sms_consent": "maybe",
        "first_name": "x" * 101,
        "last_name": ["x"],
        "custom_fields": {"a": {"b": 1}},
    }
    r = Api(sandbox).create(body)
    assert r.status_code == 422
    assert details(r) == [
        ("nickname", MSG_UNKNOWN),
        ("email", MSG_EMAIL),
        ("phone_number", MSG_PHONE),
        ("email_consent", MSG_EMAIL_CONSENT),
        ("sms_consent", MSG_SMS_CONSENT),
        ("sms_consent", MSG_SMS_COUNTRY),  # set, and "+1 555" is from no country
        ("first_name", MSG_NAME),
        ("last_name", MSG_NAME),
        ("custom_fields", MSG_CUSTOM),
    ]


def test_sms_countries_setting(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(sms_countries=frozenset({"GG"}))
    api = Api(sb)
    r = api.create({"phone_number": "+447400123456", "sms_consent": "subscribed"})  # GB
    assert details(r) == [("sms_consent", MSG_SMS_COUNTRY)]
    assert (
        api.create({"phone_number": "+447911123456", "sms_consent": "subscribed"}).status_code
        == 201
    )


# ---------------------------------------------------------------- section 3: endpoints


def test_patch_merge_and_null_semantics(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    created = api.create({**ADA, "last_name": "Byron", "custom_fields": {"a": 1, "b": "x"}}).json()
    time.sleep(1.05)  # timestamps have one-second resolution
    r = api(
        "PATCH",
        f"/contacts/{created['id']}",
        json={
            "last_name": None,
            "email": "ADA@lovelace.org",
            "custom_fields": {"a": None, "c": True},
        },
    )
    assert r.status_code == 200
    c = r.json()
    assert c["first_name"] == "Ada"  # absent: kept
    assert c["last_name"] is None  # null: cleared
    assert c["email"] == "ada@lovelace.org"
    assert c["phone_number"] == ADA["phone_number"]
    assert c["custom_fields"] == {"b": "x", "c": True}  # merged key by key
    assert c["created_at"] == created["created_at"]
    assert c["updated_at"] > created["updated_at"]
    assert sandbox.contacts() == [c]
    cleared = api("PATCH", f"/contacts/{c['id']}", json={"custom_fields": None}).json()
    assert cleared["custom_fields"] is None
    unchanged = api("PATCH", f"/contacts/{c['id']}", json={}).json()
    assert unchanged == cleared


def test_patch_rules_apply_to_merged_contact(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    only_email = api.create({"email": "a@example.com"}).json()["id"]
    r = api("PATCH", f"/contacts/{only_email}", json={"email": None})
    assert details(r) == [("email / phone_number", MSG_REQUIRED)]
    both = api.create({"email": "b@example.com", "phone_number": "+447911123456"}).json()["id"]
    assert api("PATCH", f"/contacts/{both}", json={"email": None}).status_code == 200
    r = api("PATCH", f"/contacts/{both}", json={"sms_consent": "subscribed"})  # stored GG phone
    assert details(r) == [("sms_consent", MSG_SMS_COUNTRY)]
    r = api(
        "PATCH",
        f"/contacts/{both}",
        json={"sms_consent": "subscribed", "phone_number": "+447400123456"},
    )
    assert r.status_code == 200 and r.json()["sms_consent"] == "subscribed"
    r = api("PATCH", f"/contacts/{both}", json={"nickname": "x", "first_name": 3})
    assert details(r) == [("nickname", MSG_UNKNOWN), ("first_name", MSG_NAME)]


def test_patch_phone_must_still_suit_the_stored_sms_consent(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    made = api.create(
        {"email": "sms@example.com", "phone_number": "+14155552671", "sms_consent": "subscribed"}
    ).json()
    path = f"/contacts/{made['id']}"
    for phone in ("+8613800138000", None):  # unsupported country, or no phone at all
        r = api("PATCH", path, json={"phone_number": phone, "first_name": 7})
        assert r.status_code == 422, r.text
        assert [(d["field"], d["message"]) for d in r.json()["details"]] == [
            ("sms_consent", rules.message("sms_country")),
            ("first_name", rules.message("invalid_type")),
        ]
    assert api("GET", path).json()["phone_number"] == "+14155552671"
    assert api("PATCH", path, json={"phone_number": "+447400123456"}).status_code == 200  # GB
    r = api("PATCH", path, json={"phone_number": None, "sms_consent": None})
    assert r.status_code == 200 and r.json()["sms_consent"] is None


def test_patch_custom_fields_key_limit_applies_after_the_merge(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    full = {f"k{i}": i for i in range(100)}
    cid = api.create({"email": "many@example.com", "custom_fields": full}).json()["id"]
    path = f"/contacts/{cid}"
    r = api("PATCH", path, json={"custom_fields": {"one_more": 1}, "first_name": 5})
    assert r.status_code == 422
    assert [d["field"] for d in r.json()["details"]] == ["first_name", "custom_fields"]
    assert api("GET", path).json()["custom_fields"] == full  # nothing applied
    # Replacing a key (one removed, one added) keeps 100: fine.
    r = api("PATCH", path, json={"custom_fields": {"k0": None, "new": "x"}})
    assert r.status_code == 200 and len(r.json()["custom_fields"]) == 100


def test_uniqueness_conflicts(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    first = api.create(ADA).json()["id"]
    for body in (
        {"email": "ADA@example.com"},
        {"phone_number": ADA["phone_number"]},
        {"email": "other@example.com", "phone_number": ADA["phone_number"]},
    ):
        r = api.create(body)
        assert r.status_code == 409
        assert r.json() == {
            "code": "conflict",
            "message": "A contact with this email or phone number already exists",
            "id": first,
        }
    assert len(sandbox.contacts()) == 1


def test_conflict_email_wins_over_phone(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    by_phone = api.create({"phone_number": "+14155552671"}).json()["id"]
    by_email = api.create({"email": "ada@example.com"}).json()["id"]
    r = api.create({"email": "ada@example.com", "phone_number": "+14155552671"})
    assert (r.status_code, r.json()["id"]) == (409, by_email)
    third = api.create({"email": "c@example.com"}).json()["id"]
    r = api(
        "PATCH",
        f"/contacts/{third}",
        json={"phone_number": "+14155552671", "email": "ADA@example.com"},
    )
    assert (r.status_code, r.json()["id"]) == (409, by_email)
    r = api("PATCH", f"/contacts/{third}", json={"phone_number": "+14155552671"})
    assert (r.status_code, r.json()["id"]) == (409, by_phone)
    # Re-sending a contact's own identifiers is not a conflict.
    r = api("PATCH", f"/contacts/{by_email}", json={"email": "Ada@Example.com"})
    assert r.status_code == 200


def test_concurrent_creates_of_one_email_make_one_contact(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    barrier = threading.Barrier(12)
    statuses: list[int] = []

    def create(i: int) -> None:
        barrier.wait()
        statuses.append(api.create({"email": "race@example.com", "first_name": str(i)}).status_code)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201] + [409] * 11
    assert len(sandbox.contacts()) == 1


def test_conflict_platform_envelope(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(error_style="platform")
    api = Api(sb)
    first = api.create(ADA).json()["id"]
    r = api.create({"email": ADA["email"]})
    assert r.status_code == 409
    assert r.json() == {
        "error": {
            "code": "duplicate",
            "message": "A contact with this email or phone number already exists",
            "details": {"id": first},
        }
    }


def test_validation_platform_envelope_is_400(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(error_style="platform")
    r = Api(sb).create({"email": "bad", "phone_number": "123", "x": 1})
    assert r.status_code == 400
    assert r.json() == {
        "error": {
            "code": "validation_failed",
            "message": "One or more fields failed validation",
            "details": {"x": [MSG_UNKNOWN], "email": [MSG_EMAIL], "phone_number": [MSG_PHONE]},
        }
    }
    r = requests.get(sb.url + "/contacts", timeout=10)
    assert r.json()["error"]["code"] == "unauthorized"


def test_error_style_switch_at_runtime(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    assert "code" in api.create({}).json()
    sandbox.config.error_style = "platform"
    assert api.create({}).json()["error"]["code"] == "validation_failed"


def test_order_auth_scope_rate_validation_conflict_quota(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(contact_limit=1)
    api = Api(sb)
    stored = api.create(ADA).json()["id"]
    invalid = {"email": "bad", "nickname": 1}
    # Authentication before everything.
    r = requests.post(sb.url + "/contacts", json=invalid, timeout=10)
    assert r.status_code == 401
    # Scope before validation.
    sb.add_token("reader")
    assert Api(sb, "reader").create(invalid).status_code == 403
    # Validation before conflict: invalid + taken email.
    assert api.create({"email": ADA["email"], "nickname": 1}).status_code == 422
    # Conflict before quota (the quota is full).
    r = api.create({"email": ADA["email"]})
    assert (r.status_code, r.json()["id"]) == (409, stored)
    # Quota: a new contact is refused, updates still work.
    r = api.create({"email": "new@example.com"})
    assert (r.status_code, r.json()["code"]) == (422, "quota_exceeded")
    assert api("PATCH", f"/contacts/{stored}", json={"first_name": "Q"}).status_code == 200
    assert api("DELETE", f"/contacts/{stored}").status_code == 204
    assert api.create({"email": "new@example.com"}).status_code == 201


def test_rate_limit_before_validation(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(rate_limit=2)
    api = Api(sb)
    statuses = [api.create({"nickname": 1}).status_code for _ in range(4)]
    assert 429 in statuses
    assert set(statuses) <= {422, 429}


def test_listing_pages_oldest_first(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    ids = [api.create({"email": f"p{i}@example.com"}).json()["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = api("GET", "/contacts", params=params)
        assert r.status_code == 200
        page = r.json()
        assert len(page["data"]) <= 3
        seen += [c["id"] for c in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    assert pages == 3


def test_listing_default_limit_is_50(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    for i in range(51):
        assert api.create({"email": f"d{i}@example.com"}).status_code == 201
    page = api("GET", "/contacts").json()
    assert len(page["data"]) == 50
    rest = api("GET", "/contacts", params={"cursor": page["next_cursor"], "limit": 100}).json()
    assert [c["email"] for c in rest["data"]] == ["d50@example.com"]
    assert rest["next_cursor"] is None
    assert len(api("GET", "/contacts", params={"limit": 100}).json()["data"]) == 51


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"),
     ({"cursor": "garbage!"}, "cursor")],
)  # fmt: skip
def test_listing_bad_params_422(sandbox: Sandbox, params: dict[str, Any], field: str) -> None:
    r = Api(sandbox)("GET", "/contacts", params=params)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_failed"
    assert [d["field"] for d in r.json()["details"]] == [field]


def test_lookup_by_email_and_phone(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    ada = api.create(ADA).json()
    api.create({"email": "bob@example.com", "phone_number": "+14155552671"})
    r = api("GET", "/contacts", params={"email": "ADA@Example.com"})
    assert r.json() == {"data": [ada], "next_cursor": None}
    assert api("GET", "/contacts", params={"phone_number": ADA["phone_number"]}).json()["data"] == [
        ada
    ]
    both = {"email": ADA["email"], "phone_number": "+14155552671"}
    assert api("GET", "/contacts", params=both).json()["data"] == []
    assert api("GET", "/contacts", params={"email": "nobody@example.com"}).json() == {
        "data": [],
        "next_cursor": None,
    }


# ---------------------------------------------------------------- section 4: errors


def test_unknown_route_and_method(sandbox: Sandbox) -> None:
    r = requests.get(sandbox.url + "/widgets", timeout=10)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = requests.get(sandbox.url.removesuffix("/v1") + "/", timeout=10)
    assert r.status_code == 404 and "message" in r.json()
    r = Api(sandbox)("PUT", "/contacts/ct_0000000000", json={})
    assert (r.status_code, r.json()["code"]) == (405, "method_not_allowed")
    assert set(r.headers["Allow"].split(", ")) >= {"GET", "PATCH", "DELETE"}


def test_x_request_id_on_every_answer(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(contact_limit=1)
    api = Api(sb)
    answers = [
        api.create(ADA),  # 201
        api("GET", "/contacts"),  # 200
        api.create(ADA),  # 409
        api.create({"email": "new@example.com"}),  # 422 quota
        api.create({}),  # 422
        requests.get(sb.url + "/contacts", timeout=10),  # 401
        oauth(sb, client_secret="x"),  # 401 invalid_client
        oauth(sb),  # 200
        requests.get(sb.url + "/nope", timeout=10),  # 404
        api("PUT", "/contacts"),  # 405
        api("POST", "/contacts", data=b"x" * (1024 * 1024 + 1),
            headers={"Content-Type": "application/json"}),  # 413
        api("POST", "/contacts", data="{", headers={"Content-Type": "application/json"}),  # 400
        api("DELETE", f"/contacts/{sb.contacts()[0]['id']}"),  # 204
    ]  # fmt: skip
    assert sorted({r.status_code for r in answers}) == [
        200,
        201,
        204,
        400,
        401,
        404,
        405,
        409,
        413,
        422,
    ]
    ids = [r.headers.get("X-Request-Id") for r in answers]
    assert all(ids) and len(set(ids)) == len(ids)
    assert [rec.request_id for rec in sb.request_log()] == ids


@pytest.mark.parametrize(
    ("data", "content_type", "code"),
    [
        (b"{not json", "application/json", "bad_request"),
        (b"[1, 2]", "application/json", "bad_request"),
        (b'"text"', "application/json", "bad_request"),
        (b"3", "application/json", "bad_request"),
        (b"", "application/json", "bad_request"),
        (b'{"email": NaN}', "application/json", "bad_request"),
        (b'{"email": "\xff"}', "application/json", "bad_request"),
        (b'{"email": "a@example.com", "first_name": "\\ud800"}', "application/json", "bad_request"),
        (
            b'{"email": "a@example.com", "custom_fields": {"\\udfff": 1}}',
            "application/json",
            "bad_request",
        ),
        (b"[" * 100_000, "application/json", "bad_request"),
        (b'{"email": "a@example.com"}', "text/plain", "bad_request"),
        (b"email=a@example.com", "application/x-www-form-urlencoded", "bad_request"),
    ],
)
def test_bad_bodies_get_400_envelope(
    sandbox: Sandbox, data: bytes, content_type: str, code: str
) -> None:
    api = Api(sandbox)
    cid = api.create(ADA).json()["id"]
    for method, path in (("POST", "/contacts"), ("PATCH", f"/contacts/{cid}")):
        r = api(method, path, data=data, headers={"Content-Type": content_type})
        assert r.status_code == 400, (method, r.text)
        assert r.json()["code"] == code
        assert "Traceback" not in r.text
    assert len(sandbox.contacts()) == 1


def test_escaped_surrogate_pair_is_one_character(sandbox: Sandbox) -> None:
    body = b'{"email": "emoji@example.com", "first_name": "\\ud83d\\ude00 \\\\ud800"}'
    r = Api(sandbox)("POST", "/contacts", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert r.json()["first_name"] == "\U0001f600 \\ud800"  # a pair, and a literal backslash


def test_body_over_1mb_is_413(sandbox_factory: Callable[..., Sandbox]) -> None:
    for style in ("contacts", "platform"):
        sb = sandbox_factory(error_style=style)
        big = b'{"email": "a@example.com", "first_name": "' + b"x" * (1 << 20) + b'"}'
        r = Api(sb)("POST", "/contacts", data=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        body = r.json()
        code = body["error"]["code"] if style == "platform" else body["code"]
        assert code == "payload_too_large"

        def chunks(data: bytes = big) -> Any:
            yield data

        r = Api(sb)(
            "POST", "/contacts", data=chunks(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 413  # chunked upload, no Content-Length
        assert sb.contacts() == []


def test_malformed_http_gets_json_envelope(sandbox: Sandbox) -> None:
    import socket

    port = int(sandbox.url.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0]
    assert b"X-Request-Id: req_" in head
    assert b'"code": "bad_request"' in body


# ---------------------------------------------------------------- section 5: headers


def test_rate_limit_headers_and_429(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(rate_limit=5)
    api = Api(sb)
    answers = [api("GET", "/contacts") for _ in range(8)]
    ok = [r for r in answers if r.status_code == 200]
    limited = [r for r in answers if r.status_code == 429]
    assert limited, "8 requests in well under a second must hit a limit of 5"
    for r in answers:
        assert r.headers["X-RateLimit-Limit"] == "5"
        assert 0 <= int(r.headers["X-RateLimit-Remaining"]) < 5
        assert 0 < float(r.headers["X-RateLimit-Reset"]) <= 1
    assert ok and int(ok[0].headers["X-RateLimit-Remaining"]) == 4
    r = limited[0]
    assert r.json()["code"] == "rate_limited"
    wait = float(r.headers["Retry-After"])
    assert 0 < wait <= 1
    time.sleep(wait + 0.01)
    assert api("GET", "/contacts").status_code == 200


def test_no_rate_limit_headers_when_unlimited(sandbox: Sandbox) -> None:
    r = Api(sandbox)("GET", "/contacts")
    assert "X-RateLimit-Limit" not in r.headers


def test_rate_limit_holds_under_16_threads(sandbox_factory: Callable[..., Sandbox]) -> None:
    limit = 40
    sb = sandbox_factory(rate_limit=limit)
    stop = time.monotonic() + 1.6

    def hammer() -> None:
        with requests.Session() as s:
            while time.monotonic() < stop:
                s.get(sb.url + "/contacts", headers=auth(sb.token), timeout=10)

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    admitted = sorted(rec.time for rec in sb.request_log() if rec.status == 200)
    refused = sum(1 for rec in sb.request_log() if rec.status == 429)
    assert refused > 0
    # A fixed one-second window admits at most `limit` per window, so any
    # one-second span holds at most two windows' worth.
    for i, t0 in enumerate(admitted):
        in_span = sum(1 for t in admitted[i:] if t - t0 < 1.0)
        assert in_span <= 2 * limit
    assert len(admitted) <= limit * 3  # 1.6 s touches at most 3 windows


def test_rate_window_never_reopens_for_a_late_clock_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two request threads: B reads the clock in window 1 and is counted; A had
    # read it a moment earlier (window 0) but reaches the counter after B. A
    # must count in window 1, not reopen window 0 with a fresh count.
    import types

    from synckit.sandbox import state

    readings = iter([100.0, 101.5, 100.99, 101.6])
    monkeypatch.setattr(state, "time", types.SimpleNamespace(monotonic=lambda: next(readings)))
    limiter = state.RateLimiter()
    assert limiter.hit(1)[0] is True  # B, window 1
    admitted, remaining, reset = limiter.hit(1)  # A's late reading
    assert (admitted, remaining) == (False, 0)
    assert 0 < reset <= 1
    assert limiter.hit(1)[0] is False  # window 1 is still spent


def test_idempotent_replay(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    key = {"Idempotency-Key": "create-ada-1"}
    first = api.create(ADA, headers=key)
    second = api.create(ADA, headers=key)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["X-Request-Id"] != first.headers["X-Request-Id"]
    assert len(sandbox.contacts()) == 1
    log = sandbox.request_log()
    assert [(rec.idempotency_key, rec.replayed) for rec in log] == [
        ("create-ada-1", False),
        ("create-ada-1", True),
    ]


def test_replay_of_errors_and_deletes(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    r1 = api.create({"nickname": 1}, headers={"Idempotency-Key": "bad"})
    r2 = api.create({"nickname": 1}, headers={"Idempotency-Key": "bad"})
    assert r1.status_code == r2.status_code == 422 and r1.json() == r2.json()
    assert r2.headers["Idempotent-Replayed"] == "true"
    cid = api.create(ADA).json()["id"]
    d1 = api("DELETE", f"/contacts/{cid}", headers={"Idempotency-Key": "del"})
    d2 = api("DELETE", f"/contacts/{cid}", headers={"Idempotency-Key": "del"})
    assert (d1.status_code, d2.status_code) == (204, 204)  # not 404: replayed
    assert d2.headers["Idempotent-Replayed"] == "true"
    # Without a key the same delete is done again and finds nothing.
    assert api("DELETE", f"/contacts/{cid}").status_code == 404


def test_replay_of_a_bad_body_400(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    bad = {"Idempotency-Key": "bad-json", "Content-Type": "application/json"}
    r1 = api("POST", "/contacts", data=b"{", headers=bad)
    r2 = api("POST", "/contacts", data=b"{", headers=bad)
    assert (r1.status_code, r2.status_code) == (400, 400) and r1.json() == r2.json()
    assert r2.headers.get("Idempotent-Replayed") == "true"
    # The key is taken by that body now: another body with it is a reuse.
    r3 = api.create(ADA, headers={"Idempotency-Key": "bad-json"})
    assert (r3.status_code, r3.json()["code"]) == (422, "idempotency_key_reused")
    assert sandbox.contacts() == []


def test_idempotency_key_reused(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    assert api.create(ADA, headers={"Idempotency-Key": "k"}).status_code == 201
    cid = sandbox.contacts()[0]["id"]
    for method, path, body in [
        ("POST", "/contacts", {"email": "other@example.com"}),  # different body
        ("PATCH", f"/contacts/{cid}", ADA),  # different method and path
    ]:
        r = api(method, path, json=body, headers={"Idempotency-Key": "k"})
        assert (r.status_code, r.json()["code"]) == (422, "idempotency_key_reused")
    assert len(sandbox.contacts()) == 1


def test_idempotency_key_length(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    r = api.create(ADA, headers={"Idempotency-Key": "k" * 256})
    assert (r.status_code, r.json()["code"]) == (400, "bad_request")
    assert sandbox.contacts() == []
    assert api.create(ADA, headers={"Idempotency-Key": "k" * 255}).status_code == 201


def test_idempotency_records_are_bounded() -> None:
    from synckit.sandbox.state import IdempotencyCache, StoredAnswer

    cache = IdempotencyCache(max_records=3)
    for key in ("k1", "k2", "k3", "k4"):
        assert cache.begin("o", key, "fp")[0] == "new"
        cache.finish("o", key, StoredAnswer(201, key.encode(), ()))
    assert [cache.begin("o", k, "fp")[0] for k in ("k2", "k3", "k4")] == ["replay"] * 3
    assert cache.begin("o", "k1", "fp")[0] == "new"  # the oldest was forgotten
    assert cache.begin("o", "k2", "fp")[0] == "new"  # and k1's new claim pushed out k2


def test_request_in_progress(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(latency_ms=400)
    api = Api(sb)
    key = {"Idempotency-Key": "slow"}
    results: list[requests.Response] = []
    first = threading.Thread(target=lambda: results.append(api.create(ADA, headers=key)))
    first.start()
    time.sleep(0.15)
    r = api.create(ADA, headers=key)
    first.join()
    assert (r.status_code, r.json()["code"]) == (409, "request_in_progress")
    assert float(r.headers["Retry-After"]) > 0
    assert results[0].status_code == 201
    again = api.create(ADA, headers=key)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert len(sb.contacts()) == 1


def test_idempotency_keys_are_scoped_per_credential(sandbox: Sandbox) -> None:
    sandbox.add_token("other_writer", scopes=("contacts:read", "contacts:write"))
    key = {"Idempotency-Key": "shared"}
    assert Api(sandbox).create(ADA, headers=key).status_code == 201
    r = Api(sandbox, "other_writer").create(ADA, headers=key)
    assert r.status_code == 409  # ran afresh for the other credential: a real conflict
    assert "Idempotent-Replayed" not in r.headers
    # Added tokens are separate credentials even when their text starts alike.
    both = ("contacts:read", "contacts:write")
    sandbox.add_token("writer_token_1", scopes=both)
    sandbox.add_token("writer_token_2", scopes=both)
    carol = {"email": "carol@example.com"}
    assert Api(sandbox, "writer_token_1").create(carol, headers=key).status_code == 201
    assert Api(sandbox, "writer_token_2").create(carol, headers=key).status_code == 409
    # Two OAuth tokens of the same client share keys (a renewed token still replays).
    t1, t2 = (oauth(sandbox).json()["access_token"] for _ in range(2))
    body = {"email": "bob@example.com"}
    assert Api(sandbox, t1).create(body, headers={"Idempotency-Key": "o"}).status_code == 201
    r = Api(sandbox, t2).create(body, headers={"Idempotency-Key": "o"})
    assert r.status_code == 201 and r.headers["Idempotent-Replayed"] == "true"


# ---------------------------------------------------------------- faults


def test_latency(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(latency_ms=150)
    start = time.perf_counter()
    assert Api(sb)("GET", "/contacts").status_code == 200
    assert time.perf_counter() - start >= 0.15
    sb.config.latency_ms = 0
    start = time.perf_counter()
    Api(sb)("GET", "/contacts")
    assert time.perf_counter() - start < 0.15


def test_fail_rate_answers_before_any_work(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(fail_rate=1.0, seed=7)
    api = Api(sb)
    answers = [api.create({"email": f"f{i}@example.com"}) for i in range(30)]
    assert sb.contacts() == []
    seen = {(r.status_code, r.json()["code"]) for r in answers}
    assert seen == {(500, "internal_error"), (503, "unavailable")}
    retry_after = [r.headers.get("Retry-After") for r in answers if r.status_code == 503]
    assert any(v is not None for v in retry_after) and any(v is None for v in retry_after)
    assert all(float(v) > 0 for v in retry_after if v is not None)
    # A failed keyed request stored nothing: once faults stop, the same key does the work.
    r = api.create(ADA, headers={"Idempotency-Key": "after-fault"})
    assert r.status_code >= 500
    sb.config.fail_rate = 0.0
    r = api.create(ADA, headers={"Idempotency-Key": "after-fault"})
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers


def test_faults_spare_the_token_endpoint(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(fail_rate=1.0, drop_rate=1.0)
    assert all(oauth(sb).status_code == 200 for _ in range(5))
    assert Api(sb)("GET", "/contacts").status_code >= 500


def test_fail_rate_is_reproducible_with_seed(sandbox_factory: Callable[..., Sandbox]) -> None:
    runs = []
    for _ in range(2):
        sb = sandbox_factory(fail_rate=0.5, seed=42)
        runs.append([Api(sb)("GET", "/contacts").status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert 200 in runs[0] and any(s >= 500 for s in runs[0])


def test_drop_rate_commits_then_closes(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(drop_rate=1.0)
    api = Api(sb)
    with pytest.raises(requests.ConnectionError):
        api.create(ADA, headers={"Idempotency-Key": "dropped"})
    assert [c["email"] for c in sb.contacts()] == [ADA["email"]]  # committed
    assert sb.request_log()[-1].dropped
    assert api("GET", "/contacts").status_code == 200  # reads are never dropped
    sb.config.drop_rate = 0.0
    r = api.create(ADA, headers={"Idempotency-Key": "dropped"})
    assert r.status_code == 201 and r.headers["Idempotent-Replayed"] == "true"
    assert r.json()["id"] == sb.contacts()[0]["id"]
    assert len(sb.contacts()) == 1


def test_request_log_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from synckit.sandbox import app

    monkeypatch.setattr(app, "REQUEST_LOG_LIMIT", 5, raising=False)
    with serve_sandbox() as sb:
        with requests.Session() as s:
            answers = [s.get(sb.url + "/contacts", headers=auth(sb.token)) for _ in range(8)]
        log = sb.request_log()
    assert [rec.request_id for rec in log] == [r.headers["X-Request-Id"] for r in answers[-5:]]


def test_reset_forgets_everything(sandbox: Sandbox) -> None:
    api = Api(sandbox)
    api.create(ADA, headers={"Idempotency-Key": "r"})
    token = oauth(sandbox).json()["access_token"]
    sandbox.reset()
    assert sandbox.contacts() == [] and sandbox.request_log() == []
    assert Api(sandbox, token)("GET", "/contacts").status_code == 401
    r = api.create(ADA, headers={"Idempotency-Key": "r"})
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers


def test_persistence_across_restart(tmp_path: Any) -> None:
    db = str(tmp_path / "contacts.db")
    with serve_sandbox(db=db) as sb:
        created = Api(sb).create(ADA).json()
        Api(sb).create({"email": "bob@example.com"})
    with serve_sandbox(db=db) as again:
        api = Api(again)
        assert api("GET", f"/contacts/{created['id']}").json() == created
        assert [c["email"] for c in again.contacts()] == [ADA["email"], "bob@example.com"]
        assert api.create({"email": ADA["email"].upper()}).json()["id"] == created["id"]  # 409
        assert api.create({"email": "carol@example.com"}).status_code == 201
    with serve_sandbox() as fresh:  # in memory: nothing carried over
        assert fresh.contacts() == []


# ---------------------------------------------------------------- the server itself


@pytest.fixture
def accepted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Grows by one for every TCP connection a sandbox server accepts."""
    from synckit.sandbox import server

    seen: list[int] = []
    setup = server._Handler.setup

    def counting_setup(self: Any) -> None:
        seen.append(1)
        setup(self)

    monkeypatch.setattr(server._Handler, "setup", counting_setup)
    return seen


def test_keep_alive_survives_unread_bodies(sandbox: Sandbox, accepted: list[int]) -> None:
    with requests.Session() as s:
        # Refused before the body matters (401): the connection must still be usable.
        r = s.post(sandbox.url + "/contacts", json={"email": "x" * 5000 + "@example.com"})
        assert r.status_code == 401
        r = s.post(sandbox.url + "/contacts", json=ADA, headers=auth(sandbox.token))
        assert r.status_code == 201
        r = s.post(
            sandbox.url + "/contacts",
            data=b"{" + b" " * (1 << 20) + b"}",
            headers={**auth(sandbox.token), "Content-Type": "application/json"},
        )
        assert r.status_code == 413
        r = s.get(
            sandbox.url + f"/contacts/{sandbox.contacts()[0]['id']}", headers=auth(sandbox.token)
        )
        assert r.status_code == 200 and r.json()["email"] == ADA["email"]
        r = s.head(sandbox.url + "/contacts", headers=auth(sandbox.token))
        assert r.status_code == 200 and r.content == b""
        assert s.get(sandbox.url + "/contacts", headers=auth(sandbox.token)).status_code == 200
        # Seven requests on two TCP connections: only the 413 (body left
        # unread) closed one. Without HTTP/1.1 keep-alive this would be seven.
        assert len(accepted) == 2


def test_keep_alive_one_connection_for_many_requests(sandbox: Sandbox, accepted: list[int]) -> None:
    with requests.Session() as s:
        h = auth(sandbox.token)
        for i in range(5):
            assert (
                s.post(
                    sandbox.url + "/contacts",
                    json={"email": f"k{i}@example.com"},
                    headers={**h, "Idempotency-Key": f"k{i}"},
                ).status_code
                == 201
            )
            assert s.get(sandbox.url + "/contacts", headers=h).status_code == 200
            assert s.get(sandbox.url + "/contacts/ct_none", headers=h).status_code == 404
        r = s.get(sandbox.url + "/contacts", headers=h)
        assert r.raw.version == 11 and "close" not in r.headers.get("Connection", "")
        assert len(accepted) == 1  # 16 requests, one TCP connection


def test_expect_100_continue_gets_one_interim_answer(sandbox: Sandbox) -> None:
    import contextlib
    import socket

    body = b'{"email": "expect@example.com"}'
    for extra in (b"", b"x" * (1 << 20)):  # read in our handler / oversized: Werkzeug's path
        payload = body[:-1] + b', "first_name": "' + extra + b'"}' if extra else body
        head = (
            b"POST /v1/contacts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + sandbox.token.encode() + b"\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n"
        )
        with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as s:
            s.sendall(head)
            raw = s.recv(100)
            with contextlib.suppress(OSError):  # an oversized body may be refused unread
                s.sendall(payload)
            s.shutdown(socket.SHUT_WR)  # Werkzeug drains an unread body until EOF
            while chunk := s.recv(65536):
                raw += chunk
        interim, _, final = raw.partition(b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue"
        assert final.startswith(b"HTTP/1.1 201 " if not extra else b"HTTP/1.1 413 "), raw[:80]
    assert [c["email"] for c in sandbox.contacts()] == ["expect@example.com"]


def test_stopping_closes_open_connections() -> None:
    with requests.Session() as s:
        with serve_sandbox() as sb:
            url, token = sb.url, sb.token
            assert s.get(url + "/contacts", headers=auth(token)).status_code == 200
        with pytest.raises(requests.ConnectionError):
            s.get(url + "/contacts", headers=auth(token), timeout=5)


def test_taken_port_is_a_config_error(sandbox: Sandbox) -> None:
    from synckit.errors import ConfigError

    port = int(sandbox.url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(ConfigError), serve_sandbox(port=port):
        pass
    with pytest.raises(ConfigError):
        serve_sandbox(error_style="nested").__enter__()
    with pytest.raises(ConfigError):
        serve_sandbox(no_such_setting=1).__enter__()


def test_unopenable_db_is_a_config_error(tmp_path: Any) -> None:
    from synckit.errors import ConfigError

    with pytest.raises(ConfigError, match="database"):
        serve_sandbox(db=str(tmp_path / "missing-dir" / "x.db")).__enter__()


def test_notebook_html_hides_credentials(sandbox: Sandbox) -> None:
    Api(sandbox).create(ADA)
    page = sandbox._repr_html_()
    assert sandbox.url in page and "<td>1</td>" in page
    assert sandbox.token not in page and sandbox.client_secret not in page


@pytest.mark.parametrize(
    "module",
    ["synckit.sandbox", "synckit.sandbox.app", "synckit.sandbox.config", "synckit.sandbox.server",
     "synckit.sandbox.state", "synckit.sandbox.store"],
)  # fmt: skip
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
