"""synckit's own problem codes: what went wrong with a cell, and what to do about it.

The contract's rules and messages live in :mod:`synckit.rules` (shared with
the sandbox). The codes here are local findings that say more than the
contract's message can: the cause (a spreadsheet turned the number into
``4.47911E+11``) and the fix. Each is a row of ``Validation.errors`` with a
``severity``: ``"error"`` rejects the row, ``"warning"`` keeps it (the row is
sent, and the warning says what was changed or doubted).

Example:
    >>> SEVERITY["multiple_values"], SEVERITY["phone_extension"]
    ('warning', 'error')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["CONTRACT_RULE", "MESSAGES", "SEVERITY"]

#: The fixed messages (codes whose message names values are built where they are found).
MESSAGES: Final[Mapping[str, str]] = {
    "invalid_text": (
        "holds text that is not valid Unicode (a lone surrogate, left by a broken "
        "decoding): fix the cell, or re-read the file with its real encoding"
    ),
    "phone_scientific": (
        "is a number in scientific notation: a spreadsheet stored the phone as a number "
        "and lost its digits; format the column as text in the spreadsheet and export "
        "again (or write the numbers with +country code)"
    ),
    "phone_extension": (
        "has an extension, which E.164 cannot hold (sending the number without it "
        "would dial the switchboard): remove the extension, or keep it in a custom field"
    ),
}

#: Whether a code rejects the row (``error``) or only reports (``warning``).
SEVERITY: Final[Mapping[str, str]] = {
    "invalid_text": "error",
    "phone_scientific": "error",
    "phone_extension": "error",
    "phone_other_region": "error",
    "phone_default_region": "error",
    "multiple_values": "warning",
    "unknown_country": "warning",
    "field_dropped": "warning",
}

#: The contract rule a local code stands in for (it is that rule, broken for a known reason).
CONTRACT_RULE: Final[Mapping[str, str]] = {
    "phone_scientific": "invalid_phone",
    "phone_extension": "invalid_phone",
    "phone_other_region": "invalid_phone",
}
