"""``synckit sync`` and ``synckit demo`` from the command line (exit codes, report file, Ctrl-C)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from _servers import wait_for_posts

from synckit.cli import main
from synckit.ledger import Ledger
from synckit.sandbox import Sandbox

WRITES = {"POST", "PATCH", "DELETE"}
Capture = pytest.CaptureFixture[str]
HEADER = "E-mail Address,Mobile,First Name,Email Opt-in\n"


def write_csv(path: Path, n: int, *, extra: str = "") -> Path:
    lines = [HEADER]
    for i in range(n):
        lines.append(f"Person{i}@example.com,+447400{i:06d},First{i},subscribed\n")
    path.write_text("".join(lines) + extra, encoding="utf-8")
    return path


MAP = ["--map", "E-mail Address=email", "--map", "Mobile=phone_number",
       "--map", "First Name=first_name", "--map", "Email Opt-in=email_consent"]  # fmt: skip


@pytest.fixture
def env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name in ("SYNCKIT_BASE_URL", "SYNCKIT_TOKEN", "SYNCKIT_CLIENT_ID", "SYNCKIT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SYNCKIT_BASE_URL", sandbox.url)
    monkeypatch.setenv("SYNCKIT_TOKEN", sandbox.token)
    return sandbox


def read_report(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_sync_writes_report_beside_file_and_exits_0(
    env: Sandbox, tmp_path: Path, capsys: Capture
) -> None:
    src = write_csv(tmp_path / "people.csv", 12)
    code = main(["sync", str(src), *MAP, "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "created" in out and "12" in out
    report = read_report(tmp_path / "people.report.csv")
    assert list(report.columns[:4]) == ["row", "email", "phone_number", "status"]
    assert report["row"].tolist() == [str(i) for i in range(2, 14)]
    assert set(report["status"]) == {"created"}
    assert len(env.contacts()) == 12
    # E.164 numbers start with "+": escaped so a spreadsheet keeps them as text.
    assert report["phone_number"].str.startswith("'+447400").all()


def test_invalid_rows_exit_1_and_formulas_are_escaped(
    env: Sandbox, tmp_path: Path, capsys: Capture
) -> None:
    evil = '"=HYPERLINK(""http://x.test"",""click"")",,Eve,subscribed\n@SUM(A1),,At,subscribed\n'
    src = write_csv(tmp_path / "messy.csv", 3, extra=evil)
    out_path = tmp_path / "out" / "r.csv"
    out_path.parent.mkdir()
    code = main(["sync", str(src), *MAP, "--no-progress", "--report", str(out_path)])
    assert code == 1
    report = read_report(out_path)
    bad = report[report["status"] == "invalid"]
    assert bad["row"].tolist() == ["5", "6"]
    assert bad["email"].tolist() == ['\'=HYPERLINK("http://x.test","click")', "'@SUM(A1)"]
    assert not any(c.startswith(("=", "@", "+", "-")) for c in report.to_numpy().ravel() if c)
    assert len(env.contacts()) == 3


def test_dry_run_from_the_cli_sends_nothing(env: Sandbox, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "p.csv", 5)
    assert main(["sync", str(src), *MAP, "--no-progress"]) == 0
    write_csv(src, 6)
    before = [r for r in env.request_log() if r.method in WRITES]
    code = main(["sync", str(src), *MAP, "--no-progress", "--dry-run"])
    assert code == 0
    after = [r for r in env.request_log() if r.method in WRITES]
    assert len(after) == len(before)
    # The plan goes beside the report; the real run's report is left as it was.
    plan = read_report(tmp_path / "p.plan.csv")
    assert plan["status"].tolist() == ["unchanged"] * 5 + ["would_create"]
    assert read_report(tmp_path / "p.report.csv")["status"].tolist() == ["created"] * 5


def test_usage_and_configuration_errors_exit_2(
    env: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Capture,
) -> None:
    assert main(["sync", str(tmp_path / "missing.csv")]) == 2
    src = write_csv(tmp_path / "p.csv", 2)
    assert main(["sync", str(src), "--retry-failed"]) == 2
    monkeypatch.delenv("SYNCKIT_BASE_URL")
    assert main(["sync", str(src)]) == 2
    assert "SYNCKIT_BASE_URL" in capsys.readouterr().err
    monkeypatch.setenv("SYNCKIT_BASE_URL", env.url)
    monkeypatch.delenv("SYNCKIT_TOKEN")
    assert main(["sync", str(src)]) == 2
    assert "SYNCKIT_TOKEN" in capsys.readouterr().err
    cfg = tmp_path / "synckit.toml"
    cfg.write_text('[sync]\ntoken = "sk_live_oops"\n')
    monkeypatch.setenv("SYNCKIT_TOKEN", env.token)
    assert main(["sync", str(src), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "environment" in err and "sk_live_oops" not in err
    assert env.contacts() == []


def test_state_lock_exits_2(env: Sandbox, tmp_path: Path, capsys: Capture) -> None:
    src = write_csv(tmp_path / "p.csv", 2)
    state = tmp_path / "state.db"
    with Ledger(state) as ledger, ledger.lock():
        code = main(["sync", str(src), *MAP, "--no-progress", "--state", str(state)])
    assert code == 2
    assert "lock" in capsys.readouterr().err.lower()
    assert env.contacts() == []


def test_read_only_token_exits_3(
    env: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.add_token("ro-token-for-cli")
    monkeypatch.setenv("MY_RO_TOKEN", "ro-token-for-cli")
    src = write_csv(tmp_path / "p.csv", 30)
    code = main(["sync", str(src), *MAP, "--no-progress", "--token-env", "MY_RO_TOKEN",
                 "--batch-size", "5", "--workers", "2"])  # fmt: skip
    assert code == 3
    report = read_report(tmp_path / "p.report.csv")
    assert len(report) == 30 and set(report["status"]) <= {"failed", "skipped"}
    assert env.contacts() == []


def test_oauth_config_file_and_json_log(
    env: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Capture,
) -> None:
    monkeypatch.delenv("SYNCKIT_TOKEN")
    monkeypatch.setenv("DEMO_SECRET", env.client_secret)
    cfg = tmp_path / "synckit.toml"
    cfg.write_text(
        "[sync]\n"
        f'client_id = "{env.client_id}"\nclient_secret_env = "DEMO_SECRET"\n'
        'state = "state.db"\nlog_format = "json"\nprogress = false\nbatch_size = 4\n'
        '[sync.map]\n"E-mail Address" = "email"\n"First Name" = "first_name"\n'
    )
    src = write_csv(tmp_path / "p.csv", 6)
    assert main(["sync", str(src), "--config", str(cfg)]) == 0
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    summary = [rec for rec in lines if rec.get("event") == "run_finished"]
    assert summary and summary[-1]["counts"]["created"] == 6
    assert env.client_secret not in err
    assert (tmp_path / "state.db").exists()
    assert main(["sync", str(src), "--config", str(cfg)]) == 0
    again = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert [r for r in again if r.get("event") == "run_finished"][-1]["counts"]["unchanged"] == 6


def test_ctrl_c_stops_writes_report_and_exits_130(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=40)
    src = write_csv(tmp_path / "big.csv", 400)
    env = {**os.environ, "SYNCKIT_BASE_URL": sb.url, "SYNCKIT_TOKEN": sb.token}
    cmd = [sys.executable, "-m", "synckit", "sync", str(src), *MAP, "--no-progress",
           "--workers", "2", "--batch-size", "10"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_posts(sb, proc, 30)
        proc.send_signal(signal.SIGINT)
        sent_at = time.monotonic()
        sent_wall = time.time()
        out, err = proc.communicate(timeout=20)
        took = time.monotonic() - sent_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert took < 6, took  # in-flight requests finish, nothing new is dispatched
    assert "interrupted" in (out + err)
    report = read_report(tmp_path / "big.report.csv")
    assert len(report) == 400
    status = report["status"]
    assert set(status) <= {"created", "skipped"}
    assert (status == "skipped").sum() > 200
    assert set(report.loc[status == "skipped", "error_code"]) == {"interrupted"}
    # Every row the report calls created is in the sandbox, and nothing else is.
    assert len(sb.contacts()) == (status == "created").sum()
    # Nothing new was dispatched after Ctrl-C (a request already on its way may land).
    late = [r for r in sb.request_log() if r.method == "POST" and r.time > sent_wall + 0.25]
    assert late == []


DATA = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.mark.skipif(
    not (DATA / "contacts.csv").is_file() or not (DATA / "contacts_updated.csv").is_file(),
    reason="sample data not present",
)
def test_demo_runs_both_files(capsys: Capture) -> None:
    started = time.monotonic()
    code = main(["demo"])
    took = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0, out
    assert "contacts.csv" in out and "contacts_updated.csv" in out
    assert out.count("created") >= 2 and "unchanged" in out
    assert took < 20


def test_demo_without_sample_data_exits_2(tmp_path: Path, capsys: Capture) -> None:
    assert main(["demo", "--data-dir", str(tmp_path)]) == 2
    assert "--data-dir" in capsys.readouterr().err


def test_big_reports_are_written_in_identical_slices(tmp_path: Path) -> None:
    from synckit.report import SyncReport

    records = [
        (r, f"=x{r}@example.com", f"+44740000{r:04d}", "created", f"ct_{r}", 201,
         None, None, f"req_{r}", 1, "")
        for r in range(2, 2 + 2500)
    ]  # fmt: skip
    report = SyncReport.from_records(records, [])
    whole = report.to_csv(tmp_path / "whole.csv").read_bytes()
    sliced = report.to_csv(tmp_path / "sliced.csv", slice_rows=700).read_bytes()
    assert sliced == whole
    assert whole.count(b"\r\n") == 2501 and whole.startswith(b"row,email,")
    assert report.to_csv(tmp_path / "exact.csv", slice_rows=2500).read_bytes() == whole
    from synckit.report import escape_formulas

    one_go = escape_formulas(report.rows.reset_index()).to_csv(index=False, lineterminator="\r\n")
    assert whole == one_go.encode()
    empty = SyncReport.empty().to_csv(tmp_path / "empty.csv", slice_rows=700).read_bytes()
    assert empty.startswith(b"row,email,") and empty.count(b"\r\n") == 1


def _run_options(state: Path) -> list[dict[str, object]]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(state)) as db:
        rows = db.execute("SELECT options_json FROM runs ORDER BY started_at, rowid").fetchall()
    return [json.loads(r[0]) for r in rows]


def test_typed_option_equal_to_default_beats_config(
    env: Sandbox, tmp_path: Path, capsys: Capture
) -> None:
    src = write_csv(tmp_path / "people.csv", 3)
    config = tmp_path / "synckit.toml"
    config.write_text(
        '[sync]\nbatch_size = 50\nworkers = 2\nstate = "state.db"\n'
        '[sync.map]\n"E-mail Address" = "email"\n"First Name" = "last_name"\n'
    )
    # --batch-size 100 and --workers 8 are the defaults' values, typed: they win.
    args = ["sync", str(src), "--config", str(config), "--no-progress"]
    assert main([*args, "--batch-size", "100", "--workers", "8",
                 "--map", "First Name=first_name"]) == 0  # fmt: skip
    # Not typed: the file's values.
    assert main(args) == 0
    first, second = _run_options(tmp_path / "state.db")
    assert (first["batch_size"], first["workers"]) == (100, 8)
    assert (second["batch_size"], second["workers"]) == (50, 2)
    # The file's map still applies next to a typed --map, which wins for its column.
    people = {c["email"]: c for c in env.contacts()}
    assert people["person0@example.com"]["first_name"] == "First0"
