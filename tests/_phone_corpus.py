# ruff: noqa: E501  (test data reads better unwrapped)
"""A generated corpus of phone texts for differential tests (every region, many formats, junk)."""

from __future__ import annotations

import random

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

_TYPES = (
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER,
    PhoneNumberType.UAN,
    PhoneNumberType.VOICEMAIL,
)

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


def _examples() -> list[phonenumbers.PhoneNumber]:
    out = []
    for region in REGIONS:
        for kind in _TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                out.append(number)
    for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        number = phonenumbers.example_number_for_non_geo_entity(cc)
        if number is not None:
            out.append(number)
    return out


def _mutate(rng: random.Random, digits: str) -> str:
    roll = rng.random()
    chars = list(digits)
    if roll < 0.45:  # change trailing digits (usually stays valid)
        for k in range(1, min(len(chars), rng.randint(1, 5)) + 1):
            chars[-k] = str(rng.randint(0, 9))
    elif roll < 0.6:  # change any digit
        chars[rng.randrange(len(chars))] = str(rng.randint(0, 9))
    elif roll < 0.7:
        chars.insert(rng.randrange(len(chars) + 1), str(rng.randint(0, 9)))
    elif roll < 0.8 and len(chars) > 3:
        del chars[rng.randrange(len(chars))]
    elif roll < 0.9:
        chars = [str(rng.randint(0, 9)) for _ in range(rng.randint(3, 16))]
    return "".join(chars)


def _group(rng: random.Random, digits: str) -> str:
    seps = [" ", "-", ".", "", " "]
    out, i = [], 0
    while i < len(digits):
        step = rng.randint(2, 4)
        out.append(digits[i : i + step])
        i += step
    sep = rng.choice(seps)
    text = sep.join(out)
    if rng.random() < 0.2 and len(out) > 1:
        text = "(" + out[0] + ") " + sep.join(out[1:])
    return text


JUNK = [
    "", "n/a", "N/A", "-", "0", "00", "000-000-0000", "555-1234", "+1 555 555 0123", "+", "++44",
    "+0 123 456", "+999 123 4567", "tel:+1-415-555-2671", "+1 (415) 555-2671 x123",
    "415-555-2671 ext. 45", "1-800-FLOWERS", "+44 (0) 7400 123456", "0049 30 1234567",
    "011 44 7400 123456", "00 44 7400 123456", "+44 07400 123456", "+1 1 415 555 2671",
    "1 415 555 2671", "14155552671", "(415) 555-2671", "415.555.2671", "+１ ４１５ ５５５ ２６７１",
    "+44 7911 123456", "+44 7624 123456", "+1 809 555 1234", "+1 416 555 0100", "+1 787 555 0100",
    "1234567890123456789", "+12345678901234567890", "+44 (7400) 123-456", "(+44) 7400 123456",
    "+33 6 12 34 56 78", "06 12 34 56 78", "+49 (0)30 1234567", "030 1234567", "+61 4 1234 5678",
    "0412 345 678", "+54 9 11 1234 5678", "011 15 1234 5678", "+55 11 91234 5678", "+81 90 1234 5678",
    "090-1234-5678", "+86 138 0013 8000", "+7 912 345 67 89", "8 912 345 67 89", "+39 06 1234 5678",
    "+39 312 345 6789", "+800 1234 5678", "+882 3456 7890", "abc", "12", "123", "+12",
    "+1 415 555 2671;ext=9", "4155552671#", "(((415))) 555 2671", "415--555--2671", ".4155552671",
]  # fmt: skip


def corpus(n: int, *, seed: int = 0) -> list[str]:
    """``n`` phone texts: example numbers of every region and type, mutated and formatted."""
    rng = random.Random(seed)
    examples = _examples()
    out = list(JUNK)
    while len(out) < n:
        number = rng.choice(examples)
        cc = str(number.country_code)
        nsn = phonenumbers.national_significant_number(number)
        nsn = _mutate(rng, nsn) if rng.random() < 0.9 else nsn
        roll = rng.random()
        if roll < 0.3:
            text = "+" + cc + nsn
        elif roll < 0.5:
            text = "+" + cc + " " + _group(rng, nsn)
        elif roll < 0.6:
            text = "00" + cc + " " + _group(rng, nsn)
        elif roll < 0.65:
            text = "011 " + cc + " " + _group(rng, nsn)
        elif roll < 0.75:
            text = cc + _group(rng, nsn)
        elif roll < 0.85:
            text = "0" + _group(rng, nsn)
        else:
            try:
                parsed = phonenumbers.parse("+" + cc + nsn, None)
                fmt = rng.choice([PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL])
                text = phonenumbers.format_number(parsed, fmt)
            except phonenumbers.NumberParseException:
                text = _group(rng, nsn)
        out.append(text)
    return out[:n]


def with_extensions(texts: list[str], *, seed: int = 0) -> list[str]:
    """Some of ``texts`` with an extension appended in the usual spellings."""
    rng = random.Random(seed)
    out = []
    for text in texts:
        digits = str(rng.randint(0, 10 ** rng.randint(1, 10)))
        out.append(text + rng.choice([" x", "x", " x ", " ext. ", " ext", "#", " X"]) + digits)
    return out
