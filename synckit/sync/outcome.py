"""What happened to one row: :class:`Outcome`, and the builders for its problem records.

The planner ends a row with an ``Outcome`` when it needs no request (unchanged,
two contacts, not retried); a flow ends a row with one after its requests. The
recorder turns outcomes into report rows, error rows and ledger entries.

Example:
    >>> out = Outcome("updated", contact_id="ct_1", changes="first_name")
    >>> out.status, out.attempts, out.errors
    ('updated', 0, [])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from synckit._rows import canonical_json
from synckit.errors import APIError

__all__ = ["Outcome", "failure", "problem", "split_owners"]


@dataclass(slots=True)
class Outcome:
    """One row's result.

    ``confirmed`` is the full payload the API holds for the row afterwards
    (the ledger stores it), ``None`` when nothing was confirmed. ``record``
    is False for outcomes that change nothing the ledger knows (a row the
    ledger already holds unchanged, a row not retried). ``error`` keeps the
    API error that ended the row (the executor reads it: 401/403 stop the
    run, no answer at all feeds the unreachable breaker); it is never shown.
    """

    status: str
    contact_id: str | None = None
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    attempts: int = 0
    changes: str = ""
    errors: list[dict[str, Any]] = field(default_factory=list)
    confirmed: dict[str, Any] | None = None
    record: bool = True
    error: APIError | None = None


def problem(
    code: str,
    message: str,
    *,
    field: str | None = None,
    value: Any = None,
    http_status: int | None = None,
    request_id: str | None = None,
    severity: str = "error",
    stage: str = "api",
) -> dict[str, Any]:
    """One record of ``report.errors`` (keys: :data:`synckit.report.ERROR_FIELDS` minus ``row``).

    Example:
        >>> problem("conflict", "taken", field="email")["stage"]
        'api'
    """
    return {
        "stage": stage,
        "field": field,
        "code": code,
        "message": message,
        "value": value,
        "http_status": http_status,
        "request_id": request_id,
        "severity": severity,
    }


def failure(err: APIError, body: Mapping[str, Any]) -> Outcome:
    """The ``failed`` outcome of an API error: one problem per field the answer names.

    Example:
        >>> from synckit.errors import ValidationFailed
        >>> err = ValidationFailed("bad", status=422, code="validation_failed",
        ...                        details=[{"field": "email", "message": "is invalid"}])
        >>> out = failure(err, {"email": "x@"})
        >>> out.status, out.error_message, out.errors[0]["value"]
        ('failed', 'bad (email: is invalid)', 'x@')
    """
    code = err.code or type(err).__name__
    errors: list[dict[str, Any]] = []
    for d in err.details:
        fld = d.get("field") or None
        value = body.get(fld) if fld else None
        errors.append(
            problem(
                code,
                d.get("message") or err.message,
                field=fld,
                value=canonical_json(value) if isinstance(value, dict) else value,
                http_status=err.status,
                request_id=err.request_id,
            )
        )
    if not errors:
        errors.append(problem(code, err.message, http_status=err.status, request_id=err.request_id))
    return Outcome(
        "failed",
        http_status=err.status,
        error_code=code,
        error_message=err.message_with_details(),
        request_id=err.request_id,
        errors=errors,
        error=err,
    )


def split_owners(email_owner: Any, phone_owner: Any, outcome: str) -> str:
    """The message for a row whose email and phone number belong to two different contacts.

    Names the contacts, never the values: messages go to the JSON log, which
    promises no personal data (the values are in the report's columns).

    Example:
        >>> split_owners("ct_1", "ct_2", "nothing was changed")[:52]
        'the email belongs to contact ct_1 and the phone_numb'
    """
    return (
        f"the email belongs to contact {email_owner} and the phone_number "
        f"to contact {phone_owner}: {outcome}"
    )
