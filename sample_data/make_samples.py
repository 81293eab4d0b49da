# ruff: noqa: E501  (test data reads better unwrapped)
"""Regenerate ``contacts.csv``, ``contacts_updated.csv`` and ``google_contacts.csv`` (deterministic).

Run: ``python sample_data/make_samples.py``. The files imitate a CRM export:
mapped headers, phones in many formats and countries, bad emails, odd
consent spellings, ``custom.*`` columns, in-file duplicates, blank cells and
a column that is not sent (``Company``). ``contacts_updated.csv`` is the same
list a day later: a few people changed, a few are new, one unsubscribed.
``google_contacts.csv`` is a Google Contacts export as downloaded (its own
column layout, labels, " ::: " multi-value cells, typed country names).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import phonenumbers

HERE = Path(__file__).resolve().parent
HEADER = [
    "First Name",
    "Last Name",
    "E-mail Address",
    "Mobile",
    "Newsletter",
    "SMS Opt-In",
    "custom.plan",
    "custom.signup_source",
    "Company",
]
FIRST = [
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
    "Olga",
    "Priya",
    "Tomás",
    "Zoë",
    "Hamid",
    "Ingrid",
    "Kwame",
    "Lucía",
    "Noah",
    "Aiko",
    "Mateo",
    "Fatima",
    "Emil",
    "Chloé",
    "Ravi",
    "Sven",
    "Amara",
    "Diego",
    "Hana",
    "Jonas",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Torvalds",
    "Perlman",
    "Thompson",
    "Allen",
    "Backus",
    "Lamarr",
    "Berners-Lee",
    "Wilson",
    "Tanaka",
    "Okafor",
    "García",
    "Nilsson",
    "Chen",
    "Ivanova",
    "Patel",
    "Müller",
    "O'Brien",
    "Haddad",
    "Johansson",
    "Mensah",
    "Fernández",
    "Smith",
    "Suzuki",
    "Rossi",
    "Khan",
    "Dubois",
    "Iyer",
    "Larsen",
    "Adeyemi",
    "Moreno",
    "Kim",
    "Schmidt",
]
COMPANIES = ["Acme Ltd", "Globex", "Initech", "Umbrella Corp", "", "Hooli", "Stark Industries"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "Example.co.uk", "corp.example.io"]
# region, weight: most contacts are American, the rest spread across countries
REGIONS = [("US", 45), ("GB", 14), ("CA", 6), ("DE", 5), ("FR", 5), ("IE", 3), ("AU", 4), ("IN", 4),
           ("BR", 3), ("MX", 3), ("ES", 2), ("NL", 2), ("JP", 2), ("ZA", 1), ("NG", 1)]  # fmt: skip
NEWSLETTER = ["subscribed"] * 20 + ["unsubscribed", "never_subscribed"] * 3 + ["Subscribed ", "SUBSCRIBED", "unsubscribed", "Never Subscribed",
              "never_subscribed", "", "", "", "suppressed", "yes", "opted out"]  # fmt: skip
SMS = ["single_opt_in"] * 8 + [""] * 14 + ["subscribed", "Single Opt-In", "unsubscribed",
       "never subscribed", "y"]  # fmt: skip
PLANS = ["free", "pro", "team", "", "enterprise"]
SOURCES = ["webinar", "trade show", "referral", "", "ads", ""]


def _phone(rng: random.Random, region: str) -> str:
    kind = phonenumbers.PhoneNumberType.MOBILE
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    for _ in range(50):
        nsn = phonenumbers.national_significant_number(example)
        nsn = nsn[:-4] + f"{rng.randrange(10_000):04d}"
        number = phonenumbers.parse("+" + str(example.country_code) + nsn)
        if phonenumbers.is_valid_number(number):
            break
    fmt = rng.random()
    if fmt < 0.35:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if fmt < 0.65:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if region == "US":
        national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        return national if fmt < 0.85 else "1-" + national.replace("(", "").replace(") ", "-")
    if fmt < 0.8:
        return "00" + str(number.country_code) + " " + nsn
    return "+" + str(number.country_code) + "-" + nsn


def _people(rng: random.Random, n: int) -> list[dict[str, str]]:
    regions = [r for r, w in REGIONS for _ in range(w)]
    out = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first}.{last}".lower().replace("'", "")
        local = local.translate(str.maketrans("áéíóúñüöë", "aeiounuoe")) + str(i)
        email = f"{local}@{rng.choice(DOMAINS)}"
        if rng.random() < 0.15:
            email = email.title() if rng.random() < 0.5 else f" {email} "
        mobile = _phone(rng, rng.choice(regions)) if rng.random() > 0.12 else ""
        # people without a mobile rarely have an SMS consent (but it happens)
        sms = rng.choice(SMS) if mobile or rng.random() < 0.03 else ""
        out.append(
            {
                "First Name": first if rng.random() > 0.05 else f"  {first} ",
                "Last Name": last,
                "E-mail Address": email if rng.random() > 0.08 else "",
                "Mobile": mobile,
                "Newsletter": rng.choice(NEWSLETTER),
                "SMS Opt-In": sms,
                "custom.plan": rng.choice(PLANS),
                "custom.signup_source": rng.choice(SOURCES),
                "Company": rng.choice(COMPANIES),
            }
        )
    return out


# Hand-written trouble, each a realistic mistake (one per row).
MESSY = [
    {"First Name": "Ada", "Last Name": "Typo", "E-mail Address": "ada@@example.com", "Mobile": "+1 415 555 2671"},
    {"First Name": "Bob", "Last Name": "NoTld", "E-mail Address": "bob@example", "Newsletter": "subscribed"},
    {"First Name": "Carol", "Last Name": "Space", "E-mail Address": "carol example.com"},
    {"First Name": "Dave", "Last Name": "Local", "E-mail Address": "dave@localhost"},
    {"First Name": "Erin", "Last Name": "Nothing", "Newsletter": "subscribed"},
    {"First Name": "Frank", "Last Name": "Short", "Mobile": "555-1234"},
    {"First Name": "Gina", "Last Name": "Zeroes", "Mobile": "000-000-0000", "E-mail Address": "gina@example.com"},
    {"First Name": "Hugo", "Last Name": "Extension", "Mobile": "+1 (212) 555-0199 x204", "E-mail Address": "hugo@example.com"},
    {"First Name": "Iris", "Last Name": "Guernsey", "Mobile": "+44 7911 123456", "SMS Opt-In": "single_opt_in", "E-mail Address": "iris@example.co.uk"},
    {"First Name": "Jack", "Last Name": "Dominican", "Mobile": "+1 809 555 1234", "SMS Opt-In": "subscribed"},
    {"First Name": "Kim", "Last Name": "NoPhone", "E-mail Address": "kim@example.com", "SMS Opt-In": "single_opt_in"},
    {"First Name": "Leo", "Last Name": "Vanity", "Mobile": "1-800-FLOWERS", "E-mail Address": "leo@example.com"},
    {"First Name": "Mia", "Last Name": "NA", "Mobile": "N/A", "E-mail Address": "mia@example.com"},
    {"First Name": "Ned", "Last Name": "Float", "Mobile": "4155550132.0", "E-mail Address": "ned@example.com"},
    {"First Name": "Olive", "Last Name": "Consent", "E-mail Address": "olive@example.com", "Newsletter": "opt-in"},
    {"First Name": "P" + "a" * 120, "Last Name": "Long", "E-mail Address": "pat@example.com"},
    {"First Name": "Quinn", "Last Name": "Dialled", "Mobile": "011 44 7400 123456", "E-mail Address": "quinn@example.com"},
    {"First Name": "Rosa", "Last Name": "Zeros", "Mobile": "0044 20 7946 0958", "E-mail Address": "rosa@example.com"},
]  # fmt: skip


def main() -> None:
    rng = random.Random(20261121)
    people = _people(rng, 300)
    rows = [dict.fromkeys(HEADER, "") | p for p in people]
    for extra in MESSY:
        at = rng.randrange(len(rows))
        rows.insert(at, dict.fromkeys(HEADER, "") | extra)
    # in-file duplicates: the same person exported twice, differently written
    for _ in range(6):
        src = rng.choice(people)
        if not src["E-mail Address"]:
            continue
        dup = dict(src)
        dup["E-mail Address"] = src["E-mail Address"].strip().upper()
        dup["custom.plan"] = "pro"
        rows.insert(rng.randrange(len(rows)), dup)
    phone_src = next(p for p in people if p["Mobile"].startswith("+1"))
    rows.append({**dict.fromkeys(HEADER, ""), "First Name": phone_src["First Name"],
                 "Last Name": phone_src["Last Name"], "Mobile": phone_src["Mobile"].replace("+1", "1")})  # fmt: skip
    _write(HERE / "contacts.csv", rows)

    # a day later: some changed, some new, one unsubscribed
    later = [dict(r) for r in rows]
    changed = 0
    for row in later:
        if row in (r for r in MESSY):
            continue
        if row["E-mail Address"] and rng.random() < 0.06:
            row["custom.plan"] = rng.choice(["pro", "team", "enterprise"])
            row["Last Name"] = row["Last Name"] + "-" + rng.choice(LAST)
            changed += 1
    victim = next(
        r for r in later if r["Newsletter"].strip().lower() == "subscribed" and r["E-mail Address"]
    )
    victim["Newsletter"] = "unsubscribed"
    later.extend(dict.fromkeys(HEADER, "") | p for p in _people(random.Random(7), 20))
    _write(HERE / "contacts_updated.csv", later)
    print(f"{len(rows)} rows, then {len(later)} rows ({changed} changed, 20 new, 1 unsubscribed)")
    google = google_contacts(random.Random(13))
    _write(HERE / "google_contacts.csv", google, GOOGLE_HEADER)
    print(f"google_contacts.csv: {len(google)} rows")


def _write(path: Path, rows: list[dict[str, str]], header: list[str] = HEADER) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


# ---------------------------------------------------------------------------
# google_contacts.csv: a Google Contacts export as downloaded ("Google CSV")

GOOGLE_HEADER = [
    "First Name", "Middle Name", "Last Name", "Phonetic First Name", "Phonetic Middle Name",
    "Phonetic Last Name", "Name Prefix", "Name Suffix", "Nickname", "File As",
    "Organization Name", "Organization Title", "Organization Department", "Birthday", "Notes",
    "Photo", "Labels", "E-mail 1 - Label", "E-mail 1 - Value", "E-mail 2 - Label",
    "E-mail 2 - Value", "Phone 1 - Label", "Phone 1 - Value", "Phone 2 - Label",
    "Phone 2 - Value", "Address 1 - Label", "Address 1 - Formatted", "Address 1 - Street",
    "Address 1 - City", "Address 1 - PO Box", "Address 1 - Region", "Address 1 - Postal Code",
    "Address 1 - Country", "Address 1 - Extended Address", "Website 1 - Label", "Website 1 - Value",
]  # fmt: skip
# the country as people type it into Google Contacts -> its region
GOOGLE_COUNTRIES = [("United States", "US")] * 6 + [("USA", "US"), ("United Kingdom", "GB"),
    ("United Kingdom", "GB"), ("UK", "GB"), ("Deutschland", "DE"), ("France", "FR"),
    ("España", "ES"), ("Canada", "CA"), ("Australia", "AU"), ("Ireland", "IE"), ("", "US")]  # fmt: skip
GOOGLE_MESSY = [
    # Excel turned the number into a float before the list was imported to Google
    {"First Name": "Nora", "Last Name": "Float", "E-mail 1 - Label": "* Home", "E-mail 1 - Value": "nora@example.co.uk",
     "Phone 1 - Label": "Mobile", "Phone 1 - Value": "4.47911E+11", "Address 1 - Country": "United Kingdom"},
    # an extension E.164 cannot carry
    {"First Name": "Omar", "Last Name": "Desk", "E-mail 1 - Label": "* Work", "E-mail 1 - Value": "omar@example.com",
     "Phone 1 - Label": "Work", "Phone 1 - Value": "+1 212 555 0199 ext. 7"},
    # a British mobile with no country: not a valid US number
    {"First Name": "Pippa", "Last Name": "Abroad", "E-mail 1 - Label": "* Home", "E-mail 1 - Value": "pippa@example.co.uk",
     "Phone 1 - Label": "Mobile", "Phone 1 - Value": "07400 123456"},
    # a typo in the address
    {"First Name": "Quentin", "Last Name": "Typo", "E-mail 1 - Label": "* Home", "E-mail 1 - Value": "quentin@@example.fr",
     "Address 1 - Country": "France"},
]  # fmt: skip


def _national(rng: random.Random, region: str) -> str:
    """A valid mobile number of ``region`` written the national way."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    nsn = phonenumbers.national_significant_number(example)
    for _ in range(50):
        number = phonenumbers.parse(
            "+" + str(example.country_code) + nsn[:-4] + f"{rng.randrange(10_000):04d}"
        )
        if phonenumbers.is_valid_number(number):
            break
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def google_contacts(rng: random.Random, n: int = 36) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        country, region = rng.choice(GOOGLE_COUNTRIES)
        local = f"{first}.{last}".lower().replace("'", "")
        local = local.translate(str.maketrans("áéíóúñüöëé", "aeiounuoee"))
        row = dict.fromkeys(GOOGLE_HEADER, "") | {
            "First Name": first,
            "Last Name": last,
            "Labels": rng.choice(
                ["* myContacts", "* myContacts ::: Friends", "* myContacts ::: Work"]
            ),
            "E-mail 1 - Label": "* Home",
            "E-mail 1 - Value": f"{local}@{rng.choice(DOMAINS).lower()}",
            "Address 1 - Label": "Home" if country else "",
            "Address 1 - Country": country,
        }
        roll = rng.random()
        if roll < 0.15:  # Google keeps two addresses of one label in one cell
            row["E-mail 1 - Value"] += f" ::: {first.lower()}@work.example.com"
        elif roll < 0.35:
            row["E-mail 2 - Label"], row["E-mail 2 - Value"] = "Work", f"{local}@corp.example.io"
        mobile = _national(rng, region)
        roll = rng.random()
        if roll < 0.3:  # a work line first: the mobile, second, is the one sent
            row["Phone 1 - Label"], row["Phone 1 - Value"] = "Work", _national(rng, region)
            row["Phone 2 - Label"], row["Phone 2 - Value"] = "Mobile", mobile
        elif roll < 0.4:  # a fax is never a phone number to text
            row["Phone 1 - Label"], row["Phone 1 - Value"] = "Work Fax", _national(rng, region)
            row["Phone 2 - Label"], row["Phone 2 - Value"] = "* Mobile", mobile
        elif roll < 0.5:  # two mobiles in one cell
            row["Phone 1 - Label"] = "Mobile"
            row["Phone 1 - Value"] = f"{mobile} ::: {_national(rng, region)}"
        elif roll < 0.9:
            row["Phone 1 - Label"], row["Phone 1 - Value"] = "Mobile", mobile
        rows.append(row)
    for extra in GOOGLE_MESSY:
        rows.insert(rng.randrange(len(rows)), dict.fromkeys(GOOGLE_HEADER, "") | extra)
    return rows


if __name__ == "__main__":
    main()
