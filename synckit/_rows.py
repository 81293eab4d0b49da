"""One copy of the small rules every stage applies to rows (read, validate, ledger, sync, report).

- :func:`is_missing`: what counts as an empty cell (None, NA, NaT, NaN).
- :func:`row_numbers`: how a frame's index becomes spreadsheet row numbers.
- :data:`DUPLICATE_MODES` / :func:`check_duplicates`: the in-file duplicate policies.
- :func:`canonical_json` (hashes, idempotency keys) and :func:`json_text` (cells people read).
- :func:`parse_custom_cell`, :func:`custom_scalar`, :func:`fold_custom`: how a JSON
  ``custom_fields`` cell and ``custom.<key>`` columns become one ``custom_fields`` dict.

They used to be written out again in each module that needed them, and the
copies had started to differ (one treated ``NaT`` as a value, another did not).

Example:
    >>> import pandas as pd
    >>> is_missing(float("nan")), is_missing(""), canonical_json({"b": 1, "a": "é"})
    (True, False, '{"a":"é","b":1}')
    >>> row_numbers(pd.DataFrame({"email": ["a", "b"]})).tolist()
    [2, 3]
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from synckit.errors import ConfigError

__all__ = [
    "CUSTOM_PREFIX",
    "DUPLICATE_MODES",
    "Duplicates",
    "canonical_json",
    "check_duplicates",
    "custom_scalar",
    "escape_surrogates",
    "fold_custom",
    "is_missing",
    "json_text",
    "parse_custom_cell",
    "row_numbers",
]

#: In-file duplicate policies: keep the last copy, reject every copy, or keep them all.
DUPLICATE_MODES: Final = ("last", "error", "keep")
Duplicates = Literal["last", "error", "keep"]
#: Columns named ``custom.<key>`` become ``custom_fields`` keys.
CUSTOM_PREFIX: Final = "custom."


def is_missing(value: object) -> bool:
    """None, ``pd.NA``, ``pd.NaT`` or a float NaN: a cell the frame left empty.

    Empty text is *not* missing here (callers that trim decide that).

    Example:
        >>> [is_missing(v) for v in (None, pd.NA, pd.NaT, float("nan"), 0, "")]
        [True, True, True, True, False, False]
    """
    if type(value) is str:  # the common case, first (called per cell on hot paths)
        return False
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float):  # numpy.float64 is a float too
        return math.isnan(value)
    if isinstance(value, np.floating):
        return bool(np.isnan(value))
    return False


def check_duplicates(mode: object) -> Duplicates:
    """``mode`` if it is one of :data:`DUPLICATE_MODES`, else a :class:`ConfigError`.

    Example:
        >>> check_duplicates("last")
        'last'
    """
    if mode not in DUPLICATE_MODES:
        raise ConfigError(f"duplicates must be one of {', '.join(DUPLICATE_MODES)}, not {mode!r}")
    return mode


def row_numbers(frame: pd.DataFrame) -> np.ndarray:
    """The spreadsheet row number of each row of ``frame`` (header = row 1).

    An integer index named ``row`` (as :func:`synckit.read_csv` makes it) is
    the row number; another integer index counts from row 2 (0 = the first
    data row, as :func:`pandas.read_csv` numbers it); any other index counts
    rows by position.

    Example:
        >>> idx = pd.Index([10, 11], name="row")
        >>> row_numbers(pd.DataFrame({"a": [1, 2]}, index=idx)).tolist()
        [10, 11]
        >>> row_numbers(pd.DataFrame({"a": [1, 2]}, index=["x", "y"])).tolist()
        [2, 3]
    """
    index = frame.index
    if index.name == "row" and pd.api.types.is_integer_dtype(index.dtype):
        return np.asarray(index, dtype=np.int64)
    if pd.api.types.is_integer_dtype(index.dtype):
        return np.asarray(index, dtype=np.int64) + 2
    return np.arange(len(frame), dtype=np.int64) + 2


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the same text for the same data, whatever the key order.

    Used wherever text is compared or hashed (ledger payload hashes,
    idempotency keys); :func:`json_text` is for text people read.

    Example:
        >>> canonical_json({"custom_fields": {"y": 2, "x": 1}, "email": "a@b.co"})
        '{"custom_fields":{"x":1,"y":2},"email":"a@b.co"}'
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def json_text(value: Any) -> Any:
    """A dict or list as the JSON text a sheet would hold (``{"plan": "pro"}``); else as is.

    This is what makes a ``custom_fields`` cell written to CSV read back with
    :func:`synckit.read_csv` (Python's repr, ``{'plan': 'pro'}``, does not).

    Example:
        >>> json_text({"plan": "pro"}), json_text("x"), json_text(None)
        ('{"plan": "pro"}', 'x', None)
    """
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def parse_custom_cell(value: Any) -> Any:
    """A ``custom_fields`` cell: a dict as is, JSON text parsed, blank or missing -> None.

    Text that is not JSON stays text (validation reports it as not a flat object).

    Example:
        >>> parse_custom_cell(' {"plan": "pro"} '), parse_custom_cell("  "), parse_custom_cell("x")
        ({'plan': 'pro'}, None, 'x')
    """
    if is_missing(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def custom_scalar(value: Any) -> Any:
    """A ``custom.<key>`` cell as a JSON value, or ``None`` to leave the key out.

    Text is trimmed (blank -> left out); numbers and booleans stay numbers and
    booleans; anything else becomes its text.

    Example:
        >>> [custom_scalar(v) for v in (" pro ", "", 3, 2.5, True, None)]
        ['pro', None, 3, 2.5, True, None]
    """
    if is_missing(value):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        return float(value)
    return str(value)


def fold_custom(
    cells: list[Any], key: str, positions: Iterable[int], values: Sequence[Any] | Iterable[Any]
) -> None:
    """Merge one ``custom.<key>`` column into the ``custom_fields`` cells, in place.

    ``positions`` and ``values`` pair up the rows that have a value (a caller
    may pass every row; :func:`custom_scalar` drops the blank ones). A row
    without a dict gets one; a broken cell (text that was not a JSON object)
    stays broken, so validation still rejects that row.

    Example:
        >>> cells = [None, {"a": 1}, "not json"]
        >>> fold_custom(cells, "plan", [0, 1, 2], ["pro", " team ", "x"])
        >>> cells
        [{'plan': 'pro'}, {'a': 1, 'plan': 'team'}, 'not json']
    """
    for i, value in zip(positions, values, strict=True):
        item = custom_scalar(value)
        if item is None:
            continue
        cell = cells[i]
        if cell is None:
            cells[i] = {key: item}
        elif isinstance(cell, dict):
            cell[key] = item


def escape_surrogates(value: Any) -> Any:
    r"""Text with lone surrogates backslash-escaped; anything else as is.

    Such text (``"test@" + chr(0xD800)``, left by decoding bytes with
    ``surrogateescape``) cannot be stored by pyarrow, sent as JSON or written
    as UTF-8; escaped, a report or CSV can carry the cell as it was given.

    Example:
        >>> escape_surrogates("test@" + chr(0xD800)), escape_surrogates("Zoë"), escape_surrogates(3)
        ('test@\\ud800', 'Zoë', 3)
    """
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value
