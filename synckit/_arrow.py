"""Text columns as Arrow arrays: the conversions the vectorised checks share.

pandas (>= 3, with pyarrow) keeps ``str`` columns in Arrow already; going
through pandas' string methods converts results to NumPy objects and back,
which costs more than the checks themselves on large frames. These helpers
hand the Arrow array over without copying and bring results back as
pandas ``str`` Series, NumPy masks or codes.

Example:
    >>> import pandas as pd
    >>> arr = text_array(pd.Series(["a", None, "a", "b"]))
    >>> codes(arr).tolist(), series(arr).tolist()
    ([0, -1, 0, 1], ['a', nan, 'a', 'b'])
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "TEXT",
    "blank_to_null",
    "bools",
    "buffers",
    "byte_set",
    "codes",
    "filled",
    "has_byte",
    "objects",
    "rows_of",
    "series",
    "text_array",
    "trimmed",
]

#: The one Arrow text type used here (64-bit offsets: no 2 GiB limit per column).
TEXT: Final = pa.large_string()


def text_array(values: pd.Series | pa.Array | pa.ChunkedArray | list[Any]) -> pa.Array:
    """Text as one contiguous Arrow ``large_string`` array, missing values as null.

    Arrow-backed pandas text (the default ``str`` dtype with pyarrow) is not
    copied; other text (object columns, lists) is converted once.

    Example:
        >>> text_array(["x", None]).to_pylist()
        ['x', None]
    """
    if isinstance(values, pd.Series):
        if getattr(values.dtype, "storage", None) == "pyarrow":
            arr: Any = pa.array(values.array)
        else:
            cells = np.asarray(values.to_numpy(dtype=object), dtype=object)
            try:
                arr = pa.array(cells, type=TEXT, from_pandas=True)
            except (pa.ArrowTypeError, pa.ArrowInvalid):  # not all text: as pandas' str reads it
                arr = pa.array(pd.Series(cells, dtype="str").array)
    elif isinstance(values, list):
        arr = pa.array(values, type=TEXT, from_pandas=True)
    else:
        arr = values
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if arr.type != TEXT:
        arr = arr.cast(TEXT)
    return arr


def bools(result: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow boolean result as a NumPy mask (null is False)."""
    return np.asarray(result.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def series(arr: pa.Array, index: pd.Index | None = None) -> pd.Series:
    """Arrow text as a pandas ``str`` Series (no copy)."""
    return pd.Series(arr, index=index, dtype="str")


def codes(arr: pa.Array) -> np.ndarray:
    """Per value, the position of its first equal value among the distinct ones (-1 for
    missing): ``pd.factorize``'s codes, from Arrow's hash table. A dictionary array
    (``arr.dictionary_encode()``) gives its own indices."""
    if not isinstance(arr, pa.DictionaryArray):
        arr = arr.dictionary_encode()
    indices = arr.indices.fill_null(-1)
    return np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def filled(n: int, value: object) -> np.ndarray:
    """An object array of ``n`` references to ``value``.

    (``np.full(n, "US", dtype=object)`` makes a NumPy string of the value and
    casts it back into a new Python string per element: 42 ms against 2 ms at
    1M rows.)

    Example:
        >>> filled(3, "US").tolist()
        ['US', 'US', 'US']
    """
    out = np.empty(n, dtype=object)
    out.fill(value)
    return out


def objects(arr: pa.Array) -> np.ndarray:
    """Python strings in a NumPy object array, None where missing.

    Making a Python string costs more than hashing one: a column with few
    distinct values (names, consents) makes each once and shares them.
    """
    # a sample decides: hashing a column of distinct values first would only add to it
    if len(arr) < 1000 or len(pc.unique(arr.slice(0, 1000))) > 250:
        return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
    encoded = arr.dictionary_encode()
    distinct = np.empty(len(encoded.dictionary) + 1, dtype=object)
    distinct[:-1] = encoded.dictionary.to_numpy(zero_copy_only=False)
    distinct[-1] = None  # code -1: missing
    return distinct[codes(encoded)]


def buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, data)`` of a ``large_string`` array without nulls: value ``i`` is
    ``data[offsets[i]:offsets[i + 1]]`` (UTF-8 bytes), for NumPy to work on in place."""
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, "u1")
    return offsets, data


def byte_set(chars: str) -> np.ndarray:
    """A 256-entry mask of ASCII characters, for :func:`has_byte`."""
    table = np.zeros(256, dtype=bool)
    table[[ord(c) for c in chars]] = True
    return table


def has_byte(arr: pa.Array, table: np.ndarray) -> np.ndarray:
    """Per value, whether it holds any of the ASCII characters in ``table`` (False for
    missing): a regex character class search (``[:;,]``), in NumPy over the bytes.
    UTF-8 never uses an ASCII byte inside another character, so this is exact.

    Example:
        >>> has_byte(text_array(["a;b", "ab", None]), byte_set(";,")).tolist()
        [True, False, False]
    """
    if arr.null_count:
        arr = arr.fill_null("")
    offsets, data = buffers(arr)
    out = np.zeros(len(arr), dtype=bool)
    out[rows_of(offsets, np.flatnonzero(table[data[offsets[0] : offsets[-1]]]) + offsets[0])] = True
    return out


def rows_of(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The value each byte position belongs to (positions within the values' bytes)."""
    return np.searchsorted(offsets, positions, side="right") - 1


# Bytes a whitespace character can start or end with in UTF-8: ASCII controls and
# space, and any byte of a multi-byte character (U+0085, U+00A0, U+2003, ...).
_MAYBE_SPACE: Final = np.zeros(256, dtype=bool)
_MAYBE_SPACE[:0x21] = True
_MAYBE_SPACE[0x80:] = True


def trimmed(arr: pa.Array) -> pa.Array:
    """``pc.utf8_trim_whitespace``, skipped when no value can start or end with
    whitespace (the usual clean column: one look at each value's first and last byte).

    Example:
        >>> trimmed(text_array([" a ", "b"])).to_pylist()
        ['a', 'b']
    """
    offsets, data = buffers(arr)  # null slots are looked at too: harmless
    nonempty = np.flatnonzero(np.diff(offsets) > 0)
    if len(nonempty):
        edges = np.concatenate([data[offsets[nonempty]], data[offsets[nonempty + 1] - 1]])
        if _MAYBE_SPACE[edges].any():
            return pc.utf8_trim_whitespace(arr)
    return arr


def blank_to_null(arr: pa.Array) -> pa.Array:
    """Empty values become missing (a copy only when there is one)."""
    empty = pc.equal(pc.binary_length(arr), 0)
    if not pc.any(empty).as_py():
        return arr
    return pc.if_else(empty, pa.scalar(None, arr.type), arr)
