"""Issue 12 (part B), through the real command line in a subprocess against the sandbox:
a stop is clean (SIGTERM, SIGKILL, the exit code `runs` records), the JSON log tells a run
from start to end without tracebacks, `-` paths, `| head`, the dry run's plan file, the
progress bar's total, and one option vocabulary for `validate` and `sync`."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _servers import wait_for_posts

from synckit.ledger import Ledger
from synckit.sandbox import Sandbox

HEADER = "E-mail Address,Mobile,First Name,Email Opt-in\n"
MAP = ["--map", "E-mail Address=email", "--map", "Mobile=phone_number",
       "--map", "First Name=first_name", "--map", "Email Opt-in=email_consent"]  # fmt: skip


def write_csv(path: Path, n: int) -> Path:
    lines = [HEADER]
    for i in range(n):
        lines.append(f"Person{i}@example.com,+447400{i:06d},First{i},subscribed\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def run(args: list[str], env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[str]:
    kw.setdefault("capture_output", True)
    return subprocess.run(
        [sys.executable, "-m", "synckit", *args], env=env, text=True, timeout=120, **kw
    )


def sandbox_env(sb: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCKIT_")}
    return {**env, "SYNCKIT_BASE_URL": sb.url, "SYNCKIT_TOKEN": sb.token}


def runs_json(state: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    done = run(["runs", "--state", str(state), "--json"], env)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def start_sync(sb: Sandbox, src: Path, state: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "synckit", "sync", str(src), *MAP, "--state", str(state),
           "--no-progress", "--workers", "2", "--batch-size", "10", *extra]  # fmt: skip
    return subprocess.Popen(
        cmd, env=sandbox_env(sb), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


# --------------------------------------------------------------------------- signals


def test_sigterm_stops_cleanly_exits_143_and_a_resume_leaves_no_duplicates(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=40)  # 2 workers x 40 ms: ~50 creates/s, mid-flight at 30
    src = write_csv(tmp_path / "big.csv", 400)
    state = tmp_path / "state.db"
    proc = start_sync(sb, src, state, "--log-format", "json")
    try:
        wait_for_posts(sb, proc, 30)
        proc.send_signal(signal.SIGTERM)  # what systemd / docker stop send
        sent_at = time.monotonic()
        _, err = proc.communicate(timeout=20)
        took = time.monotonic() - sent_at
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert took < 6, took  # in-flight requests finish, nothing new is dispatched
    assert "Traceback" not in err
    # The report holds every row: created before the stop, skipped (interrupted) after.
    report = pd.read_csv(tmp_path / "big.report.csv", dtype=str, keep_default_na=False)
    assert report["row"].tolist() == [str(i) for i in range(2, 402)]
    status = report["status"]
    assert set(status) == {"created", "skipped"}
    assert set(report.loc[status == "skipped", "error_code"]) == {"interrupted"}
    created = int((status == "created").sum())
    assert len(sb.contacts()) == created >= 30
    events = [json.loads(line) for line in err.splitlines()]
    finished = [e for e in events if e.get("event") == "run_finished"]
    assert len(finished) == 1 and finished[0]["exit_code"] == 143
    assert finished[0]["aborted"]["code"] == "interrupted"
    assert "SIGTERM" in finished[0]["aborted"]["message"]
    # `runs` shows the code the process returned.
    (first,) = runs_json(state, sandbox_env(sb))
    assert (first["exit_code"], first["state"]) == (143, "finished")
    assert first["created"] == created and first["skipped"] == 400 - created

    again = run(["sync", str(src), *MAP, "--state", str(state), "--no-progress"],
                sandbox_env(sb))  # fmt: skip
    assert again.returncode == 0, again.stderr
    stored = [c["email"] for c in sb.contacts()]
    assert len(stored) == len(set(stored)) == 400  # no duplicates
    assert [r["exit_code"] for r in runs_json(state, sandbox_env(sb))] == [143, 0]


def test_ctrl_c_is_recorded_as_130(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> None:
    sb = sandbox_factory(latency_ms=40)
    src = write_csv(tmp_path / "big.csv", 300)
    state = tmp_path / "state.db"
    proc = start_sync(sb, src, state)
    try:
        wait_for_posts(sb, proc, 20)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "synckit: interrupted" in err
    assert [r["exit_code"] for r in runs_json(state, sandbox_env(sb))] == [130]


def test_sigkilled_run_shows_as_killed_also_after_a_resume(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(latency_ms=40)
    src = write_csv(tmp_path / "big.csv", 300)
    state = tmp_path / "state.db"
    env = sandbox_env(sb)
    proc = start_sync(sb, src, state)
    try:
        wait_for_posts(sb, proc, 20)
        (live,) = runs_json(state, env)  # its process holds the lock: still going
        assert (live["state"], live["exit_code"], live["finished_at"]) == ("running", None, None)
        text = run(["runs", "--state", str(state)], env).stdout
        assert text.splitlines()[1].split()[-2] == "running"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    (dead,) = runs_json(state, env)
    assert (dead["state"], dead["exit_code"], dead["finished_at"]) == ("killed", None, None)

    again = run(["sync", str(src), *MAP, "--state", str(state), "--no-progress"], env)
    assert again.returncode == 0, again.stderr
    assert len({c["email"] for c in sb.contacts()}) == len(sb.contacts()) == 300
    listed = runs_json(state, env)
    assert [(r["state"], r["exit_code"]) for r in listed] == [("killed", None), ("finished", 0)]
    table = run(["runs", "--state", str(state)], env).stdout.splitlines()
    assert table[0].split()[-2:] == ["EXIT", "SOURCE"]
    assert table[1].split()[-2] == "killed" and table[2].split()[-2] == "0"


# --------------------------------------------------------------------------- the JSON log


def test_json_log_has_run_started_and_run_finished_with_the_run_id(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    src = write_csv(tmp_path / "p.csv", 5)
    state = tmp_path / "state.db"
    done = run(["sync", str(src), *MAP, "--state", str(state), "--log-format", "json",
                "--no-progress", "--batch-size", "7"], sandbox_env(sandbox))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sandbox.token not in done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    named = [e["event"] for e in events if "event" in e]
    assert named[0] == "run_started" and named[-1] == "run_finished"
    started = events[[e.get("event") for e in events].index("run_started")]
    (run_id,) = [r["run_id"] for r in runs_json(state, sandbox_env(sandbox))]
    assert started["run_id"] == run_id
    assert started["source"] == str(src) and started["state"] == str(state)
    assert started["options"]["batch_size"] == 7
    assert started["options"]["file"] == str(src)
    assert started["options"]["report"] == str(tmp_path / "p.report.csv")
    assert "E-mail Address=email" in started["options"]["map"]
    assert [e["run_id"] for e in events if e.get("event") == "run_finished"] == [run_id]


def test_an_error_is_a_run_failed_event_not_a_traceback(sandbox: Sandbox, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "p.csv", 5)
    state = tmp_path / "state.db"
    folder = tmp_path / "a-folder"  # --report names a folder: preflight refuses it
    folder.mkdir()
    env = sandbox_env(sandbox)
    done = run(["sync", str(src), *MAP, "--state", str(state), "--log-format", "json",
                "--no-progress", "--report", str(folder)], env)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    (failed,) = [e for e in events if e.get("event") == "run_failed"]
    assert failed["exit_code"] == 2 and str(folder) in failed["error_message"]
    assert failed["error_type"] == "PreflightError"
    assert sandbox.request_log() == [] and not state.exists()  # nothing sent, no run recorded


def test_runs_records_the_exit_code_the_process_returned(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # The report's folder passes preflight, then vanishes while the run is in flight: the
    # run's own exit code would be 0, but the process returns 2 (report not written), and
    # `runs` must say 2.
    sb = sandbox_factory(latency_ms=40)
    src = write_csv(tmp_path / "p.csv", 40)
    state = tmp_path / "state.db"
    out = tmp_path / "out"
    out.mkdir()
    proc = start_sync(sb, src, state, "--log-format", "json", "--report", str(out / "r.csv"),
                      "--workers", "1", "--batch-size", "1")  # fmt: skip
    wait_for_posts(sb, proc, 1)
    out.rmdir()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    events = [json.loads(line) for line in err.splitlines()]
    (failed,) = [e for e in events if e.get("event") == "run_failed"]
    assert failed["exit_code"] == 2 and str(out) in failed["error_message"]
    assert [r["exit_code"] for r in runs_json(state, sandbox_env(sb))] == [2]


def test_config_error_in_json_mode_is_one_json_line(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "p.csv", 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCKIT_")}
    done = run(["sync", str(src), "--log-format", "json"], env)
    assert done.returncode == 2
    (event,) = [json.loads(line) for line in done.stderr.splitlines()]
    assert event["event"] == "run_failed" and "SYNCKIT_BASE_URL" in event["error_message"]


# --------------------------------------------------------------------------- small ones


def test_runs_json_into_head_has_no_broken_pipe(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with Ledger(state) as led:
        for i in range(3000):  # ~0.5 MB of JSON: far more than a pipe's buffer
            led.end_run(led.begin_run(source=f"export-{i}.csv"), counts={"created": i},
                        exit_code=0)  # fmt: skip
    listing = subprocess.Popen(
        [sys.executable, "-m", "synckit", "runs", "--state", str(state), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert listing.stdout is not None
    head = subprocess.run(["head", "-n", "2"], stdin=listing.stdout, capture_output=True)
    listing.stdout.close()  # only head reads it now: when head exits, the pipe breaks
    err = listing.communicate(timeout=60)[1].decode()
    assert len(head.stdout.decode().splitlines()) == 2
    assert err == ""  # no BrokenPipeError traceback
    assert listing.returncode == 128 + signal.SIGPIPE  # what `set -o pipefail` shows


def test_dash_reads_stdin_and_writes_stdout(sandbox: Sandbox, tmp_path: Path) -> None:
    csv = HEADER + "ada@example.com,+447400000001,Ada,subscribed\nnot-an-email,,Bad,subscribed\n"
    env = sandbox_env(sandbox)
    checked = run(["validate", "-", *MAP, "--errors", "-"], env, input=csv)
    assert checked.returncode == 1
    assert not (tmp_path / "-").exists() and not Path("-").exists()
    # stdout is the errors CSV alone; the summary went to stderr.
    lines = checked.stdout.splitlines()
    assert lines[0].split(",")[:3] == ["row", "field", "code"]
    assert [line.split(",")[:3] for line in lines[1:]] == [["3", "email", "invalid_email"]]
    assert "stdin: 2 rows" in checked.stderr

    no_report = run(["sync", "-", *MAP, "--no-progress"], env, input=csv)
    assert no_report.returncode == 2 and "--report" in no_report.stderr
    synced = run(["sync", "-", *MAP, "--no-progress", "--report", "-"], env, input=csv)
    assert synced.returncode == 1, synced.stderr
    report = synced.stdout.splitlines()
    assert report[0].startswith("row,email,phone_number,status")
    assert [r.split(",")[0] for r in report[1:]] == ["2", "3"]
    assert "created" in report[1] and "invalid" in report[2]
    assert "synckit sync stdin" in synced.stderr
    assert [c["email"] for c in sandbox.contacts()] == ["ada@example.com"]


def test_dry_run_writes_a_plan_beside_the_report_never_over_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    src = write_csv(tmp_path / "p.csv", 4)
    out = tmp_path / "reports" / "nightly.report.csv"
    out.parent.mkdir()
    env = sandbox_env(sandbox)
    real = run(["sync", str(src), *MAP, "--no-progress", "--report", str(out)], env)
    assert real.returncode == 0, real.stderr
    kept = out.read_bytes()
    write_csv(src, 5)
    dry = run(["sync", str(src), *MAP, "--no-progress", "--report", str(out), "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert out.read_bytes() == kept  # the last real run's report is untouched
    plan = pd.read_csv(out.with_name("nightly.plan.csv"), dtype=str)
    assert plan["status"].tolist() == ["unchanged"] * 4 + ["would_create"]
    assert f"plan written to {out.with_name('nightly.plan.csv')}" in dry.stderr


def test_progress_bar_over_a_file_has_a_total(sandbox: Sandbox, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "p.csv", 300)
    master, slave = pty.openpty()  # the bar is drawn only on a terminal ...
    # ... of some width (a new pseudo-terminal has 0 columns: an empty bar).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "synckit", "sync", str(src), *MAP],
            env=sandbox_env(sandbox), stdout=subprocess.DEVNULL, stderr=slave,
        )  # fmt: skip
        os.close(slave)
        drawn = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                drawn += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        os.close(master)
    text = drawn.decode("utf-8", "replace")
    assert proc.returncode == 0, text
    # "checking: 100%|████| 300/300 [00:00<00:00, ...]": a total, hence a percentage and ETA
    assert re.search(r"checking: +\d+%\|.*\| *\d+/300 \[", text), text
    assert re.search(r"sync: +100%\|.*\| *300/300 \[", text), text


# --------------------------------------------------------------------------- one vocabulary


def test_validate_and_sync_share_option_names_and_the_config_file(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    src = tmp_path / "p.csv"
    src.write_text(
        HEADER.strip() + ",SMS\n"
        "ada@example.com,+447400000001,Ada,subscribed,subscribed\n"
        "bob@example.com,+12015550123,Bob,subscribed,subscribed\n"
        "ada@example.com,,Ada again,subscribed,\n"
    )
    config = tmp_path / "job.toml"
    config.write_text(
        f'[sync]\nbase_url = "{sandbox.url}"\nchunk_size = 1\nduplicates = "error"\n'
        'sms_countries = ["GB"]\nprogress = false\nstate = "state.db"\n'
        '[sync.map]\n"E-mail Address" = "email"\nMobile = "phone_number"\n'
        '"First Name" = "first_name"\n"Email Opt-in" = "email_consent"\nSMS = "sms_consent"\n'
    )
    env = sandbox_env(sandbox)
    # validate reads the job's config (sync-only options such as base_url are ignored) ...
    checked = run(["validate", str(src), "--config", str(config), "--errors", "-"], env)
    assert checked.returncode == 1, checked.stderr
    found = sorted(tuple(line.split(",")[:3]) for line in checked.stdout.splitlines()[1:])
    # ... so it finds what the job would reject: a US number may not take SMS consent, and
    # with duplicates = "error" both copies of ada go.
    assert found == [("2", "email", "duplicate_in_file"), ("3", "sms_consent", "sms_country"),
                     ("4", "email", "duplicate_in_file")]  # fmt: skip
    synced = run(["sync", str(src), "--config", str(config)], env)
    assert synced.returncode == 1, synced.stderr
    report = pd.read_csv(tmp_path / "p.report.csv", dtype=str)
    assert report["status"].tolist() == ["invalid"] * 3
    assert sandbox.contacts() == []
    # The command line wins over the file, with the same names on both commands.
    for command in ("validate", "sync"):
        again = run([command, str(src), "--config", str(config), "--duplicates", "last",
                     "--sms-countries", "GB,US", "--chunk-size", "2"], env)  # fmt: skip
        # "last": the last copy of ada is kept, the first rejected; bob's US number may now
        # take SMS consent.
        assert again.returncode == 1, (command, again.stdout, again.stderr)
        if command == "validate":
            assert "3 rows: 2 valid, 1 invalid" in again.stdout
    report = pd.read_csv(tmp_path / "p.report.csv", dtype=str)
    assert report["status"].tolist() == ["invalid", "created", "created"]
    assert sorted(c["email"] for c in sandbox.contacts()) == ["ada@example.com", "bob@example.com"]
    assert [c["first_name"] for c in sandbox.contacts() if c["email"] == "ada@example.com"] == [
        "Ada again"
    ]


def test_old_chunksize_spelling_still_works_with_a_notice(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "p.csv", 3)
    done = run(["validate", str(src), *MAP, "--chunksize", "1"], dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "--chunksize is deprecated; use --chunk-size" in done.stderr
    assert "--chunksize" not in run(["validate", "--help"], dict(os.environ)).stdout
    assert "--chunk-size" in run(["sync", "--help"], dict(os.environ)).stdout


@pytest.mark.parametrize("command", ["validate", "sync"])
def test_both_commands_list_the_shared_options(command: str) -> None:
    shown = run([command, "--help"], dict(os.environ)).stdout
    for option in ("--config", "--map", "--region", "--chunk-size", "--duplicates",
                   "--sms-countries", "--set", "--value", "--invalid-fields"):  # fmt: skip
        assert option in shown, (command, option)


def test_the_library_takes_sigterm_over_only_when_asked() -> None:
    from synckit.sync.execute import TERMINATED, SignalStop, Stop, stop_on_sigterm

    before = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with SignalStop(Stop()):  # a program that never asked keeps SIGTERM's default
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        stop_on_sigterm()  # what `synckit` does
        asked = signal.getsignal(signal.SIGTERM)
        stop = Stop()
        with SignalStop(stop):
            os.kill(os.getpid(), signal.SIGTERM)
            deadline = time.monotonic() + 5
            while not stop.requested and time.monotonic() < deadline:
                time.sleep(0.01)
        assert stop.reason == TERMINATED and TERMINATED.exit_code == 143
        assert TERMINATED.code == "interrupted"  # the rows' code, as after Ctrl-C
        assert signal.getsignal(signal.SIGTERM) is asked  # put back after the run
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_run_starting_while_runs_looks_at_the_lock_is_not_refused(tmp_path: Path) -> None:
    import fcntl as locks
    import threading

    from synckit.errors import StateLockedError

    state = tmp_path / "state.db"
    with Ledger(state) as led, led.lock():
        pass  # the lock file exists, empty, as after any run
    # What `synckit runs` does for an instant (Ledger.lock_holder), held longer here.
    looker = open(state.with_name("state.db.lock"))  # noqa: SIM115 - closed below
    locks.flock(looker.fileno(), locks.LOCK_EX | locks.LOCK_NB)
    release = threading.Timer(0.1, lambda: locks.flock(looker.fileno(), locks.LOCK_UN))
    release.start()
    try:
        with Ledger(state) as led, led.lock():  # waits out the look instead of refusing
            assert led.lock_holder() == os.getpid()
    finally:
        release.join()
        looker.close()
    # A holder that wrote its pid is a run: refused at once, naming it.
    with Ledger(state) as first, first.lock(), Ledger(state) as second:
        started = time.monotonic()
        with pytest.raises(StateLockedError, match=f"process {os.getpid()}"), second.lock():
            pass
        assert time.monotonic() - started < 0.2
