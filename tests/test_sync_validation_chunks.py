"""upsert() takes an iterator of already-validated chunks (what synckit.dask streams)."""

from __future__ import annotations

from collections import Counter

import pandas as pd

import synckit
from synckit.client import Client
from synckit.sandbox import Sandbox
from synckit.sync import upsert


def chunk(start: int, n: int, bad: int | None = None) -> synckit.Validation:
    emails = [f"p{i}@example.com" for i in range(start, start + n)]
    if bad is not None:
        emails[bad - start] = "not-an-email"
    df = pd.DataFrame({"email": emails, "custom.plan": ["pro"] * n})
    df.index = pd.RangeIndex(2 + start, 2 + start + n, name="row")
    return synckit.validate(df)


def test_validated_chunks_are_sent_and_reported(sandbox: Sandbox) -> None:
    chunks = iter([chunk(0, 10, bad=3), chunk(10, 10)])
    with Client(sandbox.url, token=sandbox.token) as client:
        report = upsert(chunks, client, batch_size=4, workers=2, progress=False)
    assert sorted(report.rows.index) == list(range(2, 22))
    assert Counter(report.rows["status"].astype(str)) == {"created": 19, "invalid": 1}
    assert report.rows.loc[5, "error_code"] == "invalid_email"  # the chunk's own error
    stored = sandbox.contacts()
    assert len(stored) == 19 and stored[0]["custom_fields"] == {"plan": "pro"}


def test_unread_validated_chunks_are_skipped_after_an_abort(free_port: int) -> None:
    chunks = iter([chunk(0, 20), chunk(20, 20, bad=25), chunk(40, 20)])
    dead = Client(
        f"http://127.0.0.1:{free_port}", token="tok", max_retry_time=0.3, backoff_base=0.05
    )
    with dead as client:
        report = upsert(chunks, client, batch_size=5, workers=1, progress=False)
    # every row once: the unread chunks' invalid rows as invalid, the rest skipped. The
    # first request (discovery's listing page) got no answer, so nothing was sent at all.
    assert sorted(report.rows.index) == list(range(2, 62))
    statuses = Counter(report.rows["status"].astype(str))
    assert statuses == {"invalid": 1, "skipped": 59}
    assert report.aborted is not None and report.aborted.code == "unreachable"
    assert report.rows.loc[27, "status"] == "invalid"
