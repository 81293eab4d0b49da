"""Edges a demanding user meets: repeated row numbers, an input that breaks half-way,
a bug in one row, secrets in report text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from synckit.cli import main
from synckit.client import Client
from synckit.errors import InputError
from synckit.sandbox import Sandbox
from synckit.sync import last_report, upsert


def people(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"email": [f"{n}@example.com" for n in names], "first_name": names})


def test_concat_without_ignore_index_reports_every_row_once(sandbox: Sandbox) -> None:
    a, b = people(["ada", "bob"]), people(["cy", "dee"])
    b.loc[1, "email"] = "not-an-email"
    with Client(sandbox.url, token=sandbox.token) as client:
        report = upsert(pd.concat([a, b]), client, progress=False)  # index 0, 1, 0, 1
        assert report.rows.index.tolist() == [0, 1, 0, 1]  # like the input
        assert report.rows["row"].tolist() == [2, 3, 4, 5]  # numbered by position
        assert report.rows["email"].tolist() == [
            "ada@example.com", "bob@example.com", "cy@example.com", "not-an-email"
        ]  # fmt: skip
        assert report.rows["status"].tolist() == ["created"] * 3 + ["invalid"]
        assert report.errors["row"].tolist() == [5]
        assert report.failed_rows()["email"].tolist() == ["not-an-email"]

        # A list of frames, each counting from 0: numbered on from the last row.
        again = upsert([a, people(["cy", "eve"])], client, progress=False)
    assert again.rows["row"].tolist() == [2, 3, 4, 5]
    assert again.rows["status"].tolist() == ["unchanged"] * 3 + ["created"]
    assert len(sandbox.contacts()) == 4


def test_input_breaking_half_way_keeps_the_report(sandbox: Sandbox) -> None:
    def chunks() -> Iterator[pd.DataFrame]:
        yield people(["ada", "bob"])
        raise InputError("malformed CSV", path="big.csv", line=9)

    with Client(sandbox.url, token=sandbox.token) as client, pytest.raises(InputError) as info:
        upsert(chunks(), client, progress=False)
    report = info.value.report  # type: ignore[attr-defined]
    assert report is last_report()
    assert report.rows["status"].tolist() == ["created", "created"]  # sent: reported
    assert report.aborted.code == "run_failed"
    assert str(report.aborted).startswith("run_failed: InputError")
    assert "not in this report" in report.aborted.message
    assert report.exit_code() == 2  # unreadable input: what the command line exits with
    assert len(sandbox.contacts()) == 2


def test_cli_refuses_a_file_that_breaks_before_sending_anything(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "people.csv"
    lines = [f"p{i}@example.com,P{i}\n" for i in range(30)]
    src.write_text("email,first_name\n" + "".join(lines) + "zz@example.com,a,b,c\n" + lines[0])
    monkeypatch.setenv("SYNCKIT_TOKEN", sandbox.token)
    monkeypatch.delenv("SYNCKIT_CLIENT_ID", raising=False)
    monkeypatch.delenv("SYNCKIT_CLIENT_SECRET", raising=False)
    code = main(["sync", str(src), "--base-url", sandbox.url, "--no-progress",
                 "--chunk-size", "10"])  # fmt: skip
    assert code == 2  # unreadable input
    # The whole file is read (scanned) before the first request: a broken line 32 stops
    # the run before anything is sent, and the report says so with no rows.
    report = pd.read_csv(tmp_path / "people.report.csv", dtype=str, keep_default_na=False)
    assert len(report) == 0
    assert sandbox.request_log() == [] and sandbox.contacts() == []


def test_a_bug_in_one_row_costs_that_row_and_leaks_no_secret(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(sandbox.url, token=sandbox.token) as client:
        real = client.create_contact

        def create(body: dict[str, object], **kw: object) -> dict[str, object]:
            if body.get("first_name") == "bob":  # a real server cannot produce a bug
                raise RuntimeError(f"boom with Authorization: Bearer {sandbox.token}")
            return real(body, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(client, "create_contact", create)
        report = upsert(people(["ada", "bob", "cy"]), client, workers=2, progress=False)
    assert report.rows["status"].tolist() == ["created", "failed", "created"]
    bad = report.rows.iloc[1]
    assert bad["row"] == 3
    assert bad["error_code"] == "unexpected_error" and "RuntimeError" in bad["error_message"]
    assert sandbox.token not in bad["error_message"]
    errors = report.errors[report.errors["row"] == 3]
    assert errors["code"].tolist() == ["unexpected_error"]  # every problem in errors too
    assert sandbox.token not in errors["message"].iloc[0]


def test_explicit_row_numbers_are_kept_and_bad_sizes_are_config_errors(sandbox: Sandbox) -> None:
    from synckit.errors import ConfigError

    data = people(["ada", "bob"]).set_axis(pd.Index([1, 7], name="row"), axis=0)
    with Client(sandbox.url, token=sandbox.token) as client:
        report = upsert(data, client, progress=False)
        assert report.rows.index.tolist() == [1, 7]  # unique: the caller's numbers stand
        for bad in ({"batch_size": "100"}, {"workers": 2.5}, {"workers": True}):
            with pytest.raises(ConfigError, match="whole number"):
                upsert(data, client, progress=False, **bad)  # type: ignore[arg-type]
