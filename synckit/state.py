"""The old name of :mod:`synckit.ledger`, kept so that ``from synckit.state import Ledger``
(code written before the rename, other branches) keeps working. Use :mod:`synckit.ledger`."""

from __future__ import annotations

from synckit.ledger import (
    CONFIRMED_STATUSES,
    RETRY_STATUSES,
    Ledger,
    LedgerEntry,
    LedgerOutcome,
    canonical_payload,
    match_key,
    payload_hash,
)

__all__ = [
    "CONFIRMED_STATUSES",
    "RETRY_STATUSES",
    "Ledger",
    "LedgerEntry",
    "LedgerOutcome",
    "canonical_payload",
    "match_key",
    "payload_hash",
]
