"""Email syntax checks, many at once, with email-validator's verdicts.

A conservative vectorised pattern accepts plainly valid ASCII addresses
(``local@label.label.tld`` with the everyday characters); everything it does
not accept -- including every invalid address -- goes to
:func:`synckit.rules.is_valid_email` (email-validator). The tests prove the
pattern never accepts what email-validator rejects, on a generated corpus.

Example:
    >>> import pandas as pd
    >>> valid_emails(pd.Series(["ada@example.com", "ada@@example.com", "bob@test"])).tolist()
    [True, False, False]
"""

from __future__ import annotations

from typing import Final

import email_validator
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synckit import _arrow, rules

__all__ = ["PLAIN_EMAIL", "plain_mask", "valid_emails"]

# Lower-case input only (validate lower-cases first). Labels: letters, digits,
# inner hyphens, at most 63 characters; the last label is letters only.
PLAIN_EMAIL: Final = (
    r"[a-z0-9_+\-]+(?:\.[a-z0-9_+\-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_LOCAL_MAX: Final = 64
_PLAIN_ANCHORED: Final = "^(?:" + PLAIN_EMAIL + ")$"
_AT: Final = ord("@")
_DOT: Final = ord(".")
_HYPHEN: Final = ord("-")
# Special-use domains (localhost, .test, .invalid, ...) are refused. Each is one
# label, so an address the pattern accepts ends with one exactly when its last
# label (after its last dot: the pattern wants one in the domain) is one. Kept as
# the label bytes, zero-padded, for a NumPy comparison.
_SPECIAL: Final = tuple(str(d) for d in email_validator.SPECIAL_USE_DOMAIN_NAMES)
_SPECIAL_WIDTH: Final = max(len(d) for d in _SPECIAL)
_SPECIAL_ROWS: Final = np.array(
    [list(d.encode().ljust(_SPECIAL_WIDTH, b"\0")) for d in _SPECIAL], dtype=np.uint8
)
_SPECIAL_LENGTHS: Final = np.array(sorted({len(d) for d in _SPECIAL}), dtype=np.int64)


def plain_mask(values: pd.Series | pa.Array) -> np.ndarray:
    """True where the address is certainly valid by the fast pattern alone.

    Example:
        >>> import pandas as pd
        >>> plain_mask(pd.Series(["a.b+c@mail.example.org", "ü@example.com"])).tolist()
        [True, False]
    """
    arr = _arrow.text_array(values)
    ok = _arrow.bools(pc.match_substring_regex(arr, _PLAIN_ANCHORED))
    if not ok.any():
        return ok
    # ASCII only from here (the pattern says so): bytes are characters. The rest
    # reads the bytes with NumPy (a second regex pass cost as much as the first).
    kept = arr if ok.all() else arr.filter(pa.array(ok))
    offsets, data = _arrow.buffers(kept)
    begin, end = offsets[:-1], offsets[1:]
    good = end - begin <= rules.EMAIL_MAX_LENGTH
    seg = data[offsets[0] : offsets[-1]]
    # the pattern allows exactly one "@" per address: where each one is
    at = np.flatnonzero(seg == _AT) + offsets[0]
    good &= at - begin <= _LOCAL_MAX
    # "xn--" and other double hyphens bring IDNA rules: email-validator's job (a
    # pair never spans two addresses: the pattern ends each with a letter)
    pairs = np.flatnonzero((seg[:-1] == _HYPHEN) & (seg[1:] == _HYPHEN)) + offsets[0]
    good[_arrow.rows_of(offsets, pairs)] = False
    # the last label: from after the address's last dot to its end
    dots = np.flatnonzero(seg == _DOT) + offsets[0]
    label = dots[np.searchsorted(dots, end) - 1] + 1
    width = end - label
    maybe = np.flatnonzero(np.isin(width, _SPECIAL_LENGTHS))
    if len(maybe):
        cols = np.arange(_SPECIAL_WIDTH)
        at_pos = label[maybe, None] + cols
        grid = data[np.minimum(at_pos, len(data) - 1)]
        grid[cols >= width[maybe, None]] = 0
        special = (grid[:, None, :] == _SPECIAL_ROWS[None, :, :]).all(axis=2).any(axis=1)
        good[maybe[special]] = False
    ok[np.flatnonzero(ok)] = good
    return ok


def valid_emails(values: pd.Series | pa.Array) -> np.ndarray:
    """``rules.is_valid_email`` for each (distinct, trimmed, lower-cased) address.

    Example:
        >>> import pandas as pd
        >>> valid_emails(pd.Series(["x@example.com", "x@localhost"])).tolist()
        [True, False]
    """
    arr = _arrow.text_array(values)
    ok = plain_mask(arr)
    rest = np.flatnonzero(~ok)
    if not len(rest):
        return ok
    sub = arr.take(rest)
    # Certainly invalid without asking: no "@" or several (quoted local parts and
    # display names are not allowed), or ASCII whitespace (values come trimmed).
    hopeless = _arrow.bools(
        pc.fill_null(pc.match_substring_regex(sub, r"^[^@]*$|@.*@|[ \t\r\n\f\v]"), True)
    )
    ask = ~hopeless
    for i, value in zip(rest[ask].tolist(), sub.filter(pa.array(ask)).to_pylist(), strict=True):
        ok[i] = isinstance(value, str) and rules.is_valid_email(value)
    return ok
