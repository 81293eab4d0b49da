"""The Contacts API's field rules: one copy, used by local validation and the sandbox.

Everything here comes from section 2 of ``shared/api/contacts-api.md``. The
vectorised validator (:mod:`synckit.validation`) and the sandbox server both take
their field names, enums, limits and messages from this module, and the
sandbox judges single contacts with :func:`check_contact`, so the two can only
disagree if the vectorised code is wrong -- which the tests check by comparing
them on generated data.

Example:
    >>> from synckit import rules
    >>> [e.code for e in rules.check_contact({"email": "ada@example.com", "sms_consent": "maybe"})]
    ['invalid_choice', 'sms_country']
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import email_validator
import phonenumbers

__all__ = [
    "CHOICES",
    "CUSTOM_FIELDS_MAX_KEYS",
    "CUSTOM_FIELD_KEY_MAX_LENGTH",
    "DEFAULT_SMS_COUNTRIES",
    "E164_PATTERN",
    "EMAIL_CONSENT_VALUES",
    "EMAIL_MAX_LENGTH",
    "FIELDS",
    "IDENTIFIER_FIELDS",
    "NAME_MAX_LENGTH",
    "OPT_IN_VALUES",
    "READ_ONLY_FIELDS",
    "REQUIRED_FIELD",
    "SMS_CONSENT_VALUES",
    "FieldError",
    "check_contact",
    "check_custom_fields",
    "is_valid_email",
    "message",
    "phone_region",
]

#: Writable contact fields, in the contract's order.
FIELDS: Final = (
    "email",
    "phone_number",
    "first_name",
    "last_name",
    "email_consent",
    "sms_consent",
    "custom_fields",
)
#: Fields the server sets; a client never sends them.
READ_ONLY_FIELDS: Final = ("id", "created_at", "updated_at")
#: A contact needs at least one of these; each is unique across contacts.
IDENTIFIER_FIELDS: Final = ("email", "phone_number")
#: The ``field`` the contract names when neither identifier is present.
REQUIRED_FIELD: Final = "email / phone_number"

EMAIL_CONSENT_VALUES: Final = ("subscribed", "unsubscribed", "never_subscribed", "suppressed")
SMS_CONSENT_VALUES: Final = ("subscribed", "unsubscribed", "never_subscribed", "single_opt_in")
CHOICES: Final[Mapping[str, tuple[str, ...]]] = {
    "email_consent": EMAIL_CONSENT_VALUES,
    "sms_consent": SMS_CONSENT_VALUES,
}
#: Consent values that opt a person in (the nightly sync never sets these over an opt-out).
OPT_IN_VALUES: Final = frozenset({"subscribed", "single_opt_in"})

#: ISO 3166 regions (as ``region_code_for_number`` gives them) that accept SMS by default.
DEFAULT_SMS_COUNTRIES: Final = frozenset(
    {
        "US", "CA", "GB", "IE", "AU", "NZ", "DE", "FR", "ES", "IT",
        "NL", "BE", "AT", "CH", "SE", "NO", "DK", "FI", "PT", "PL",
    }
)  # fmt: skip

EMAIL_MAX_LENGTH: Final = 254
NAME_MAX_LENGTH: Final = 100
CUSTOM_FIELDS_MAX_KEYS: Final = 100
CUSTOM_FIELD_KEY_MAX_LENGTH: Final = 64
#: ``+`` then 2 to 15 digits, the first not zero (the OpenAPI pattern).
E164_PATTERN: Final = re.compile(r"\+[1-9][0-9]{1,14}")

# The contract's ``details[].message`` for each rule, keyed by a stable code.
_MESSAGES: Final[Mapping[str, str]] = {
    "unknown_field": "is not a recognised field",
    "required": "email or phone_number is required",
    "invalid_email": "must be a valid email address",
    "invalid_phone": "must be a valid phone number in E.164 format",
    "sms_country": "requires a phone number from a supported country",
    "too_long": f"must be a string of at most {NAME_MAX_LENGTH} characters",
    "invalid_type": f"must be a string of at most {NAME_MAX_LENGTH} characters",
    "nested_custom_fields": "must be a flat key-value object (no nested values)",
}


def message(code: str, field: str | None = None) -> str:
    """Return the contract's message for rule ``code`` (``field`` picks the enum).

    Example:
        >>> message("invalid_choice", "sms_consent")
        'must be one of: subscribed, unsubscribed, never_subscribed, single_opt_in'
    """
    if code == "invalid_choice":
        if field is None or field not in CHOICES:
            raise KeyError(f"invalid_choice needs a consent field, not {field!r}")
        return "must be one of: " + ", ".join(CHOICES[field])
    return _MESSAGES[code]


@dataclass(frozen=True, slots=True)
class FieldError:
    """One broken rule: the contract's ``{field, message}`` plus a stable ``code``."""

    field: str
    code: str
    message: str

    @classmethod
    def of(cls, field: str, code: str) -> FieldError:
        return cls(field, code, message(code, field))


# Options pinned so that the answer never depends on email-validator's module globals.
_EMAIL_OPTIONS: Final[dict[str, Any]] = {
    # Never True: that is a DNS look-up per address. (Not mutated: the mutant would query DNS.)
    "check_deliverability": False,  # pragma: no mutate
    "allow_smtputf8": True,
    "allow_quoted_local": False,
    "allow_domain_literal": False,
    "allow_display_name": False,
    "allow_empty_local": False,
    "globally_deliverable": True,
    "test_environment": False,
}


@lru_cache(maxsize=65536)
def is_valid_email(value: str) -> bool:
    """Syntax check of one address as the API applies it (no DNS look-up).

    The reference is email-validator with pinned options; surrounding
    whitespace makes an address invalid (clients trim before sending).

    Example:
        >>> is_valid_email("ada@example.com"), is_valid_email("ada@@example.com")
        (True, False)
    """
    if not value or len(value) > EMAIL_MAX_LENGTH:
        return False
    try:
        email_validator.validate_email(value, **_EMAIL_OPTIONS)
    except email_validator.EmailNotValidError:
        return False
    return True


@lru_cache(maxsize=65536)
def phone_region(value: str) -> str | None:
    """Region of a valid E.164 number, or ``None`` if the API would reject it.

    Valid means: the E.164 pattern, libphonenumber's ``is_valid_number``, and
    the text is already the canonical E.164 form (``+4407911…`` is not).
    The region (``GB``, ``GG``, ``ZZ`` for non-geographic numbers) is what
    decides the SMS country.

    Example:
        >>> phone_region("+447400123456"), phone_region("+447911123456"), phone_region("+1555")
        ('GB', 'GG', None)
    """
    if not E164_PATTERN.fullmatch(value):
        return None
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != value:
        return None
    return phonenumbers.region_code_for_number(number) or "ZZ"


def check_custom_fields(value: object) -> bool:
    """True if ``value`` is a flat object the API accepts as ``custom_fields``.

    Example:
        >>> check_custom_fields({"plan": "pro", "seats": 3}), check_custom_fields({"a": [1]})
        (True, False)
    """
    if not isinstance(value, Mapping) or len(value) > CUSTOM_FIELDS_MAX_KEYS:
        return False
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= CUSTOM_FIELD_KEY_MAX_LENGTH:
            return False
        if item is None or isinstance(item, (str, bool, int)):
            continue
        if isinstance(item, float) and math.isfinite(item):
            continue
        return False
    return True


def _present(value: object) -> bool:
    return value is not None and value != ""


def check_contact(
    body: Mapping[str, Any],
    *,
    current: Mapping[str, Any] | None = None,
    sms_countries: Collection[str] = DEFAULT_SMS_COUNTRIES,
) -> list[FieldError]:
    """Every rule ``body`` breaks, in the contract's order (empty list when valid).

    ``current`` is the stored contact for an update: the identifier rule and
    the SMS country rule then apply to the contact as it would be after the
    merge, as the contract says.

    Example:
        >>> [e.field for e in check_contact({"nickname": "x"})]
        ['nickname', 'email / phone_number']
    """
    errors: list[FieldError] = [
        FieldError.of(str(key), "unknown_field") for key in body if key not in FIELDS
    ]
    merged: dict[str, Any] = dict(current or {})
    merged.update({k: v for k, v in body.items() if k in FIELDS})
    if not any(_present(merged.get(f)) for f in IDENTIFIER_FIELDS):
        errors.append(FieldError.of(REQUIRED_FIELD, "required"))

    email = body.get("email")
    if _present(email) and not (isinstance(email, str) and is_valid_email(email)):
        errors.append(FieldError.of("email", "invalid_email"))

    phone = body.get("phone_number")
    if _present(phone) and not (isinstance(phone, str) and phone_region(phone)):
        errors.append(FieldError.of("phone_number", "invalid_phone"))

    for field, allowed in CHOICES.items():
        value = body.get(field)
        if value is not None and value not in allowed:
            errors.append(FieldError.of(field, "invalid_choice"))

    # The SMS rule as the contract writes it: "when set, the contact's phone number
    # is from a supported SMS country". Set means any value (one outside the enum
    # too), and a missing or invalid number is from no supported country; since all
    # broken rules are reported together, the user meets this one with the others,
    # not after fixing them. It is about the contact: it applies when the body sets
    # a consent and also when it changes the number under a consent the contact holds.
    sms = merged.get("sms_consent")
    touches_sms = "sms_consent" in body or "phone_number" in body
    if touches_sms and sms is not None:
        number = merged.get("phone_number")
        region = phone_region(number) if isinstance(number, str) and number else None
        if region not in sms_countries:
            errors.append(FieldError.of("sms_consent", "sms_country"))

    for field in ("first_name", "last_name"):
        value = body.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            errors.append(FieldError.of(field, "invalid_type"))
        elif len(value) > NAME_MAX_LENGTH:
            errors.append(FieldError.of(field, "too_long"))

    custom = body.get("custom_fields")
    if custom is not None and not check_custom_fields(custom):
        errors.append(FieldError.of("custom_fields", "nested_custom_fields"))
    return errors
