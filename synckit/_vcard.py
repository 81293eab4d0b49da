"""vCard files (Apple Contacts, iCloud) as the columns :func:`synckit.read_csv` reads.

Apple Contacts and iCloud export vCard (``.vcf``), not CSV. :func:`to_csv`
turns the cards into a CSV in Google Contacts' column layout, which the
header recognition then reads like any export: ``First Name``, ``Last
Name``, ``E-mail N - Label`` / ``E-mail N - Value``, ``Phone N - Label`` /
``Phone N - Value`` (the label is the vCard ``TYPE``, e.g. ``cell,voice,pref``,
or Apple's ``X-ABLabel``, so the mobile number wins and a fax is never used)
and ``Address N - Country`` (the address's country, or Apple's ``X-ABADR``
ISO code). Parsing (line folding, escapes, quoted-printable, vCard 2.1 to
4.0) is vobject's. Row 2 is the first card, as if the cards were a sheet.

Example:
    >>> text = "BEGIN:VCARD\\nVERSION:3.0\\nN:Lovelace;Ada;;;\\nFN:Ada Lovelace\\n" \\
    ...        "TEL;type=CELL:07400 123456\\nEND:VCARD\\n"
    >>> print(to_csv(text).splitlines()[1])
    Ada,Lovelace,Ada Lovelace,cell,07400 123456,
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Final

from synckit.errors import InputError

__all__ = ["looks_like_vcard", "to_csv"]

_APPLE_LABEL: Final = re.compile(r"_\$!<(.*)>!\$_")


def looks_like_vcard(sample: str) -> bool:
    """True when text starts (after a BOM and blank lines) with ``BEGIN:VCARD``.

    Example:
        >>> looks_like_vcard("\\ufeff\\nBEGIN:VCARD\\r\\n"), looks_like_vcard("email\\n")
        (True, False)
    """
    return sample.lstrip("\ufeff \t\r\n").upper().startswith("BEGIN:VCARD")


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value if v)
    return str(value or "").strip()


def _apple_label(value: Any) -> str:
    """Apple's own labels come wrapped (``_$!<Mobile>!$_``); custom ones are plain text."""
    text = str(value)
    wrapped = _APPLE_LABEL.fullmatch(text)
    return (wrapped.group(1) if wrapped else text).lower()


def _preferred(item: Any) -> bool:
    return "pref" in [str(t).lower() for t in item.params.get("TYPE", [])]


def _label(item: Any, labels: dict[str | None, str]) -> str:
    types = [str(t).lower() for t in item.params.get("TYPE", []) if t]
    if item.group and item.group in labels:
        types.insert(0, labels[item.group])
    return ",".join(types)


def to_csv(text: str, *, source: str = "<buffer>") -> str:
    """The cards of a vCard file as CSV text (header first), one row per card.

    A card vobject cannot parse is an :class:`~synckit.errors.InputError`
    naming the file and the card's first line.
    """
    import vobject

    cards: list[dict[str, str]] = []
    counts = {"E-mail": 0, "Phone": 0, "Address": 0}
    try:
        for card in vobject.readComponents(text, ignoreUnreadable=False):
            if card.name.upper() != "VCARD":
                continue
            contents = card.contents
            labels = {x.group: _apple_label(x.value) for x in contents.get("x-ablabel", [])}
            row: dict[str, str] = {}
            if "n" in contents:
                name = contents["n"][0].value
                row["First Name"] = _text(name.given)
                row["Last Name"] = _text(name.family)
            if "fn" in contents:
                row["Full Name"] = _text(contents["fn"][0].value)
            for kind, key in (("E-mail", "email"), ("Phone", "tel")):
                items = sorted(contents.get(key, []), key=lambda it: not _preferred(it))
                for n, item in enumerate(items, start=1):
                    row[f"{kind} {n} - Label"] = _label(item, labels)
                    row[f"{kind} {n} - Value"] = _text(item.value)
                counts[kind] = max(counts[kind], len(items))
            iso = {x.group: _text(x.value) for x in contents.get("x-abadr", [])}
            for n, item in enumerate(contents.get("adr", []), start=1):
                row[f"Address {n} - Country"] = _text(item.value.country) or iso.get(item.group, "")
                counts["Address"] = max(counts["Address"], n)
            if "uid" in contents:
                row["vCard UID"] = _text(contents["uid"][0].value)
            cards.append(row)
    except Exception as exc:  # vobject raises ParseError and, on broken input, others
        line = getattr(exc, "lineNumber", None)
        raise InputError(f"cannot read the vCard file: {exc}", path=source, line=line) from exc
    if not cards:
        raise InputError("the vCard file holds no card", path=source, line=1)
    header = ["First Name", "Last Name", "Full Name"]
    for kind in ("E-mail", "Phone"):
        for n in range(1, counts[kind] + 1):
            header += [f"{kind} {n} - Label", f"{kind} {n} - Value"]
    header += [f"Address {n} - Country" for n in range(1, counts["Address"] + 1)]
    header.append("vCard UID")  # always: it also tells the header recognition what this was
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(cards)
    return out.getvalue()
