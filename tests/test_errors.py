"""error_from_response: both envelopes, code before status, unreadable bodies, Retry-After."""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from typing import Any

import pytest

import synckit
from synckit.errors import (
    APIError,
    AuthError,
    BusinessRuleError,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    SynckitError,
    TransportError,
    ValidationFailed,
    error_from_response,
    normalise_details,
    parse_retry_after,
)


def contacts(code: str, **extra: Any) -> bytes:
    return json.dumps({"code": code, "message": f"{code} happened", **extra}).encode()


def platform(code: str, details: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": f"{code} happened"}
    if details is not None:
        error["details"] = details
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "body", "cls", "retryable"),
    [
        (400, platform("validation_failed", {"email": ["bad"]}), ValidationFailed, False),
        (422, contacts("validation_failed", details=[]), ValidationFailed, False),
        (400, contacts("bad_request"), APIError, False),
        (401, contacts("unauthorized"), AuthError, False),
        (400, contacts("invalid_client"), AuthError, False),  # some deployments answer 400
        (401, platform("invalid_scope"), AuthError, False),
        (403, contacts("insufficient_scope"), PermissionDenied, False),
        (403, platform("forbidden"), PermissionDenied, False),
        (404, contacts("not_found"), NotFound, False),
        (409, contacts("conflict", id="ct_1"), Conflict, False),
        (409, platform("duplicate", {"id": "ct_1"}), Conflict, False),
        (409, contacts("request_in_progress"), Conflict, True),
        (422, contacts("quota_exceeded"), BusinessRuleError, False),
        (422, platform("some_new_rule"), BusinessRuleError, False),
        (429, contacts("rate_limited"), RateLimited, True),
        (500, platform("provider_error"), ServerError, True),
        (503, contacts("unavailable"), ServerError, True),
        (418, contacts("teapot"), APIError, False),
    ],
)
def test_class_by_code_then_status(status: int, body: bytes, cls: type, retryable: bool) -> None:
    err = error_from_response(status, body, {"X-Request-Id": "req_9"})
    assert type(err) is cls and err.status == status and err.retryable is retryable
    assert err.request_id == "req_9" and err.code and err.message.endswith("happened")
    assert isinstance(err, SynckitError)


def test_details_are_one_shape_whichever_envelope() -> None:
    flat = error_from_response(
        422,
        contacts(
            "validation_failed",
            details=[{"field": "email", "message": "must be a valid email address"}],
        ),
    )
    nested = error_from_response(
        400, platform("validation_failed", {"email": ["must be a valid email address"]})
    )
    assert (
        flat.details
        == nested.details
        == [{"field": "email", "message": "must be a valid email address"}]
    )
    assert normalise_details({"a": "x", "id": "ct_1", "b": ["y", "z"]}) == [
        {"field": "a", "message": "x"},
        {"field": "b", "message": "y"},
        {"field": "b", "message": "z"},
    ]
    assert normalise_details(None) == [] and normalise_details("junk") == []


def test_existing_id_from_either_envelope() -> None:
    a = error_from_response(409, contacts("conflict", id="ct_a"))
    b = error_from_response(409, platform("duplicate", {"id": "ct_b"}))
    assert isinstance(a, Conflict) and isinstance(b, Conflict)
    assert (a.existing_id, b.existing_id) == ("ct_a", "ct_b")
    assert b.details == []  # the id is not a field error


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "502 Bad Gateway",
        ),
        (
            b"<html><body><h1>Oops</h1><script>x()</script><p>upstream died</p></body></html>",
            "Oops upstream died",
        ),
        (b"plain text failure", "plain text failure"),
        (b"", "empty body"),
        (b"\xff\xfe garbage", "garbage"),
        (b'{"detail": "not our envelope"}', "not our envelope"),
        (b"[1, 2]", "[1, 2]"),
    ],
)
def test_unreadable_bodies_still_give_a_typed_readable_error(body: bytes, needle: str) -> None:
    err = error_from_response(502, body, {"x-request-id": "req_x"})
    assert isinstance(err, ServerError) and err.status == 502 and err.code is None
    assert needle in str(err) and "<" not in err.message and "502" in err.message
    assert err.request_id == "req_x"


def test_a_decoded_body_is_accepted_too() -> None:
    err = error_from_response(404, {"code": "not_found", "message": "gone"})
    assert isinstance(err, NotFound) and err.message == "gone"
    assert isinstance(error_from_response(500, None), ServerError)


def test_retry_after_on_the_error() -> None:
    err = error_from_response(429, contacts("rate_limited"), {"Retry-After": "0.250"})
    assert isinstance(err, RateLimited) and err.retry_after == pytest.approx(0.25)
    busy = error_from_response(409, contacts("request_in_progress"), {"Retry-After": "1"})
    assert isinstance(busy, Conflict) and busy.retry_after == 1.0


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("") is None
    assert parse_retry_after("soon") is None and parse_retry_after("nan") is None
    ahead = parse_retry_after(formatdate(time.time() + 30, usegmt=True))
    assert ahead is not None and 28 <= ahead <= 31
    assert parse_retry_after(formatdate(time.time() - 30, usegmt=True)) == 0.0


def test_str_repr_and_to_dict() -> None:
    err = error_from_response(
        422,
        contacts("validation_failed", details=[{"field": "email", "message": "bad"}]),
        {"X-Request-Id": "req_1"},
        method="POST",
        path="/contacts",
        attempts=3,
    )
    assert str(err) == (
        "422 validation_failed: validation_failed happened (email: bad) [POST /contacts] "
        "request_id=req_1"
    )
    assert "ValidationFailed(status=422" in repr(err) and err.attempts == 3
    assert err.to_dict()["details"] == [{"field": "email", "message": "bad"}]
    assert TransportError("down").retryable and TransportError("down").status is None


def test_exported_from_the_package() -> None:
    for name in ("AuthError", "Conflict", "RateLimited", "TransportError", "SynckitError"):
        assert getattr(synckit, name) is getattr(synckit.errors, name)


def test_docstring_examples_run() -> None:
    import doctest

    import synckit._ratelimit
    import synckit.client

    for module in (synckit.errors, synckit.client, synckit._ratelimit):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0
