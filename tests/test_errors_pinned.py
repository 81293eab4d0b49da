"""error_from_response pinned to answers a person can check by hand (issue 16).

A proxy or gateway answers with its own HTML page and no JSON ``code``: the
class (and so whether a retry helps) must then follow the status alone. The
expected classes come from the contract's status table (section 4) and the
troubleshooting table in the README.
"""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from synckit.errors import (
    APIError,
    AuthError,
    BusinessRuleError,
    Conflict,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    error_from_response,
)


def proxy_page(status: int, phrase: str) -> bytes:
    return (
        f"<html><head><title>{status} {phrase}</title></head>"
        f"<body><center><h1>{status} {phrase}</h1></center><hr>nginx</body></html>"
    ).encode()


@pytest.mark.parametrize(
    ("status", "phrase", "cls", "retryable"),
    [
        (400, "Bad Request", APIError, False),
        (401, "Unauthorized", AuthError, False),
        (402, "Payment Required", APIError, False),
        (403, "Forbidden", PermissionDenied, False),
        (404, "Not Found", NotFound, False),
        (405, "Method Not Allowed", APIError, False),
        (408, "Request Timeout", APIError, False),
        (409, "Conflict", Conflict, False),
        (410, "Gone", APIError, False),
        (421, "Misdirected Request", APIError, False),
        (422, "Unprocessable Entity", BusinessRuleError, False),
        (428, "Precondition Required", APIError, False),
        (429, "Too Many Requests", RateLimited, True),
        (430, "error", APIError, False),  # not a registered status: no phrase
        (499, "error", APIError, False),
        (500, "Internal Server Error", ServerError, True),
        (501, "Not Implemented", ServerError, False),  # "never", not "not now" (issue 12)
        (502, "Bad Gateway", ServerError, True),
        (503, "Service Unavailable", ServerError, True),
        (504, "Gateway Timeout", ServerError, True),
    ],
)
def test_a_proxy_page_is_classed_by_its_status(
    status: int, phrase: str, cls: type[APIError], retryable: bool
) -> None:
    err = error_from_response(status, proxy_page(status, phrase), {"X-Request-Id": "req_p"})
    assert type(err) is cls
    assert err.retryable is retryable
    assert (err.status, err.code, err.details, err.request_id) == (status, None, [], "req_p")
    assert err.message == (
        f"HTTP {status} {phrase} (the answer was not a JSON error body: '{status} {phrase}')"
    )


def test_a_gateway_429_is_retryable_and_carries_its_wait() -> None:
    err = error_from_response(429, proxy_page(429, "Too Many Requests"), {"Retry-After": "7"})
    assert isinstance(err, RateLimited) and err.retryable is True and err.retry_after == 7.0


def test_a_gateway_409_without_a_code_is_not_retried() -> None:
    err = error_from_response(409, b"conflict", {"Retry-After": "3"})
    assert isinstance(err, Conflict)
    assert (err.retryable, err.existing_id, err.retry_after) == (False, None, 3.0)


# -------------------------------------------------------------------- Retry-After as a date


def _retry_after(value: str) -> float | None:
    return error_from_response(503, b"", {"Retry-After": value}).retry_after


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2015 07:28:00 -0000",  # "-0000": a date with no zone, RFC 2822
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 07:28:00 +0200",
        "21 Oct 2015 07:28:00 -0000",
    ],
)
def test_a_past_date_means_no_wait_and_never_raises(value: str) -> None:
    assert _retry_after(value) == 0.0


def test_a_future_date_ending_in_minus_0000_counts_from_utc() -> None:
    # formatdate(..., localtime=False) writes "-0000" for UTC, exactly the naive case.
    value = formatdate(time.time() + 120)
    assert value.endswith("-0000")
    waited = _retry_after(value)
    assert waited is not None and 115 <= waited <= 121


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0", 0.0),
        ("-1", 0.0),  # a negative wait is no wait
        ("0.25", 0.25),
        (" ", None),
        ("nan", None),
        ("soon", None),
        ("Wed, 99 Oct 2015 07:28:00 GMT", None),  # an impossible day
    ],
)
def test_retry_after_seconds_and_junk(value: str, expected: float | None) -> None:
    assert _retry_after(value) == expected


# -------------------------------------------------------------------- long non-JSON bodies


def test_a_long_text_body_is_cut_to_160_characters() -> None:
    body = "abcdefghij" * 30  # 300 characters
    err = error_from_response(502, body.encode())
    excerpt = "abcdefghij" * 15 + "abcdefg" + "..."  # 157 characters, then "..."
    assert len(excerpt) == 160
    assert err.message == (
        f"HTTP 502 Bad Gateway (the answer was not a JSON error body: '{excerpt}')"
    )


@pytest.mark.parametrize(("length", "cut"), [(159, False), (160, False), (161, True)])
def test_the_cut_starts_above_160(length: int, cut: bool) -> None:
    body = ("x" * length).encode()
    err = error_from_response(500, body)
    shown = "x" * 157 + "..." if cut else "x" * length
    assert err.message == (
        f"HTTP 500 Internal Server Error (the answer was not a JSON error body: '{shown}')"
    )


def test_a_long_html_page_without_title_shows_its_visible_text_cut() -> None:
    words = " ".join(f"w{i:03d}" for i in range(60))  # 60 * 5 - 1 = 299 characters
    page = f"<html><body><script>var secret = 1;</script><p>{words}</p></body></html>"
    err = error_from_response(503, page)
    assert err.message == (
        f"HTTP 503 Service Unavailable (the answer was not a JSON error body: '{words[:157]}...')"
    )
    assert "secret" not in err.message


def test_an_empty_body_is_named() -> None:
    err = error_from_response(504, b"   \n")
    assert err.message == "HTTP 504 Gateway Timeout with an empty body"


def test_a_page_with_a_blank_title_shows_its_visible_text() -> None:
    page = "<html><head><title> </title></head><body><p>Gateway down</p></body></html>"
    err = error_from_response(502, page)
    assert (
        err.message == "HTTP 502 Bad Gateway (the answer was not a JSON error body: 'Gateway down')"
    )


@pytest.mark.parametrize(
    ("prefix", "shown"),
    [
        # "<html" within the first 200 characters: read as a page, its title shown
        (195, "Upstream"),
        # "<html" starting at character 197: plain text, cut at 157
        (196, "a" * 157 + "..."),
    ],
)
def test_html_is_recognised_in_the_first_200_characters(prefix: int, shown: str) -> None:
    body = "a" * prefix + "<html><title>Upstream</title></html>"
    err = error_from_response(500, body)
    assert err.message == (
        f"HTTP 500 Internal Server Error (the answer was not a JSON error body: '{shown}')"
    )


# -------------------------------------------------------------------- the error as an object


def test_an_error_made_by_hand_counts_one_attempt() -> None:
    assert APIError("x").attempts == 1
    assert error_from_response(500, b"").attempts == 1


def test_str_names_the_request_only_when_both_method_and_path_are_known() -> None:
    assert str(APIError("boom", method="POST")) == "boom"
    assert str(APIError("boom", path="/contacts")) == "boom"
    assert str(APIError("boom", method="POST", path="/contacts")) == "boom [POST /contacts]"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (409, b'{"code": "conflict", "message": "taken", "id": "ct_1"}'),
        (429, b"<html><title>429 Too Many Requests</title></html>"),
        (422, b'{"code": "validation_failed", "message": "bad", "details": {"email": ["x"]}}'),
    ],
)
def test_errors_survive_pickling(status: int, body: bytes) -> None:
    # Errors cross process boundaries (Dask workers, multiprocessing) by pickle.
    import pickle

    err = error_from_response(
        status, body, {"X-Request-Id": "req_1", "Retry-After": "2"}, method="POST", path="/c"
    )
    assert err.args == (err.message,)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is type(err)
    assert str(copy) == str(err) and copy.to_dict() == err.to_dict()
    assert getattr(copy, "retry_after", None) == getattr(err, "retry_after", None)


def test_details_that_are_plain_strings_are_kept_without_a_field() -> None:
    body = b'{"code": "validation_failed", "message": "bad", "details": ["too many keys", 3]}'
    err = error_from_response(422, body)
    assert err.details == [
        {"field": "", "message": "too many keys"},
        {"field": "", "message": "3"},
    ]


def test_body_keeps_the_decoded_json_or_else_the_text() -> None:
    json_err = error_from_response(409, b'{"code": "conflict", "message": "taken", "id": "ct_1"}')
    assert json_err.body == {"code": "conflict", "message": "taken", "id": "ct_1"}
    page = "<html><title>502 Bad Gateway</title></html>"
    assert error_from_response(502, page.encode()).body == page
    assert error_from_response(502, None).body is None


def test_an_input_error_names_the_file_and_the_line_when_known() -> None:
    from synckit.errors import InputError

    assert str(InputError("no header", path="people.csv")) == "people.csv: no header"
    assert str(InputError("bad quote", path="people.csv", line=7)) == (
        "people.csv, line 7: bad quote"
    )
    assert str(InputError("empty")) == "empty"
