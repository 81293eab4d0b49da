"""Synthetic contact data for benchmarks and big-file tests.

``make_contacts_frame(n)`` builds ``n`` rows with unique emails and unique,
mixed-format phone numbers from many countries (E.164, international with
spaces or dashes, national with parentheses or dots, ``1-`` prefixed US,
``00`` international prefix), about 4% invalid phones, 2% invalid emails,
consent values in assorted spellings, and two custom columns
(``custom.plan``: a few words; ``custom.seats``: numbers, 30% blank).
``make_contacts_csv`` writes the same to a file, in chunks so memory stays
flat.

Example:
    >>> df = make_contacts_frame(5, seed=1)
    >>> list(df.columns)[:3], len(df)
    (['email', 'phone_number', 'first_name'], 5)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers

from synckit import rules

__all__ = ["COLUMNS", "make_contacts_csv", "make_contacts_frame"]

# The contract's text fields, then two custom fields as prefixed columns: a few
# distinct words (plan) and a number of seats (digits, as a CSV holds them).
COLUMNS = (*(f for f in rules.FIELDS if f != "custom_fields"), "custom.plan", "custom.seats")

# (region, weight): mostly the US (default region), then a spread of others.
_REGIONS = (
    ("US", 40), ("CA", 6), ("GB", 10), ("DE", 5), ("FR", 5), ("ES", 3), ("IT", 3), ("NL", 2),
    ("AU", 3), ("IN", 4), ("BR", 3), ("MX", 3), ("JP", 2), ("SE", 1), ("PL", 1), ("IE", 1),
    ("CH", 1), ("ZA", 1), ("NG", 1), ("SG", 1), ("NZ", 1), ("AR", 1), ("KR", 1), ("PH", 1),
)  # fmt: skip
_FIRST = (
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Linus",
    "Radia",
    "Ken",
    "Frances",
    "John",
    "Hedy",
    "Tim",
    "Sophie",
    "Yuki",
    "Chidi",
    "Ana",
    "Lars",
    "Mei",
)
_LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Torvalds",
         "Perlman", "Thompson", "Allen", "Backus", "Lamarr", "Berners-Lee", "Wilson", "Tanaka",
         "Okafor", "García", "Nilsson", "Chen")  # fmt: skip
_DOMAINS = ("example.com", "example.org", "mail.example.net", "Example.co.uk", "corp.example.io")
_EMAIL_CONSENT = ("subscribed", "Subscribed", "unsubscribed", "never_subscribed", " subscribed ",
                  "Never Subscribed", "", "", "suppressed")  # fmt: skip
_SMS_CONSENT = ("single_opt_in", "", "", "", "subscribed", "unsubscribed", "SINGLE_OPT_IN")
_PLANS = ("free", "pro", "team", "")
_ASCII = str.maketrans("áéíóúñçü", "aeiouncu")


def _templates() -> tuple[list[tuple[str, str, str, str]], np.ndarray]:
    """Distinct (region, country code, NSN, national format) examples and their weights."""
    out: list[tuple[str, str, str, str]] = []
    weights: list[float] = []
    seen: dict[tuple[str, str, int], int] = {}
    for region, weight in _REGIONS:
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            nsn = phonenumbers.national_significant_number(number)
            national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
            # templates sharing country code, length and prefix would share numbers: merge them
            key = (str(number.country_code), nsn[: len(nsn) - min(6, len(nsn) - 3)], len(nsn))
            if key in seen:
                weights[seen[key]] += weight
                continue
            seen[key] = len(out)
            out.append((region, str(number.country_code), nsn, national))
            weights.append(weight)
    w = np.asarray(weights, dtype=float)
    return out, w / w.sum()


def _fill(template: str, suffix: str) -> str:
    """Replace the last len(suffix) digits of ``template`` (a formatted number) by ``suffix``."""
    chars = list(template)
    k = len(suffix) - 1
    for i in range(len(chars) - 1, -1, -1):
        if k < 0:
            break
        if chars[i].isdigit():
            chars[i] = suffix[k]
            k -= 1
    return "".join(chars)


def make_contacts_frame(n: int, *, seed: int = 0, unique_phones: bool = True) -> pd.DataFrame:
    """``n`` synthetic contacts as text columns (see module docstring).

    With ``unique_phones=False`` phone numbers repeat (each template number
    is reused about ten times).
    """
    templates, _ = _templates()
    return _frame(
        n, np.random.default_rng(seed), np.zeros(len(templates), np.int64), 0, unique_phones
    )


def _frame(
    n: int, rng: np.random.Generator, counts: np.ndarray, offset: int, unique_phones: bool
) -> pd.DataFrame:
    templates, weights = _templates()
    t_idx = rng.choice(len(templates), size=n, p=weights)
    # rank of each row among the rows of its template, across chunks (updates counts)
    rank = pd.Series(t_idx).groupby(t_idx).cumcount().to_numpy() + counts[t_idx]
    counts += np.bincount(t_idx, minlength=len(templates))
    if not unique_phones:
        rank = rank // 10
    fmt_roll = rng.random(n)
    phones: list[str] = []
    for i in range(n):
        region, cc, nsn, national = templates[t_idx[i]]
        k = min(6, len(nsn) - 3)
        # multiplying by a number coprime to 10**k permutes the suffixes: unique per template
        suffix = f"{(int(rank[i]) * 7919) % 10**k:0{k}d}"
        body = nsn[: len(nsn) - k] + suffix
        r = fmt_roll[i]
        if r < 0.30:
            text = "+" + cc + body
        elif r < 0.50:
            text = "+" + cc + " " + " ".join([body[:3], body[3:6], body[6:]]).strip()
        elif r < 0.60:
            text = "+" + cc + "-" + "-".join([body[:3], body[3:6], body[6:]]).strip("-")
        elif r < 0.65:
            text = "00" + cc + " " + body
        elif region == "US" and r < 0.85:
            if r < 0.72:
                text = _fill(national, suffix)
            elif r < 0.78:
                text = f"{body[:3]}.{body[3:6]}.{body[6:]}"
            else:
                text = f"1-{body[:3]}-{body[3:6]}-{body[6:]}"
        elif r < 0.96:
            text = "+" + cc + " " + body
        elif r < 0.98:
            text = "+" + cc + body + "9999"  # too long: invalid
        else:
            text = "+" + cc + " " + body + " x" + str(i % 90 + 10)  # extension: rejected
        phones.append(text)
    first = np.array(_FIRST, dtype=object)[rng.integers(0, len(_FIRST), n)]
    last = np.array(_LAST, dtype=object)[rng.integers(0, len(_LAST), n)]
    domain = np.array(_DOMAINS, dtype=object)[rng.integers(0, len(_DOMAINS), n)]
    email_roll = rng.random(n)
    emails = []
    for i in range(n):
        serial = offset + i
        if email_roll[i] < 0.7:
            # real addresses are overwhelmingly ASCII: accents dropped, as people do
            local = f"{first[i]}.{last[i]}{serial}".lower()
            if email_roll[i] > 0.005:
                local = local.translate(_ASCII)
        else:
            local = f"{first[i]}{serial}"
        address = f"{local}@{domain[i]}"
        if email_roll[i] > 0.98:
            address = address.replace("@", "@@") if i % 2 else local
        elif email_roll[i] > 0.95:
            address = f"  {address} "
        emails.append(address)
    ec = np.array(_EMAIL_CONSENT, dtype=object)[rng.integers(0, len(_EMAIL_CONSENT), n)]
    sc = np.array(_SMS_CONSENT, dtype=object)[rng.integers(0, len(_SMS_CONSENT), n)]
    plan = np.array(_PLANS, dtype=object)[rng.integers(0, len(_PLANS), n)]
    seats = rng.integers(1, 500, n).astype(str).astype(object)
    seats[rng.random(n) < 0.3] = ""  # not every row has one
    frame = pd.DataFrame(
        {
            "email": emails,
            "phone_number": phones,
            "first_name": first,
            "last_name": last,
            "email_consent": ec,
            "sms_consent": sc,
            "custom.plan": plan,
            "custom.seats": seats,
        },
        columns=list(COLUMNS),
    )
    return frame.replace("", None).astype("str")


def make_contacts_csv(
    path: str | os.PathLike[str],
    n_rows: int,
    *,
    seed: int = 0,
    unique_phones: bool = True,
    chunk: int = 200_000,
) -> Path:
    """Write ``n_rows`` synthetic contacts to ``path`` (UTF-8, comma separated); returns the path.

    Written in chunks of ``chunk`` rows so memory stays flat; phones (when
    ``unique_phones``) and emails are unique across the whole file.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    templates, _ = _templates()
    rng = np.random.default_rng(seed)
    counts = np.zeros(len(templates), np.int64)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        done = 0
        while True:
            size = min(chunk, n_rows - done)
            frame = _frame(size, rng, counts, done, unique_phones)
            frame.to_csv(fh, index=False, header=done == 0)
            done += size
            if done >= n_rows:
                break
    return out
