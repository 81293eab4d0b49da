"""The planner: what each row needs, decided from what is known before anything is sent.

Pure: rows, what the platform holds for them (:class:`Known`, from a listing or
look-ups), the ledger's entries and the options go in; each row comes out as a
:class:`Planned` step: a final :class:`~synckit.sync.outcome.Outcome` that costs
no request (``unchanged``, the two-contacts failure, ``not_retried``), a
:class:`Create` (one ``POST``) or an :class:`Update` (one ``PATCH`` of the
fields that differ, to a known id). No HTTP, no threads, no clock.

How a row's fate is decided:

1. ``retry_failed`` and the ledger's last outcome for the key was a success:
   ``skipped`` (``not_retried``).
2. The ledger confirmed a payload for the key: the same payload again is
   ``unchanged`` at no cost; otherwise the fields changed *since that payload*
   go to the known id, so an edit made in the platform since is never
   overwritten (when the contact was listed too, fields the platform already
   holds are left out, and a listing that proves it gone makes it a create).
3. Otherwise the platform decides, matching as the contract does (email,
   case-insensitively, first; then phone): a contact holding the email and
   another holding the phone is the two-contacts failure, before any write;
   a matched contact that differs gets one ``PATCH`` of what differs; an
   identical one is ``unchanged``; no match is a ``POST``.

Consent protection is applied here whenever the contact's current values are
known; otherwise the update flow reads the contact first, and only when the
update would set an opt-in.

Example:
    >>> row = RowIn(pos=0, row=2, body={"email": "ada@example.com", "first_name": "Ada"},
    ...             key="email:ada@example.com")
    >>> held = {"id": "ct_1", "email": "ada@example.com", "first_name": "Ad"}
    >>> step = plan_row(row, Known(by_email=held, by_phone=UNKNOWN), None, PlanOptions()).step
    >>> type(step).__name__, step.contact_id, step.diff
    ('Update', 'ct_1', {'first_name': 'Ada'})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from synckit import rules
from synckit.errors import APIError
from synckit.sync.outcome import Outcome, problem, split_owners

if TYPE_CHECKING:
    from synckit.ledger import LedgerEntry

__all__ = [
    "UNKNOWN",
    "Create",
    "Known",
    "PlanOptions",
    "Planned",
    "RowIn",
    "Update",
    "apply_owners",
    "changes",
    "confirmed_payload",
    "diff",
    "merge",
    "needs_read",
    "plan_row",
    "plan_rows",
    "protect",
]

# Consent values an opt-out may not be turned back from (contract + issue 6).
EMAIL_OPTED_OUT: Final = frozenset({"unsubscribed", "suppressed"})
SMS_OPTED_OUT: Final = frozenset({"unsubscribed"})


class _Unknown:
    """Nothing is known about this key (not listed yet, not looked up, or the look-up failed)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


#: The platform's answer for a key is not known. (A contact dict: it holds the
#: key; ``None``: it is known that no contact holds it.)
UNKNOWN: Final = _Unknown()


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class RowIn:
    """A valid row on its way: position in the input, spreadsheet row, body, ledger key."""

    pos: int
    row: int
    body: dict[str, Any]
    key: str | None


@dataclass(frozen=True, slots=True)
class Known:
    """What the platform holds for a row's email and phone number.

    Each is a contact (dict), ``None`` (no contact holds it) or
    :data:`UNKNOWN`. ``error`` is why discovery could not find out.
    """

    by_email: Any = UNKNOWN
    by_phone: Any = UNKNOWN
    error: APIError | None = None


@dataclass(frozen=True, slots=True)
class PlanOptions:
    dry_run: bool = False
    allow_resubscribe: bool = False
    retry_failed: bool = False


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class Create:
    """One ``POST /contacts`` of ``body``; ``replaced`` names a contact that is gone."""

    body: dict[str, Any]
    replaced: str | None = None


@dataclass(frozen=True, slots=True)
class Update:
    """One ``PATCH`` of ``diff`` to ``contact_id``.

    ``current`` is the contact as listed or looked up (``None``: not known, so
    the flow reads it first when consent protection needs it); ``confirmed``
    is the payload the API holds once the PATCH lands (for the ledger).
    """

    contact_id: str
    body: dict[str, Any]
    diff: dict[str, Any]
    confirmed: dict[str, Any]
    current: Mapping[str, Any] | None = None
    warnings: tuple[dict[str, Any], ...] = ()


@dataclass(slots=True)
class Planned:
    """A row and its step. ``target`` is the contact the row writes or confirms: at most
    one row per contact per run (see :func:`apply_owners`). ``base`` is the run id of
    the ledger's last outcome for the key (part of the idempotency keys)."""

    row: RowIn
    step: Create | Update | Outcome
    target: str | None = None
    base: str = ""


# --------------------------------------------------------------------------- comparing


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def diff(body: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``body`` that differs from ``current`` (custom_fields key by key).

    PATCH merges ``custom_fields`` key by key, so an unchanged custom key is
    left out too; fields absent from ``body`` are never sent (absent = keep);
    emails compare case-insensitively (the server stores them lower-cased).

    Example:
        >>> diff({"email": "A@x.io", "custom_fields": {"plan": "pro", "seats": 4}},
        ...      {"email": "a@x.io", "custom_fields": {"plan": "pro", "seats": 3}})
        {'custom_fields': {'seats': 4}}
    """
    out: dict[str, Any] = {}
    for name, value in body.items():
        if name == "custom_fields" and isinstance(value, Mapping):
            old = current.get("custom_fields")
            old = old if isinstance(old, Mapping) else {}
            changed = {k: v for k, v in value.items() if k not in old or not _same(v, old[k])}
            if changed:
                out[name] = changed
        elif name == "email" and isinstance(value, str):
            old_email = current.get("email")
            if not (isinstance(old_email, str) and old_email.lower() == value.lower()):
                out[name] = value
        elif not _same(value, current.get(name)):
            out[name] = value
    return out


def merge(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``old`` with ``new`` applied as PATCH applies it (custom_fields merged key by key).

    Example:
        >>> merge({"a": 1, "custom_fields": {"x": 1}}, {"custom_fields": {"y": 2}})
        {'a': 1, 'custom_fields': {'x': 1, 'y': 2}}
    """
    merged = dict(old)
    for name, value in new.items():
        if name == "custom_fields" and isinstance(value, Mapping):
            base = merged.get("custom_fields")
            merged[name] = {**(base if isinstance(base, Mapping) else {}), **value}
        else:
            merged[name] = value
    return merged


def changes(sent: Mapping[str, Any]) -> str:
    """The changed fields as the report lists them (``first_name,custom_fields.plan``).

    Example:
        >>> changes({"custom_fields": {"b": 1, "a": 2}, "email": "x@y.z"})
        'email,custom_fields.a,custom_fields.b'
    """
    names: list[str] = []
    for name in rules.FIELDS:
        if name not in sent:
            continue
        if name == "custom_fields" and isinstance(sent[name], Mapping):
            names.extend(f"custom_fields.{k}" for k in sorted(sent[name]))
        else:
            names.append(name)
    return ",".join(names)


def needs_read(sent: Mapping[str, Any], allow_resubscribe: bool) -> bool:
    """Whether an update must know the contact's consents first (it would set an opt-in).

    Example:
        >>> needs_read({"email_consent": "subscribed"}, False)
        True
    """
    if allow_resubscribe:
        return False
    return (
        sent.get("email_consent") in rules.OPT_IN_VALUES
        or sent.get("sms_consent") in rules.OPT_IN_VALUES
    )


def protect(
    sent: Mapping[str, Any],
    current: Mapping[str, Any],
    allow_resubscribe: bool,
    *,
    request_id: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Drop an opt-in that would override a person's opt-out; one warning per field.

    Example:
        >>> kept, warnings = protect({"email_consent": "subscribed", "first_name": "A"},
        ...                          {"email_consent": "unsubscribed"}, False)
        >>> kept, warnings[0]["code"]
        ({'first_name': 'A'}, 'consent_protected')
    """
    out = dict(sent)
    if allow_resubscribe:
        return out, []
    warnings: list[dict[str, Any]] = []
    for name, opted_out in (("email_consent", EMAIL_OPTED_OUT), ("sms_consent", SMS_OPTED_OUT)):
        new = out.get(name)
        old = current.get(name)
        if new in rules.OPT_IN_VALUES and old in opted_out:
            del out[name]
            warnings.append(
                problem(
                    "consent_protected",
                    f"kept {old}: the contact opted out, so {name} was not set "
                    f"to {new} (allow_resubscribe=True / --allow-resubscribe overrides)",
                    field=name,
                    value=new,
                    request_id=request_id,
                    severity="warning",
                )
            )
    return out, warnings


def confirmed_payload(
    payload: Mapping[str, Any], current: Mapping[str, Any], warnings: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """What the API holds for the row's fields afterwards: the payload, except that a
    protected consent keeps the platform's value (so the ledger does not claim it).

    Example:
        >>> w = [{"field": "email_consent"}]
        >>> confirmed_payload({"email_consent": "subscribed"}, {"email_consent": "suppressed"}, w)
        {'email_consent': 'suppressed'}
    """
    out = dict(payload)
    for w in warnings:
        out[w["field"]] = current.get(w["field"])
    return out


# --------------------------------------------------------------------------- planning


def _contact(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _two_contacts(row: RowIn, a: Mapping[str, Any], b: Mapping[str, Any], dry_run: bool) -> Outcome:
    verdict = "the update would be refused" if dry_run else "nothing was sent"
    body = row.body
    text = split_owners(a.get("id"), b.get("id"), verdict)
    return Outcome(
        "failed",
        contact_id=str(a.get("id")),
        error_code="conflict",
        error_message=text,
        errors=[
            problem("conflict", text, field="email / phone_number", value=body.get("phone_number"))
        ],
    )


def _against(
    row: RowIn,
    current: Mapping[str, Any],
    sent: Mapping[str, Any],
    confirmed: Mapping[str, Any],
    opts: PlanOptions,
) -> Create | Update | Outcome:
    """``sent`` (what would change) checked against the contact as the platform holds it."""
    cid = str(current.get("id"))
    kept, warnings = protect(diff(sent, current), current, opts.allow_resubscribe)
    held = confirmed_payload(confirmed, current, warnings)
    if not kept:
        return Outcome("unchanged", contact_id=cid, errors=warnings, confirmed=held)
    return Update(cid, row.body, kept, held, current=current, warnings=tuple(warnings))


def plan_row(row: RowIn, known: Known, entry: LedgerEntry | None, opts: PlanOptions) -> Planned:
    """One row's step (see the module docs for the rules).

    Example:
        >>> row = RowIn(0, 2, {"email": "new@example.com"}, "email:new@example.com")
        >>> plan_row(row, Known(by_email=None), None, PlanOptions()).step
        Create(body={'email': 'new@example.com'}, replaced=None)
    """
    from synckit.ledger import RETRY_STATUSES

    base = entry.run_id if entry is not None else ""
    if opts.retry_failed and entry is not None and entry.status not in RETRY_STATUSES:
        skipped = Outcome(
            "skipped",
            contact_id=entry.contact_id,
            error_code="not_retried",
            error_message="not sent: --retry-failed re-sends only the rows that failed, were "
            "invalid or skipped last time, and rows never sent",
            record=False,
        )
        return Planned(row, skipped, base=base)
    a, b = _contact(known.by_email), _contact(known.by_phone)
    if a is not None and b is not None and a.get("id") != b.get("id"):
        return Planned(row, _two_contacts(row, a, b, opts.dry_run), base=base)
    current = a if a is not None else b

    # The ledger's knowledge first, unless another contact holds the key now (then the
    # ledger's id is stale and the platform decides).
    if (
        entry is not None
        and entry.contact_id
        and entry.payload_hash
        and (current is None or current.get("id") == entry.contact_id)
    ):
        return Planned(row, _from_ledger(row, entry, known, current, opts), entry.contact_id, base)

    if current is not None:
        step = _against(row, current, row.body, row.body, opts)
        return Planned(row, step, str(current.get("id")), base)
    if known.error is not None and opts.dry_run:
        err = known.error
        text = f"could not look the contact up: {err.message}"
        out = Outcome(
            "failed",
            http_status=err.status,
            error_code=err.code or type(err).__name__,
            error_message=text,
            request_id=err.request_id,
            errors=[problem(err.code or "lookup_failed", text, http_status=err.status,
                            request_id=err.request_id)],
        )  # fmt: skip
        return Planned(row, out, base=base)
    # No contact holds the email (nor, when known, the phone): a create. If the phone
    # is taken after all, the 409 names its contact and the create flow updates it.
    replaced = entry.contact_id if entry is not None and entry.contact_id else None
    return Planned(row, Create(row.body, replaced=replaced), base=base)


def _from_ledger(
    row: RowIn,
    entry: LedgerEntry,
    known: Known,
    current: Mapping[str, Any] | None,
    opts: PlanOptions,
) -> Create | Update | Outcome:
    from synckit.ledger import CONFIRMED_STATUSES, payload_hash

    assert entry.contact_id is not None
    body = row.body
    if payload_hash(body) == entry.payload_hash:
        # The API confirmed exactly this payload before: nothing to send.
        return Outcome(
            "unchanged",
            contact_id=entry.contact_id,
            confirmed=dict(body),
            record=entry.status not in CONFIRMED_STATUSES,
        )
    since = diff(body, entry.payload)  # only what changed in the file since it was confirmed
    confirmed = merge(entry.payload, body)
    if current is not None:
        return _against(row, current, since, confirmed, opts)
    email_free = not body.get("email") or known.by_email is None
    if email_free and (not body.get("phone_number") or known.by_phone is None):
        # A complete listing holds nothing with this key: deleted in the platform.
        return Create(body, replaced=entry.contact_id)
    if not since:
        # e.g. a field emptied in the file: absent fields are kept, so nothing to send.
        return Outcome("unchanged", contact_id=entry.contact_id, confirmed=confirmed)
    return Update(entry.contact_id, body, since, confirmed)


def plan_rows(
    rows: Iterable[RowIn],
    knowns: Mapping[int, Known],
    entries: Mapping[str, LedgerEntry],
    opts: PlanOptions,
) -> list[Planned]:
    """:func:`plan_row` for each row (``knowns`` by ``pos``, ``entries`` by ledger key)."""
    empty = Known()
    return [
        plan_row(
            r,
            knowns.get(r.pos, empty),
            entries.get(r.key) if r.key is not None else None,
            opts,
        )
        for r in rows
    ]


def apply_owners(planned: Sequence[Planned], owners: Mapping[str, tuple[int, int]]) -> None:
    """Make every row whose target contact belongs to an earlier row a ``duplicate_contact``.

    ``owners`` maps a contact id to the ``(pos, row)`` of the row that holds it
    in this run (the first one to claim it). Two rows with different emails
    and phones can resolve to one platform contact; writing both would write
    the contact twice, each undoing part of the other. The first row keeps
    the contact; a later one is ``skipped`` with code ``duplicate_contact``,
    naming the contact and the row that has it, and nothing is sent for it.

    Example:
        >>> p = Planned(RowIn(5, 7, {"phone_number": "+441"}, None), Create({}), target="ct_1")
        >>> apply_owners([p], {"ct_1": (1, 3)})
        >>> p.step.status, p.step.error_code, p.target
        ('skipped', 'duplicate_contact', None)
    """
    for p in planned:
        if p.target is None:
            continue
        owner = owners.get(p.target)
        if owner is None or owner[0] == p.row.pos:
            continue
        p.step = duplicate_contact(p.target, owner[1])
        p.target = None


def duplicate_contact(contact_id: str, owner_row: int) -> Outcome:
    """The outcome of a row whose contact another row of this run already writes."""
    text = (
        f"not sent: contact {contact_id} is also the contact of row {owner_row}, which this "
        "run sends instead (at most one write per contact)"
    )
    return Outcome(
        "skipped",
        contact_id=contact_id,
        error_code="duplicate_contact",
        error_message=text,
        errors=[problem("duplicate_contact", text, field="email / phone_number", stage="plan")],
    )
