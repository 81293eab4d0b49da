"""The steps :func:`synckit.validate` takes before and after the contract's rules.

Each is a plain function on columns, so :mod:`synckit.validation` stays a
list of steps and each step can be tested (and reasoned about) alone:

- :func:`check_options`: the ``defaults``, ``values``, ``invalid_fields`` and
  ``region_column`` options, refused early with a :class:`ConfigError`;
- :func:`with_defaults`: constants for empty cells (``--set``);
- :func:`map_values`: explicit value maps (``--value``); nothing is guessed;
- :func:`row_regions`: each row's phone region from its country cell;
- :func:`first_valid`: a cell holding several values (Google's ``" ::: "``)
  keeps the first valid one, and says which it dropped;
- :func:`drop_plan`: ``invalid_fields="drop"``, which fields of which rows
  are left out instead of rejecting the row.

Example:
    >>> import pandas as pd
    >>> map_values(pd.Series(["Yes", "no", None], dtype="str"), {"yes": "subscribed"}).tolist()
    ['subscribed', 'no', nan]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synckit import _arrow, _regions, rules
from synckit.errors import ConfigError

__all__ = [
    "SEPARATORS",
    "InvalidFields",
    "check_options",
    "drop_plan",
    "first_valid",
    "map_values",
    "row_regions",
    "with_defaults",
]

InvalidFields = Literal["reject", "drop"]
_POLICIES: Final = ("reject", "drop")
_PREFIX: Final = "custom."
#: Fields a constant may fill: not the identifiers (unique per contact).
_DEFAULTABLE: Final = ("first_name", "last_name", "email_consent", "sms_consent")
#: Fields whose values a map may rewrite (and the country column).
_MAPPABLE: Final = tuple(f for f in rules.FIELDS if f != "custom_fields")

#: What splits a cell into several values. Emails: Google's ":::", ``;``, ``,``
#: or whitespace (none can be inside an address the API takes). Phones: ":::",
#: ``;``, ``,``, ``|`` or a line break (never a space, a ``/`` or a ``-``:
#: "030 / 1234567" is one number).
SEPARATORS: Final[Mapping[str, str]] = {
    "email": r"\s*:::\s*|[;,\s]+",
    "phone_number": r"\s*:::\s*|\s*[;,|\r\n]+\s*",
}
# One character of a separator, for the cheap first pass over every cell.
_ANY_SEPARATOR: Final[Mapping[str, str]] = {
    "email": r"[:;,\s]",
    "phone_number": r"[:;,|\r\n]",
}
# The same classes as bytes (RE2's \s, which Arrow text is searched with, is [\t\n\f\r ]).
_SEPARATOR_BYTES: Final[Mapping[str, np.ndarray]] = {
    "email": _arrow.byte_set(":;,\t\n\f\r "),
    "phone_number": _arrow.byte_set(":;,|\r\n"),
}


def _contains(texts: pd.Series, pattern: str) -> np.ndarray:
    """Regex search per cell; pyarrow's RE2 straight away for arrow-backed text (pandas
    falls back to Python's re, one call per cell, for a pattern like this)."""
    if getattr(texts.dtype, "storage", None) == "pyarrow":
        found = pc.match_substring_regex(pa.array(texts.array), pattern).fill_null(False)
        return np.array(found.to_numpy(zero_copy_only=False), dtype=bool)
    return np.array(texts.str.contains(pattern, regex=True).to_numpy(dtype=bool, na_value=False))


#: Google's separator says "several values" by itself; any other separator only
#: when at least two of the parts look like a value of the field (``a b@x.io`` is
#: one mistyped address, ``a@x.io; b@y.io`` two addresses).
_GOOGLE_SEPARATOR: Final = re.compile(r":::")
_LOOKS_LIKE: Final[Mapping[str, re.Pattern[str]]] = {
    "email": re.compile(r"[^@\s]+@[^@\s]+"),
    "phone_number": re.compile(r"(?:\D*\d){6}"),
}


def _folded(text: object) -> str:
    return " ".join(str(text).split()).casefold()


def check_options(
    *,
    defaults: Mapping[str, Any] | None,
    values: Mapping[str, Mapping[str, Any]] | None,
    invalid_fields: str,
    region_column: str | None,
) -> tuple[dict[str, str], dict[str, dict[str, str | None]]]:
    """The options, checked; returns ``defaults`` and ``values`` as plain dicts.

    Example:
        >>> check_options(defaults={"email_consent": "Subscribed"}, values=None,
        ...               invalid_fields="reject", region_column="country")
        ({'email_consent': 'subscribed'}, {})
    """
    if invalid_fields not in _POLICIES:
        raise ConfigError(f"invalid_fields must be one of {_POLICIES}, not {invalid_fields!r}")
    if region_column is not None and not isinstance(region_column, str):
        raise ConfigError(f"region_column must be a column name or None, not {region_column!r}")
    out_defaults: dict[str, str] = {}
    for key, value in (defaults or {}).items():
        name = str(key)
        custom = name.startswith(_PREFIX) and len(name) > len(_PREFIX)
        if name not in _DEFAULTABLE and not custom:
            raise ConfigError(
                f"defaults: cannot set {name!r} for every row (one of "
                f"{', '.join(_DEFAULTABLE)}, or {_PREFIX}<key>; email and phone_number "
                "identify a contact and are never constant)"
            )
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"defaults: {name} needs a text value, not {value!r}")
        text = value.strip()
        if name in rules.CHOICES:
            text = _choice(name, text, "defaults")
        elif name in ("first_name", "last_name") and len(text) > rules.NAME_MAX_LENGTH:
            raise ConfigError(f"defaults: {name} {rules.message('too_long')}")
        out_defaults[name] = text
    out_values: dict[str, dict[str, str | None]] = {}
    for key, table in (values or {}).items():
        name = str(key)
        if name not in _MAPPABLE and name != region_column:
            raise ConfigError(
                f"values: cannot map the values of {name!r} (one of {', '.join(_MAPPABLE)}"
                + (f", or the region column {region_column!r}" if region_column else "")
                + ")"
            )
        if not isinstance(table, Mapping):
            raise ConfigError(f"values: {name} needs a mapping {{from: to}}, not {table!r}")
        folded: dict[str, str | None] = {}
        for source, target in table.items():
            if target is not None and not isinstance(target, str):
                raise ConfigError(f"values: {name}: {source!r} maps to {target!r}, not text")
            mapped = target.strip() if isinstance(target, str) else None
            if mapped and name in rules.CHOICES:
                mapped = _choice(name, mapped, "values")
            folded[_folded(source)] = mapped or None
        out_values[name] = folded
    return out_defaults, out_values


def _choice(field: str, text: str, option: str) -> str:
    """A consent value as validation normalises it, or a ConfigError naming the choices."""
    low = text.lower()
    alt = re.sub(r"[ \t\-]+", "_", low)
    for candidate in (low, alt):
        if candidate in rules.CHOICES[field]:
            return candidate
    raise ConfigError(f"{option}: {field} {text!r} {rules.message('invalid_choice', field)}")


def with_defaults(df: pd.DataFrame, defaults: Mapping[str, str]) -> pd.DataFrame:
    """``df`` with each default in the cells of its column that are empty (a new
    column where there is none). A value already in the file wins.

    Example:
        >>> df = pd.DataFrame({"email": ["a@x.io", "b@x.io"],
        ...                    "email_consent": [None, "unsubscribed"]})
        >>> with_defaults(df, {"email_consent": "subscribed"})["email_consent"].tolist()
        ['subscribed', 'unsubscribed']
    """
    if not defaults:
        return df
    out = df.copy(deep=False)  # columns are replaced, never written into
    for column, value in defaults.items():
        if column in out.columns:
            cells = out[column]
            blank = cells.isna() | cells.map(lambda v: isinstance(v, str) and not v.strip())
            out[column] = cells.astype(object).where(~blank, value)
        else:
            out[column] = value
    return out


def map_values(s: pd.Series, table: Mapping[str, str | None]) -> pd.Series:
    """Each cell whose trimmed, case-folded text is a key of ``table`` becomes its value
    (``None`` empties the cell); other cells stay as they are. Each distinct value once."""
    if not table or not len(s):
        return s
    codes, uniques = pd.factorize(s)
    keys = [_folded(u) for u in uniques]
    if not any(k in table for k in keys):
        return s
    mapped = np.array([table.get(k, u) for k, u in zip(keys, uniques, strict=True)] + [None],
                      dtype=object)  # fmt: skip
    return pd.Series(mapped[codes], index=s.index, dtype="str")


def row_regions(cells: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each row's region from its country cell (``None`` where empty or unknown),
    and a mask of the cells that are filled but name no region libphonenumber knows."""
    found = _regions.region_codes(cells)
    regions = np.array(found.to_numpy(dtype=object), dtype=object)
    filled = np.array(cells.notna().to_numpy(dtype=bool))
    unknown = filled & np.array([r is None for r in regions], dtype=bool)
    return regions, unknown


def first_valid(
    texts: pd.Series,
    field: str,
    judge: Callable[[pd.Series, np.ndarray], np.ndarray],
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Cells with several values keep their first valid one.

    ``texts``: trimmed cells (NA where missing), positions 0..n-1; ``judge(parts,
    rows)`` says which texts are valid for the rows they belong to. A cell that
    is valid as a whole is left alone. Returns the cells, a mask of the rows
    whose cell was cut, and a message per such row naming what was dropped.
    A cell with no valid value is left whole (the field's rule reports it).

    Example:
        >>> s = pd.Series(["a@x.io ::: b@y.io", "bad ::: c@z.io", "d@x.io"], dtype="str")
        >>> judge = lambda parts, rows: parts.str.fullmatch(r"[^@ :]+@[^@ :]+").to_numpy(dtype=bool)
        >>> out, cut, msg = first_valid(s, "email", judge)
        >>> out.tolist(), cut.tolist()
        (['a@x.io', 'c@z.io', 'd@x.io'], [True, True, False])
        >>> msg[1]
        "2 values in one cell: sent 'c@z.io'; not sent: 'bad'"
    """
    n = len(texts)
    cut = np.zeros(n, dtype=bool)
    messages = np.full(n, None, dtype=object)
    pattern = SEPARATORS[field]
    if getattr(texts.dtype, "storage", None) == "pyarrow":
        several = _arrow.has_byte(_arrow.text_array(texts), _SEPARATOR_BYTES[field])
    else:
        several = _contains(texts, _ANY_SEPARATOR[field])
    if not several.any():
        return texts, cut, messages
    idx = np.flatnonzero(several)
    # a cell valid as a whole is one value with a stray separator, unless Google's
    # ":::" says otherwise (libphonenumber would read "N/A ::: 07400 123456" whole)
    google = np.array(
        texts.iloc[idx].str.contains(":::", regex=False).to_numpy(dtype=bool, na_value=False)
    )
    whole_ok = judge(texts.iloc[idx].reset_index(drop=True), idx) & ~google
    idx = idx[~whole_ok]
    if not len(idx):
        return texts, cut, messages
    splitter = re.compile(pattern)
    cells = [str(t) for t in texts.iloc[idx].tolist()]
    parts_of = [[p for p in splitter.split(cell) if p.strip()] for cell in cells]
    flat = [p for parts in parts_of for p in parts]
    owner = np.repeat(idx, [len(parts) for parts in parts_of])
    ok = judge(pd.Series(flat, dtype="str"), owner) if flat else np.zeros(0, dtype=bool)
    sent: dict[int, str] = {}
    start = 0
    looks = _LOOKS_LIKE[field]
    for row, cell, parts in zip(idx.tolist(), cells, parts_of, strict=True):
        verdicts = ok[start : start + len(parts)]
        start += len(parts)
        if len(parts) < 2 or not verdicts.any():
            continue
        by_google = _GOOGLE_SEPARATOR.search(cell) is not None
        if not by_google and sum(looks.match(p) is not None for p in parts) < 2:
            continue  # one value with a stray separator: its rule reports it whole
        keep = int(np.flatnonzero(verdicts)[0])
        dropped = [p for j, p in enumerate(parts) if j != keep]
        sent[row] = parts[keep]
        cut[row] = True
        messages[row] = (
            f"{len(parts)} values in one cell: sent {parts[keep]!r}; not sent: "
            + ", ".join(repr(p) for p in dropped)
        )
    # the cut cells replaced in the column's Arrow array (no Python object per cell)
    arr = _arrow.text_array(texts)
    if sent:
        rows = sorted(sent)
        arr = pc.replace_with_mask(
            arr, pa.array(cut), pa.array([sent[r] for r in rows], type=arr.type)
        )
    return _arrow.series(arr, texts.index), cut, messages


#: A consent and the field it is about: never sent without it.
DEPENDS_ON: Final[Mapping[str, str]] = {"email_consent": "email", "sms_consent": "phone_number"}


def drop_plan(
    bad: Mapping[str, np.ndarray], present: Mapping[str, np.ndarray], n: int
) -> dict[str, np.ndarray]:
    """Which cells ``invalid_fields="drop"`` leaves out, per field.

    ``bad``: per field, the rows where one of its rules failed; ``present``:
    per field, the rows where it has a value. A row is sent without its bad
    fields only if a valid email or phone number remains; a consent whose
    field is left out is left out too (``subscribed`` without the address it
    is about would subscribe whatever address the platform holds).

    Example:
        >>> bad = {"phone_number": np.array([True, True]), "email": np.array([False, True])}
        >>> has = {"email": np.array([True, True]), "phone_number": np.array([True, True]),
        ...        "sms_consent": np.array([True, False])}
        >>> {k: v.tolist() for k, v in sorted(drop_plan(bad, has, 2).items())}
        {'email': [False, False], 'phone_number': [True, False], 'sms_consent': [True, False]}
    """
    false = np.zeros(n, dtype=bool)
    keep_email = present.get("email", false) & ~bad.get("email", false)
    keep_phone = present.get("phone_number", false) & ~bad.get("phone_number", false)
    sendable = keep_email | keep_phone
    drop = {f: mask & sendable for f, mask in bad.items()}
    for consent, base in DEPENDS_ON.items():
        dependent = drop.get(base, false) & present.get(consent, false)
        if dependent.any() or consent in drop:
            drop[consent] = drop.get(consent, false) | dependent
    return drop
