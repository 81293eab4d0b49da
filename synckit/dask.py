"""Contact lists bigger than one machine: read and validate on a Dask cluster, sync from the driver.

Validation is a pure ``DataFrame -> Validation`` function, so it runs on
partitions, once each: the partitions' validations are kept on the cluster
and every result derives from them. Only duplicates need the whole list, and
they are found by shuffling keys (never the rows) between workers: one
shuffle of hashes per key gives edges between the rows sharing it, a
union-find over those few edges (one task) gives the groups, and one shuffle
of the grouped rows' keys weighs each group whole. The sync itself stays on
the driver: one :class:`~synckit.Client`, the API's rate limit, partitions
streamed through it one at a time.

Example (a cluster of your own, or ``distributed.Client()`` for a local one)::

    import synckit, synckit.dask
    from distributed import Client as DaskClient

    with DaskClient("tcp://scheduler:8786"):
        ddf = synckit.dask.read_csv("exports/2026-12-*.csv", columns=MAPPING)
        check = synckit.validate(ddf, default_region="GB")   # lazy; Dask frames
        check.errors.to_csv("errors-*.csv")                  # written by the workers
        report = synckit.upsert(check, synckit.Client.from_env())

Every row carries ``source`` (its file) and ``row`` (its spreadsheet row in
that file) as columns, through every partition and result.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import logging
import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask import delayed

from synckit import _files, rules
from synckit import io as _io
from synckit import validation as _v
from synckit.errors import ConfigError, InputError

log = logging.getLogger("synckit.dask")

__all__ = [
    "DaskValidation",
    "GroupStats",
    "iter_validations",
    "mapping_problems",
    "read_csv",
    "validate",
]

SOURCE: Final = "source"
ROW: Final = "row"


def _no_string_conversion() -> Any:
    """Dask's default turns object columns into ``string[pyarrow]`` when a collection
    is created (dicts become text, ``"str"`` becomes ``"string"``): keep the dtypes
    synckit produces."""
    return dask.config.set({"dataframe.convert-string": False})


def is_dask(obj: object) -> bool:
    """True for a Dask DataFrame (checked without importing Dask for pandas input)."""
    return type(obj).__module__.split(".")[0] == "dask" and hasattr(obj, "npartitions")


# ---------------------------------------------------------------------------
# reading


#: A path, a glob pattern, or several paths.
Paths: TypeAlias = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]


def _paths(pattern_or_paths: Paths) -> list[str]:
    if isinstance(pattern_or_paths, (str, os.PathLike)):
        text = os.fspath(pattern_or_paths)
        found = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
    else:
        found = sorted(os.fspath(p) for p in pattern_or_paths)
    if not found:
        raise InputError(f"no file matches {os.fspath(pattern_or_paths)!r}")  # type: ignore[arg-type]
    return found


def _layout(frames: Sequence[pd.DataFrame]) -> list[str]:
    """Every file's columns in one order: contract fields, then custom columns as first seen."""
    seen = {c for f in frames for c in f.columns}
    out: list[str] = [str(f) for f in rules.FIELDS if f in seen]
    for frame in frames:
        out += [c for c in frame.columns if c not in out]
    return out


def _read_one(
    path: str, *, layout: list[str], mapping: Any, custom_prefix: str, options: dict[str, Any]
) -> pd.DataFrame:
    # (not "columns": Dask passes a function with that parameter the columns a
    # computation needs, which would replace the header mapping)
    df = _io.read_csv(path, columns=mapping, custom_prefix=custom_prefix, **options)
    assert isinstance(df, pd.DataFrame)
    return _framed(df, path, layout)


def _framed(df: pd.DataFrame, path: str, layout: list[str]) -> pd.DataFrame:
    out = df.reindex(columns=layout).astype("str")  # a column another file lacks: all missing
    out.insert(0, ROW, np.asarray(df.index, dtype=np.int64))
    out.insert(0, SOURCE, pd.Series([path] * len(df), index=df.index, dtype="str"))
    return out.reset_index(drop=True)


def read_csv(
    pattern_or_paths: Paths,
    *,
    columns: Any = None,
    custom_prefix: str = "custom.",
    **options: Any,
) -> dd.DataFrame:
    """Contact CSVs as one Dask DataFrame: one partition per file, in sorted path order.

    Each file is read by :func:`synckit.read_csv` on a worker (every cell
    text, header mapping with ``columns``, ``custom.<key>`` columns, the
    careful or fast parser), plus two columns: ``source`` (the path) and
    ``row`` (the spreadsheet row in that file). Files whose headers differ
    share one column layout (a column a file lacks is missing there). Only
    the headers are read here, so a file without a usable column fails now.
    The paths must be readable from the workers (a shared file system).

    Example:
        >>> ddf = read_csv("exports/*.csv", columns={"E-mail": "email"})  # doctest: +SKIP
        >>> ddf[["source", "row", "email"]].head()                         # doctest: +SKIP
    """
    paths = _paths(pattern_or_paths)
    if "chunksize" in options:
        raise ConfigError("synckit.dask.read_csv reads one partition per file: no chunksize")
    heads = [
        _io.read_csv(p, columns=columns, custom_prefix=custom_prefix, nrows=0, **options)
        for p in paths
    ]
    layout = _layout([h for h in heads if isinstance(h, pd.DataFrame)])
    meta = _framed(pd.DataFrame({c: pd.Series([], dtype="str") for c in layout}), "", layout)
    # a mapped column a file lacks: upsert() refuses the frame before it validates or
    # sends anything, as for a frame synckit.read_csv read (issue 12), naming the file
    meta.attrs[_PROBLEMS] = _file_problems(paths, heads)
    read = functools.partial(
        _read_one, layout=layout, mapping=columns, custom_prefix=custom_prefix, options=options
    )
    with _no_string_conversion():
        return dd.from_map(read, paths, meta=meta, enforce_metadata=False, label="synckit-read")


#: Where read_csv's frame keeps the mapping problems of its files (meta's attrs).
_PROBLEMS: Final = "synckit.mapping_problems"


def _file_problems(paths: Sequence[str], heads: Sequence[Any]) -> tuple[Any, ...]:
    """Preflight's mapping problems of each file's header, each message naming its file."""
    from synckit.sync.preflight import frame_mapping_problems

    out = []
    for path, head in zip(paths, heads, strict=True):
        for problem in frame_mapping_problems(head):
            out.append(dataclasses.replace(problem, message=f"{path}: {problem.message}"))
    return tuple(out)


def mapping_problems(data: Any) -> tuple[Any, ...]:
    """The :class:`~synckit.sync.Problem` of each mapped column a file lacks, for a frame
    :func:`read_csv` read with ``columns=`` (or its validation); empty for others.

    ``synckit.upsert`` refuses such input before it validates or sends anything
    (``preflight=False`` lets it through, as for pandas input).

    Example:
        >>> ddf = read_csv("exports/*.csv", columns={"Mobil": "phone_number"})  # doctest: +SKIP
        >>> [p.message for p in mapping_problems(ddf)]                         # doctest: +SKIP
        ["exports/a.csv: mapped column not in the file's header: 'Mobil' (did you mean 'Mobile'?)"]
    """
    if isinstance(data, DaskValidation):
        return data._problems
    meta = getattr(data, "_meta", None)
    return tuple(getattr(meta, "attrs", {}).get(_PROBLEMS, ()))


# ---------------------------------------------------------------------------
# validation, partition by partition


@dataclass(frozen=True)
class _Options:
    """validate()'s options: plain values, pickled into every task."""

    default_region: str | None
    sms_countries: tuple[str, ...] | None
    duplicates: str
    #: validate()'s other options (defaults, values, invalid_fields, region_column),
    #: passed through unchanged to each partition's pandas validate.
    extra: tuple[tuple[str, Any], ...] = ()


def _validate_part(frame: pd.DataFrame, opts: _Options, part: int) -> _v.Validation:
    """One partition, duplicates left for later: frames with ``source`` and ``row`` columns.

    Rows of each source are validated together (a partition usually holds one
    file), so row numbers never collide inside one ``validate`` call.
    """
    groups: list[tuple[Any, pd.DataFrame]] = (
        list(frame.groupby(SOURCE, sort=False, dropna=False)) if len(frame) else [(None, frame)]
    )
    parts: list[_v.Validation] = []
    for source, group in groups:
        data = group.drop(columns=[SOURCE]).set_index(ROW)
        data.index = pd.Index(np.asarray(data.index, dtype=np.int64), name=ROW)
        check = _v.validate(
            data,
            default_region=opts.default_region,
            sms_countries=opts.sms_countries,
            duplicates="keep",
            **dict(opts.extra),
        )
        name = "" if source is None else str(source)
        parts.append(
            _v.Validation(
                valid=_with_source(check.valid.reset_index(), name),
                errors=_with_source(check.errors, name),
                invalid=_with_source(check.invalid.reset_index(), name),
                ignored_columns=check.ignored_columns,
            )
        )
    if len(parts) == 1:
        return parts[0]
    # several files in one partition: back to the partition's row order
    return _v.Validation(
        valid=_in_order(pd.concat([p.valid for p in parts], ignore_index=True), _index(frame)),
        errors=_in_order(pd.concat([p.errors for p in parts], ignore_index=True), _index(frame)),
        invalid=_in_order(pd.concat([p.invalid for p in parts], ignore_index=True), _index(frame)),
        ignored_columns=parts[0].ignored_columns,
    )


def _with_source(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    out = frame.copy()
    out.insert(0, SOURCE, pd.Series([source] * len(frame), index=frame.index, dtype="str"))
    return out.reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class _Pass:
    """A partition read and validated once: everything the results derive from.

    Kept (persisted) between :func:`validate` and the results: on a
    distributed cluster by the workers, on a local scheduler in this process.
    ``given`` holds the valid rows as given, row for row (what a row rejected
    as a duplicate shows in ``invalid``); only when duplicates are looked for.
    ``where`` is the partition's ``(source, row)`` in input order (errors and
    invalid rows are put back in that order).
    """

    check: _v.Validation
    given: pd.DataFrame | None
    where: pd.MultiIndex


class _SpillFolder:
    """Where a local scheduler keeps the passes: a temporary folder on this machine's disk.

    A distributed cluster keeps each pass in its worker's memory (spilling to disk
    under pressure); a local scheduler would keep every pass in this one process,
    about twice the list's text in memory, for as long as the results may be read.
    A pass pickles in a few hundredths of a second per 50,000 rows, so it goes to disk
    and is read back when a result needs it. The folder is removed when the last task
    that may read it is gone (the tasks hold this object; a copy pickled into another
    process holds the path only).
    """

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="synckit-dask-")
        self.path = self._folder.name

    def __reduce__(self) -> tuple[Any, ...]:
        return (_SpillPath, (self.path,))


@dataclass(frozen=True)
class _SpillPath:
    """A spill folder's path, as another process sees it (it does not own the folder)."""

    path: str


@dataclass(frozen=True)
class _Spilled:
    """A pass, or a partition's keys, written to a file of a spill folder."""

    file: str

    @classmethod
    def write(cls, value: Any, spill: Any, name: str) -> _Spilled:
        file = os.path.join(spill.path, f"{name}.pickle")
        # personal data on disk: owner-only (0600) whatever the umask, as every file
        # synckit writes (the folder itself is 0700)
        with open(_files.private_file(file), "wb") as stream:
            pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)
        return cls(file)

    def load(self) -> Any:
        with open(self.file, "rb") as stream:
            return pickle.load(stream)  # (a file our own tasks wrote, in a private folder)


def _first_pass(
    frame: pd.DataFrame, opts: _Options, part: int, spill: Any = None
) -> tuple[_Pass | _Spilled, pd.DataFrame | _Spilled | None]:
    """:func:`_validate_part` and what the duplicates step needs later, in one go: the
    pass (written to ``spill``'s folder when given: see :class:`_SpillFolder`) and the
    partition's duplicate keys (:func:`_keys`; None with ``"keep"``)."""
    check = _validate_part(frame, opts, part)
    where = _index(frame)
    given = None
    if opts.duplicates != "keep":
        at = np.asarray(where.get_indexer(_index(check.valid)), dtype=np.int64)
        # (reindex: a column only the validation adds, e.g. from ``defaults``, is missing as given)
        given = frame.iloc[at].reset_index(drop=True).reindex(columns=check.invalid.columns)
    done = _Pass(check=check, given=given, where=where)
    keys = None if given is None else _keys(check, part)
    if spill is None:
        return done, keys
    # the keys too: a local scheduler would otherwise hold every partition's keys
    # while the groups are settled (1.8 GB peak at 5M rows against 1.2 GB)
    spilled_keys = None if keys is None else _Spilled.write(keys, spill, f"keys-{part}")
    return _Spilled.write(done, spill, f"pass-{part}"), spilled_keys


def _loaded(done: _Pass | _Spilled) -> _Pass:
    out = done.load() if isinstance(done, _Spilled) else done
    assert isinstance(out, _Pass)
    return out


def _loaded_keys(keys: pd.DataFrame | _Spilled, spill: Any = None) -> pd.DataFrame:
    out = keys.load() if isinstance(keys, _Spilled) else keys
    assert isinstance(out, pd.DataFrame)
    return out


_KEY_COLUMNS: Final = ("email", "phone_number")
_HASHES: Final = ("h_email", "h_phone_number")


def _keys(check: _v.Validation, part: int) -> pd.DataFrame:
    """The duplicate keys of a partition's valid rows: where they are (``id``: partition
    and position, in input order), their email and phone, and a 64-bit hash of each
    (what the shuffles group on; missing: 0)."""
    valid = check.valid
    n = len(valid)
    out = pd.DataFrame(
        {
            "id": (np.int64(part) << np.int64(32)) + np.arange(n, dtype=np.int64),
            SOURCE: valid[SOURCE].astype(object),
            ROW: valid[ROW].astype(np.int64),
        }
    )
    for key, hashed in zip(_KEY_COLUMNS, _HASHES, strict=True):
        values = valid[key].astype(object) if key in valid else pd.Series([None] * n, dtype=object)
        # Arrow text: a few bytes a key instead of a Python string (the keys of every
        # partition are held at once while the groups are settled)
        out[key] = values.astype("str").to_numpy()
        codes = pd.util.hash_pandas_object(values, index=False).to_numpy().view(np.int64)
        out[hashed] = np.where(values.notna().to_numpy(), codes, 0)
    return out


_EDGE_META: Final = pd.DataFrame(
    {"id": pd.Series([], dtype=np.int64), "to": pd.Series([], dtype=np.int64)}
)


def _edges(frame: pd.DataFrame, hashed: str) -> pd.DataFrame:
    """Edges from each row to the smallest ``id`` sharing its hash, for hashes several rows
    share (the partition holds every row of its hashes: it comes out of a shuffle on them).

    A key only one row has gives nothing, so the edges are about as many as the rows that
    have a duplicate (usually a small fraction of the list).
    """
    if not len(frame):
        return _EDGE_META
    grouped = frame.groupby(hashed, sort=False)["id"]
    size = grouped.transform("size").to_numpy()
    first = grouped.transform("min").to_numpy()
    ids = frame["id"].to_numpy()
    linked = (size > 1) & (ids != first)
    return pd.DataFrame({"id": ids[linked], "to": first[linked]})


@dataclass(frozen=True)
class GroupStats:
    """How the duplicate groups were settled: the rows sharing a key with another row,
    the edges between them, and the rounds of union-find over those edges (in one task)."""

    rows: int
    edges: int
    rounds: int


def _union_find(*parts: pd.DataFrame) -> tuple[pd.DataFrame, GroupStats]:
    """Connected components of the edges: each row's ``label`` is the smallest ``id`` of its
    group (linked by email OR phone, transitively).

    Vectorised union-find: each round hooks the larger root of every edge whose two ends
    are apart onto the smaller (``np.minimum.at``), then pointer jumping flattens the
    trees; a round joins at least one pair of groups (bench_dask at 5M rows: 968,404
    edges, 3 rounds).

    Example:
        >>> edges = pd.DataFrame({"id": [5, 7, 9], "to": [1, 5, 7]})  # 1-5-7-9: one chain
        >>> labels, stats = _union_find(edges)
        >>> labels["label"].tolist(), stats.rows
        ([1, 1, 1, 1], 4)
    """
    edges = pd.concat(parts, ignore_index=True) if parts else _EDGE_META
    ends = np.concatenate([edges["id"].to_numpy(np.int64), edges["to"].to_numpy(np.int64)])
    nodes, inverse = np.unique(ends, return_inverse=True)
    a, b = inverse[: len(edges)], inverse[len(edges) :]
    parent = np.arange(len(nodes), dtype=np.int64)  # always parent[x] <= x: no cycles
    rounds = 0
    while True:
        ra, rb = parent[a], parent[b]  # roots: the trees are flat here
        apart = ra != rb
        if not apart.any():
            break
        rounds += 1
        low = np.minimum(ra[apart], rb[apart])
        np.minimum.at(parent, ra[apart], low)
        np.minimum.at(parent, rb[apart], low)
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
    labels = pd.DataFrame({"id": nodes, "label": nodes[parent]})
    return labels, GroupStats(rows=len(nodes), edges=len(edges), rounds=rounds)


def _labelled(keys: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The partition's keys of rows in some group, with the group's label (the labels of
    all groups are one small frame, sent to every partition)."""
    return keys.merge(labels, on="id", how="inner")


def _group_duplicates(keys: pd.DataFrame, policy: str) -> pd.DataFrame:
    """find_duplicates on whole groups (a partition holds every row of its labels)."""
    keys = keys.sort_values([SOURCE, ROW], kind="stable").reset_index(drop=True)
    found = _v.find_duplicates(keys, policy=policy)  # type: ignore[arg-type]
    pos = found["_pos"].to_numpy(dtype=np.int64)
    ids = keys["id"].to_numpy(dtype=np.int64)[pos]
    return pd.DataFrame(
        {
            "part": ids >> np.int64(32),
            "pos": ids & np.int64(0xFFFFFFFF),
            "field": found["field"].astype(object).to_numpy(),
            "message": found["message"].astype(object).to_numpy(),
        }
    )


_DUP_META: Final = pd.DataFrame(
    {
        "part": pd.Series([], dtype=np.int64),
        "pos": pd.Series([], dtype=np.int64),
        "field": pd.Series([], dtype=object),
        "message": pd.Series([], dtype=object),
    }
)


def _duplicates_by_part(keys: dd.DataFrame, policy: str, nparts: int) -> tuple[dd.DataFrame, Any]:
    """Rejected rows, partition ``i`` holding those of input partition ``i``; and the
    :class:`GroupStats` (both kept on the cluster with a distributed client)."""
    # The task-based shuffle: keys hold object columns (None where missing), which the
    # arrow-based P2P shuffle of distributed cannot always carry.
    with dask.config.set({"dataframe.shuffle.method": "tasks"}):
        return _shuffled_duplicates(keys, policy, nparts)


def _shuffled_duplicates(keys: dd.DataFrame, policy: str, nparts: int) -> tuple[dd.DataFrame, Any]:
    # 1. per key, one shuffle of (id, hash) pairs: edges to each key group's smallest id
    edges = []
    for hashed in _HASHES:
        pairs = keys[keys[hashed] != 0][["id", hashed]].shuffle(on=hashed)
        edges.append(pairs.map_partitions(_edges, hashed, meta=_EDGE_META))
    # 2. the groups: union-find over the edges in one task (small ints, on a worker)
    found = delayed(_union_find, pure=True, nout=2)(*edges[0].to_delayed(), *edges[1].to_delayed())
    # kept: small; the step below sends the labels to every partition of the keys
    labels, stats = dask.persist(*found)
    # 3. the grouped rows' keys (labels sent to each partition, no shuffle of all keys),
    # one shuffle on the label, whole groups weighed as find_duplicates does
    labelled = keys.map_partitions(
        _labelled, labels, meta=keys._meta.assign(label=pd.Series([], dtype=np.int64))
    )
    grouped = labelled.shuffle(on="label")
    dups = grouped.map_partitions(_group_duplicates, policy, meta=_DUP_META)
    # sorted by input partition, with one output partition per input partition; kept
    # (on the cluster with a distributed client) so each partition reads its share
    by_part = dups.set_index("part", divisions=tuple(range(nparts + 1)), sort=True)
    (by_part,) = dask.persist(by_part)
    return by_part, stats


def _apply_duplicates(
    kept: _Pass | _Spilled, dups: pd.DataFrame | None, spill: Any = None
) -> _v.Validation:
    """The partition's validation with its rejected rows moved from ``valid`` to
    ``invalid`` (as given). (``spill``: held so its folder lives as long as this task.)

    Errors and invalid rows end in input order, duplicate errors among the
    others, as :func:`synckit.validate` orders them.
    """
    done = _loaded(kept)
    check = done.check
    if dups is None or not len(dups):
        return check
    assert done.given is not None
    valid = check.valid
    pos = dups["pos"].to_numpy(dtype=np.int64)
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    rejected = np.zeros(len(valid), dtype=bool)
    rejected[pos] = True
    dup_rows = valid.iloc[pos]
    given = done.given.iloc[pos].reset_index(drop=True)
    fields = dups["field"].to_numpy()[order]
    # the value as given (the key field's cell; none for rows linked through others)
    values = np.full(len(fields), None, dtype=object)
    for name in pd.unique(fields).tolist():
        if name in given.columns:
            hit = fields == name
            cells = given[name].to_numpy(dtype=object)[hit]
            values[hit] = [_v._cell_text(c) for c in cells]
    errors = pd.DataFrame(
        {
            SOURCE: dup_rows[SOURCE].to_numpy(),
            ROW: dup_rows[ROW].to_numpy(dtype=np.int64),
            "field": fields,
            "code": "duplicate_in_file",
            "message": dups["message"].to_numpy()[order],
            "value": values,
            "severity": "error",  # a duplicate rejects the row
        }
    ).astype(check.errors.dtypes.to_dict())
    invalid = pd.concat([check.invalid, given], ignore_index=True)
    return _v.Validation(
        valid=valid[~rejected].reset_index(drop=True),
        errors=_in_order(pd.concat([check.errors, errors], ignore_index=True), done.where),
        invalid=_in_order(invalid, done.where),
        ignored_columns=check.ignored_columns,
    )


def _index(frame: pd.DataFrame) -> pd.MultiIndex:
    """The frame's ``(source, row)`` pairs (unique in a partition)."""
    return pd.MultiIndex.from_arrays([frame[SOURCE].astype(object), frame[ROW].astype(np.int64)])


def _in_order(frame: pd.DataFrame, where: pd.MultiIndex) -> pd.DataFrame:
    """``frame`` stably sorted by its rows' positions in the partition (``where``)."""
    order = np.argsort(where.get_indexer(_index(frame)), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


# ---------------------------------------------------------------------------
# the result


@dataclass(frozen=True, eq=False)
class DaskValidation(_v.Validation):
    """A :class:`~synckit.validation.Validation` whose frames are Dask DataFrames.

    ``valid``, ``invalid`` and ``errors`` have ``source`` and ``row`` columns
    and derive from each partition's one read and validation, kept since
    :func:`validate` (by the workers on a distributed cluster, which spill to
    disk under pressure; in this process otherwise):
    ``check.errors.to_csv("errors-*.csv")`` writes them from the workers.
    Counts and :meth:`summary` compute small aggregates; :meth:`compute`
    brings everything to the driver as a pandas ``Validation`` (only for lists
    that fit in memory); ``synckit.upsert`` streams instead. ``group_stats``
    says how the duplicate groups were settled (None with ``"keep"``).
    """

    _parts: tuple[Any, ...] = field(default=(), repr=False)
    _duplicates: Any = field(default=None, repr=False)
    _options: _Options | None = field(default=None, repr=False)
    _stats: Any = field(default=None, repr=False)
    _problems: tuple[Any, ...] = field(default=(), repr=False)
    _spill: Any = field(default=None, repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def group_stats(self) -> GroupStats | None:
        """Rows in duplicate groups, edges between them, union-find rounds (computed)."""
        return None if self._stats is None else self._stats.compute()

    @property
    def n_rows(self) -> int:
        return self.n_valid + self.n_invalid

    @property
    def n_valid(self) -> int:
        return int(self._counts()[0])

    @property
    def n_invalid(self) -> int:
        return int(self._counts()[1])

    @property
    def ok(self) -> bool:
        return self.n_invalid == 0

    def _counts(self) -> tuple[int, int, int, int]:
        """Valid rows, invalid rows, errors and warnings (one computation, cached).

        Cached on the instance: ``functools.cache`` on the method kept every
        validation (and what it holds: kept passes, a spill folder) alive for good.
        """
        if "counts" in self._cache:
            return self._cache["counts"]
        valid: Any = self.valid
        invalid: Any = self.invalid
        errors: Any = self.errors
        severity = errors["severity"]
        got = dask.compute(
            valid.map_partitions(len).sum(),
            invalid.map_partitions(len).sum(),
            (severity == "error").sum(),
            (severity == "warning").sum(),
        )
        counts = int(got[0]), int(got[1]), int(got[2]), int(got[3])
        self._cache["counts"] = counts
        return counts

    def summary(self, examples: int = 3) -> pd.DataFrame:
        """Problems counted per ``field``, ``code`` and ``severity`` (computed), with examples."""
        errors: Any = self.errors
        keys = ["field", "code", "severity"]
        sample = errors.map_partitions(
            lambda e: e.groupby(keys, sort=False).head(examples), meta=errors._meta
        )
        counts = self.errors.groupby(keys).size()
        got_sample, got_counts = dask.compute(sample, counts)
        return _v._merge_summaries([got_sample], [got_counts])

    def __str__(self) -> str:
        n_valid, n_invalid, n_errors, n_warnings = self._counts()
        return _v._text_report(
            n_valid + n_invalid, n_valid, n_invalid, n_errors, self.summary(), n_warnings=n_warnings
        )

    def __repr__(self) -> str:
        return (
            f"<Validation of a Dask DataFrame: {self.valid.npartitions} partitions; "
            "str(), .summary() or .compute() to compute>"
        )

    def _repr_html_(self) -> str:
        n_valid, n_invalid, n_errors, n_warnings = self._counts()
        return _v._html_report(
            n_valid + n_invalid, n_valid, n_invalid, n_errors, self.summary(),
            ignored=self.ignored_columns, n_warnings=n_warnings,
        )  # fmt: skip

    def compute(self) -> _v.Validation:
        """Everything on the driver as a pandas Validation (for lists that fit in memory)."""
        valid, errors, invalid = dask.compute(self.valid, self.errors, self.invalid)
        return _v.Validation(valid, errors, invalid, self.ignored_columns)

    def partitions(self) -> Iterator[_v.Validation]:
        """One pandas Validation per partition, computed one at a time (see iter_validations)."""
        return _stream(self)


def validate(
    ddf: dd.DataFrame,
    *,
    default_region: str | None = "US",
    sms_countries: Iterable[str] | None = None,
    duplicates: str = "last",
    **options: Any,
) -> DaskValidation:
    """:func:`synckit.validate` on a Dask DataFrame: the same answer, partition by partition.

    ``ddf`` has a ``row`` column (:func:`read_csv` adds it, with ``source``);
    without one, an integer index is taken as ``row - 2``, as for pandas.
    Each partition is read and validated once, on a worker, and kept there
    (``persist``: on a local scheduler, in this process, now); the results
    derive from that. Duplicates (same normalised email or phone,
    transitively, across partitions and files) are found by shuffling hashes
    of the valid rows' keys: ``"last"`` keeps the last row of the last file
    in sorted order. Other
    keyword options (``defaults``, ``values``, ``invalid_fields``,
    ``region_column``) are :func:`synckit.validate`'s, applied per partition.

    Example:
        >>> check = synckit.validate(synckit.dask.read_csv("exports/*.csv"))  # doctest: +SKIP
        >>> check.errors.query("code == 'invalid_phone'").head()             # doctest: +SKIP
    """
    if duplicates not in ("last", "error", "keep"):
        raise ConfigError(f"duplicates must be one of last, error, keep, not {duplicates!r}")
    opts = _Options(
        default_region=_v._region(default_region),
        sms_countries=None if sms_countries is None else tuple(sms_countries),
        duplicates=duplicates,
        extra=tuple(sorted((k, v) for k, v in options.items() if v is not None)),
    )
    problems = mapping_problems(ddf)
    ddf = _with_rows(ddf)
    sample = _validate_part(ddf._meta, opts, 0)
    # Each partition is read and validated once, here; the keys, the duplicates and
    # every result below derive from these (persist: kept by the workers on a
    # distributed cluster, computed now in this process on a local scheduler).
    spill = _SpillFolder() if _distributed_client() is None else None
    firsts = dask.persist(
        *[
            delayed(_first_pass, pure=True, nout=2)(p, opts, i, spill)
            for i, p in enumerate(ddf.to_delayed())
        ]
    )
    # the passes and the keys kept apart: the keys go when the duplicates are known
    n = len(firsts)
    kept = dask.persist(*[f[0] for f in firsts], *[f[1] for f in firsts])
    passes, key_parts = kept[:n], kept[n:]
    del firsts, kept
    dups = stats = None
    if duplicates != "keep":
        with _no_string_conversion():
            keys = dd.from_delayed(
                [delayed(_loaded_keys, pure=True)(k, spill) for k in key_parts],
                meta=_keys(sample, 0),
                verify_meta=False,
            )
        dups, stats = _duplicates_by_part(keys, duplicates, n)
    del key_parts
    final = _finals(passes, dups, spill)
    frames = {}
    with _no_string_conversion():
        for name in ("valid", "errors", "invalid"):
            frames[name] = dd.from_delayed(
                [delayed(getattr, pure=True)(f, name) for f in final],
                meta=getattr(sample, name),
                verify_meta=False,
            )
    return DaskValidation(
        valid=frames["valid"],
        errors=frames["errors"],
        invalid=frames["invalid"],
        ignored_columns=tuple(c for c in sample.ignored_columns if c not in (SOURCE, ROW)),
        _parts=tuple(passes),
        _duplicates=dups,
        _options=opts,
        _stats=stats,
        _problems=problems,
        _spill=spill,
    )


def _finals(passes: Sequence[Any], dups: dd.DataFrame | None, spill: Any) -> list[Any]:
    """Each partition's final validation (a task per partition, from its kept pass)."""
    if dups is None:
        return [delayed(_apply_duplicates, pure=True)(v, None, spill) for v in passes]
    return [
        delayed(_apply_duplicates, pure=True)(v, d, spill)
        for v, d in zip(passes, dups.to_delayed(), strict=True)
    ]


def _with_rows(ddf: dd.DataFrame) -> dd.DataFrame:
    """``ddf`` with a ``row`` column (from the index when it has none) and a ``source`` one."""
    if ROW not in ddf.columns:
        index = ddf._meta.index
        if not pd.api.types.is_integer_dtype(index.dtype):
            raise ConfigError(
                "a Dask DataFrame needs a 'row' column (synckit.dask.read_csv adds one) "
                "or an integer index"
            )
        offset = 0 if index.name == ROW else 2
        ddf = ddf.map_partitions(
            lambda p: p.assign(**{ROW: np.asarray(p.index, dtype=np.int64) + offset}),
            meta=ddf._meta.assign(**{ROW: pd.Series([], dtype=np.int64)}),
        )
    if SOURCE not in ddf.columns:
        ddf = ddf.map_partitions(
            lambda p: p.assign(**{SOURCE: pd.Series([""] * len(p), index=p.index, dtype="str")}),
            meta=ddf._meta.assign(**{SOURCE: pd.Series([], dtype="str")}),
        )
    return ddf


# ---------------------------------------------------------------------------
# streaming to the driver


def iter_validations(
    data: dd.DataFrame | DaskValidation,
    *,
    default_region: str | None = "US",
    sms_countries: Iterable[str] | None = None,
    duplicates: str = "last",
    **options: Any,
) -> Iterator[_v.Validation]:
    """pandas Validation chunks of a Dask DataFrame or Dask validation, one partition at a time.

    What ``synckit.upsert`` streams from Dask input: :func:`validate` reads and
    validates each partition once and settles the duplicate groups (on the
    cluster); then each partition's final validation, derived from the kept
    pass on a worker, is handed over while the next ones are computed, so the
    driver holds about two partitions whatever the list's size. Each chunk's frames
    are indexed by ``row`` and carry ``source`` as a column; a partition
    holding several files gives one chunk per file.

    Example:
        >>> for chunk in iter_validations(synckit.dask.read_csv("exports/*.csv")):  # doctest: +SKIP
        ...     print(chunk.n_valid, chunk.valid["source"].iat[0])
    """
    if not isinstance(data, DaskValidation):
        data = validate(
            data,
            default_region=default_region,
            sms_countries=sms_countries,
            duplicates=duplicates,
            **options,
        )
    return _stream(data)


def _stream(check: DaskValidation) -> Iterator[_v.Validation]:
    parts = _finals(check._parts, check._duplicates, check._spill)
    client = _distributed_client()
    if client is None:
        for task in parts:
            yield from _by_source(task.compute())
        return
    futures: list[Any] = []
    ahead = 2  # partitions computed while the driver sends the current one
    for task in parts:
        futures.append(client.compute(task))
        if len(futures) > ahead:
            yield from _by_source(futures.pop(0).result())
    for future in futures:
        yield from _by_source(future.result())


def _distributed_client() -> Any:
    """The distributed client the computations go to, or None (a local scheduler, also
    when one is asked for with ``dask.config.set(scheduler=...)`` beside a client)."""
    if dask.config.get("scheduler", None) in _LOCAL_SCHEDULERS:
        return None
    try:
        from distributed import get_client
    except ImportError:  # pragma: no cover - dask without distributed
        return None
    try:
        return get_client()
    except ValueError:
        return None


_LOCAL_SCHEDULERS: Final = frozenset(
    {"sync", "synchronous", "single-threaded", "threads", "threading", "processes"}
)


def _by_source(check: _v.Validation) -> Iterator[_v.Validation]:
    """The partition's chunks, one per file, frames indexed by ``row`` (as the engine wants)."""
    sources = pd.unique(
        pd.concat([check.valid[SOURCE], check.invalid[SOURCE]], ignore_index=True)
    ).tolist()
    for source in sources or [""]:
        yield _v.Validation(
            valid=_indexed(check.valid, source),
            errors=check.errors[check.errors[SOURCE] == source].reset_index(drop=True),
            invalid=_indexed(check.invalid, source),
            ignored_columns=check.ignored_columns,
        )


def _indexed(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    part = frame[frame[SOURCE] == source]
    out = part.set_index(ROW)
    out.index = pd.Index(np.asarray(out.index, dtype=np.int64), name=ROW)
    return out
