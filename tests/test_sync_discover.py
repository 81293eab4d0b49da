"""Discovery without a server: the listing-or-look-ups choice, the snapshot, what is known.

A scripted account answers listing pages (100 contacts each) and look-ups; the tests
count what discovery asks for, against what the cheaper way would have cost.
"""

from __future__ import annotations

from typing import Any

import pytest

from synckit.sync.discover import Discovery, KeyFilter, LookupJob, Pending, Snapshot
from synckit.sync.plan import UNKNOWN, Known


class Account:
    """``n`` contacts ``c{i}@example.com`` / ``+4474000{i:05d}``, listed 100 per page."""

    def __init__(self, n: int) -> None:
        self.contacts = [
            {"id": f"ct_{i}", "email": f"c{i}@example.com", "phone_number": f"+4474000{i:05d}"}
            for i in range(n)
        ]
        self.pages = 0
        self.lookups = 0

    def list_page(self, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        self.pages += 1
        start = int(cursor or 0)
        end = start + 100
        return self.contacts[start:end], (str(end) if end < len(self.contacts) else None)

    def look_up(self, jobs: list[LookupJob]) -> list[tuple[LookupJob, Known, int]]:
        out = []
        for job in jobs:
            asked = 0
            a: Any = job.by_email
            if job.email and a is UNKNOWN:
                asked += 1
                a = next((c for c in self.contacts if c["email"] == job.email), None)
            out.append((job, Known(a, job.by_phone), asked))
            self.lookups += asked
        return out


def discovery(account: Account, snap: Snapshot) -> Discovery:
    return Discovery(
        snap, list_page=account.list_page, look_up=account.look_up, stopped=lambda: False
    )


def pending(emails: list[str]) -> Pending:
    return Pending(emails, [None] * len(emails))


def resolve(d: Discovery, emails: list[str], keep: KeyFilter | None = None, start: int = 0) -> Any:
    """What a run does: list while cheaper, then look up what is still unknown."""
    d.list_for(pending(emails), keep)
    rows = [(start + i, e, None) for i, e in enumerate(emails)]
    knowns = d.known_for(rows)
    d.look_up(rows, knowns, dry_run=False)
    return knowns


def people(held: list[int], new: int) -> list[str]:
    return [f"c{i}@example.com" for i in held] + [f"new{i}@example.com" for i in range(new)]


def test_small_account_is_listed_whole_and_nothing_is_looked_up() -> None:
    account, snap = Account(250), Snapshot()
    d = discovery(account, snap)
    resolve(d, people([0, 120, 249], new=7))
    assert (account.pages, account.lookups, d.complete) == (3, 0, True)
    known = d.known_for([(0, "c120@example.com", None), (1, "new0@example.com", None)])
    assert known[0].by_email["id"] == "ct_120" and known[1].by_email is None  # None: known free


def test_big_account_and_few_rows_stop_listing_and_look_up() -> None:
    account, snap = Account(20_000), Snapshot()
    d = discovery(account, snap)
    known = resolve(d, people([], new=5))
    # 5 rows to look up: 5 pages, then the 5 look-ups (twice the cheaper way, 5).
    assert (account.pages, account.lookups, d.complete) == (5, 5, False)
    assert known[0].by_email is None  # looked up: no contact holds it
    other = d.known_for([(9, "other@example.com", None)])
    assert other[9].by_email is UNKNOWN  # never asked about, listing unfinished


def test_rows_found_on_early_pages_shrink_the_look_up_bill() -> None:
    account, snap = Account(20_000), Snapshot()
    d = discovery(account, snap)
    known = resolve(d, people([1, 2, 3, 4, 5], new=0))
    assert (account.pages, account.lookups) == (1, 0)  # page 1 answered every row
    assert known[4].by_email["id"] == "ct_5"


@pytest.mark.parametrize("size", [0, 50, 100, 2_000, 5_000, 30_000])
@pytest.mark.parametrize(("held", "new"), [(0, 30), (20, 10), (30, 0)])
def test_never_more_than_about_twice_the_cheaper_way(size: int, held: int, new: int) -> None:
    account, snap = Account(size), Snapshot()
    step = max(size // max(held, 1), 1)
    rows = people([min(i * step, size - 1) for i in range(held)] if size else [], new)
    d = discovery(account, snap)
    resolve(d, rows)
    listing = max(-(-size // 100), 1)  # pages of the whole account (an empty one is 1)
    lookups = len(rows)
    spent = account.pages + account.lookups
    assert spent <= 2 * min(listing, lookups) + 1, (spent, listing, lookups)


def test_a_stream_counts_look_ups_already_spent_towards_listing() -> None:
    # Chunk by chunk: the listing budget is what look-ups have cost so far plus what the
    # rows at hand would cost, so a long stream ends up listing rather than looking up.
    account, snap = Account(1_000), Snapshot()
    d = discovery(account, snap)
    for k in range(6):
        resolve(d, [f"new{k}_{j}@example.com" for j in range(3)], start=3 * k)
    assert d.complete and account.pages == 10
    assert account.lookups <= 12  # look-ups stopped once listing was the cheaper way


def test_the_snapshot_keeps_only_contacts_that_match_the_input() -> None:
    account, snap = Account(300), Snapshot()
    keep = KeyFilter.of(["c7@example.com", None], [None, "+447400000250"])
    d = discovery(account, snap)
    resolve(d, people([7], new=9), keep)  # 9 new rows: listing 3 pages is cheaper
    assert d.complete and snap.size == 2  # c7 and the phone of c250, not 300 contacts
    assert snap.by_phone(["+447400000250"])["+447400000250"]["id"] == "ct_250"


def test_pending_tracks_what_listing_answered() -> None:
    p = Pending(["a@x.io", "b@x.io", None], ["+441", "+442", "+443"])
    assert p.unresolved().tolist() == [True, True, True]
    # a@x.io's contact holds the row's phone; b@x.io's holds another; +443 is found
    p.see(
        [
            {"id": "1", "email": "A@x.io", "phone_number": "+441"},
            {"id": "2", "email": "b@x.io", "phone_number": "+449"},
            {"id": "3", "email": None, "phone_number": "+443"},
        ]
    )
    # row 1 still needs its phone looked up (the two-contacts check)
    assert p.unresolved().tolist() == [False, True, False]
    assert p.lookup_cost() == 1


def test_claims_give_each_contact_to_the_first_row() -> None:
    snap = Snapshot()
    assert snap.claim([("ct_1", 0, 2), ("ct_2", 1, 3), ("ct_1", 5, 7)]) == {
        "ct_1": (0, 2),
        "ct_2": (1, 3),
    }
    assert snap.claim([("ct_2", 9, 11)]) == {"ct_2": (1, 3)}  # an earlier chunk's claim holds
