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

import re
from typing import Final

import email_validator
import numpy as np
import pandas as pd

from synckit import rules

__all__ = ["PLAIN_EMAIL", "plain_mask", "valid_emails"]

# Lower-case input only (validate lower-cases first). Labels: letters, digits,
# inner hyphens, at most 63 characters; the last label is letters only.
PLAIN_EMAIL: Final = (
    r"[a-z0-9_+\-]+(?:\.[a-z0-9_+\-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_LOCAL_MAX: Final = 64
_SPECIAL_TAIL: Final = (
    "[@.](?:" + "|".join(re.escape(str(d)) for d in email_validator.SPECIAL_USE_DOMAIN_NAMES) + ")$"
)


def plain_mask(values: pd.Series) -> np.ndarray:
    """True where the address is certainly valid by the fast pattern alone.

    Example:
        >>> import pandas as pd
        >>> plain_mask(pd.Series(["a.b+c@mail.example.org", "ü@example.com"])).tolist()
        [True, False]
    """
    s = pd.Series(values, dtype="str").reset_index(drop=True)
    ok = np.array(s.str.fullmatch(PLAIN_EMAIL).to_numpy(dtype=bool, na_value=False))
    idx = np.flatnonzero(ok)
    if not len(idx):
        return ok
    sub = s.iloc[idx]  # ASCII only from here, so pyarrow does all the work
    good = np.array(sub.str.len().to_numpy(dtype=np.int64)) <= rules.EMAIL_MAX_LENGTH
    good &= np.array(sub.str.find("@").to_numpy(dtype=np.int64)) <= _LOCAL_MAX
    # "xn--" and other double hyphens bring IDNA rules: leave them to email-validator
    good &= ~np.array(sub.str.contains("--", regex=False).to_numpy(dtype=bool))
    # special-use domains (localhost, .test, .invalid, ...): the domain is one or ends with one
    good &= ~np.array(sub.str.contains(_SPECIAL_TAIL, regex=True).to_numpy(dtype=bool))
    ok[idx] = good
    return ok


def valid_emails(values: pd.Series) -> np.ndarray:
    """``rules.is_valid_email`` for each (distinct, trimmed, lower-cased) address.

    Example:
        >>> import pandas as pd
        >>> valid_emails(pd.Series(["x@example.com", "x@localhost"])).tolist()
        [True, False]
    """
    s = pd.Series(values, dtype="str").reset_index(drop=True)
    ok = plain_mask(s)
    rest = np.flatnonzero(~ok)
    if not len(rest):
        return ok
    sub = s.iloc[rest]
    # Certainly invalid without asking: no "@" or several (quoted local parts and
    # display names are not allowed), or ASCII whitespace (values come trimmed).
    hopeless = np.array(
        sub.str.contains(r"^[^@]*$|@.*@|[ \t\r\n\f\v]", regex=True).to_numpy(
            dtype=bool, na_value=True
        )
    )
    for i in rest[~hopeless]:
        value = s.iat[i]
        ok[i] = isinstance(value, str) and rules.is_valid_email(value)
    return ok
