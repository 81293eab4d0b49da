"""Issue 12 (part A): a misconfigured nightly job fails loudly before it sends anything.

Each "Why" case of the issue runs through the real CLI in a subprocess, against
the sandbox or a plain ``http.server`` on loopback, and checks the exit code,
the message and that nothing was sent (the servers' own request logs). The
pure checks have unit tests; the non-healing retries are tested on the client.
"""

from __future__ import annotations

import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import trustme
from _servers import serving
from werkzeug.serving import make_server

from synckit.client import Client
from synckit.errors import ServerError, TransportError, error_from_response
from synckit.report import SyncReport
from synckit.sandbox import Sandbox
from synckit.sync import FOREIGN_AFTER, upsert
from synckit.sync.preflight import (
    check_mapping,
    check_paths,
    endpoint_problem,
    file_columns,
    foreign_answer,
    preflight,
)

WRITES = {"POST", "PATCH", "DELETE"}
HEADER = "E-mail Address,Mobile Phone,First Name\n"


def write_csv(path: Path, n: int) -> Path:
    rows = [f"p{i}@example.com,+447400{i:06d},F{i}\n" for i in range(n)]
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    return path


def sync(src: Path, base_url: str, token: str, *extra: str, timeout: float = 60) -> Any:
    """``synckit sync`` in a subprocess, as cron would run it (no terminal)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCKIT_")}
    env.update(SYNCKIT_BASE_URL=base_url, SYNCKIT_TOKEN=token)
    cmd = [sys.executable, "-m", "synckit", "sync", str(src), "--no-progress", *extra]
    started = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    done.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    return done


def writes(sb: Sandbox) -> list[Any]:
    return [r for r in sb.request_log() if r.method in WRITES]


# --------------------------------------------------------------------------- servers


class _Counting(http.server.SimpleHTTPRequestHandler):
    """Python's own file server (``python -m http.server``), counting what it was sent."""

    seen: list[tuple[str, str]]

    def log_message(self, format: str, *args: Any) -> None:  # quiet, but counted below
        pass

    def handle_one_request(self) -> None:
        super().handle_one_request()
        if getattr(self, "command", None):
            self.seen.append((self.command, self.path))


@pytest.fixture
def plain_http(tmp_path: Path) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A plain ``http.server`` serving an empty folder on loopback: GET 404 (HTML),
    POST/PATCH 501 (HTML). Yields its URL with ``/v1`` and the requests it got."""
    seen: list[tuple[str, str]] = []
    root = tmp_path / "www"
    root.mkdir()
    handler = type("Handler", (_Counting,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        lambda *a: handler(*a, directory=str(root)),  # type: ignore[misc]
    )
    with serving(server) as url:
        yield url, seen


@pytest.fixture
def lists_but_501s(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A loopback server that lists like the API (an empty account) but answers every
    write ``501 Not Implemented`` with an HTML page: a read-only gateway, say."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append("GET")
            body = json.dumps({"data": [], "next_cursor": None}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            seen.append("POST")
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"<html><title>501 Not Implemented</title><body>read-only</body></html>"
            self.send_response(501)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with serving(server) as url:
        yield url, seen


# --------------------------------------------------------------------------- Why 1: the URL


def test_base_url_without_v1_exits_3_before_sending(sandbox: Sandbox, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "people.csv", 35)
    wrong = sandbox.url.removesuffix("/v1")
    done = sync(src, wrong, sandbox.token)
    assert done.returncode == 3, done.stderr
    # The message names the URL and what came back.
    assert f"{wrong} does not answer like the Contacts API" in done.stderr
    assert "HTTP 404 (application/json): No such endpoint" in done.stderr
    assert "it usually ends in the API version" in done.stderr
    assert sandbox.token not in done.stdout + done.stderr
    # One request (the listing page the run sends anyway), no write, no contact.
    assert [(r.method, r.status) for r in sandbox.request_log()] == [("GET", 404)]
    assert writes(sandbox) == [] and sandbox.contacts() == []
    report = pd.read_csv(tmp_path / "people.report.csv", dtype=str)
    assert len(report) == 35
    assert set(report["status"]) == {"skipped"}
    assert set(report["error_code"]) == {"not_contacts_api"}


def test_plain_http_server_exits_3_at_once(
    plain_http: tuple[str, list[tuple[str, str]]], tmp_path: Path
) -> None:
    url, seen = plain_http
    src = write_csv(tmp_path / "people.csv", 35)
    done = sync(src, url, "tok_not_sent_anywhere_else")
    assert done.returncode == 3, done.stderr
    assert f"{url} does not answer like the Contacts API" in done.stderr
    assert "HTTP 404 (text/html)" in done.stderr
    # Before: every row retried its 501 with backoff, ~45 s per 35 rows, never ending.
    assert done.elapsed < 20
    assert [m for m, _ in seen] == ["GET"]  # the one check; no POST reached it


def test_a_server_that_redirects_exits_3_before_any_write(
    plain_http: tuple[str, list[tuple[str, str]]], tmp_path: Path
) -> None:
    # A folder named like the collection, holding a contract-shaped page: http.server
    # answers GET /v1/contacts?... with 301 to /v1/contacts/ (the API never redirects).
    url, seen = plain_http
    page = tmp_path / "www" / "v1" / "contacts"
    page.mkdir(parents=True)
    (page / "index.html").write_text('{"data": [], "next_cursor": null}', encoding="utf-8")
    src = write_csv(tmp_path / "people.csv", 35)
    done = sync(src, url + "/", "tok_redirect")
    assert done.returncode == 3, done.stderr
    assert "HTTP 301" in done.stderr and "it redirects" in done.stderr
    assert [m for m, _ in seen] == ["GET"]  # the one check; nothing written


def test_writes_answered_501_stop_after_a_streak(
    lists_but_501s: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, seen = lists_but_501s
    src = write_csv(tmp_path / "people.csv", 200)
    done = sync(src, url, "tok_x", "--workers", "4", "--batch-size", "10")
    assert done.returncode == 3, done.stderr
    assert f"{FOREIGN_AFTER} rows in a row got the same answer no Contacts API gives" in (
        done.stderr
    )
    assert "HTTP 501 (text/html)" in done.stderr
    posts = seen.count("POST")
    # Each 501 was sent once (never retried), and the run stopped after the streak
    # (plus what was in flight beside it) instead of failing all 200 rows.
    assert FOREIGN_AFTER <= posts <= FOREIGN_AFTER + 4
    report = pd.read_csv(tmp_path / "people.report.csv", dtype=str)
    counts = report["status"].value_counts()
    assert counts["failed"] == posts
    assert counts["skipped"] == 200 - posts
    assert (report.loc[report["status"] == "failed", "attempts"] == "1").all()


def test_wrong_token_exits_3_with_one_request(sandbox: Sandbox, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "people.csv", 5)
    done = sync(src, sandbox.url, "tok_wrong_0123456789")
    assert done.returncode == 3, done.stderr
    assert "the API token was rejected" in done.stderr
    assert "tok_wrong_0123456789" not in done.stdout + done.stderr
    assert [(r.method, r.status) for r in sandbox.request_log()] == [("GET", 401)]


# --------------------------------------------------------------------------- Why 2: paths


def test_missing_report_folder_exits_2_before_sending(sandbox: Sandbox, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "people.csv", 5)
    missing = tmp_path / "reports" / "nightly"
    done = sync(src, sandbox.url, sandbox.token, "--report", str(missing / "r.csv"))
    assert done.returncode == 2, done.stderr
    assert f"report folder {missing} does not exist" in done.stderr
    assert "nothing was sent" in done.stderr
    assert "Traceback" not in done.stderr
    assert sandbox.request_log() == []


def test_missing_state_folder_exits_2_not_3(sandbox: Sandbox, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "people.csv", 5)
    missing = tmp_path / "state"
    done = sync(src, sandbox.url, sandbox.token, "--state", str(missing / "contacts.db"))
    assert done.returncode == 2, done.stderr
    assert f"state folder {missing} does not exist" in done.stderr
    assert sandbox.request_log() == []
    assert not missing.exists()


# --------------------------------------------------------------------------- Why 3: the map


def test_map_column_missing_from_header_exits_2_with_suggestion(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    src = write_csv(tmp_path / "people.csv", 35)
    done = sync(
        src, sandbox.url, sandbox.token,
        "--map", "E-mail Address=email", "--map", "Mobile=phone_number",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert (
        "mapped column not in the file's header: 'Mobile' (did you mean 'Mobile Phone'?)"
        in done.stderr
    )
    assert sandbox.request_log() == [] and sandbox.contacts() == []


def test_config_map_column_missing_exits_2(sandbox: Sandbox, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "people.csv", 3)
    config = tmp_path / "synckit.toml"
    config.write_text('[sync.map]\n"E-mail Address" = "email"\n"Mobil" = "phone_number"\n')
    done = sync(src, sandbox.url, sandbox.token, "--config", str(config))
    assert done.returncode == 2, done.stderr
    assert "'Mobil' (did you mean 'Mobile Phone'?)" in done.stderr
    assert sandbox.request_log() == []


def test_validate_warns_with_the_same_words(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "people.csv", 3)
    cmd = [sys.executable, "-m", "synckit", "validate", str(src), "--map", "Mobile=phone_number"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert (
        "warning: mapped column not in the file's header: 'Mobile' "
        "(did you mean 'Mobile Phone'?)" in done.stderr
    )


def test_upsert_of_a_frame_read_with_a_missing_column_sends_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    import synckit
    from synckit.sync import PreflightError

    src = write_csv(tmp_path / "people.csv", 5)
    inputs: list[Any] = [
        synckit.read_csv(src, columns={"Mobile": "phone_number"}),  # one frame
        lambda: synckit.read_csv(src, columns={"Mobile": "phone_number"}, chunksize=2),
        synckit.read_csv(src, columns={"Mobile": "phone_number"}, chunksize=2),  # one pass
    ]
    with Client(sandbox.url, token=sandbox.token) as client:
        for data in inputs:
            with pytest.raises(PreflightError) as info:
                upsert(data, client, progress=False)
            assert [(p.code, p.exit_code) for p in info.value.problems] == [("unknown_column", 2)]
            assert "'Mobile' (did you mean 'Mobile Phone'?)" in str(info.value)
    assert sandbox.request_log() == []


# --------------------------------------------------------------------------- loud bad nights


def test_most_rows_refused_exits_4(sandbox_factory: Callable[..., Sandbox], tmp_path: Path) -> None:
    sb = sandbox_factory(contact_limit=5)  # quota: creates beyond 5 are refused (422)
    src = write_csv(tmp_path / "people.csv", 35)
    done = sync(src, sb.url, sb.token, "--workers", "1")
    assert done.returncode == 4, done.stderr
    assert "too many failed: 86% of the rows sent were refused (more than 50%)" in done.stdout
    assert len(sb.contacts()) == 5
    # The threshold is a setting: 1 turns it off, and the night is a plain exit 1 again.
    sb.reset()
    again = sync(src, sb.url, sb.token, "--workers", "1", "--max-failure-rate", "1")
    assert again.returncode == 1, again.stderr


def test_max_failure_rate_from_the_config_file(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sb = sandbox_factory(contact_limit=0)  # every create refused: 12 of 12 failed
    src = write_csv(tmp_path / "people.csv", 12)
    config = tmp_path / "synckit.toml"
    config.write_text("[sync]\nmax_failure_rate = 1\n")
    assert sync(src, sb.url, sb.token, "--config", str(config)).returncode == 1
    assert sync(src, sb.url, sb.token).returncode == 4  # the default, 0.5
    config.write_text('[sync]\nmax_failure_rate = "half"\n')
    wrong = sync(src, sb.url, sb.token, "--config", str(config))
    assert wrong.returncode == 2 and "max_failure_rate must be" in wrong.stderr


def test_failure_rate_counts_only_rows_sent() -> None:
    rows = [{"row": r, "status": "unchanged"} for r in range(2, 1002)]
    rows += [{"row": r, "status": "failed"} for r in range(1002, 1012)]
    rows += [{"row": 1012, "status": "created"}, {"row": 1013, "status": "invalid"}]
    report = SyncReport.from_records(rows, [], max_failure_rate=0.5)
    assert report.failure_rate() == 10 / 11  # 1,000 unchanged rows do not dilute it
    assert report.too_many_failed and report.exit_code() == 4
    few = SyncReport.from_records(
        [{"row": 2, "status": "failed"}, {"row": 3, "status": "failed"}], [], max_failure_rate=0.5
    )
    assert few.failure_rate() == 1.0 and few.exit_code() == 1  # 2 rows: a row problem
    off = SyncReport.from_records(rows, [])  # a report built by hand has no threshold
    assert off.exit_code() == 1


# --------------------------------------------------------------------------- the Python API


def test_upsert_against_a_wrong_url_aborts_as_data(sandbox: Sandbox) -> None:
    frame = pd.DataFrame({"email": [f"p{i}@example.com" for i in range(20)]})
    with Client(sandbox.url.removesuffix("/v1"), token=sandbox.token) as client:
        report = upsert(frame, client, progress=False)
    assert report.aborted is not None
    assert (report.aborted.code, report.aborted.exit_code) == ("not_contacts_api", 3)
    assert report.counts()["skipped"] == 20 and report.exit_code() == 3
    assert writes(sandbox) == [] and len(sandbox.request_log()) == 1


def test_a_run_that_lists_spends_no_extra_request_on_the_check(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"email": [f"p{i}@example.com" for i in range(3)]})
    with Client(sandbox.url, token=sandbox.token) as client:
        upsert(frame, client, progress=False)
    # One listing page (the check too), three creates: as before preflight existed.
    assert [r.method for r in sandbox.request_log()] == ["GET", "POST", "POST", "POST"]


def test_a_ledger_only_run_checks_once_with_a_fresh_client(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    frame = pd.DataFrame({"email": ["a@example.com", "b@example.com"], "first_name": ["A", "B"]})
    with Client(sandbox.url, token=sandbox.token) as client:
        upsert(frame, client, state=state, progress=False)
    frame["first_name"] = ["A2", "B2"]
    mark = len(sandbox.request_log())
    with Client(sandbox.url, token=sandbox.token) as fresh:
        report = upsert(frame, fresh, state=state, progress=False)
        assert fresh.endpoint_verified
    assert report.counts()["updated"] == 2
    sent = sandbox.request_log()[mark:]
    assert (sent[0].method, sent[0].path) == ("GET", "/v1/contacts")  # the check
    assert sorted(r.method for r in sent[1:]) == ["PATCH", "PATCH"]


def test_preflight_false_sends_as_before(sandbox: Sandbox) -> None:
    frame = pd.DataFrame({"email": [f"p{i}@example.com" for i in range(3)]})
    with Client(sandbox.url.removesuffix("/v1"), token=sandbox.token) as client:
        report = upsert(frame, client, progress=False, preflight=False)
    assert report.aborted is None and report.counts()["failed"] == 3


# --------------------------------------------------------------------------- pure checks


def test_check_paths(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    assert check_paths(report=tmp_path / "r.csv", state=tmp_path / "s.db") == []
    found = check_paths(report=tmp_path / "no" / "r.csv", state=tmp_path / "a_file" / "s.db")
    assert [(p.check, p.code, p.exit_code) for p in found] == [
        ("paths", "folder_missing", 2),
        ("paths", "not_a_folder", 2),
    ]
    assert [p.code for p in check_paths(report=tmp_path)] == ["not_a_file"]
    assert list(tmp_path.iterdir()) == [tmp_path / "a_file"]  # the probe file is gone


def test_check_mapping_names_each_missing_column() -> None:
    headers = ["E-mail Address", "Mobile Phone", "First Name", "Notes"]
    found = check_mapping([" e-mail address ", "Mobile", "Zip"], headers)
    assert [p.message for p in found] == [
        "mapped column not in the file's header: 'Mobile' (did you mean 'Mobile Phone'?)",
        "mapped column not in the file's header: 'Zip'",
    ]
    assert check_mapping(["First Name"], headers) == []


def test_file_columns_reads_the_header(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "people.csv", 2)
    headers, unmatched = file_columns(src, {"Mobile": "phone_number", "First Name": "first_name"})
    assert sorted(headers) == ["E-mail Address", "First Name", "Mobile Phone"]
    assert unmatched == ["Mobile"]


def test_preflight_lists_configuration_problems_without_a_request(tmp_path: Path) -> None:
    result = preflight(
        Client("http://127.0.0.1:9/v1", token="t"),  # would be refused: never asked
        report=tmp_path / "no" / "r.csv",
        mapped=["Mobile"],
        headers=["Mobile Phone"],
    )
    assert (result.ok, result.exit_code, result.requests) == (False, 2, 0)
    assert [p.code for p in result.problems] == ["folder_missing", "unknown_column"]


@pytest.mark.parametrize(
    ("status", "body", "content_type", "path", "foreign"),
    [
        (404, {"code": "not_found", "message": "No such endpoint"}, "application/json",
         "/contacts", True),
        (404, {"code": "not_found", "message": "Contact not found"}, "application/json",
         "/contacts/ct_1", False),
        (501, "<html><title>501</title></html>", "text/html", "/contacts", True),
        (505, "", None, "/contacts", True),
        (405, {"code": "method_not_allowed", "message": "no"}, "application/json",
         "/contacts/ct_1", True),
        (400, "<html>bad</html>", "text/html", "/contacts", True),
        (503, "<html>busy</html>", "text/html", "/contacts", False),
        (422, {"code": "quota_exceeded", "message": "limit"}, "application/json",
         "/contacts", False),
        (429, {"code": "rate_limited", "message": "slow"}, "application/json", "/contacts",
         False),
    ],
)  # fmt: skip
def test_foreign_answers(
    status: int, body: Any, content_type: str | None, path: str, foreign: bool
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    raw = json.dumps(body) if isinstance(body, dict) else body
    err = error_from_response(status, raw, headers, method="POST", path=path)
    assert (foreign_answer(err) is not None) is foreign


@pytest.mark.parametrize(
    ("status", "body", "content_type", "code", "exit_code"),
    [
        (404, {"code": "not_found", "message": "No such endpoint"}, "application/json",
         "not_contacts_api", 3),
        (404, "<html><title>404 Not Found</title></html>", "text/html", "not_contacts_api", 3),
        (501, "<html><title>501</title></html>", "text/html", "not_contacts_api", 3),
        (401, {"code": "unauthorized", "message": "bad token"}, "application/json",
         "auth_error", 3),
        (403, {"code": "insufficient_scope", "message": "read only"}, "application/json",
         "permission_denied", 3),
        (503, {"code": "unavailable", "message": "maintenance"}, "application/json",
         "unavailable", 4),
        # The API itself, refusing in its own words: not a wrong URL; the rows will say why.
        (422, {"code": "validation_failed", "message": "limit"}, "application/json", None, 0),
    ],
)  # fmt: skip
def test_endpoint_problem_of_a_failed_check(
    status: int, body: Any, content_type: str, code: str | None, exit_code: int
) -> None:
    raw = json.dumps(body) if isinstance(body, dict) else body
    err = error_from_response(
        status, raw, {"Content-Type": content_type}, method="GET", path="/contacts"
    )
    client = Client("http://127.0.0.1:9/v1", token="t")
    problem = endpoint_problem(err, client)
    if code is None:
        assert problem is None
    else:
        assert problem is not None and (problem.code, problem.exit_code) == (code, exit_code)
        assert "http://127.0.0.1:9/v1" in problem.message or problem.check == "credentials"


# --------------------------------------------------------------------------- non-healing retries


def test_501_and_505_are_not_retried(plain_http: tuple[str, list[tuple[str, str]]]) -> None:
    url, seen = plain_http
    with Client(url, token="t", backoff_base=0.01) as client:
        with pytest.raises(ServerError) as info:
            client.create_contact({"email": "a@example.com"})
        assert (info.value.status, info.value.retryable, info.value.attempts) == (501, False, 1)
    assert seen == [("POST", "/v1/contacts")]  # once: before, 7 attempts
    assert error_from_response(505, "").retryable is False
    assert error_from_response(503, "").retryable is True


@pytest.fixture
def old_tls_url() -> Iterator[str]:
    """An HTTPS server on loopback that speaks at most TLS 1.1 (the client needs 1.2+)."""
    ca = trustme.CA()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"data": [], "next_cursor": null}']

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    with serving(server, scheme="https") as url:
        yield url


def test_tls_version_mismatch_is_not_retried(old_tls_url: str) -> None:
    started = time.monotonic()
    with Client(old_tls_url, token="t", backoff_base=0.2) as client:
        with pytest.raises(TransportError, match="SSL") as info:
            client.list_page(limit=1)
        assert info.value.retryable is False
        assert client.last_call is not None and client.last_call.attempts == 1
    assert time.monotonic() - started < 2  # before: 7 attempts over ~17 s


def test_tls_version_mismatch_cli_exits_3_at_once(old_tls_url: str, tmp_path: Path) -> None:
    src = write_csv(tmp_path / "people.csv", 5)
    done = sync(src, old_tls_url, "tok_tls_0123456789")
    assert done.returncode == 3, done.stderr
    assert "tls_error" in done.stdout and "cannot succeed by retrying" in done.stderr
    assert done.elapsed < 15


def test_a_certificate_error_is_not_retried(tmp_path: Path) -> None:
    ca = trustme.CA()  # not trusted by the client
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        with Client(f"https://127.0.0.1:{server.server_port}/v1", token="t") as client:
            with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED") as info:
                client.get_contact("ct_1")
            assert info.value.retryable is False
            assert client.last_call is not None and client.last_call.attempts == 1
    finally:
        server.shutdown()
        thread.join(5)


def test_a_json_answer_of_another_api_is_not_a_contacts_page() -> None:
    """A 200 in JSON that is not a page of contacts: read as "no contacts", every row would
    be created anew; the check stops the run instead."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status": "ok", "version": "2.3"}']

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        frame = pd.DataFrame({"email": ["a@example.com", "b@example.com"]})
        with Client(f"http://127.0.0.1:{server.server_port}/v1", token="t") as client:
            report = upsert(frame, client, progress=False)
    finally:
        server.shutdown()
        thread.join(5)
    assert report.aborted is not None and report.aborted.code == "not_contacts_api"
    assert "is not a page of contacts" in report.aborted.message
    assert "its keys: status, version" in report.aborted.message
    assert report.counts()["skipped"] == 2
