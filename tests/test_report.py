"""SyncReport: frames, dtypes, summaries, exit codes, files and rendering."""

from __future__ import annotations

import builtins
import html
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from synckit.errors import ConfigError, SynckitError
from synckit.report import (
    ERROR_FIELDS,
    ROW_FIELDS,
    STATUSES,
    Abort,
    SyncReport,
    escape_formulas,
)


def _report(**meta: object) -> SyncReport:
    rows = [
        {
            "row": 4,
            "email": "c@example.com",
            "status": "failed",
            "http_status": 500,
            "error_code": "server_error",
            "error_message": "boom",
            "request_id": "req_4",
            "attempts": 4,
        },
        {
            "row": 2,
            "email": "a@example.com",
            "phone_number": "+447911123456",
            "status": "created",
            "contact_id": "ct_1",
            "http_status": 201,
            "request_id": "req_2",
            "attempts": 1,
        },
        {
            "row": 3,
            "email": "b@",
            "status": "invalid",
            "error_code": "invalid_email",
            "error_message": "must be a valid email address",
        },
        {
            "row": 5,
            "email": "d@example.com",
            "status": "updated",
            "contact_id": "ct_9",
            "http_status": 200,
            "attempts": 1,
            "changes": "first_name,last_name",
        },
    ]
    errors = [
        {
            "row": 4,
            "stage": "api",
            "field": None,
            "code": "server_error",
            "message": "boom",
            "http_status": 500,
            "request_id": "req_4",
        },
        {
            "row": 3,
            "stage": "validate",
            "field": "email",
            "code": "invalid_email",
            "message": "must be a valid email address",
            "value": "b@",
        },
    ]
    failed_input = pd.DataFrame(
        {"email": ["b@", "c@example.com"], "first_name": ["B", "C"]},
        index=pd.Index([3, 4], name="row"),
    )
    return SyncReport.from_records(rows, errors, failed_input=failed_input, **meta)


def test_frames_sorted_with_compact_dtypes() -> None:
    rep = _report(run_id="r1")
    assert rep.rows.index.name == "row"
    assert rep.rows.index.tolist() == [2, 3, 4, 5]
    assert tuple(rep.rows.columns) == ROW_FIELDS
    assert isinstance(rep.rows["status"].dtype, pd.CategoricalDtype)
    assert list(rep.rows["status"].cat.categories) == list(STATUSES)
    assert isinstance(rep.rows["error_code"].dtype, pd.CategoricalDtype)
    assert str(rep.rows["http_status"].dtype) == "Int64"
    assert str(rep.rows["attempts"].dtype) == "Int64"
    assert pd.isna(rep.rows.loc[3, "http_status"])
    assert rep.rows.loc[5, "changes"] == "first_name,last_name"
    assert rep.rows.loc[2, "changes"] == ""
    assert tuple(rep.errors.columns) == ERROR_FIELDS
    assert rep.errors["row"].tolist() == [3, 4]  # sorted by row
    assert rep.errors["severity"].tolist() == ["error", "error"]


def test_tuple_records_equal_dict_records() -> None:
    tuples = [
        (3, "b@example.com", None, "unchanged", "ct_2", None, None, None, None, 0),
        (2, "a@example.com", "+15005550006", "created", "ct_1", 201, None, None, "rq", 1, ""),
    ]
    rep = SyncReport.from_records(tuples, [])
    assert rep.rows.index.tolist() == [2, 3]
    assert rep.rows.loc[2, "phone_number"] == "+15005550006"
    assert rep.rows.loc[3, "changes"] == ""
    assert rep.rows.loc[2, "http_status"] == 201


def test_unknown_status_rejected() -> None:
    with pytest.raises(ValueError, match="unknown row status"):
        SyncReport.from_records([{"row": 2, "status": "done"}], [])


def test_summary_all_statuses_fixed_order() -> None:
    rep = _report()
    s = rep.summary()
    assert s.name == "count"
    assert list(s.index) == ["created", "updated", "unchanged", "invalid", "failed", "skipped"]
    assert s.to_dict() == {
        "created": 1,
        "updated": 1,
        "unchanged": 0,
        "invalid": 1,
        "failed": 1,
        "skipped": 0,
    }
    dry = SyncReport.from_records([{"row": 2, "status": "would_create"}], [], dry_run=True)
    assert list(dry.summary().index)[:2] == ["would_create", "would_update"]
    assert dry.summary()["would_create"] == 1


def test_ok_and_exit_codes() -> None:
    assert not _report().ok
    assert _report().exit_code() == 1
    good = SyncReport.from_records(
        [{"row": 2, "status": "created"}, {"row": 3, "status": "unchanged"}], []
    )
    assert good.ok and good.exit_code() == 0
    dry = SyncReport.from_records(
        [{"row": 2, "status": "would_create"}, {"row": 3, "status": "would_update"}],
        [],
        dry_run=True,
    )
    assert dry.ok and dry.exit_code() == 0
    # The exit code is data on the abort reason, never parsed back from its text.
    for reason, code in (
        (Abort("permission_denied", "403 forbidden", 3), 3),
        (Abort("invalid_client", "bad secret", 3), 3),
        (Abort("unreachable", "no answer", 1), 1),
        (Abort("auth_error", "looks like 'auth' but says 1", 1), 1),
    ):
        rep = SyncReport.from_records([{"row": 2, "status": "skipped"}], [], aborted=reason)
        assert rep.exit_code() == code, reason
        assert not rep.ok
        assert rep.to_dict()["aborted"] == {
            "code": reason.code, "message": reason.message, "exit_code": code
        }  # fmt: skip
    interrupted = SyncReport.from_records(
        [{"row": 2, "status": "created"}], [], aborted="interrupted"
    )
    assert interrupted.aborted == Abort("interrupted")  # a plain string: that code, exit 1
    assert not interrupted.ok and interrupted.exit_code() == 1
    assert SyncReport.empty().exit_code() == 0


def test_to_dict_has_counts_and_request_ids_but_no_values() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    d = _report(run_id="r1", started_at=t0, finished_at=t0 + timedelta(seconds=2.5)).to_dict()
    assert d["run_id"] == "r1" and d["duration_s"] == 2.5
    assert d["counts"]["failed"] == 1 and d["exit_code"] == 1 and d["rows"] == 4
    assert d["error_counts"] == {"invalid_email": 1, "server_error": 1}
    assert {e["request_id"] for e in d["errors"]} == {None, "req_4"}
    assert "b@" not in repr(d["errors"])  # offending values stay out of logs


def test_csv_escapes_formulas_and_reads_back(tmp_path: Path) -> None:
    hostile = [
        '=HYPERLINK("http://x")',
        "+447911123456",
        "-1+2",
        "@SUM(A1)",
        "\tcmd",
        "\rcmd",
        "'=already",
        "''+two",
        "plain",
        "it's fine",
    ]
    rows = [
        {
            "row": i + 2,
            "email": v,
            "phone_number": v,
            "status": "failed",
            "error_message": v,
            "error_code": v,
        }
        for i, v in enumerate(hostile)
    ]
    rep = SyncReport.from_records(rows, [])
    path = rep.to_csv(tmp_path / "r.csv")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(raw.columns) == ["row", *ROW_FIELDS]
    for col in ("email", "phone_number", "error_message", "error_code"):
        for value, cell in zip(hostile, raw[col], strict=True):
            if value[0] in "=+-@\t\r" or value.startswith(("'=", "''+")):
                assert cell == "'" + value, (col, value, cell)
            else:
                assert cell == value
            assert cell[0] not in "=+-@\t\r"
    back = SyncReport.read_csv(path)
    assert back["email"].tolist() == hostile
    assert back["error_code"].astype(str).tolist() == hostile
    assert back["status"].tolist() == ["failed"] * len(hostile)
    unescaped = rep.to_csv(tmp_path / "u.csv", escape=False)
    assert pd.read_csv(unescaped, dtype=str)["email"][0] == hostile[0]


def test_csv_round_trip_keeps_numbers_and_blanks(tmp_path: Path) -> None:
    rep = _report()
    back = SyncReport.read_csv(rep.to_csv(tmp_path / "r.csv"))
    assert back.index.tolist() == [2, 3, 4, 5]
    assert back["http_status"].tolist()[0] == 201 and pd.isna(back["http_status"].iloc[1])
    assert back.loc[2, "phone_number"] == "+447911123456"
    assert back.loc[5, "changes"] == "first_name,last_name"


def test_escape_formulas_leaves_numbers_alone() -> None:
    df = pd.DataFrame({"n": [-1, 2], "s": ["-1", "x"]})
    out = escape_formulas(df)
    assert out["n"].tolist() == [-1, 2]
    assert out["s"].tolist() == ["'-1", "x"]


def test_parquet_round_trip(tmp_path: Path) -> None:
    rep = _report()
    path = rep.to_parquet(tmp_path / "r.parquet")
    back = pd.read_parquet(path)
    assert back.index.name == "row"
    pd.testing.assert_frame_equal(back, rep.rows, check_categorical=False)
    assert isinstance(back["status"].dtype, pd.CategoricalDtype)


def test_parquet_without_pyarrow_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("no pyarrow")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.delitem(sys.modules, "pyarrow", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError, match="pyarrow") as info:
        _report().to_parquet(tmp_path / "r.parquet")
    assert isinstance(info.value, SynckitError)


def test_failed_rows() -> None:
    rep = _report()
    failed = rep.failed_rows()
    assert failed.index.tolist() == [3, 4]
    assert list(failed.columns) == ["email", "first_name"]
    failed.loc[3, "email"] = "fixed@example.com"  # a copy: the report is untouched
    assert rep.failed_input is not None and rep.failed_input.loc[3, "email"] == "b@"
    bare = SyncReport.from_records(
        [{"row": 2, "status": "created"}, {"row": 7, "email": "x@", "status": "skipped"}], []
    )
    assert bare.failed_rows().index.tolist() == [7]


def test_html_escapes_hostile_values() -> None:
    evil = "<script>alert('x')</script>"
    rep = SyncReport.from_records(
        [{"row": 2, "email": evil, "status": "invalid", "error_code": "invalid_email"}],
        [
            {
                "row": 2,
                "stage": "validate",
                "field": "email",
                "code": "<b>code</b>",
                "message": "must be a valid email address",
                "value": evil,
            }
        ],
        run_id="<img src=x onerror=alert(1)>",
        aborted="auth: <i>bad</i>",
    )
    out = rep._repr_html_()
    assert "<script>" not in out and "<img" not in out and "<i>bad" not in out
    assert html.escape(evil) in out
    assert "&lt;b&gt;code&lt;/b&gt;" in out
    assert "invalid" in out and "width:100.0%" in out  # the one bar fills the chart


def test_html_groups_problems_by_code() -> None:
    errors = [
        {
            "row": i,
            "stage": "validate",
            "field": "email",
            "code": "invalid_email",
            "message": "m",
            "value": f"v{i}",
        }
        for i in range(2, 12)
    ]
    errors.append(
        {
            "row": 3,
            "stage": "api",
            "code": "consent_protected",
            "message": "kept",
            "severity": "warning",
        }
    )
    rows = [{"row": i, "status": "invalid"} for i in range(2, 12)]
    out = SyncReport.from_records(rows, errors)._repr_html_()
    assert "invalid_email</code> × 10" in out and "consent_protected</code> × 1" in out
    assert "v2" in out and "v4" in out and "v5" not in out  # first 3 rows only


def test_text_repr() -> None:
    text = repr(_report(run_id="r1", aborted="interrupted"))
    assert "run r1" in text and "aborted: interrupted" in text and "exit code 1" in text
    assert "invalid_email" in text
    assert str(_report()) == repr(_report())


def test_plot_returns_axes() -> None:
    import matplotlib

    matplotlib.use("Agg")
    ax = _report().plot()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert set(labels) == {"created", "updated", "unchanged", "invalid", "failed", "skipped"}
    assert sorted(p.get_width() for p in ax.patches) == [0, 0, 1, 1, 1, 1]


def test_html_falls_back_to_problem_rows() -> None:
    rep = SyncReport.from_records(
        [
            {"row": 2, "status": "created"},
            {
                "row": 3,
                "email": "<x>@example.com",
                "status": "skipped",
                "error_code": "interrupted",
                "error_message": "not sent",
            },
        ],
        [],
    )
    out = rep._repr_html_()
    assert "interrupted</code> × 1" in out and "&lt;x&gt;@example.com" in out


def test_html_problem_tables_leave_out_columns_empty_for_local_problems() -> None:
    errors = [
        {"row": 2, "stage": "validate", "field": "email", "code": "invalid_email",
         "message": "must be a valid email address", "value": "bad@"},
        {"row": 3, "stage": "api", "field": "phone_number", "code": "invalid_phone",
         "message": "must be a valid phone number in E.164 format", "value": "+1555",
         "http_status": 422, "request_id": "req_abc"},
    ]  # fmt: skip
    rows = [{"row": 2, "status": "invalid"}, {"row": 3, "status": "failed", "http_status": 422}]
    out = SyncReport.from_records(rows, errors)._repr_html_()
    local, remote = out.split("invalid_email</code>")[1].split("invalid_phone</code>")
    assert "http_status" not in local and "request_id" not in local
    assert "bad@" in local
    assert "http_status" in remote and "req_abc" in remote and "422" in remote


def test_dry_run_html_shows_the_changes_of_would_update_rows() -> None:
    rows = [
        {"row": 2, "email": "a@example.com", "status": "would_update",
         "contact_id": "ct_1", "changes": "first_name,email_consent"},
        {"row": 3, "email": "b@example.com", "status": "would_create"},
        {"row": 4, "email": "c@example.com", "status": "unchanged", "contact_id": "ct_3"},
    ]  # fmt: skip
    out = SyncReport.from_records(rows, [], dry_run=True)._repr_html_()
    assert "first_name,email_consent" in out or "first_name, email_consent" in out
    assert "a@example.com" in out and "ct_1" in out


def test_error_values_that_are_objects_are_json() -> None:
    rep = SyncReport.from_records(
        [{"row": 2, "status": "invalid"}],
        [{"row": 2, "stage": "validate", "field": "custom_fields",
          "code": "nested_custom_fields", "message": "m", "value": {"a": [1], "b": None}}],
    )  # fmt: skip
    assert json.loads(rep.errors.loc[0, "value"]) == {"a": [1], "b": None}
