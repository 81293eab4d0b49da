"""synckit on Dask: read_csv, validate and upsert on a real LocalCluster of two worker processes.

The answer must be pandas' answer: the same files read one by one with
synckit.read_csv, put together in sorted file order, validated in one
process. Duplicate messages name the file of the other row when it differs
("duplicate of row 3 of b.csv"); the oracle below adds that to pandas'
messages, which cannot know files.
"""

from __future__ import annotations

import gc
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import synckit
from synckit import Client
from synckit.sandbox import Sandbox
from synckit.sync.preflight import PreflightError, frame_mapping_problems

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
sdask = pytest.importorskip("synckit.dask")

pytestmark = pytest.mark.timeout(180)

# Three exports; b.csv comes between a.csv and c.csv in sorted order whatever order
# they are given in. Duplicates within a file, across files, and linked transitively.
FILES = {
    "c.csv": (
        "email,phone_number,first_name,custom.plan\n"
        "carol@example.com,+44 7400 123456,Carol,team\n"
        "dave@example.com,,Dave,\n"  # same email as a.csv row 3
        ",,,\n"
        "erin@example.com,+1 212 555 0199,Erin,free\n"  # same phone as b.csv row 2
        "not-an-email,,Nobody,\n"
    ),
    "a.csv": (
        "E-Mail,phone_number,first_name,custom.plan,custom_fields\n"
        'ada@example.com,(415) 555-2671,Ada,pro,"{""seats"": 3}"\n'
        "Dave@Example.com,,Dave A,free,\n"
        "ada@example.com,,Ada again,,\n"  # same email as row 2 (same file)
        'frank@example.com,+1 646 555 0123,Frank,,"{""a"": [1]}"\n'  # nested: invalid
        "grace@example.com,+1 415 555 2671,Grace,,\n"  # same phone as row 2
    ),
    "b.csv": (
        "email,phone_number,first_name,custom.seats\n"
        "heidi@example.com,212-555-0199,Heidi,4\n"  # US national: +12125550199
        "ivan@example.com,07400 123456,Ivan,\n"  # national UK: invalid in US
        "judy@example.com,+1 646 555 0123,Judy,9\n"  # frank's phone, but frank is invalid
    ),
}
MAPPING = {"E-Mail": "email"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes, one thread each: tasks really travel (pickled) between processes.

    Everything listens on loopback; the scheduler's small HTTP server takes a
    free port when another cluster holds the usual one (its warning is noise).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture
def exports(tmp_path: Path) -> list[Path]:
    paths = []
    for name, text in FILES.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def pandas_oracle(paths: list[Path], duplicates: str) -> synckit.Validation:
    """Each file read alone, concatenated in sorted order, validated in one process.

    Rows get a per-file offset so they stay distinct; the answer is mapped back
    to (source, row) and the other row's file named where it is another file.
    """
    frames = []
    for k, path in enumerate(sorted(paths, key=str)):
        df = synckit.read_csv(path, columns=MAPPING)
        assert isinstance(df, pd.DataFrame)
        df.index = pd.Index(df.index + k * 1000, name="row")
        frames.append(df)
    names = [str(p) for p in sorted(paths, key=str)]
    whole = pd.concat(frames)
    check = synckit.validate(whole, duplicates=duplicates)  # type: ignore[arg-type]

    def place(frame: pd.DataFrame, rows: pd.Series) -> pd.DataFrame:
        out = frame.reset_index(drop=True)
        out.insert(0, "row", (rows.to_numpy() % 1000).astype("int64"))
        out.insert(0, "source", pd.Series([names[r // 1000] for r in rows], dtype="str"))
        return out

    def message(text: Any, row: int) -> Any:
        def name(m: re.Match[str]) -> str:
            other = int(m.group(1))
            own = names[other // 1000] != names[row // 1000]
            return f"row {other % 1000}" + (f" of {names[other // 1000]}" if own else "")

        return re.sub(r"row (\d+)", name, text) if isinstance(text, str) else text

    errors = check.errors.copy()
    errors["message"] = [
        message(t, r) for t, r in zip(errors["message"], errors["row"], strict=True)
    ]
    return synckit.Validation(
        valid=place(check.valid, check.valid.index.to_series()),
        errors=place(errors.drop(columns=["row"]), errors["row"]),
        invalid=place(check.invalid, check.invalid.index.to_series()),
    )


def same(dask_frame: Any, expected: pd.DataFrame) -> None:
    """Equal frames; missing is missing (None in object columns, NaN in text ones)."""

    def plain(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.reset_index(drop=True).astype(object)
        return frame.where(frame.notna(), None)

    pd.testing.assert_frame_equal(plain(dask_frame.compute()), plain(expected))


def test_read_csv_carries_source_and_row(cluster: Any, exports: list[Path]) -> None:
    ddf = sdask.read_csv([exports[0], exports[2], exports[1]], columns=MAPPING)
    assert ddf.npartitions == 3
    assert list(ddf.columns) == [
        "source", "row", "email", "phone_number", "first_name",
        "custom_fields", "custom.plan", "custom.seats",
    ]  # fmt: skip
    # a computation that needs a few columns still reads with the header mapping
    assert ddf[["source", "row", "email"]].head(2)["email"].tolist() == [
        "ada@example.com",
        "Dave@Example.com",
    ]
    got = ddf.compute()
    assert [Path(s).name for s in got["source"]] == ["a.csv"] * 5 + ["b.csv"] * 3 + ["c.csv"] * 4
    assert got["row"].tolist() == [2, 3, 4, 5, 6, 2, 3, 4, 2, 3, 5, 6]  # c.csv row 4 is blank
    assert got["email"].dtype == "str" and got["phone_number"].iat[5] == "212-555-0199"
    # each file's partition is synckit.read_csv's frame of that file
    alone = synckit.read_csv(exports[2], columns=MAPPING)
    assert isinstance(alone, pd.DataFrame)
    part = got[got["source"] == str(exports[2])].set_index("row")
    pd.testing.assert_frame_equal(part[list(alone.columns)], alone, check_names=False)


@pytest.mark.parametrize("duplicates", ["last", "error", "keep"])
def test_validate_gives_pandas_answer(cluster: Any, exports: list[Path], duplicates: str) -> None:
    ddf = sdask.read_csv(str(exports[0].parent / "*.csv"), columns=MAPPING)
    check = synckit.validate(ddf, duplicates=duplicates)
    assert isinstance(check, sdask.DaskValidation)
    expected = pandas_oracle(exports, duplicates)
    same(check.valid, expected.valid)
    same(check.errors, expected.errors)
    same(check.invalid, expected.invalid)
    assert (check.n_valid, check.n_invalid) == (expected.n_valid, expected.n_invalid)


def test_duplicates_across_files_by_hand(cluster: Any, exports: list[Path]) -> None:
    check = synckit.validate(sdask.read_csv(exports, columns=MAPPING), duplicates="last")
    errors = check.errors.compute()
    dups = errors[errors["code"] == "duplicate_in_file"]
    got = [
        (Path(s).name, r, m)
        for s, r, m in zip(dups["source"], dups["row"], dups["message"], strict=True)
    ]
    c = str(exports[2].parent / "c.csv")
    assert got == [
        # ada (row 2) and grace (row 6) share a phone; row 4 shares only ada's email
        ("a.csv", 2, "duplicate of row 6 (same phone_number)"),
        ("a.csv", 3, f"duplicate of row 3 of {c} (same email)"),  # Dave@ = dave@, c.csv last
        ("a.csv", 4, "duplicate of row 6 (same email as row 2, which is linked to row 6)"),
        ("b.csv", 2, f"duplicate of row 5 of {c} (same phone_number)"),  # 212-555-0199
    ]
    # the value is the cell as given
    assert dups["value"].tolist()[:2] == ["(415) 555-2671", "Dave@Example.com"]
    valid = check.valid.compute()
    names = valid["source"].map(lambda s: Path(s).name)
    assert sorted(zip(names, valid["row"], strict=True)) == [
        ("a.csv", 6), ("b.csv", 4), ("c.csv", 2), ("c.csv", 3), ("c.csv", 5),
    ]  # fmt: skip


def test_partitions_holding_several_files(cluster: Any, exports: list[Path]) -> None:
    # one partition with every file: rows of each file are validated apart
    ddf = sdask.read_csv(exports, columns=MAPPING).repartition(npartitions=1)
    check = synckit.validate(ddf)
    expected = pandas_oracle(exports, "last")
    same(check.errors, expected.errors)
    chunks = list(sdask.iter_validations(check))
    assert [c.valid["source"].map(lambda s: Path(s).name).unique().tolist() for c in chunks] == [
        ["a.csv"], ["b.csv"], ["c.csv"],
    ]  # fmt: skip


def test_custom_fields_stay_objects_through_dask(cluster: Any, exports: list[Path]) -> None:
    check = synckit.validate(sdask.read_csv(exports, columns=MAPPING), duplicates="keep")
    valid = check.valid.compute()
    cells = valid.loc[valid["custom_fields"].notna(), "custom_fields"].tolist()
    assert cells == [{"seats": 3}]  # a dict, not its text (Dask's string conversion is off)
    chunk = next(sdask.iter_validations(check))
    bodies = dict(synckit.validation.to_payloads(chunk.valid))
    assert bodies[2]["custom_fields"] == {"seats": 3, "plan": "pro"}


def test_a_plain_dask_frame_uses_its_index(cluster: Any) -> None:
    frame = pd.DataFrame({"email": ["a@example.com", "bad", "a@example.com", "b@example.com"]})
    ddf = dd.from_pandas(frame, npartitions=2)
    check = synckit.validate(ddf)
    pandas = synckit.validate(frame)
    assert check.errors.compute()["row"].tolist() == pandas.errors["row"].tolist() == [2, 3]
    assert str(check).splitlines()[0] == "4 rows: 2 valid, 2 invalid (2 errors)"


def test_validate_options_reach_every_partition(cluster: Any) -> None:
    """defaults/values/invalid_fields (issue 13) mean the same on Dask as on pandas."""
    frame = pd.DataFrame(
        {
            "email": ["a@example.com", "b@example.com", "c@example.com", "d@example.com"],
            "email_consent": ["yes", "", "no", "yes"],
            "phone_number": ["+14155552671", "12", "", ""],
        }
    )
    options: dict[str, Any] = {
        "defaults": {"first_name": "Friend"},
        "values": {"email_consent": {"yes": "subscribed", "no": "unsubscribed"}},
        "invalid_fields": "drop",
    }
    check = synckit.validate(dd.from_pandas(frame, npartitions=2), **options)
    pandas = synckit.validate(frame, **options)
    valid = check.valid.compute().drop(columns=["source"]).set_index("row")
    assert valid.to_dict("index") == pandas.valid.to_dict("index")
    assert valid["email_consent"].tolist() == ["subscribed", None, "unsubscribed", "subscribed"]
    assert valid["first_name"].tolist() == ["Friend"] * 4
    assert check.errors.compute()["severity"].tolist() == ["warning"]  # the dropped phone


def test_upsert_streams_dask_partitions(
    cluster: Any, exports: list[Path], sandbox: Sandbox
) -> None:
    ddf = sdask.read_csv(exports, columns=MAPPING)
    with Client(sandbox.url, token=sandbox.token) as client:
        # b.csv and c.csv say "email", not the mapped "E-Mail": preflight's mapping check
        # would stop the run (test_upsert_refuses_a_mapping_a_file_lacks); not the point here
        report = synckit.upsert(ddf, client, progress=False, workers=2, preflight=False)
    statuses = Counter(report.rows["status"].astype(str))
    assert statuses == {"created": 5, "invalid": 7}
    stored = {c["email"]: c for c in sandbox.contacts()}
    assert sorted(stored) == [
        "carol@example.com", "dave@example.com", "erin@example.com",
        "grace@example.com", "judy@example.com",
    ]  # fmt: skip
    assert stored["judy@example.com"]["custom_fields"] == {"seats": "9"}
    assert stored["erin@example.com"]["phone_number"] == "+12125550199"
    json.dumps(report.summary().to_dict())  # a plain report, as for pandas input
    assert np.isin(report.rows.index, [2, 3, 4, 5, 6]).all()


def test_a_long_chain_is_one_group(cluster: Any, tmp_path: Path) -> None:
    # p0 -e- p1 -p- p2 -e- p3 -p- p4 -e- p5, alternating between two files: the smallest
    # label needs several rounds to reach the end of the chain
    rows = [(f"e{i // 2 * 2}@example.com" if i % 2 == 0 else f"e{(i - 1) // 2 * 2}@example.com",
             f"+1 212 555 {100 + (i + 1) // 2:04d}") for i in range(6)]  # fmt: skip
    (tmp_path / "x.csv").write_text(
        "email,phone_number\n" + "".join(f"{e},{p}\n" for e, p in rows[0::2])
    )
    (tmp_path / "y.csv").write_text(
        "email,phone_number\n" + "".join(f"{e},{p}\n" for e, p in rows[1::2])
    )
    check = synckit.validate(sdask.read_csv(tmp_path / "*.csv"), duplicates="last")
    valid = check.valid.compute()
    assert [(Path(s).name, r) for s, r in zip(valid["source"], valid["row"], strict=True)] == [
        ("y.csv", 4)
    ]  # one group: only the last row of the last file is kept
    assert check.errors.compute()["code"].tolist() == ["duplicate_in_file"] * 5
    same(check.errors, pandas_oracle([tmp_path / "x.csv", tmp_path / "y.csv"], "last").errors)


# --------------------------------------------------------------------------- one pass


def test_each_partition_is_validated_once(
    exports: list[Path], monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    """validate() + every way to read its results, then upsert: one validation per file.

    The synchronous scheduler runs every task here, so counting calls of the pandas
    validate is exact (three files, one partition each). Reading and validating used
    to happen once for the duplicate groups and again for each result asked for.
    """
    import dask

    calls: Counter[int] = Counter()
    real = synckit.validation.validate

    def counting(data: Any, **options: Any) -> Any:
        # pandas frames only (synckit.validate is this function too, and gets the Dask
        # frame); not the empty meta validate runs on to know its columns
        if isinstance(data, pd.DataFrame) and len(data):
            calls[len(data)] += 1
        return real(data, **options)

    monkeypatch.setattr(synckit.validation, "validate", counting)
    with dask.config.set(scheduler="synchronous"):
        check = synckit.validate(sdask.read_csv(exports, columns=MAPPING))
        assert calls == {5: 1, 3: 1, 4: 1}  # a.csv 5 rows, b.csv 3, c.csv 4: the one pass
        check.compute()
        assert (check.n_valid, check.n_invalid) == (5, 7)
        check.summary()
        chunks = list(sdask.iter_validations(check))
        assert sum(c.n_rows for c in chunks) == 12
        assert calls == {5: 1, 3: 1, 4: 1}  # the results came from the kept pass
        # kept on disk, not in this process: one file per partition, gone with the validation
        folder = Path(check._spill.path)
        assert sorted(p.name for p in folder.iterdir()) == [
            "keys-0.pickle", "keys-1.pickle", "keys-2.pickle",
            "pass-0.pickle", "pass-1.pickle", "pass-2.pickle",
        ]  # fmt: skip
        # personal data: the folder and its files are the owner's alone, whatever the umask
        assert oct(folder.stat().st_mode & 0o777) == "0o700"
        assert {oct(p.stat().st_mode & 0o777) for p in folder.iterdir()} == {"0o600"}
        del check, chunks
        gc.collect()
        assert not folder.exists()
        check = synckit.validate(sdask.read_csv(exports, columns=MAPPING))
        calls.clear()
        with Client(sandbox.url, token=sandbox.token) as client:
            report = synckit.upsert(check, client, progress=False, preflight=False)
        assert Counter(report.rows["status"].astype(str)) == {"created": 5, "invalid": 7}
        assert not calls  # the engine's scan and send passes read the kept validations
        ddf = sdask.read_csv(exports, columns=MAPPING)
        with Client(sandbox.url, token=sandbox.token) as client:
            synckit.upsert(ddf, client, progress=False, preflight=False)
        assert calls == {5: 1, 3: 1, 4: 1}  # a frame: validated once for both passes


def test_each_partition_is_validated_once_on_a_cluster(cluster: Any, exports: list[Path]) -> None:
    """The same on two worker processes, counted from the scheduler's record of the tasks run."""
    with distributed.get_task_stream() as stream:
        check = synckit.validate(sdask.read_csv(exports, columns=MAPPING))
        check.compute()
        assert check.n_valid == 5
        assert sum(c.n_rows for c in sdask.iter_validations(check)) == 12
    ran = Counter(_task_name(task["key"]) for task in stream.data)
    # each file read once, validated once (one task per file); no other task validates
    assert ran["synckit-read"] == 3
    assert ran["_first_pass"] == 3
    assert ran["_validate_part"] == 0


def _task_name(key: Any) -> str:
    """A task key's name without its token: ``_first_pass-1f0e...`` -> ``_first_pass``."""
    name = str(key[0] if isinstance(key, tuple) else key)
    return name.rsplit("-", 1)[0]


# --------------------------------------------------------------------------- duplicate groups


CHAIN = {
    # A (f1 row 2) -email- B (f2 row 2) -phone- C (f3 row 2) -email- D (f1 row 3);
    # E (f1 row 4) -phone- F (f2 row 3); G (f3 row 3) alone
    "f1.csv": "email,phone_number\n"
    "a@example.com,+1 212 555 0101\n"  # A
    "c@example.com,+1 212 555 0104\n"  # D
    "e@example.com,+1 212 555 0105\n",  # E
    "f2.csv": "email,phone_number\n"
    "A@Example.com,+1 212 555 0102\n"  # B: A's email (normalised), C's phone
    "f@example.com,(212) 555-0105\n",  # F: E's phone
    "f3.csv": "email,phone_number\n"
    "c@example.com,212.555.0102\n"  # C: D's email, B's phone
    "g@example.com,+1 212 555 0107\n",  # G
}


@pytest.mark.parametrize("duplicates", ["last", "error"])
def test_a_chain_across_three_files(cluster: Any, tmp_path: Path, duplicates: str) -> None:
    for name, text in CHAIN.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    check = synckit.validate(sdask.read_csv(tmp_path / "*.csv"), duplicates=duplicates)
    valid = check.valid.compute()
    kept = [(Path(s).name, r) for s, r in zip(valid["source"], valid["row"], strict=True)]
    errors = check.errors.compute()
    rejected = [(Path(s).name, r) for s, r in zip(errors["source"], errors["row"], strict=True)]
    if duplicates == "last":
        # groups {A, B, C, D} and {E, F}: the last file's row of each is kept (C, F), G alone
        assert kept == [("f2.csv", 3), ("f3.csv", 2), ("f3.csv", 3)]
        assert rejected == [("f1.csv", 2), ("f1.csv", 3), ("f1.csv", 4), ("f2.csv", 2)]
    else:
        assert kept == [("f3.csv", 3)]
        assert sorted(rejected) == [
            ("f1.csv", 2), ("f1.csv", 3), ("f1.csv", 4), ("f2.csv", 2), ("f2.csv", 3),
            ("f3.csv", 2),
        ]  # fmt: skip
    assert set(errors["code"]) == {"duplicate_in_file"}
    # ids in input order: A D E | B F | C. Edges to each key group's first row:
    # B->A (email), C->D (email), C->B (phone), F->E (phone). Union-find, round 1 hooks
    # B onto A, C onto D (then B's root A: C's tree stays with D), F onto E; round 2
    # joins D's tree to A's. Six rows in groups, four edges, two rounds.
    assert check.group_stats == sdask.GroupStats(rows=6, edges=4, rounds=2)
    same(check.errors, pandas_oracle(sorted(tmp_path.glob("*.csv")), duplicates).errors)


def test_union_find_by_hand() -> None:
    edges = pd.DataFrame({"id": [9, 7, 5, 30, 12], "to": [7, 5, 1, 20, 3]})
    labels, stats = sdask._union_find(edges[:3], edges[3:])
    assert dict(zip(labels["id"], labels["label"], strict=True)) == {
        1: 1, 5: 1, 7: 1, 9: 1, 3: 3, 12: 3, 20: 20, 30: 20,
    }  # fmt: skip
    assert (stats.rows, stats.edges) == (8, 5)
    empty, none = sdask._union_find()
    assert len(empty) == 0 and none == sdask.GroupStats(0, 0, 0)


# --------------------------------------------------------------------------- issue 12's check


def test_upsert_refuses_a_mapping_a_file_lacks(tmp_path: Path, sandbox: Sandbox) -> None:
    (tmp_path / "a.csv").write_text("E-Mail,Mobile\nada@example.com,+14155552671\n")
    (tmp_path / "b.csv").write_text("E-Mail,Mobile Phone\nbob@example.com,+14155552672\n")
    mapping = {"E-Mail": "email", "Mobile": "phone_number"}
    ddf = sdask.read_csv(tmp_path / "*.csv", columns=mapping)
    problems = sdask.mapping_problems(ddf)
    b = tmp_path / "b.csv"
    # the pandas path's own message for b.csv, with the file named in front
    alone = synckit.read_csv(b, columns=mapping)
    (pandas_problem,) = frame_mapping_problems(alone)
    assert pandas_problem.message == (
        "mapped column not in the file's header: 'Mobile' (did you mean 'Mobile Phone'?)"
    )
    assert [(p.code, p.message) for p in problems] == [
        ("unknown_column", f"{b}: {pandas_problem.message}")
    ]
    with Client(sandbox.url, token=sandbox.token) as client:
        with pytest.raises(PreflightError, match=r"b\.csv: mapped column") as err:
            synckit.upsert(ddf, client, progress=False)
        assert err.value.exit_code == 2
        with pytest.raises(PreflightError, match=r"b\.csv"):
            synckit.upsert(synckit.validate(ddf, duplicates="keep"), client, progress=False)
    assert sandbox.contacts() == [] and sandbox.request_log() == []
    # a mapping every file has passes
    good = sdask.read_csv(tmp_path / "a.csv", columns=mapping)
    assert sdask.mapping_problems(good) == ()


def test_a_process_pool_reads_the_spilled_passes(exports: list[Path]) -> None:
    """Dask's process-pool scheduler: the tasks run in other processes, which write and read
    the passes in this process's spill folder; the answer is pandas' answer."""
    import dask

    with dask.config.set(scheduler="processes", num_workers=2):
        check = synckit.validate(sdask.read_csv(exports, columns=MAPPING))
        expected = pandas_oracle(exports, "last")
        same(check.errors, expected.errors)
        same(check.valid, expected.valid)
        assert Path(check._spill.path).is_dir()
