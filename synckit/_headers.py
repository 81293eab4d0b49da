"""Recognise the headers of real contact exports, so nobody types a column mapping.

:func:`recognise` names the contact field a header feeds, with a rank: where
an export has several columns for one field, the lowest rank is read first
and the others fill in where it is empty (the mobile phone before the home
phone, the first e-mail before the second). The tables below come from the
exports' public documentation and sample files:

- **Google Contacts** (``E-mail 1 - Value``, ``Phone 1 - Label`` /
  ``Phone 1 - Value``, ``Address 1 - Country``; the legacy ``Given Name`` /
  ``E-mail 1 - Type``). Google names a phone's kind in its label column, so
  the mobile one is found row by row (:data:`MOBILE_LABELS`).
- **Outlook** (``E-mail Address``, ``E-mail 2 Address``, ``Mobile Phone``,
  ``Primary Phone``, ``Home Country/Region``).
- **Mailchimp** audience exports (``Email Address``, ``Phone Number``, ``CC``:
  the ISO country code; ``REGION`` is a state and is not used).
- **HubSpot** (``Email``, ``Mobile Phone Number``, ``Phone Number``,
  ``Country/Region``).
- **Salesforce** reports (``Email``, ``Mobile``, ``Phone``, ``Mailing
  Country``), and the footer lines a Classic CSV export appends.
- **Shopify** customers (``Email``, ``Phone``, ``Default Address Phone``,
  ``Default Address Country Code``; the older ``Country Code``).
- **Apple / iCloud** contacts come as vCard; :mod:`synckit._vcard` turns
  them into the Google-style columns read here.
- Everyday spellings in English, German, French and Spanish (``e-mail``,
  ``Handy``, ``Vorname``, ``courriel``, ``portable``, ``Nachname``,
  ``apellidos``, ``pays``, ``país``...).

Nothing about values is guessed here: a column of consents written as
``yes``/``no`` (Shopify's ``Accepts Email Marketing``) is only *suggested*,
with a note that its values need a map. :func:`suggest` proposes a field for
a header that is close to a known one (``Emial`` -> email?) using rapidfuzz.

Example:
    >>> recognise("Mobile Phone"), recognise("E-mail 2 Address").rank
    (Match(target='phone_number', rank=0, label=None), 10)
    >>> suggest("Emial").target
    'email'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Final

from rapidfuzz import fuzz, process

__all__ = [
    "COUNTRY",
    "MOBILE_LABELS",
    "NOT_A_PHONE_LABELS",
    "TARGETS",
    "Match",
    "MissingColumn",
    "Suggestion",
    "detect_layout",
    "header_key",
    "is_footer_text",
    "label_kind",
    "missing_columns",
    "nearest_header",
    "recognise",
    "suggest",
]

#: Not a contract field: the column of each row's country (its phone region). Read, never sent.
COUNTRY: Final = "country"
#: What a header can feed: the contact fields, and ``country``.
TARGETS: Final = ("email", "phone_number", "first_name", "last_name", COUNTRY)


def header_key(text: object) -> str:
    """A header reduced for matching: accents and case folded, words split on anything else.

    Example:
        >>> header_key("  E-Mail-Adresse "), header_key("Téléphone portable"), header_key("País")
        ('e mail adresse', 'telephone portable', 'pais')
    """
    decomposed = unicodedata.normalize("NFKD", str(text)).casefold()
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.split(r"[^0-9a-z]+", letters)).strip()


def _compact(key: str) -> str:
    return key.replace(" ", "")


# Ranks: lower is read first. A numbered repeat ("E-mail 2 Address", "Home
# Phone 2") adds 10 per step. Phones: mobile 0, general 5, home 6, work 7,
# other 8; fax, pager, telex, company and assistant lines are never a person's phone.
_ALIASES: Final[Mapping[str, Mapping[int, tuple[str, ...]]]] = {
    "email": {
        0: (
            "email", "e-mail", "mail", "email address", "e-mail address", "mail address",
            "primary email", "email 1", "personal email", "home email", "private email",
            # de
            "e-mail-adresse", "emailadresse", "mailadresse", "e-mail privat",
            # fr
            "courriel", "adresse courriel", "adresse e-mail", "adresse email", "adresse mail",
            "adresse electronique", "adresse de courriel", "mel",
            # es
            "correo", "correo electronico", "email personal", "direccion de correo",
            "direccion de correo electronico", "direccion de email",
        ),
        2: (
            "work email", "business email", "office email", "e-mail geschaftlich",
            "courriel professionnel", "email professionnel", "correo del trabajo",
        ),
        3: ("other email", "secondary email", "alternate email", "alternative email"),
    },
    "phone_number": {
        0: (
            "mobile", "mobile phone", "mobile number", "mobile phone number", "mobile no",
            "mobile tel", "cell", "cell phone", "cellphone", "cell number", "cellular",
            "cellular phone", "sms number", "whatsapp",
            # de
            "handy", "handynummer", "mobil", "mobilnummer", "mobiltelefon", "mobilfunk",
            "mobilfunknummer", "telefon mobil",
            # fr
            "portable", "telephone portable", "tel portable", "numero de portable",
            "telephone mobile", "numero de mobile",
            # es
            "movil", "telefono movil", "numero de movil", "celular", "telefono celular",
            "numero de celular",
        ),
        5: (
            "phone", "phone number", "telephone", "telephone number", "tel", "tel no",
            "phone no", "contact number", "primary phone", "main phone", "phone 1",
            # de
            "telefon", "telefonnummer", "rufnummer", "tel nr", "telefon nr",
            # fr
            "numero de telephone", "no de telephone", "tel fixe",
            # es
            "telefono", "numero de telefono", "tlf", "tfno",
        ),
        6: (
            "home phone", "private phone", "personal phone", "telefon privat", "festnetz",
            "telephone domicile", "telephone personnel", "telefono particular",
            "telefono de casa", "telefono fijo",
        ),
        7: (
            "business phone", "work phone", "office phone", "telefon geschaftlich",
            "telephone professionnel", "telephone bureau", "telefono del trabajo",
            "telefono de oficina", "default address phone", "address phone",
        ),
        8: ("other phone", "alternate phone", "secondary phone"),
    },
    "first_name": {
        0: (
            "first name", "firstname", "first", "given name", "forename", "fname",
            "vorname", "prenom", "nombre", "nombre de pila",
        ),
    },
    "last_name": {
        0: (
            "last name", "lastname", "last", "surname", "family name", "lname",
            "nachname", "familienname", "nom", "nom de famille", "apellido", "apellidos",
        ),
    },
    "country": {
        0: (
            "country", "country code", "country region", "country name", "cc",
            "default address country code", "mailing country", "address country",
            # de / fr / es
            "land", "landercode", "pays", "code pays", "pais", "codigo de pais",
        ),
        1: ("home country region", "home country", "default address country"),
        2: (
            "business country region", "business country", "work country",
            "billing country", "shipping country",
        ),
        3: ("other country region", "other country"),
    },
}  # fmt: skip

#: Consent columns whose values are someone else's vocabulary (yes/no, true/false,
#: opt-out flags): suggested, never mapped, because their values need a map.
_CONSENT_HINTS: Final[Mapping[str, str]] = {
    _compact(header_key(h)): target
    for target, headers in {
        "email_consent": (
            "accepts email marketing", "accepts marketing", "email marketing consent",
            "email opt in", "email optin", "email opt out", "email opted out", "newsletter",
            "email subscription status", "unsubscribed from all email", "marketing emails",
            "has opted out of email", "email status", "subscribed", "newsletter abonniert",
            "abonne newsletter", "suscrito",
        ),
        "sms_consent": (
            "accepts sms marketing", "sms marketing consent", "sms opt in", "sms optin",
            "sms opt out", "sms subscription status", "sms status", "text opt in",
        ),
    }.items()
    for h in headers
}  # fmt: skip

# Words that make a header someone else's number, or not a contact field at all:
# never recognised through a numbered form, never suggested.
_NEVER: Final = frozenset(
    {"fax", "pager", "telex", "tty", "tdd", "callback", "radio", "car", "assistant",
     "assistants", "company", "manager", "managers", "spouse", "children", "yomi", "phonetic",
     "label", "type", "formatted", "street", "city", "postal", "zip", "region", "state",
     "province", "id"}
)  # fmt: skip


@dataclass(frozen=True)
class Match:
    """What a header feeds: ``target`` (see :data:`TARGETS`), its ``rank`` among
    the columns feeding the same target (lowest first), and ``label``: the key of
    the header naming each row's kind of value (Google's ``Phone 1 - Label``)."""

    target: str
    rank: int
    label: str | None = None


@dataclass(frozen=True)
class Suggestion:
    """A header close to a known one: ``target`` it might feed, and why/how."""

    target: str
    note: str


@cache
def _table() -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for target, by_rank in _ALIASES.items():
        for rank, headers in by_rank.items():
            for header in headers:
                out.setdefault(_compact(header_key(header)), (target, rank))
    return out


# Google: "<kind> <n> - <part>"; parts naming a row's kind of value are labels.
_GOOGLE: Final = re.compile(r"(e ?mail|phone|address) (\d{1,2}) (value|label|type|country)")
_GOOGLE_TARGET: Final = {"email": "email", "phone": "phone_number", "address": "country"}
_NUMBERED: Final = re.compile(r"(.*?) ?(\d{1,2}) ?(.*)")


def recognise(header: object) -> Match | None:
    """The target and rank of one header, or ``None`` (not a field of ours).

    Example:
        >>> recognise("Phone 2 - Value")
        Match(target='phone_number', rank=10, label='phone 2 label')
        >>> recognise("Business Fax") is None, recognise("REGION") is None
        (True, True)
    """
    key = header_key(header)
    if not key:
        return None
    found = _table().get(_compact(key))
    if found is not None:
        return Match(found[0], found[1])
    google = _GOOGLE.fullmatch(key)
    if google:
        kind, n, part = google.group(1).replace(" ", ""), int(google.group(2)), google.group(3)
        target = _GOOGLE_TARGET[kind]
        if (target == "country") != (part == "country") or part in ("label", "type"):
            return None
        label = None if target == "country" else f"{google.group(1)} {n} label"
        return Match(target, 10 * (n - 1), label)
    numbered = _NUMBERED.fullmatch(key)
    if numbered and not _NEVER.intersection(key.split()):
        base = " ".join(p for p in (numbered.group(1), numbered.group(3)) if p)
        found = _table().get(_compact(base))
        n = int(numbered.group(2))
        if found is not None and 1 <= n <= 9:
            return Match(found[0], found[1] + 10 * (n - 1))
    return None


#: Label texts (as :func:`header_key` folds them) that name a mobile number.
MOBILE_LABELS: Final = frozenset(
    {"mobile", "cell", "cellular", "iphone", "handy", "mobil", "portable", "movil", "celular"}
)
#: Label texts naming a number that is never a person's phone (fax, pager).
NOT_A_PHONE_LABELS: Final = frozenset({"fax", "pager", "telex", "tty", "tdd"})


def label_kind(label: object) -> str:
    """``"mobile"``, ``"never"`` (fax, pager) or ``""`` for one row's label text.

    Google marks the primary value with ``* `` and names kinds freely
    (``* Mobile``, ``Work Fax``); vCard types arrive as ``cell,voice,pref``.

    Example:
        >>> label_kind("* Mobile"), label_kind("Work Fax"), label_kind("Home")
        ('mobile', 'never', '')
    """
    words = set(header_key(label).split())
    if words & NOT_A_PHONE_LABELS:
        return "never"
    if words & MOBILE_LABELS:
        return "mobile"
    return ""


# Layouts, told apart by headers only that export writes (keys as header_key folds them).
_LAYOUTS: Final[tuple[tuple[str, tuple[frozenset[str], ...]], ...]] = (
    ("vCard (Apple Contacts / iCloud)", (frozenset({"vcard uid", "full name"}),)),
    ("Google Contacts", (frozenset({"e mail 1 value"}), frozenset({"phone 1 value"}))),
    ("Outlook", (frozenset({"e mail address", "mobile phone"}),
                 frozenset({"e mail address", "business phone"}),
                 frozenset({"e mail 2 address"}))),
    ("Mailchimp", (frozenset({"email address", "member rating"}),
                   frozenset({"email address", "optin time"}),
                   frozenset({"email address", "leid"}))),
    ("HubSpot", (frozenset({"record id", "email"}),
                 frozenset({"email", "lifecycle stage"}),
                 frozenset({"email", "contact owner", "create date"}))),
    ("Salesforce", (frozenset({"mailing country"}), frozenset({"mailing street"}),
                    frozenset({"email", "account name", "mobile"}),
                    frozenset({"email", "lead source"}))),
    ("Shopify customers", (frozenset({"accepts email marketing"}),
                           frozenset({"default address country code"}),
                           frozenset({"accepts marketing", "total spent"}))),
)  # fmt: skip


def detect_layout(headers: Iterable[object]) -> str | None:
    """The export a header row comes from, when its own headers say so.

    Example:
        >>> detect_layout(["First Name", "E-mail 1 - Label", "E-mail 1 - Value"])
        'Google Contacts'
        >>> detect_layout(["email", "phone"]) is None
        True
    """
    keys = {header_key(h) for h in headers}
    for name, signatures in _LAYOUTS:
        if any(signature <= keys for signature in signatures):
            return name
    return None


def suggest(header: object, *, taken: Iterable[str] = ()) -> Suggestion | None:
    """A field an unrecognised header may be meant for, or ``None``.

    Consent columns (``Accepts Email Marketing``) are suggested with a note
    that their values need a map. Other headers are compared with every known
    spelling by edit distance (rapidfuzz's normalised Indel similarity, at
    least 80 of 100, on the header without spaces), and a multi-word known
    spelling contained whole in the header counts too (``Mobile Phone
    (private)``). Fields in ``taken`` (already fed by a column) are not
    suggested again, nor is anything for a fax, pager or company line.

    Example:
        >>> suggest("Frist Name").target, suggest("Accepts SMS Marketing").target
        ('first_name', 'sms_consent')
        >>> suggest("Business Fax") is None, suggest("Notes") is None
        (True, True)
    """
    key = header_key(header)
    compact = _compact(key)
    if not compact:
        return None
    skip = set(taken)
    hint = _CONSENT_HINTS.get(compact)
    if hint is not None:
        if hint in skip:
            return None
        return Suggestion(hint, "a consent column: its values need a map too, none is guessed")
    if _NEVER.intersection(key.split()) or len(compact) < 4:
        return None
    table = _table()
    choices = [k for k, (target, _) in table.items() if target not in skip]
    best = process.extractOne(compact, choices, scorer=fuzz.ratio, score_cutoff=80)
    if best is not None:
        return Suggestion(table[best[0]][0], f"close to {best[0]!r}")
    words = set(key.split())
    for alias in choices:
        spaced = _spaced().get(alias, "")
        if " " in spaced and set(spaced.split()) <= words:
            return Suggestion(table[alias][0], f"contains {spaced!r}")
    return None


@cache
def _spaced() -> dict[str, str]:
    return {
        _compact(header_key(h)): header_key(h)
        for by_rank in _ALIASES.values()
        for headers in by_rank.values()
        for h in headers
    }


# Salesforce Classic appends these lines (one cell each) to a report's CSV export.
_FOOTER: Final = re.compile(r"copyright \(c\) \d{4}(?:-\d{4})? salesforce\.com", re.IGNORECASE)


def is_footer_text(text: object) -> bool:
    """True for the copyright line of the footer a Salesforce report export appends.

    Example:
        >>> is_footer_text('Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved.')
        True
    """
    return bool(_FOOTER.search(str(text)))


def nearest_header(name: object, headers: Iterable[object]) -> str | None:
    """The header of ``headers`` closest to ``name`` (a mapped column the file lacks), or None.

    Compared on :func:`header_key` forms with rapidfuzz's ``WRatio`` (at least 60
    of 100), which also scores a header that contains the name whole: a map for
    ``Mobile`` against a file that says ``Mobile Phone`` finds it.

    Example:
        >>> nearest_header("Mobile", ["E-mail Address", "Mobile Phone", "First Name"])
        'Mobile Phone'
        >>> nearest_header("Mobile", ["Notes"]) is None
        True
    """
    keyed = {header_key(h): str(h) for h in headers if header_key(h)}
    key = header_key(name)
    if not key or not keyed:
        return None
    best = process.extractOne(key, list(keyed), scorer=fuzz.WRatio, score_cutoff=60)
    return keyed[best[0]] if best is not None else None


@dataclass(frozen=True)
class MissingColumn:
    """A mapped source column the file does not have, and the header it may have meant."""

    name: str
    suggestion: str | None = None

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{self.name!r}{hint}"


def missing_columns(unmatched: Iterable[object], headers: Iterable[object]) -> list[MissingColumn]:
    """Each mapped column in ``unmatched`` with the nearest of the file's ``headers``.

    One implementation for ``synckit validate`` (a warning) and ``synckit sync``
    (a preflight error: a column renamed upstream would otherwise leave a field
    empty on every contact, silently, every night).

    Example:
        >>> [str(m) for m in missing_columns(["Mobile"], ["E-mail", "Mobile Phone"])]
        ["'Mobile' (did you mean 'Mobile Phone'?)"]
    """
    names = [str(h) for h in headers]
    return [MissingColumn(str(u), nearest_header(u, names)) for u in unmatched]
