"""The email fast path never disagrees with email-validator (rules.is_valid_email)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from synckit import rules
from synckit._email import plain_mask, valid_emails

LOCAL_CHARS = "abcxyz0129._+-'!#$%&*/=?^`{|}~\"(),:;<>@[\\] éü中"
DOMAIN_PARTS = ["example", "mail", "ex-ample", "-bad", "bad-", "xn--e1afmkfd", "a" * 63, "a" * 64,
                "123", "ex_ample", "例え", "co", "uk", "com", "org", "io", "c", "localhost", "test",
                "local", "invalid", "onion", "arpa", "example--x", ""]  # fmt: skip
TLDS = ["com", "org", "co.uk", "io", "c", "123", "test", "local", "localhost", "invalid", "arpa",
        "onion", "museum", "x" * 63, "x" * 64, "中国", "a1", "1a"]  # fmt: skip


def generated(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            local = "".join(rng.choice("abcdefgh0123.-_+") for _ in range(rng.randint(1, 12)))
        else:
            local = "".join(rng.choice(LOCAL_CHARS) for _ in range(rng.randint(0, 10)))
        if rng.random() < 0.05:
            local = "a" * rng.randint(60, 70)
        labels = [rng.choice(DOMAIN_PARTS) for _ in range(rng.randint(0, 3))]
        domain = ".".join([*labels, rng.choice(TLDS)])
        if rng.random() < 0.03:
            domain = ".".join(["b" * 60] * 5) + ".com"  # too long overall
        sep = "@" if rng.random() < 0.93 else rng.choice(["", "@@", "@a@", " @"])
        address = local + sep + domain
        if rng.random() < 0.1:
            address = address.upper() if rng.random() < 0.5 else address.lower()
        out.append(address)
    return out


def assert_same(addresses: list[str]) -> None:
    uniq = list(dict.fromkeys(addresses))
    got = valid_emails(pd.Series(uniq, dtype="str"))
    want = np.array([rules.is_valid_email(a) for a in uniq])
    bad = [(a, w) for a, g, w in zip(uniq, got, want, strict=True) if g != w]
    assert not bad, bad[:10]


def test_fast_path_equals_email_validator_on_generated_corpus() -> None:
    addresses = generated(6000, seed=1)
    assert_same(addresses)
    lowered = [a.lower() for a in addresses]
    assert_same(lowered)
    fast = plain_mask(pd.Series(lowered, dtype="str"))
    valid = np.array([rules.is_valid_email(a) for a in lowered])
    assert fast.any() and not (fast & ~valid).any()


def test_everyday_addresses_take_the_fast_path() -> None:
    everyday = [f"{f}.{last}{i}@{d}" for i, (f, last, d) in enumerate(
        [("ada", "lovelace", "example.com"), ("grace", "hopper", "mail.example.org"),
         ("o-brien", "x_y", "corp.example.co.uk"), ("a+tag", "b", "e-x.io")] * 5)]  # fmt: skip
    assert plain_mask(pd.Series(everyday, dtype="str")).all()


def test_edge_cases() -> None:
    assert_same(
        ["ada@example.com", "ada@example.con", "a@b.co", "a@b.c", "a@localhost", "a@x.test",
         "a@x.local", "a@example.arpa", "a..b@example.com", ".a@example.com", "a.@example.com",
         "a@example..com", "a@-example.com", "a@example-.com", "a@xn--80ak6aa92e.com",
         "a@ab--cd.com", "x" * 64 + "@example.com", "x" * 65 + "@example.com",
         "a@" + "b" * 63 + ".com", "a@" + "b" * 64 + ".com", "a@" + ("c" * 60 + ".") * 4 + "com",
         "Ada <ada@example.com>", '"ada"@example.com', "ada@[127.0.0.1]", "ada@example.com.",
         "ada@123.com", "ada@example.c0m", "", "@", "a@", "@b.com", "a b@example.com",
         "ada@exa mple.com", "ada\n@example.com", "ünï@example.com", "ada@bücher.de"]
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=10))
def test_hypothesis_arbitrary_text(texts: list[str]) -> None:
    assert_same(texts + [t + "@example.com" for t in texts] + ["a@" + t + ".com" for t in texts])


def test_special_use_domains_are_single_ascii_labels() -> None:
    # what plain_mask's last-label comparison relies on
    import email_validator

    assert all("." not in d and d.isascii() for d in email_validator.SPECIAL_USE_DOMAIN_NAMES)


def test_fast_path_takes_addresses_up_to_the_limits() -> None:
    # a 64-character local part and a 254-character address are taken by the pattern
    # alone; one more character each goes to email-validator
    at254 = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    at255 = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"
    assert (len(at254), len(at255)) == (254, 255)
    local64, local65 = "x" * 64 + "@example.com", "x" * 65 + "@example.com"
    got = plain_mask(pd.Series([local64, local65, at254, at255]))
    assert got.tolist() == [True, False, True, False]


def test_fast_path_on_a_slice_of_an_arrow_array() -> None:
    # a slice's bytes start part-way into its buffer
    import pyarrow as pa

    arr = pa.array(
        ["junk-that-comes-first", "a--b@example.com", "ada@example.com", "ada@x.test",
         "bo-b@mail.example.org", "x" * 64 + "@example.com", "x" * 65 + "@example.com"],
        pa.large_string(),
    ).slice(1)  # fmt: skip
    assert plain_mask(arr).tolist() == [False, True, False, True, True, False]
    # a special-use label at the very end of the bytes
    assert plain_mask(pa.array(["ada@example.com", "ada@x.test"], pa.large_string())).tolist() == [
        True,
        False,
    ]
    assert valid_emails(arr).tolist() == [True, True, False, True, True, True]
