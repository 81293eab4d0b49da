"""An unattended run end to end: `synckit sync --config` with secrets from the environment,
JSON log lines on stderr, the state ledger and `synckit runs`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from synckit.report import SyncReport
from synckit.sandbox import Sandbox

CSV = """E-mail,Mobile,First Name,email_consent
ada@example.com,+447400123456,Ada,subscribed
grace@example.com,,Grace,subscribed
not-an-email,,Bad,subscribed
"""


def _synckit(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synckit", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_sync_with_config_file_and_json_log(sandbox: Sandbox, tmp_path: Path) -> None:
    work = tmp_path / "job"
    (work / "etc").mkdir(parents=True)
    data = work / "contacts.csv"
    data.write_text(CSV)
    config = work / "etc" / "synckit.toml"
    config.write_text(
        f"""
[sync]
base-url = "{sandbox.url}"
token_env = "CRM_TOKEN"
state = "state.db"
report = "out.report.csv"
log_format = "json"
progress = false
workers = 2

[sync.map]
"E-mail" = "email"
Mobile = "phone_number"
"First Name" = "first_name"
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCKIT_")}
    env["CRM_TOKEN"] = sandbox.token
    cwd = tmp_path  # like cron: not the config's folder

    first = _synckit(["sync", str(data), "--config", str(config)], env, cwd)
    assert first.returncode == 1, first.stderr  # one invalid row
    assert sandbox.token not in first.stdout + first.stderr
    lines = [json.loads(line) for line in first.stderr.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(rec) for rec in lines)
    done = [rec for rec in lines if rec.get("event") == "run_finished"]
    assert len(done) == 1
    assert done[0]["counts"]["created"] == 2 and done[0]["counts"]["invalid"] == 1
    assert done[0]["exit_code"] == 1 and done[0]["run_id"]
    problems = [rec for rec in lines if rec.get("event") == "row_problem"]
    assert [(p["row"], p["code"]) for p in problems] == [(4, "invalid_email")]

    # Paths in the config are relative to the config file, not the working directory.
    report = SyncReport.read_csv(work / "etc" / "out.report.csv")
    assert report.loc[3, "status"] == "created" and report.loc[2, "phone_number"] == "+447400123456"
    assert (work / "etc" / "state.db").is_file()

    # The command line wins over the file: a text log this time; nothing changed, nothing sent.
    second = _synckit(
        ["sync", str(data), "--config", str(config), "--log-format", "text"], env, cwd
    )
    assert second.returncode == 1, second.stderr
    assert not second.stderr.lstrip().startswith("{")
    runs = _synckit(["runs", "--state", str(work / "etc" / "state.db"), "--json"], env, cwd)
    assert runs.returncode == 0, runs.stderr
    recs = [json.loads(line) for line in runs.stdout.splitlines()]
    assert [r["created"] for r in recs] == [2, 0] and [r["unchanged"] for r in recs] == [0, 2]
    assert [r["exit_code"] for r in recs] == [1, 1]


def test_secret_in_config_exits_2(tmp_path: Path) -> None:
    data = tmp_path / "contacts.csv"
    data.write_text(CSV)
    config = tmp_path / "synckit.toml"
    config.write_text('base_url = "http://127.0.0.1:9"\ntoken = "tok_do_not_echo"\n')
    proc = _synckit(["sync", str(data), "--config", str(config)], dict(os.environ), tmp_path)
    assert proc.returncode == 2
    assert "only from the environment" in proc.stderr and "tok_do_not_echo" not in proc.stderr
