"""``synckit validate``: summary, errors file, exit codes, chunked duplicates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from synckit.cli import main
from synckit.validation import validate_file

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "contacts.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_all_valid_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "Mail,Mobile\na@example.com,(415) 555-2671\nb@example.com,\n")
    assert main(["validate", str(path), "--map", "Mail=email", "--map", "Mobile=phone_number"]) == 0
    assert "2 rows: 2 valid, 0 invalid" in capsys.readouterr().out


def test_some_invalid_exits_1_and_writes_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "email,phone_number,Notes\na@example.com,07400 123456,x\nbad,,y\n")
    errors = tmp_path / "errors.csv"
    code = main(["validate", str(path), "--region", "gb", "--errors", str(errors)])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 valid, 1 invalid" in out and "invalid_email" in out and "'Notes'" in out
    frame = pd.read_csv(errors, dtype=str)
    assert frame.to_dict("records") == [
        {"row": "3", "field": "email", "code": "invalid_email",
         "message": "must be a valid email address", "value": "bad", "severity": "error"}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "needle"),
    [("", "empty"), ("name,age\nAda,3\n", "no usable column"), ("email\na,b\n", "line 2")],
)
def test_unreadable_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, needle: str
) -> None:
    path = write(tmp_path, content)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(path) in err and "Traceback" not in err


def test_bad_map_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "email\na@example.com\n")
    assert main(["validate", str(path), "--map", "email=nickname"]) == 2
    assert "nickname" in capsys.readouterr().err


def test_duplicates_found_across_chunks(tmp_path: Path) -> None:
    rows = [f"p{i}@example.com,+1 415 555 {1000 + i}" for i in range(25)]
    rows.append("P3@EXAMPLE.COM,")  # duplicate of row 5, in a later chunk
    rows.append("x@example.com,(415) 555-1020")  # duplicate of row 22 by phone
    path = write(tmp_path, "email,phone_number\n" + "\n".join(rows) + "\n")
    errors = tmp_path / "e.csv"
    result = validate_file(path, chunksize=4, errors_path=errors)
    assert (result.n_rows, result.n_valid, result.n_invalid) == (27, 25, 2)
    dups = pd.read_csv(errors)
    assert dups["row"].tolist() == [5, 22]
    assert dups["message"].tolist() == [
        "duplicate of row 27 (same email)",
        "duplicate of row 28 (same phone_number)",
    ]
    whole = validate_file(path, chunksize=1000)
    assert (whole.n_valid, whole.n_invalid) == (25, 2)
    assert whole.summary["count"].sum() == 2


def test_sample_file_via_subprocess(tmp_path: Path) -> None:
    errors = tmp_path / "errors.csv"
    maps = [
        "E-mail Address=email", "Mobile=phone_number", "First Name=first_name",
        "Last Name=last_name", "Newsletter=email_consent", "SMS Opt-In=sms_consent",
    ]  # fmt: skip
    args = [sys.executable, "-m", "synckit", "validate", str(ROOT / "sample_data" / "contacts.csv")]
    for m in maps:
        args += ["--map", m]
    proc = subprocess.run(
        [*args, "--errors", str(errors)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stderr
    assert "invalid_phone" in proc.stdout and "duplicate_in_file" in proc.stdout
    frame = pd.read_csv(errors)
    assert set(frame.columns) == {"row", "field", "code", "message", "value", "severity"}
    assert (frame["row"] >= 2).all()


def test_unwritable_errors_path_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "email\nbad\n")
    target = tmp_path / "missing-dir" / "errors.csv"
    assert main(["validate", str(path), "--errors", str(target)]) == 2
    err = capsys.readouterr().err
    assert "errors.csv" in err and "Traceback" not in err


def test_errors_file_holds_custom_fields_as_json(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'email,custom_fields\na@example.com,"{""a"": {""b"": 1}, ""ok"": true}"\n',
    )
    errors = tmp_path / "errors.csv"
    assert main(["validate", str(path), "--errors", str(errors)]) == 1
    frame = pd.read_csv(errors, dtype=str)
    assert frame["code"].tolist() == ["nested_custom_fields"]
    # the cell as JSON (what the sheet held), not Python's repr with single quotes and True
    assert json.loads(frame.loc[0, "value"]) == {"a": {"b": 1}, "ok": True}
