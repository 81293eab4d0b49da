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

__all__ = ["TEXT", "bools", "codes", "objects", "series", "text_array"]

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
            arr = pa.array(cells, type=TEXT, from_pandas=True)
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
    missing): ``pd.factorize``'s codes, from Arrow's hash table."""
    indices = arr.dictionary_encode().indices
    return np.asarray(indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def objects(arr: pa.Array) -> np.ndarray:
    """Python strings in a NumPy object array, None where missing."""
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)
