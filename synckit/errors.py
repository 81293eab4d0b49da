"""One exception tree, rooted at :class:`SynckitError`.

API errors are data: each carries ``status``, ``code``, ``message``,
``details`` (always a list of ``{"field", "message"}``, whichever envelope the
server used), ``request_id`` and ``retryable``. :func:`error_from_response`
turns any error answer -- contacts envelope, platform envelope, or an HTML page
from a proxy -- into the right class, choosing by ``code`` first and status
second, as the contract says.

Example:
    >>> err = error_from_response(409, {"code": "conflict", "message": "taken", "id": "ct_1"})
    >>> type(err).__name__, err.existing_id, err.retryable
    ('Conflict', 'ct_1', False)
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from datetime import UTC
from http import HTTPStatus
from typing import Any

from synckit._secrets import redact, redact_data

__all__ = [
    "NON_HEALING_STATUSES",
    "APIError",
    "AuthError",
    "BusinessRuleError",
    "ConfigError",
    "Conflict",
    "InputError",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "StateLockedError",
    "SynckitError",
    "TransportError",
    "ValidationFailed",
    "error_from_response",
    "normalise_details",
]


class SynckitError(Exception):
    """Base of every error synckit raises.

    Text arguments pass through :func:`~synckit.config.redact`: a message never
    carries a secret a client holds, or anything that looks like a credential.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(SynckitError):
    """Missing or inconsistent configuration (base URL, credentials, options)."""


class InputError(SynckitError):
    """An input file that cannot be read as contacts.

    ``path`` and ``line`` (1-based, as an editor shows it) say where.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}: " if line is None else f"{path}, line {line}: "
        super().__init__(where + message)


class StateLockedError(SynckitError):
    """Another run holds the state ledger's lock."""


class APIError(SynckitError):
    """An error answer from the Contacts API, or no answer at all.

    Attributes mirror the contract's error body plus what the transport knows:
    ``status`` (``None`` when no answer arrived), ``code``, ``message``,
    ``details`` (list of ``{"field", "message"}``), ``request_id`` (quote it
    to support), ``retryable`` (whether repeating the same request can help),
    ``method``/``path`` of the request and ``attempts`` made.
    """

    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: list[dict[str, str]] | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
        body: Any = None,
        content_type: str | None = None,
    ) -> None:
        # Built from a server's answer, which may echo the credential back: masked here,
        # once, so that str(), the report, the logs and to_dict() all get the masked text.
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.details: list[dict[str, str]] = [
            {str(k): redact(v) if isinstance(v, str) else v for k, v in d.items()}
            for d in details or []
        ]
        self.request_id = request_id
        self.retryable = self.default_retryable if retryable is None else retryable
        self.method = method
        self.path = path
        self.attempts = attempts
        self.body = redact_data(body)
        #: The answer's ``Content-Type`` (None when no answer arrived): an HTML page where
        #: JSON was due says the URL points at something that is not the API.
        self.content_type = content_type

    def message_with_details(self) -> str:
        """``message`` followed by the field problems in ``details``, if any.

        Example:
            >>> APIError("bad", details=[{"field": "email", "message": "is invalid"}]
            ...          ).message_with_details()
            'bad (email: is invalid)'
        """
        if not self.details:
            return self.message
        problems = "; ".join(f"{d['field']}: {d['message']}" for d in self.details)
        return f"{self.message} ({problems})"

    def __str__(self) -> str:
        head = " ".join(str(p) for p in (self.status, self.code) if p is not None)
        text = self.message_with_details()
        if head:
            text = f"{head}: {text}"
        if self.method and self.path:
            text += f" [{self.method} {self.path}]"
        if self.request_id:
            text += f" request_id={self.request_id}"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The error as plain data (for reports and JSON logs)."""
        return {
            "type": type(self).__name__,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "details": self.details,
            "request_id": self.request_id,
            "retryable": self.retryable,
        }


class AuthError(APIError):
    """401: the token is missing, expired or revoked, or the client credentials are wrong."""


class PermissionDenied(APIError):
    """403: the credential lacks the scope, or the resource belongs to another organisation."""


class NotFound(APIError):
    """404: no such contact."""


class Conflict(APIError):
    """409: the email or phone number belongs to the contact ``existing_id``.

    ``409 request_in_progress`` is also a Conflict, with ``retryable=True``
    and ``retry_after`` set.
    """

    def __init__(
        self,
        message: str,
        *,
        existing_id: str | None = None,
        retry_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.existing_id = existing_id
        self.retry_after = retry_after


class ValidationFailed(APIError):
    """``validation_failed`` (400 or 422): field rules broken; see ``details``."""


class BusinessRuleError(APIError):
    """Another 422: ``quota_exceeded``, ``idempotency_key_reused`` and the like."""


class RateLimited(APIError):
    """429: wait ``retry_after`` seconds."""

    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: a platform fault; worth retrying when the request is idempotent.

    Except :data:`NON_HEALING_STATUSES` (``501 Not Implemented``, ``505 HTTP
    Version Not Supported``): the server says it cannot do this kind of
    request at all, so ``retryable`` is False and no client repeats it.
    """

    default_retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class TransportError(APIError):
    """No usable answer: connection refused or reset, timeout, broken TLS."""

    default_retryable = True


#: 5xx answers that say "never", not "not now": 501 (the server does not implement
#: the method or path, e.g. a plain web server that is not the API) and 505 (it
#: will not speak this HTTP version). Repeating the request cannot change them.
NON_HEALING_STATUSES: frozenset[int] = frozenset({501, 505})

_BY_CODE: dict[str, type[APIError]] = {
    "validation_failed": ValidationFailed,
    "unauthorized": AuthError,
    "invalid_client": AuthError,
    "invalid_scope": AuthError,
    "insufficient_scope": PermissionDenied,
    "forbidden": PermissionDenied,
    "not_found": NotFound,
    "conflict": Conflict,
    "duplicate": Conflict,
    "request_in_progress": Conflict,
    "rate_limited": RateLimited,
    "quota_exceeded": BusinessRuleError,
    "idempotency_key_reused": BusinessRuleError,
}


def _by_status(status: int) -> type[APIError]:
    if status == 401:
        return AuthError
    if status == 403:
        return PermissionDenied
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status == 422:
        return BusinessRuleError
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return APIError


def normalise_details(details: Any) -> list[dict[str, str]]:
    """Both envelopes' ``details`` as a list of ``{"field", "message"}``.

    Example:
        >>> normalise_details({"email": ["must be a valid email address"]})
        [{'field': 'email', 'message': 'must be a valid email address'}]
    """
    out: list[dict[str, str]] = []
    if isinstance(details, list):
        for item in details:
            if isinstance(item, Mapping):
                out.append(
                    {"field": str(item.get("field", "")), "message": str(item.get("message", ""))}
                )
            else:
                out.append({"field": "", "message": str(item)})
    elif isinstance(details, Mapping):
        for field, messages in details.items():
            if field == "id":  # the conflicting contact, not a field error
                continue
            for text in messages if isinstance(messages, list) else [messages]:
                out.append({"field": str(field), "message": str(text)})
    return out


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: seconds (maybe fractional) or an HTTP date.

    Example:
        >>> parse_retry_after("1.5")
        1.5
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        from datetime import datetime
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


_TAG = re.compile(r"<[^>]*>")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HIDDEN = re.compile(r"<(script|style)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)


def _describe_unexpected_body(status: int, text: str) -> str:
    """A readable message for an error answer without the contract's envelope.

    An HTML page from a proxy becomes its title (or its visible text), not markup.

    Example:
        >>> _describe_unexpected_body(502, "<html><title>502 Bad Gateway</title></html>")
        "HTTP 502 Bad Gateway (the answer was not a JSON error body: '502 Bad Gateway')"
    """
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    text = text.strip()
    if not text:
        return f"HTTP {status} {phrase} with an empty body"
    if text.startswith("<") or "<html" in text[:200].lower():
        title = _TITLE.search(text)
        if title and title.group(1).strip():
            text = title.group(1)
        else:
            text = _TAG.sub(" ", _HIDDEN.sub(" ", text))
    text = " ".join(html.unescape(text).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"HTTP {status} {phrase} (the answer was not a JSON error body: {text!r})"


def error_from_response(
    status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    method: str | None = None,
    path: str | None = None,
    attempts: int = 1,
) -> APIError:
    """Build the typed error for one non-2xx answer.

    ``body`` may be the decoded JSON, raw ``bytes``/``str`` (JSON or not) or
    ``None``. Never raises: an unreadable body still gives a typed error that
    names the status.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    parsed: Any = body
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            parsed = json.loads(body) if body.strip() else None
        except ValueError:
            parsed = None
    envelope: Mapping[str, Any] = {}
    existing_id: str | None = None
    if isinstance(parsed, Mapping):
        if isinstance(parsed.get("error"), Mapping):  # platform envelope
            envelope = parsed["error"]
            raw_details = envelope.get("details")
            if isinstance(raw_details, Mapping) and raw_details.get("id") is not None:
                existing_id = str(raw_details["id"])
        else:
            envelope = parsed
            if parsed.get("id") is not None:
                existing_id = str(parsed["id"])
    code = envelope.get("code")
    code = str(code) if code is not None else None
    message = envelope.get("message")
    if not message:
        message = _describe_unexpected_body(status, body if isinstance(body, str) else "")
    cls = _BY_CODE.get(code or "") or _by_status(status)
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "details": normalise_details(envelope.get("details")),
        "request_id": headers.get("x-request-id"),
        "method": method,
        "path": path,
        "attempts": attempts,
        "body": parsed if parsed is not None else body,
        "content_type": headers.get("content-type"),
    }
    retry_after = parse_retry_after(headers.get("retry-after"))
    if cls is Conflict:
        in_progress = code == "request_in_progress"
        return Conflict(
            str(message),
            existing_id=existing_id,
            retry_after=retry_after,
            retryable=in_progress,
            **kwargs,
        )
    if cls is ServerError and status in NON_HEALING_STATUSES:
        return ServerError(str(message), retry_after=retry_after, retryable=False, **kwargs)
    if cls in (RateLimited, ServerError):
        return cls(str(message), retry_after=retry_after, **kwargs)
    return cls(str(message), **kwargs)
