"""The sandbox's WSGI application: the Contacts API contract (sections 1 to 5) over Werkzeug.

Each request goes through the contract's order of checks::

    route (404/405) -> authentication (401) -> scope (403) -> rate limit (429)
    -> body size / Idempotency-Key shape (413/400) -> idempotency (replay, 422 reused,
    409 in progress) -> latency -> injected fault (500/503, before any work)
    -> the endpoint: body parsing (400), another organisation's contact (403 forbidden)
       or none (404), field rules (422), conflict (409), quota (422)
    -> injected drop (a committed write whose connection is closed unanswered)

Every answer, including the ones Werkzeug's routing produces, carries an
``X-Request-Id`` and uses the configured error envelope.

Example:
    >>> from werkzeug.test import Client
    >>> app = SandboxApp(SandboxConfig())
    >>> auth = {"Authorization": "Bearer sk_test_synckit_demo"}
    >>> resp = Client(app).get("/v1/contacts", headers=auth)
    >>> resp.status_code, resp.json["data"], "X-Request-Id" in resp.headers
    (200, [], True)
"""

from __future__ import annotations

import base64
import binascii
import collections
import functools
import hashlib
import hmac
import json
import random
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request

from synckit import rules
from synckit.sandbox.config import RequestRecord, SandboxConfig
from synckit.sandbox.state import (
    DEFAULT_ORG,
    READ,
    SCOPES,
    WRITE,
    IdempotencyCache,
    RateLimiter,
    StoredAnswer,
    TokenInfo,
    TokenTable,
)
from synckit.sandbox.store import ContactStore

__all__ = [
    "DROP_ENVIRON_KEY",
    "MAX_BODY_BYTES",
    "MAX_IDEMPOTENCY_KEY",
    "REQUEST_LOG_LIMIT",
    "SandboxApp",
]

#: Larger bodies get 413 payload_too_large.
MAX_BODY_BYTES = 1 << 20
MAX_IDEMPOTENCY_KEY = 255
#: The request log keeps the most recent this many requests: a sandbox serving a
#: long sync (a million rows is a million requests) must not grow without bound.
REQUEST_LOG_LIMIT = 200_000
#: The server puts a callable here that makes the handler close the connection unanswered.
DROP_ENVIRON_KEY = "synckit.drop_connection"

_WRITES = frozenset({"POST", "PATCH", "DELETE"})
_VALIDATION_MESSAGE = "One or more fields failed validation"
_CONFLICT_MESSAGE = "A contact with this email or phone number already exists"
_FORBIDDEN_MESSAGE = "The contact belongs to another organisation"
_LIMIT_MESSAGE = "must be an integer from 1 to 100"
_TOO_LARGE_MESSAGE = f"Request bodies are limited to {MAX_BODY_BYTES} bytes"
_JSON_TYPES = ("application/json",)
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


class _Request(Request):
    # Werkzeug refuses a larger Content-Length outright, but a chunked body is
    # only cut off at the limit; one byte of headroom lets _read_body tell
    # "exactly the limit" from "more than the limit".
    max_content_length = MAX_BODY_BYTES + 1
    max_form_memory_size = MAX_BODY_BYTES


@dataclass
class _Answer:
    """An answer being built, plus what the log and the server need to know about it."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Context:
    request_id: str
    idempotency_key: str | None = None
    replayed: bool = False
    drop: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)


class _Reject(Exception):
    """Raised inside the pipeline to answer at once with ``answer``."""

    def __init__(self, answer: _Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _reject_constant(name: str) -> Any:
    # NaN / Infinity are not JSON; Python's parser would accept them.
    raise ValueError(f"{name} is not valid JSON")


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, number = text.partition(":")
    if prefix != "seq" or not number.isdigit():
        return None
    return int(number)


@functools.cache
def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _format_seconds(seconds: float) -> str:
    return f"{max(seconds, 0.001):.3f}"


class SandboxApp:
    """The Contacts API as a WSGI callable, with its state (store, tokens, idempotency, log).

    ``config`` is read on every request, so changing it takes effect at once.
    """

    def __init__(self, config: SandboxConfig, store: ContactStore | None = None) -> None:
        self.config = config
        self.store = store if store is not None else ContactStore(config.db)
        self.tokens = TokenTable()
        self.idempotency = IdempotencyCache()
        self.limiter = RateLimiter()
        self._log: collections.deque[RequestRecord] = collections.deque(maxlen=REQUEST_LOG_LIMIT)
        self._log_lock = threading.Lock()
        self._rng = random.Random(config.seed)
        self._rng_lock = threading.Lock()
        self._map = Map(
            [
                Rule("/v1/oauth/token", methods=["POST"], endpoint="token"),
                Rule("/v1/contacts", methods=["GET", "POST"], endpoint="contacts"),
                Rule(
                    "/v1/contacts/<contact_id>",
                    methods=["GET", "PATCH", "DELETE"],
                    endpoint="contact",
                ),
            ],
            strict_slashes=False,
            merge_slashes=False,
        )
        # Bound once: binding per request (bind_to_environ) rebuilds URLs each time.
        self._adapter = self._map.bind("sandbox")
        self._endpoints: dict[str, Callable[..., _Answer]] = {
            "contacts:GET": self._list,
            "contacts:HEAD": self._list,
            "contacts:POST": self._create,
            "contact:GET": self._get,
            "contact:HEAD": self._get,
            "contact:PATCH": self._update,
            "contact:DELETE": self._delete,
        }

    # ------------------------------------------------------------------ state

    def request_log(self) -> list[RequestRecord]:
        """The most recent requests (at most :data:`REQUEST_LOG_LIMIT`), in arrival order."""
        with self._log_lock:
            return list(self._log)

    def reset(self) -> None:
        """Forget contacts, issued tokens, idempotency records, the rate window and the log."""
        self.store.clear()
        self.tokens.clear()
        self.idempotency.clear()
        self.limiter.clear()
        with self._log_lock:
            self._log.clear()

    def _roll(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._rng_lock:
            return self._rng.random() < probability

    # --------------------------------------------------------------- envelope

    def _error(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: Iterable[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> _Answer:
        """An error answer in the configured envelope (``fields``: (field, message) pairs)."""
        pairs = list(fields)
        if self.config.error_style == "platform":
            error: dict[str, Any] = {"code": code, "message": message}
            if pairs:
                grouped: dict[str, list[str]] = {}
                for name, text in pairs:
                    grouped.setdefault(name, []).append(text)
                error["details"] = grouped
            payload: dict[str, Any] = {"error": error}
        else:
            payload = {"code": code, "message": message}
            if pairs:
                payload["details"] = [{"field": n, "message": t} for n, t in pairs]
        return _Answer(status, _dumps(payload), dict(headers or {}))

    def _validation(self, pairs: Iterable[tuple[str, str]]) -> _Answer:
        # The platform envelope reports validation as 400, the contacts envelope as 422.
        status = 400 if self.config.error_style == "platform" else 422
        return self._error(status, "validation_failed", _VALIDATION_MESSAGE, fields=pairs)

    def _conflict(self, existing_id: str) -> _Answer:
        if self.config.error_style == "platform":
            payload: dict[str, Any] = {
                "error": {
                    "code": "duplicate",
                    "message": _CONFLICT_MESSAGE,
                    "details": {"id": existing_id},
                }
            }
        else:
            payload = {"code": "conflict", "message": _CONFLICT_MESSAGE, "id": existing_id}
        return _Answer(409, _dumps(payload))

    def _bad_request(self, message: str) -> _Answer:
        return self._error(400, "bad_request", message)

    # ------------------------------------------------------------------- WSGI

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        arrived = time.time()
        request = _Request(environ)
        ctx = _Context(request_id="req_" + secrets.token_hex(8))
        try:
            answer = self._pipeline(request, ctx)
        except _Reject as exc:
            answer = exc.answer
        except Exception:
            # A bug must still answer in the envelope, never with a traceback.
            answer = self._error(500, "internal_error", "Unexpected sandbox error")
        headers = dict(answer.headers)
        headers.update(ctx.extra_headers)
        headers["X-Request-Id"] = ctx.request_id
        if answer.status != 204:
            headers["Content-Length"] = str(len(answer.body))
            if answer.body:
                headers.setdefault("Content-Type", "application/json")
        if ctx.drop:
            drop = environ.get(DROP_ENVIRON_KEY)
            if drop is None:
                ctx.drop = False
            else:
                drop()
        record = RequestRecord(
            method=request.method,
            path=request.path,
            status=answer.status,
            idempotency_key=ctx.idempotency_key,
            replayed=ctx.replayed,
            time=arrived,
            request_id=ctx.request_id,
            dropped=ctx.drop,
        )
        with self._log_lock:
            self._log.append(record)
        # Answered without werkzeug's Response object: every header here is
        # already plain ASCII, and skipping its header machinery saves a
        # noticeable share of a request's server time.
        start_response(f"{answer.status} {_reason(answer.status)}", list(headers.items()))
        return [] if request.method == "HEAD" else [answer.body]

    def _pipeline(self, request: Request, ctx: _Context) -> _Answer:
        try:
            endpoint, args = self._adapter.match(request.path, request.method)
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or ()))
            return self._error(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here",
                headers={"Allow": allowed},
            )
        except HTTPException:
            return self._error(404, "not_found", "No such endpoint")
        if endpoint == "token":
            return self._token(request, ctx)

        grant = self._authenticate(request)
        needed = READ if request.method in ("GET", "HEAD") else WRITE
        if needed not in grant.scopes:
            return self._error(403, "insufficient_scope", f"This token lacks the {needed} scope")
        self._rate_limit(ctx)

        cfg = self.config
        body = self._read_body(request) if request.method in _WRITES else b""
        key = request.headers.get("Idempotency-Key")
        if key is not None and request.method in _WRITES:
            if not key or len(key) > MAX_IDEMPOTENCY_KEY:
                return self._bad_request(
                    f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
                )
            ctx.idempotency_key = key
            fingerprint = IdempotencyCache.fingerprint(request.method, request.path, body)
            outcome, stored = self.idempotency.begin(grant.owner, key, fingerprint)
            if outcome == "reused":
                return self._error(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with a different method, path or body",
                )
            if outcome == "busy":
                wait = _format_seconds(max(0.05, cfg.latency_ms / 1000))
                return self._error(
                    409,
                    "request_in_progress",
                    "A request with this Idempotency-Key is still being processed",
                    headers={"Retry-After": wait},
                )
            if outcome == "replay" and stored is not None:
                ctx.replayed = True
                headers = dict(stored.headers)
                headers["Idempotent-Replayed"] = "true"
                return _Answer(stored.status, stored.body, headers)
        else:
            key = None

        try:
            if cfg.latency_ms > 0:
                time.sleep(cfg.latency_ms / 1000)
            fault = self._fault()
            if fault is None:
                try:
                    handler = self._endpoints[f"{endpoint}:{request.method}"]
                    answer = handler(request, body, grant.org, **args)
                except _Reject as exc:
                    # A 400 for the body is a completed answer too: kept and
                    # replayed like a 422, not forgotten like an injected fault.
                    answer = exc.answer
            else:
                answer = fault
        except BaseException:
            if key is not None:
                self.idempotency.abandon(grant.owner, key)
            raise
        if key is not None:
            if answer.status >= 500:
                self.idempotency.abandon(grant.owner, key)
            else:
                stored_headers = tuple((k, v) for k, v in answer.headers.items() if k == "Location")
                self.idempotency.finish(
                    grant.owner, key, StoredAnswer(answer.status, answer.body, stored_headers)
                )
        if request.method in _WRITES and answer.status < 300 and self._roll(cfg.drop_rate):
            ctx.drop = True
        return answer

    # ----------------------------------------------------------------- guards

    def _authenticate(self, request: Request) -> TokenInfo:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        token = token.strip()
        grant: TokenInfo | None = None
        if scheme.lower() == "bearer" and token:
            static = self.config.token
            if hmac.compare_digest(token.encode(), static.encode()):
                owner = "token:" + hashlib.sha256(static.encode()).hexdigest()[:16]
                grant = TokenInfo(frozenset(SCOPES), None, owner, DEFAULT_ORG)
            else:
                grant = self.tokens.lookup(token)
        if grant is None:
            raise _Reject(
                self._error(
                    401,
                    "unauthorized",
                    "The bearer token is missing, expired, revoked or invalid",
                    headers={"WWW-Authenticate": 'Bearer realm="synckit-sandbox"'},
                )
            )
        return grant

    def _rate_limit(self, ctx: _Context) -> None:
        limit = self.config.rate_limit
        if limit <= 0:
            return
        admitted, remaining, reset = self.limiter.hit(limit)
        ctx.extra_headers.update(
            {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": _format_seconds(reset),
            }
        )
        if not admitted:
            raise _Reject(
                self._error(
                    429,
                    "rate_limited",
                    f"More than {limit} requests per second",
                    headers={"Retry-After": _format_seconds(reset)},
                )
            )

    def _fault(self) -> _Answer | None:
        if not self._roll(self.config.fail_rate):
            return None
        if self._roll(0.5):
            return self._error(500, "internal_error", "Injected failure (fail_rate)")
        headers = {"Retry-After": "0.100"} if self._roll(0.5) else {}
        return self._error(
            503, "unavailable", "Injected unavailability (fail_rate)", headers=headers
        )

    def _read_body(self, request: Request) -> bytes:
        try:
            body = request.get_data(cache=True)
            if len(body) > MAX_BODY_BYTES:
                raise RequestEntityTooLarge()
            return body
        except RequestEntityTooLarge:
            raise _Reject(
                self._error(
                    413,
                    "payload_too_large",
                    f"Request bodies are limited to {MAX_BODY_BYTES} bytes",
                )
            ) from None
        except HTTPException:
            raise _Reject(self._bad_request("The request body could not be read")) from None

    def _json_object(self, request: Request, body: bytes) -> dict[str, Any]:
        mimetype = request.mimetype
        if mimetype not in _JSON_TYPES and not mimetype.endswith("+json"):
            raise _Reject(self._bad_request("Content-Type must be application/json"))
        try:
            value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _Reject(self._bad_request("The request body is not valid JSON")) from None
        if not isinstance(value, dict):
            raise _Reject(self._bad_request("The request body must be a JSON object"))
        if _ESCAPED_SURROGATE.search(body):
            # JSON's grammar allows "\ud800" alone, but it is no character:
            # storing or answering it would fail to encode (a 500). Pairs are fine.
            try:
                _dumps(value)
            except UnicodeEncodeError:
                raise _Reject(
                    self._bad_request("The request body holds an unpaired UTF-16 surrogate")
                ) from None
        return value

    # -------------------------------------------------------------- endpoints

    def _token(self, request: Request, ctx: _Context) -> _Answer:
        cfg = self.config
        # The content type first: reading request.form would parse a multipart body
        # (the parser behind Werkzeug's multipart denial-of-service advisories) only
        # to refuse it afterwards.
        if request.mimetype != "application/x-www-form-urlencoded":
            return self._bad_request("Content-Type must be application/x-www-form-urlencoded")
        try:
            form = request.form
        except RequestEntityTooLarge:
            return self._error(413, "payload_too_large", _TOO_LARGE_MESSAGE)
        client_id = form.get("client_id")
        secret = form.get("client_secret")
        basic = request.authorization
        if basic is not None and basic.type == "basic" and client_id is None:
            client_id, secret = basic.username, basic.password
        if form.get("grant_type") != "client_credentials":
            return self._bad_request("grant_type must be client_credentials")
        ok = (
            client_id is not None
            and secret is not None
            and hmac.compare_digest(client_id.encode(), cfg.client_id.encode())
            and hmac.compare_digest(secret.encode(), cfg.client_secret.encode())
        )
        if not ok:
            return self._error(401, "invalid_client", "The client id or secret is incorrect")
        requested = tuple(dict.fromkeys((form.get("scope") or "").split()))
        unknown = [s for s in requested if s not in SCOPES]
        if unknown:
            return self._error(
                401, "invalid_scope", f"Scope not enabled for this application: {unknown[0]}"
            )
        scopes = requested or SCOPES
        self._rate_limit(ctx)
        ttl = cfg.token_ttl
        token = self.tokens.issue(owner="client:" + cfg.client_id, scopes=scopes, ttl=ttl)
        payload = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            "scope": " ".join(scopes),
        }
        return _Answer(200, _dumps(payload), {"Cache-Control": "no-store"})

    def _contact_answer(self, status: int, contact: Mapping[str, Any]) -> _Answer:
        return _Answer(status, _dumps(contact))

    def _get(self, request: Request, body: bytes, org: str, contact_id: str) -> _Answer:
        return self._contact_answer(200, self._owned(contact_id, org))

    def _owned(self, contact_id: str, org: str) -> dict[str, Any]:
        """``org``'s contact with this id; 403 when another organisation holds it, else 404."""
        found = self.store.locate(contact_id)
        if found is None:
            raise _Reject(self._error(404, "not_found", "The contact could not be found"))
        owner, contact = found
        if owner != org:
            # The contract's 403 forbidden. It does tell a caller that the id
            # exists elsewhere; ids are random, so that reveals nothing useful.
            raise _Reject(self._error(403, "forbidden", _FORBIDDEN_MESSAGE))
        return contact

    def _list(self, request: Request, body: bytes, org: str) -> _Answer:
        params = request.args
        problems: list[tuple[str, str]] = []
        limit = 50
        raw_limit = params.get("limit")
        if raw_limit is not None:
            try:
                limit = int(raw_limit)
            except ValueError:
                limit = 0
            if not 1 <= limit <= 100:
                problems.append(("limit", _LIMIT_MESSAGE))
        after = 0
        cursor = params.get("cursor")
        if cursor:
            decoded = _decode_cursor(cursor)
            if decoded is None:
                problems.append(("cursor", "is not a cursor this server issued"))
            else:
                after = decoded
        if problems:
            return self._validation(problems)
        email = params.get("email") or None
        phone = params.get("phone_number") or None
        contacts, last = self.store.page(
            org=org, after=after, limit=limit, email=email.lower() if email else None, phone=phone
        )
        payload = {"data": contacts, "next_cursor": _encode_cursor(last) if last else None}
        return _Answer(200, _dumps(payload))

    def _conflicting_id(
        self, email: str | None, phone: str | None, *, org: str, exclude: str | None
    ) -> str | None:
        # The email match wins when email and phone belong to different contacts.
        if email:
            found = self.store.id_by_email(email, org=org)
            if found is not None and found != exclude:
                return found
        if phone:
            found = self.store.id_by_phone(phone, org=org)
            if found is not None and found != exclude:
                return found
        return None

    def _create(self, request: Request, body: bytes, org: str) -> _Answer:
        data = self._json_object(request, body)
        errors = rules.check_contact(data, sms_countries=self.config.sms_countries)
        if errors:
            return self._validation((e.field, e.message) for e in errors)
        now = _now_iso()
        contact: dict[str, Any] = {"id": ""}
        for name in rules.FIELDS:
            contact[name] = data.get(name)
        contact["email"] = contact["email"].lower() if contact["email"] else None
        contact["phone_number"] = contact["phone_number"] or None
        if contact["custom_fields"] is not None:
            contact["custom_fields"] = {
                k: v for k, v in contact["custom_fields"].items() if v is not None
            }
        contact["created_at"] = contact["updated_at"] = now
        with self.store.lock:
            existing = self._conflicting_id(
                contact["email"], contact["phone_number"], org=org, exclude=None
            )
            if existing is not None:
                return self._conflict(existing)
            limit = self.config.contact_limit
            if limit is not None and self.store.count(org=org) >= limit:
                return self._error(
                    422, "quota_exceeded", f"The plan's limit of {limit} contacts is reached"
                )
            while True:
                contact["id"] = "ct_" + secrets.token_hex(5)
                try:
                    self.store.insert(contact, org=org)
                    break
                except sqlite3.IntegrityError:
                    continue  # an id collision: the uniqueness of email/phone was checked above
        answer = self._contact_answer(201, contact)
        answer.headers["Location"] = f"/v1/contacts/{contact['id']}"
        return answer

    def _update(self, request: Request, body: bytes, org: str, contact_id: str) -> _Answer:
        data = self._json_object(request, body)
        with self.store.lock:
            current = self._owned(contact_id, org)
            errors = rules.check_contact(
                data, current=current, sms_countries=self.config.sms_countries
            )
            custom = data.get("custom_fields")
            merged_custom: dict[str, Any] | None = None
            if isinstance(custom, dict) and not any(e.field == "custom_fields" for e in errors):
                # PATCH merges key by key; a None value removes the key.
                merged_custom = dict(current.get("custom_fields") or {})
                for key, item in custom.items():
                    if item is None:
                        merged_custom.pop(key, None)
                    else:
                        merged_custom[key] = item
                # The key limit is the contact's, so it holds after the merge too.
                if len(merged_custom) > rules.CUSTOM_FIELDS_MAX_KEYS:
                    errors.append(rules.FieldError.of("custom_fields", "nested_custom_fields"))
            if errors:
                return self._validation((e.field, e.message) for e in errors)
            updated = dict(current)
            for name in rules.FIELDS:
                if name not in data:
                    continue
                value = data[name]
                if name == "custom_fields" and merged_custom is not None:
                    value = merged_custom
                elif name == "email":
                    value = value.lower() if value else None
                elif name == "phone_number":
                    value = value or None
                updated[name] = value
            existing = self._conflicting_id(
                updated["email"] if "email" in data else None,
                updated["phone_number"] if "phone_number" in data else None,
                org=org,
                exclude=contact_id,
            )
            if existing is not None:
                return self._conflict(existing)
            if updated != current:
                updated["updated_at"] = _now_iso()
                self.store.replace(updated)
        return self._contact_answer(200, updated)

    def _delete(self, request: Request, body: bytes, org: str, contact_id: str) -> _Answer:
        with self.store.lock:
            self._owned(contact_id, org)
            self.store.delete(contact_id)
        return _Answer(204)
