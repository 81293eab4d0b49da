"""A dead base URL: the engine stops after a few rows get no answer instead of failing
every row after its retries (a 100k-row file would take hours)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest

from synckit.client import Client
from synckit.errors import TransportError
from synckit.sandbox import Sandbox
from synckit.sync import UNREACHABLE_AFTER, upsert


def frame(n: int, start: int = 0) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "email": [f"p{i}@example.com" for i in range(start, start + n)],
            "first_name": [f"P{i}" for i in range(start, start + n)],
        }
    )
    df.index = pd.RangeIndex(2 + start, 2 + start + n, name="row")
    return df


def dead_client(port: int) -> Client:
    # Nothing listens on the port: every attempt is refused at once, and the
    # client's retries (kept as they are) give up after max_retry_time.
    return Client(
        f"http://127.0.0.1:{port}", token="tok_dead_secret", max_retry_time=0.3, backoff_base=0.05
    )


def test_unreachable_server_stops_the_run(free_port: int) -> None:
    data = frame(300)
    data.loc[5, "email"] = "not-an-email"  # invalid rows stay invalid
    started = time.monotonic()
    with dead_client(free_port) as client:
        report = upsert(data, client, batch_size=10, workers=4, progress=False)
    elapsed = time.monotonic() - started
    # Every row exactly once.
    assert sorted(report.rows.index) == list(range(2, 302))
    statuses = report.rows["status"].value_counts()
    skipped = report.rows[report.rows["status"] == "skipped"]
    assert statuses.get("invalid", 0) == 1
    # Discovery (the listing page, then look-ups) meets the dead server before any write:
    # no row was sent, so none failed; every valid row is skipped.
    assert statuses.get("failed", 0) == 0
    assert len(skipped) == 299
    assert (skipped["error_code"] == "unreachable").all()
    assert report.aborted is not None and report.aborted.code == "unreachable"
    # Not 1 (a normal night), not 3 (credentials): 4, a night the platform never heard of.
    assert report.exit_code() == 4
    assert elapsed < 10, elapsed  # 300 rows x 0.3 s retry window would be 22 s on 4 workers
    assert len(report.failed_rows()) == 300
    text = f"{report.aborted}{report.rows.to_csv()}{report.errors.to_csv()}{report}"
    assert "tok_dead_secret" not in text


def test_unreachable_stream_skips_unread_chunks(free_port: int) -> None:
    chunks = iter([frame(20), frame(20, start=20), frame(20, start=40)])
    with dead_client(free_port) as client:
        report = upsert(chunks, client, batch_size=5, workers=1, progress=False)
    assert sorted(report.rows.index) == list(range(2, 62))
    assert (report.rows["status"] == "skipped").sum() == 60  # the unread chunks too
    assert report.aborted.code == "unreachable"


def test_unreachable_raises_with_report_when_asked(free_port: int) -> None:
    with dead_client(free_port) as client, pytest.raises(TransportError) as info:
        upsert(frame(30), client, batch_size=5, workers=2, progress=False, raise_on_error=True)
    report = info.value.report  # type: ignore[attr-defined]
    assert report.aborted.code == "unreachable"
    assert len(report.rows) == 30


def test_unreachable_while_writing_stops_after_a_few_rows(
    sandbox: Sandbox, free_port: int, tmp_path: Path
) -> None:
    # With a ledger that knows every row, there is nothing to discover: the changed rows
    # go straight to PATCH, and it is the writes that meet the dead server.
    state = tmp_path / "state.db"
    data = frame(100)
    with Client(sandbox.url, token=sandbox.token) as live:
        assert upsert(data, live, state=state, progress=False).counts()["created"] == 100
    data["first_name"] = "Changed"
    with dead_client(free_port) as client:
        # By default the preflight check meets the dead server first: nothing is sent.
        checked = upsert(data, client, state=state, workers=2, progress=False)
        assert (checked.rows["status"] == "skipped").all()
        assert checked.aborted is not None and checked.aborted.code == "unreachable"
        # Without it, the writes meet it, and the breaker stops them after a few rows.
        report = upsert(data, client, state=state, workers=2, progress=False, preflight=False)
    status = report.rows["status"]
    failed = report.rows[status == "failed"]
    skipped = report.rows[status == "skipped"]
    # The streak, plus at most the one other row in flight beside it.
    assert UNREACHABLE_AFTER <= len(failed) <= UNREACHABLE_AFTER + 1
    assert (failed["error_code"] == "TransportError").all()
    assert len(skipped) == 100 - len(failed)
    assert (skipped["error_code"] == "unreachable").all()
    assert report.aborted is not None and report.aborted.code == "unreachable"
