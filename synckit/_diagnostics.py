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

__all__ = ["MESSAGES", "SEVERITY"]

#: The fixed messages (the others name the cell's values and are built where they are found:
#: phone_extension, phone_other_region and phone_default_region in synckit._phone).
MESSAGES: Final[Mapping[str, str]] = {
    "invalid_text": (
        "holds text that is not valid Unicode (a lone surrogate, left by a broken "
        "decoding): fix the cell, or re-read the file with its real encoding"
    ),
    "phone_scientific": (
        "is a number in scientific notation (a spreadsheet stored the phone as a number and "
        "dropped its digits): format the column as text before exporting, or write the "
        "numbers with + and their country code"
    ),
}

#: Whether a code rejects the row (``error``) or only reports (``warning``). With
#: ``invalid_fields="drop"`` an error on an optional field becomes a warning.
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
