"""Validation's HTML, with its column mapping, rendered by a real headless Chromium.

Chromium is Debian's package (``apt-get install -y chromium``); ``.ci/run``
installs it and sets ``SYNCKIT_REQUIRE_BROWSER=1``, and so does any CI
(``CI`` set): there a missing browser fails this test instead of skipping it.
On a developer machine without Chromium it is skipped, saying why.
"""

from __future__ import annotations

import html.parser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import synckit

DATA = Path(__file__).resolve().parent / "data" / "exports"
# What headless Chromium needs on this kind of machine (as root, no network).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("SYNCKIT_REQUIRE_BROWSER") or os.environ.get("CI"):
        pytest.fail("headless Chromium is required here: apt-get install -y chromium")
    pytest.skip("no Chromium on this machine (apt-get install -y chromium to run this test)")


class _Cells(html.parser.HTMLParser):
    """The text of each table cell of the rendered page, table by table."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_mapping_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _chromium()
    df = synckit.read_csv(DATA / "google_contacts.csv")
    # row 3's phone as a spreadsheet turns it into a float: one error among the warnings
    phones = df["phone_number"].where(df.index != 3, "4.47911E+11")
    check = synckit.validate(df.assign(phone_number=phones))
    page = tmp_path / "validation.html"
    page.write_text(
        '<!doctype html><meta charset="utf-8"><body style="background:#fff">'
        + check._repr_html_()
        + "</body>",
        encoding="utf-8",
    )
    profile = tmp_path / "profile"
    common = [browser, *FLAGS, f"--user-data-dir={profile}"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    cells = _Cells()
    cells.feed(dom.stdout)
    mapping, problems = cells.tables
    assert mapping[0] == ["field", "file columns", "note"]
    assert mapping[1][:2] == ["email", "'E-mail 1 - Value', 'E-mail 2 - Value'"]
    assert mapping[2][:2] == ["phone_number", "'Phone 1 - Value', 'Phone 2 - Value'"]
    assert "a mobile label wins" in mapping[2][2]
    assert mapping[5][:2] == ["country", "'Address 1 - Country'"]
    # the problems table: the error first, then the warnings (with their messages)
    codes = [row[1] for row in problems[1:]]
    assert codes == ["phone_scientific", "multiple_values", "multiple_values"]
    assert "Google Contacts layout" in dom.stdout and "1 error, 2 warnings" in dom.stdout

    shot = tmp_path / "validation.png"
    run = subprocess.run(
        [*common, "--window-size=1300,700", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1300, 700)
    if os.environ.get("SYNCKIT_KEEP_SCREENSHOT"):  # to look at it: the path to write it to
        shutil.copy(shot, os.environ["SYNCKIT_KEEP_SCREENSHOT"])


def test_sync_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    """A SyncReport's HTML (outcome bars, problems by code) as a browser shows it."""
    browser = _chromium()
    df = synckit.read_csv(DATA / "google_contacts.csv")
    df = df.assign(phone_number=df["phone_number"].where(df.index != 3, "4.47911E+11"))
    with (
        synckit.serve_sandbox() as sandbox,
        synckit.Client(sandbox.url, token=sandbox.token) as client,
    ):
        report = synckit.upsert(df, client, progress=False)
    page = tmp_path / "report.html"
    page.write_text(
        '<!doctype html><meta charset="utf-8"><body style="background:#fff">'
        + report._repr_html_()
        + "</body>",
        encoding="utf-8",
    )
    common = [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    cells = _Cells()
    cells.feed(dom.stdout)
    outcomes = {row[0]: row[1] for row in cells.tables[0] if len(row) >= 2}
    # the fixture's four rows: three valid (sent), one with a spreadsheet-mangled phone
    assert outcomes == {
        "created": "3", "updated": "0", "unchanged": "0",
        "invalid": "1", "failed": "0", "skipped": "0",
    }  # fmt: skip
    assert "phone_scientific" in dom.stdout and "exit code 1" in dom.stdout
    shot = tmp_path / "report.png"
    run = subprocess.run(
        [*common, "--window-size=1000,600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("SYNCKIT_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["SYNCKIT_KEEP_SCREENSHOT"] + ".report.png")
