"""read_csv's fast reader (pyarrow) gives exactly the careful reader's frames and errors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import synckit.io as sio
from synckit.errors import InputError
from synckit.io import read_csv

pytestmark = pytest.mark.skipif(not sio._FAST_READER, reason="needs pyarrow and pandas >= 3")

TAKEOVER = "careful CSV reader takes over"

# (name, bytes, how the fast reader ends: "fast" = reads it alone, "handback" = starts,
# then gives it to the careful reader, "careful" = never tries)
CORPUS: list[tuple[str, bytes, str]] = [
    (
        "plain",
        b"email,phone_number,first_name,custom.plan,custom_fields,Notes\n"
        b'a@x.com,07700900123,Ada,pro,"{""seats"": 3}",hi\n'
        b'b@x.com,,"Smith, Jo",,,\n'
        b'NA,null,  , ,"",1e5\n'
        b'c@x.com,+1 (415) 555-2671,"Q""uote",free,not json,007\n',
        "fast",
    ),
    (
        "quoted newlines, CRLF",
        b'email,first_name\r\na@x.com,"two\r\nlines"\r\nb@x.com,"x\ny"\r\nc@x.com,z\r\n',
        "fast",
    ),
    (
        "blank lines inside and at the end",
        b"email,first_name\na@x.com,A\n\nb@x.com,B\n,\n\n\nc@x.com,C\n\n",
        "fast",
    ),
    ("blank lines before the header", b"\n , \n\nemail,first_name\na@x.com,A\n", "fast"),
    ("semicolons", b'email;first_name;custom.plan\na@x.com;A;pro\nb@x.com;"B;b";\n', "fast"),
    ("tabs", b"email\tfirst_name\na@x.com\tA\n", "fast"),
    ("no final newline", b"email,first_name\na@x.com,A", "fast"),
    ("old Mac line ends", b"email,first_name\ra@x.com,A\rb@x.com,B\r", "fast"),
    ("header only", b"email,first_name\n", "fast"),
    ("header only, no newline", b"email,first_name", "handback"),
    ("quoted header with the delimiter", b'"Name, full",email\nAda,a@x.com\n', "fast"),
    (
        "quote after text, text after quote",
        b'email,first_name\na@x.com,x"y\nb@x.com,"x" \n',
        "careful",
    ),
    (
        "letters beyond ASCII",
        "email,first_name\nä@x.com,Zoë 🙂\nb@x.com,a\u2028b\n".encode(),
        "fast",
    ),
    ("short row: padded", b"email,first_name,last_name\na@x.com,A\nb@x.com,B,C\n", "handback"),
    (
        "long row: an error naming the line",
        b"email,first_name\na@x.com,A\nb@x.com,B,extra\n",
        "handback",
    ),
    ("whitespace line", b"email,first_name\na@x.com,A\n  \nb@x.com,B\n", "handback"),
    ("quote left open", b'email,first_name\na@x.com,"A\nb@x.com,B\n', "careful"),
    (
        "quote left open, count made even by a stray one",
        b'email,first_name\na@x.com,x"y\nb@x.com,"B\nc@x.com,C\n',
        "handback",
    ),
    ("quote left open on the last line", b'email,first_name\na@x.com,x"y\nb@x.com,"B', "handback"),
    ("text after a closing quote", b'email,first_name\na@x.com,"x"y\nb@x.com,"x""y"\n', "fast"),
    (
        "a multi-line cell in the last record",
        b'email,first_name\na@x.com,A\nb@x.com,"B\nb"\n',
        "handback",
    ),
    (
        "stray byte after UTF-8 text",
        b"email,first_name\n\xc3\xa4@x.com,A\nb@x.com,\xe9\n",
        "careful",
    ),
    ("repeated header", b"email,email\na@x.com,b@x.com\n", "careful"),
    ("empty header cell", b"email,,first_name\na@x.com,1,A\n", "careful"),
    ("BOM", b"\xef\xbb\xbfemail,first_name\na@x.com,A\n", "careful"),
    ("cp1252", b"email,first_name\na@x.com,Zo\xeb\n", "careful"),
    ("utf-16", "email,first_name\na@x.com,A\n".encode("utf-16"), "careful"),
    ("Excel sep line", b"sep=;\nemail;first_name\na@x.com;A\n", "careful"),
    ("header cell spanning lines", b'email,"first\nname"\na@x.com,A\n', "careful"),
]


@contextmanager
def careful_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with monkeypatch.context() as m:
        m.setattr(sio, "_plain_utf8_header", lambda *a, **k: None)
        yield


def outcome(read: Callable[[], Any]) -> tuple[list[pd.DataFrame], tuple[str, str] | None]:
    """The frames read (until an error) and the error's type and text."""
    frames: list[pd.DataFrame] = []
    try:
        got = read()
        frames.extend([got] if isinstance(got, pd.DataFrame) else got)
    except InputError as exc:
        return frames, (type(exc).__name__, str(exc))
    return frames, None


def assert_same(a: tuple[list[pd.DataFrame], Any], b: tuple[list[pd.DataFrame], Any]) -> None:
    assert len(a[0]) == len(b[0])
    for x, y in zip(a[0], b[0], strict=True):
        pd.testing.assert_frame_equal(x, y, check_exact=True)
        assert x.attrs == y.attrs
    assert a[1] == b[1]


@pytest.mark.parametrize(("name", "data", "path"), CORPUS, ids=[c[0] for c in CORPUS])
@pytest.mark.parametrize("chunksize", [None, 1, 2])
def test_fast_and_careful_readers_agree(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    name: str,
    data: bytes,
    path: str,
    chunksize: int | None,
) -> None:
    file = tmp_path / "c.csv"
    file.write_bytes(data)
    calls: list[int] = []
    arrow = sio._arrow_frames
    monkeypatch.setattr(sio, "_arrow_frames", lambda *a: calls.append(1) or arrow(*a))
    with caplog.at_level(logging.DEBUG, logger="synckit.io"):
        fast = outcome(lambda: read_csv(file, chunksize=chunksize))
    handed_back = TAKEOVER in caplog.text
    taken = "careful" if not calls else ("handback" if handed_back else "fast")
    assert taken == path
    with careful_only(monkeypatch):
        careful = outcome(lambda: read_csv(file, chunksize=chunksize))
    assert_same(fast, careful)


def test_the_corpus_reads_as_a_person_expects(tmp_path: Path) -> None:
    """A few answers pinned by hand (both readers agree on them, as tested above)."""
    file = tmp_path / "c.csv"
    file.write_bytes(CORPUS[0][1])
    df = read_csv(file)
    assert df.index.tolist() == [2, 3, 4, 5]
    assert df.loc[2, "phone_number"] == "07700900123"  # text, leading zero kept
    assert df.loc[3, "first_name"] == "Smith, Jo" and pd.isna(df.loc[3, "phone_number"])
    assert df.loc[4, "email"] == "NA" and df.loc[4, "first_name"] == "  "
    assert pd.isna(df.loc[4, "custom_fields"])  # "" is an empty cell
    assert df.loc[2, "custom_fields"] == '{"seats": 3}' and df.loc[5, "first_name"] == 'Q"uote'
    assert df.attrs["ignored_columns"] == ["Notes"]
    file.write_bytes(CORPUS[2][1])
    assert read_csv(file).index.tolist() == [2, 4, 8]  # blank lines keep their numbers
    file.write_bytes(CORPUS[14][1])
    with pytest.raises(InputError, match="Expected 2 fields in line 3, saw 3") as err:
        read_csv(file)
    assert err.value.line == 3


def test_blocks_and_chunks_across_a_bigger_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small parser blocks so quoted newlines and chunks straddle block boundaries
    # (a file this small is otherwise parsed as one block)
    monkeypatch.setattr(sio, "_ONE_BLOCK_MAX", 0)
    monkeypatch.setattr(sio, "_ARROW_BLOCK", 4096)
    monkeypatch.setattr(sio, "_STREAM_BLOCK", 4096)
    lines = ["email,first_name,custom.n"]
    for i in range(3000):
        name = f'"line\none {i}"' if i % 7 == 0 else ("" if i % 11 == 0 else f"n{i}")
        lines.append(f"p{i}@x.com,{name},{i}" if i % 13 else "")
    file = tmp_path / "big.csv"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for chunksize in (None, 1000, 333):
        fast = outcome(lambda c=chunksize: read_csv(file, chunksize=c))  # type: ignore[misc]
        with careful_only(monkeypatch):
            careful = outcome(lambda c=chunksize: read_csv(file, chunksize=c))  # type: ignore[misc]
        assert_same(fast, careful)
    whole = read_csv(file)
    assert whole.loc[2 + 7, "first_name"] == "line\none 7" and 2 + 13 not in whole.index


def test_a_late_ragged_row_hands_over_mid_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ["email,first_name"] + [f"p{i}@x.com,n{i}" for i in range(50)]
    lines[40] = "short@x.com"  # padded by the careful reader
    file = tmp_path / "late.csv"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(sio, "_STREAM_BLOCK", 256)
    fast = outcome(lambda: read_csv(file, chunksize=10))
    with careful_only(monkeypatch):
        careful = outcome(lambda: read_csv(file, chunksize=10))
    assert_same(fast, careful)
    rows = pd.concat(fast[0])
    assert rows.index.tolist() == list(range(2, 52)) and pd.isna(rows.loc[41, "first_name"])
