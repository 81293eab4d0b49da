# ruff: noqa: E501  (test data reads better unwrapped)
"""read_csv: text cells, row numbers, mapping, custom fields, encodings, delimiters, bad files."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

import synckit
from synckit.errors import ConfigError, InputError
from synckit.io import SAMPLE_COLUMNS, plan_columns, read_csv
from synckit.validation import to_payloads


def write(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_cells_stay_text_and_empty_cells_are_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "email,phone_number,custom.zip\na@x.com,07700900123,02134\n,,\n,0,\n")
    df = read_csv(path)
    assert df.loc[2, "phone_number"] == "07700900123"
    assert df.loc[2, "custom.zip"] == "02134"
    assert pd.isna(df.loc[4, "email"])
    assert df.loc[4, "phone_number"] == "0"
    # the fully empty row 3 is dropped, its number skipped
    assert df.index.tolist() == [2, 4]
    assert df.index.name == "row"


def test_na_like_text_is_not_missing(tmp_path: Path) -> None:
    df = read_csv(write(tmp_path, "email,first_name\nNA,null\n"))
    assert df.loc[2, "email"] == "NA" and df.loc[2, "first_name"] == "null"


def test_row_numbers_count_records_through_chunks_and_quoted_newlines(tmp_path: Path) -> None:
    lines = ["email,first_name"]
    for i in range(10):
        name = f'"two\nlines {i}"' if i % 3 == 0 else f"n{i}"
        lines.append(f"p{i}@example.com,{name}")
    path = write(tmp_path, "\n".join(lines) + "\n")
    whole = read_csv(path)
    chunks = list(read_csv(path, chunksize=3))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    joined = pd.concat(chunks)
    assert joined.index.tolist() == list(range(2, 12)) == whole.index.tolist()
    assert joined.loc[5, "email"] == "p3@example.com"
    assert joined.loc[5, "first_name"] == "two\nlines 3"


def test_blank_line_keeps_spreadsheet_numbering(tmp_path: Path) -> None:
    df = read_csv(write(tmp_path, "email\na@x.com\n\nb@x.com\n"))
    assert df.index.tolist() == [2, 4]


def test_mapping_and_header_matching(tmp_path: Path) -> None:
    text = "E-mail Address, Phone_Number ,First Name,Notes,CUSTOM.Plan\na@x.com,+14155552671,Ada,hi,pro\n"
    df = read_csv(
        write(tmp_path, text), columns={"e-mail address": "email", "First Name": "first_name"}
    )
    assert list(df.columns) == ["email", "phone_number", "first_name", "custom.Plan"]
    assert df.loc[2, "custom.Plan"] == "pro"
    assert df.attrs["ignored_columns"] == ["Notes"]
    assert df.attrs["columns"]["E-mail Address"] == "email"


def test_mapping_to_custom_and_dropping(tmp_path: Path) -> None:
    df = read_csv(
        write(tmp_path, "Mail,Tier,email\na@x.com,gold,other@x.com\n"),
        columns={"Mail": "email", "Tier": "custom.tier", "email": None, "Missing": "phone_number"},
    )
    assert df.loc[2, "email"] == "a@x.com"
    assert df.loc[2, "custom.tier"] == "gold"
    assert df.attrs["unmatched_columns"] == ["Missing"]
    assert "email" in df.attrs["ignored_columns"]


def test_two_columns_for_one_field_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="both map to email"):
        read_csv(write(tmp_path, "Email,Mail\na,b\n"), columns={"Mail": "email"})


def test_mapping_to_unknown_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nickname"):
        plan_columns(["x"], {"x": "nickname"})


def test_custom_fields_json_column_merges_with_prefix_columns(tmp_path: Path) -> None:
    text = 'email,custom_fields,custom.plan\na@x.com,"{""seats"": 3, ""vip"": true}",pro\nb@x.com,not json,\nc@x.com,,  \n'
    df = read_csv(write(tmp_path, text))
    # cells stay text; the object is built when the row is sent
    assert list(df.columns) == ["email", "custom_fields", "custom.plan"]
    assert df.loc[2, "custom_fields"] == '{"seats": 3, "vip": true}'
    check = synckit.validate(df)
    assert to_payloads(check.valid) == [
        (2, {"email": "a@x.com", "custom_fields": {"seats": 3, "vip": True, "plan": "pro"}}),
        (4, {"email": "c@x.com"}),  # blank custom.* cells are left out
    ]
    # a cell that is not a JSON object is reported as written
    assert check.errors[["row", "code", "value"]].values.tolist() == [
        [3, "nested_custom_fields", "not json"]
    ]


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("utf-8", b""), ("utf-8-sig", b""), ("utf-16", b""), ("cp1252", b"")],
)
def test_encodings(tmp_path: Path, encoding: str, prefix: bytes) -> None:
    text = "email,first_name,last_name\nzoe@example.com,Zoë,Müller–Smith\n"
    path = tmp_path / "enc.csv"
    path.write_bytes(prefix + text.encode(encoding))
    df = read_csv(path)
    assert df.loc[2, "first_name"] == "Zoë"
    assert df.loc[2, "last_name"] == "Müller–Smith"
    assert list(df.columns) == ["email", "first_name", "last_name"]


def test_cp1252_detected_even_when_late_in_the_file(tmp_path: Path) -> None:
    rows = "".join(f"p{i}@example.com,Ann\n" for i in range(5000))
    path = tmp_path / "late.csv"
    path.write_bytes(("email,first_name\n" + rows + "z@example.com,Zoë\n").encode("cp1252"))
    df = read_csv(path)
    assert df["first_name"].iloc[-1] == "Zoë"


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_delimiters_are_sniffed(tmp_path: Path, sep: str) -> None:
    text = sep.join(["email", "phone_number", "first_name"]) + "\n"
    text += (
        sep.join(["a@x.com", "+1 415 555 2671", "Ada, Countess"])
        if sep != ","
        else ('a@x.com,+1 415 555 2671,"Ada, Countess"')
    )
    df = read_csv(write(tmp_path, text + "\n"))
    assert df.loc[2, "first_name"] == "Ada, Countess"
    assert df.loc[2, "phone_number"] == "+1 415 555 2671"


def test_buffers_and_bytes() -> None:
    text = "email;phone_number\na@x.com;020 7946 0958\n"
    for source in (io.StringIO(text), io.BytesIO(text.encode("utf-16")), text.encode("cp1252")):
        df = read_csv(source)
        assert df.loc[2, "phone_number"] == "020 7946 0958"


def test_ragged_row_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "email,first_name\na@x.com,A\nb@x.com,B,extra\n")
    with pytest.raises(InputError) as info:
        read_csv(path)
    assert info.value.line == 3 and info.value.path == str(path)
    assert str(path) in str(info.value)


def test_ragged_row_in_a_later_chunk(tmp_path: Path) -> None:
    body = "".join(f"p{i}@x.com,A\n" for i in range(10)) + "bad@x.com,B,extra\n"
    path = write(tmp_path, "email,first_name\n" + body)
    with pytest.raises(InputError) as info:
        list(read_csv(path, chunksize=4))
    assert info.value.line == 12


def test_every_data_row_longer_than_header(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="more fields than the header"):
        read_csv(write(tmp_path, "email,first_name\na@x.com,A,1\nb@x.com,B,2\n"))


def test_short_rows_are_padded(tmp_path: Path) -> None:
    df = read_csv(write(tmp_path, "email,first_name,last_name\na@x.com\n"))
    assert df.loc[2, "email"] == "a@x.com" and pd.isna(df.loc[2, "last_name"])


@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    with pytest.raises(InputError, match="empty") as info:
        read_csv(write(tmp_path, content))
    assert info.value.line == 1


def test_no_usable_column(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no usable column") as info:
        read_csv(write(tmp_path, "name,age\nAda,36\n"))
    assert info.value.line == 1


def test_header_only_gives_empty_frame(tmp_path: Path) -> None:
    df = read_csv(write(tmp_path, "email,phone_number\n"))
    assert len(df) == 0 and list(df.columns) == ["email", "phone_number"]


def test_missing_file() -> None:
    with pytest.raises(InputError, match="no such file"):
        read_csv("/nonexistent/contacts.csv")


def test_sample_files_read_with_sample_columns() -> None:
    root = Path(__file__).resolve().parent.parent / "sample_data"
    df = synckit.read_csv(root / "contacts.csv", columns=SAMPLE_COLUMNS)
    assert len(df) > 300
    assert set(SAMPLE_COLUMNS.values()) <= set(df.columns)
    assert df.attrs["ignored_columns"] == ["Company"]
    later = synckit.read_csv(root / "contacts_updated.csv", columns=SAMPLE_COLUMNS)
    assert len(later) > len(df)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("email,email,phone_number", "both map to email"),
        ("email,custom.plan,custom.plan", "custom field 'plan'"),
        ("email,Mobile,Mobile", "both map to phone_number"),
    ],
)
def test_repeated_header_is_an_error_not_a_renamed_column(header: str, message: str) -> None:
    # pandas renames a repeated header to "email.1": the second column would be silently
    # dropped (or become custom field "plan.1")
    data = header + "\na@example.com,x,y\n"
    with pytest.raises(InputError, match=re.escape(message)) as info:
        read_csv(io.StringIO(data), columns={"Mobile": "phone_number"})
    assert info.value.line == 1


def test_repeated_ignored_header_is_harmless() -> None:
    df = read_csv(io.StringIO("email,Notes,Notes,\na@example.com,x,y,z\n"))
    assert df.columns.tolist() == ["email"] and df.loc[2, "email"] == "a@example.com"
    assert df.attrs["ignored_columns"][:2] == ["Notes", "Notes"]


@pytest.mark.parametrize(
    "magic", [b"PK\x03\x04\x14\x00\x06\x00", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"]
)
def test_excel_workbook_is_named_as_such(tmp_path: Path, magic: bytes) -> None:
    path = tmp_path / "contacts.xlsx"
    path.write_bytes(magic + b"\x00" * 64)
    with pytest.raises(InputError, match="Excel workbook") as info:
        read_csv(path)
    assert "contacts.xlsx" in str(info.value)


def test_excel_sep_line_sets_the_delimiter(tmp_path: Path) -> None:
    # Excel writes (and honours) a first line "sep=;"; it shows the header as row 1
    path = tmp_path / "c.csv"
    path.write_bytes(b"sep=;\r\nemail;phone_number\r\na@example.com;+1 415 555 2671\r\n")
    df = read_csv(path)
    assert df.columns.tolist() == ["email", "phone_number"]
    assert df.index.tolist() == [2] and df.loc[2, "phone_number"] == "+1 415 555 2671"
    chunks = list(read_csv(path, chunksize=1))
    assert chunks[0].index.tolist() == [2]


def test_blank_lines_before_the_header() -> None:
    # a spreadsheet shows the header on row 3 and the first contact on row 4
    df = read_csv(io.StringIO("\n,\nemail,phone_number\na@example.com,\n"))
    assert df.columns.tolist() == ["email", "phone_number"]
    assert df.index.tolist() == [4]
    chunks = list(read_csv(io.StringIO("\n\nemail\na@example.com\nb@example.com\n"), chunksize=1))
    assert [c.index.tolist() for c in chunks] == [[4], [5]]


def test_utf8_file_with_a_stray_cp1252_byte_is_an_error_naming_the_line(tmp_path: Path) -> None:
    # Reading it all as cp1252 would silently turn every "Zoë" into "ZoÃ«".
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        "email,first_name\na@example.com,Zoë\nb@example.com,Renée\n".encode()
        + b"c@example.com,Andr\xe9\n"
    )
    with pytest.raises(InputError, match="UTF-8") as info:
        read_csv(path)
    assert info.value.line == 4
    # the whole file in cp1252 (no UTF-8 text at all) is still read as cp1252
    path.write_bytes(b"email,first_name\nc@example.com,Andr\xe9\n")
    assert read_csv(path).loc[2, "first_name"] == "André"
    # and an explicit encoding is obeyed
    raw = "email,first_name\na@example.com,Zoë\n".encode() + b"c@example.com,Andr\xe9\n"
    path.write_bytes(raw)
    assert read_csv(path, encoding="latin-1").loc[3, "first_name"] == "André"
