"""The steps that depend on an answer, as small generators: they yield what they need and
receive the answer (or have the API error thrown in), the way httpx writes its auth flows.

A flow never does I/O. It yields an *ask* -- :class:`Post`, :class:`Patch`,
:class:`Get`, :class:`Find` (HTTP), or :class:`Claim` (may this row write that
contact?) -- and whoever drives it answers: the executor with the client and
the run's claim registry, a test with scripted answers. So every path a live
server reaches only by accident (a 409 naming another contact, a 404 on a
PATCH, a halt between two requests of one row) is a few lines of test.

- :func:`step_flow` carries out a planned :class:`~synckit.sync.plan.Create` or
  :class:`~synckit.sync.plan.Update`: a ``409`` on the create becomes an update
  of the contact it names (read first, for the diff and consent protection); a
  ``404`` on the PATCH (or on that read) becomes a create; a second ``409`` on
  the PATCH is the two-contacts failure. A dry run answers ``would_*`` instead
  of writing (a read that consent protection needs still happens).
- :func:`lookup_flow` finds the contacts holding a row's email and phone
  number (discovery by look-up).
- :func:`drive` runs a flow against an ``answer`` function.

Example:
    >>> from synckit.sync.plan import Create
    >>> flow = step_flow(Create({"email": "ada@example.com"}), FlowOptions())
    >>> drive(flow, lambda ask: {"id": "ct_1"}).status
    'created'
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from synckit.errors import APIError, Conflict, NotFound
from synckit.sync.outcome import Outcome, failure, problem, split_owners
from synckit.sync.plan import (
    UNKNOWN,
    Create,
    Known,
    Update,
    changes,
    confirmed_payload,
    diff,
    duplicate_contact,
    needs_read,
    protect,
)

__all__ = [
    "Ask",
    "Claim",
    "Find",
    "Flow",
    "FlowOptions",
    "Get",
    "Patch",
    "Post",
    "drive",
    "lookup_flow",
    "step_flow",
]


# --------------------------------------------------------------------------- asks


@dataclass(frozen=True, slots=True)
class Post:
    """``POST /contacts``. ``op`` is ``create``, or ``recreate`` for a contact that is gone
    (``replaced`` names it: a new idempotency key, since the old one would replay it)."""

    body: Mapping[str, Any]
    op: str = "create"
    replaced: str = ""


@dataclass(frozen=True, slots=True)
class Patch:
    """``PATCH /contacts/{contact_id}`` with ``body`` (only the fields that differ)."""

    contact_id: str
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Get:
    """``GET /contacts/{contact_id}``."""

    contact_id: str


@dataclass(frozen=True, slots=True)
class Find:
    """``GET /contacts?email=`` or ``?phone_number=``: answered with a list of contacts."""

    email: str | None = None
    phone_number: str | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """May this row write ``contact_id``? Answered with None (yes: it is now this row's) or
    the spreadsheet row number of the row that already holds it. Not HTTP."""

    contact_id: str


Ask = Post | Patch | Get | Find | Claim
Flow = Generator[Ask, Any, Any]


@dataclass(frozen=True, slots=True)
class FlowOptions:
    dry_run: bool = False
    allow_resubscribe: bool = False


# --------------------------------------------------------------------------- driving


#: The message suffix of a row halted between two of its requests.
NOTHING_CHANGED = " (nothing was changed for this row)"


def drive(
    flow: Flow,
    answer: Callable[[Ask], Any],
    *,
    halted: Callable[[], Outcome | None] | None = None,
) -> Any:
    """Run ``flow`` to its end; returns what it returns.

    ``answer(ask)`` returns the answer to an ask or raises the
    :class:`~synckit.errors.APIError` the request ended with (it is thrown
    into the flow, which may handle it). ``halted()``, asked before every HTTP
    request after the first, returns an outcome when the run is stopping: the
    flow is then closed and that outcome returned, with
    :data:`NOTHING_CHANGED` added to its message -- true, because a flow's
    only write is always its last request.

    Example:
        >>> from synckit.errors import Conflict
        >>> from synckit.sync.plan import Create
        >>> def answer(ask):
        ...     if isinstance(ask, Post):
        ...         raise Conflict("taken", status=409, code="conflict", existing_id="ct_9")
        ...     return None  # the Claim: granted
        >>> stop = lambda: Outcome("skipped", error_code="interrupted", error_message="stopped")
        >>> out = drive(step_flow(Create({"email": "a@x.io"}), FlowOptions()), answer, halted=stop)
        >>> out.status, out.error_message
        ('skipped', 'stopped (nothing was changed for this row)')
    """
    sent = 0
    try:
        ask = next(flow)
        while True:
            if halted is not None and sent and not isinstance(ask, Claim):
                stop = halted()
                if stop is not None:
                    flow.close()
                    stop.error_message = (stop.error_message or "") + NOTHING_CHANGED
                    return stop
            if not isinstance(ask, Claim):
                sent += 1
            try:
                reply = answer(ask)
            except APIError as err:
                ask = flow.throw(err)
            else:
                ask = flow.send(reply)
    except StopIteration as done:
        return done.value


# --------------------------------------------------------------------------- row steps


def step_flow(step: Create | Update, opts: FlowOptions) -> Flow:
    """Carry out one planned step; ends with the row's :class:`Outcome`.

    An API error the step cannot handle ends it as ``failed`` (the error is
    kept on ``Outcome.error`` for the executor).

    Example:
        >>> from synckit.errors import NotFound
        >>> from synckit.sync.plan import Update
        >>> up = Update("ct_1", {"email": "a@x.io", "first_name": "A"}, {"first_name": "A"},
        ...             {"email": "a@x.io", "first_name": "A"}, current={"id": "ct_1"})
        >>> def answer(ask):
        ...     if isinstance(ask, Patch):
        ...         raise NotFound("gone", status=404, code="not_found")
        ...     return {"id": "ct_2"}  # the create that follows
        >>> out = drive(step_flow(up, FlowOptions()), answer)
        >>> out.status, out.contact_id
        ('created', 'ct_2')
    """
    try:
        if isinstance(step, Create):
            return (yield from _create(step.body, opts, replaced=step.replaced))
        return (yield from _update(step, opts))
    except APIError as err:
        return failure(err, step.body)


def _create(
    body: Mapping[str, Any], opts: FlowOptions, *, replaced: str | None, again: bool = False
) -> Flow:
    if opts.dry_run:
        return Outcome("would_create")
    try:
        contact = yield Post(body, "recreate" if replaced else "create", replaced or "")
    except Conflict as err:
        if err.retryable or not err.existing_id:
            raise
        if again:
            # A create after a 404 met a 409: the contact moved twice while we
            # worked. Fail the row rather than chase it.
            raise
        return (yield from _take_over(body, err.existing_id, opts))
    return Outcome("created", contact_id=str(contact.get("id")), confirmed=dict(body))


def _take_over(body: Mapping[str, Any], contact_id: str, opts: FlowOptions) -> Flow:
    """A 409 named the contact holding this row's email or phone: update it instead."""
    owner = yield Claim(contact_id)
    if owner is not None:
        out = duplicate_contact(contact_id, owner)
        out.error_message = (out.error_message or "") + NOTHING_CHANGED
        return out
    current = yield Get(contact_id)
    sent, warnings = protect(diff(body, current), current, opts.allow_resubscribe)
    held = confirmed_payload(body, current, warnings)
    if not sent:
        return Outcome("unchanged", contact_id=contact_id, errors=warnings, confirmed=held)
    return (yield from _patch(body, contact_id, sent, warnings, held, opts, may_recreate=False))


def _update(step: Update, opts: FlowOptions) -> Flow:
    sent, warnings, held = step.diff, list(step.warnings), step.confirmed
    if step.current is None and needs_read(sent, opts.allow_resubscribe):
        # The update would set an opt-in and the contact's consents are not known:
        # read them, so an opt-out is never overridden.
        try:
            current = yield Get(step.contact_id)
        except NotFound:
            return (yield from _create(step.body, opts, replaced=step.contact_id, again=True))
        # What the platform already holds need not be sent either.
        sent, warnings = protect(diff(sent, current), current, opts.allow_resubscribe)
        held = confirmed_payload(held, current, warnings)
        if not sent:
            return Outcome("unchanged", contact_id=step.contact_id, errors=warnings, confirmed=held)
    if opts.dry_run:
        return Outcome(
            "would_update", contact_id=step.contact_id, changes=changes(sent), errors=warnings
        )
    return (yield from _patch(step.body, step.contact_id, sent, warnings, held, opts))


def _patch(
    body: Mapping[str, Any],
    contact_id: str,
    sent: dict[str, Any],
    warnings: list[dict[str, Any]],
    held: dict[str, Any],
    opts: FlowOptions,
    *,
    may_recreate: bool = True,
) -> Flow:
    try:
        yield Patch(contact_id, sent)
    except NotFound:
        if not may_recreate:
            raise
        # Deleted in the platform since it was seen: create it again.
        return (yield from _create(body, opts, replaced=contact_id, again=True))
    except Conflict as err:
        if err.retryable:
            raise
        return _two_contacts(body, contact_id, err, warnings)
    return Outcome(
        "updated", contact_id=contact_id, changes=changes(sent), errors=warnings, confirmed=held
    )


def _two_contacts(
    body: Mapping[str, Any], contact_id: str, err: Conflict, warnings: list[dict[str, Any]]
) -> Outcome:
    other = err.existing_id or "another contact"
    email, phone = body.get("email"), body.get("phone_number")
    if email and phone:
        text = split_owners(contact_id, other, "nothing was changed")
    else:
        text = (
            f"the update of contact {contact_id} conflicts with contact {other}: "
            "nothing was changed"
        )
    return Outcome(
        "failed",
        contact_id=contact_id,
        http_status=err.status,
        error_code=err.code or "conflict",
        error_message=text,
        request_id=err.request_id,
        errors=[
            *warnings,
            problem(
                err.code or "conflict",
                text,
                field="email / phone_number",
                value=phone,
                http_status=err.status,
                request_id=err.request_id,
            ),
        ],
        error=err,
    )


# --------------------------------------------------------------------------- discovery


def lookup_flow(
    email: str | None,
    phone: str | None,
    *,
    phone_after_miss: bool,
    by_email: Any = UNKNOWN,
    by_phone: Any = UNKNOWN,
) -> Flow:
    """Look a row's contacts up; ends with a :class:`~synckit.sync.plan.Known`.

    The email first (the contract matches on it first). The phone number is
    looked up only when it can change the plan: the email's contact holds
    another number (the two-contacts check), or there is no email. After an
    email miss the create itself is the phone check (its ``409`` names the
    contact holding the number), so the phone is looked up then only when
    ``phone_after_miss`` (a dry run, which sends no create). What a listing
    already found (``by_email``, ``by_phone``) is not asked again. A failed
    look-up ends with what is known so far and the error.

    Example:
        >>> answers = iter([[{"id": "ct_1", "phone_number": "+441"}]])
        >>> known = drive(lookup_flow("a@x.io", "+441", phone_after_miss=False),
        ...               lambda ask: next(answers))
        >>> known.by_email["id"], known.by_phone["id"]
        ('ct_1', 'ct_1')
    """
    a: Any = by_email if email else UNKNOWN
    b: Any = by_phone if phone else UNKNOWN
    try:
        if email and a is UNKNOWN:
            found = yield Find(email=email)
            a = found[0] if found else None
        if phone and b is UNKNOWN:
            if isinstance(a, Mapping) and a.get("phone_number") == phone:
                b = a
            elif isinstance(a, Mapping) or not email or phone_after_miss:
                found = yield Find(phone_number=phone)
                b = found[0] if found else None
    except APIError as err:
        return Known(a, b, error=err)
    return Known(a, b)
