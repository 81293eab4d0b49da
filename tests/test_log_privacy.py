"""The JSON log promises never to write values (personal data): the conflict case too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synckit.cli import main
from synckit.client import Client
from synckit.sandbox import Sandbox


def test_two_contacts_conflict_logs_ids_not_values(
    sandbox: Sandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Client(sandbox.url, token=sandbox.token) as client:
        a = client.create_contact({"email": "owner.a@example.com", "phone_number": "+447400000001"})
        b = client.create_contact({"email": "owner.b@example.com", "phone_number": "+447400000002"})
    monkeypatch.setenv("SYNCKIT_BASE_URL", sandbox.url)
    monkeypatch.setenv("SYNCKIT_TOKEN", sandbox.token)
    for name in ("SYNCKIT_CLIENT_ID", "SYNCKIT_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    src = tmp_path / "in.csv"
    # Owner A's email with owner B's phone: two different contacts.
    src.write_text("email,phone_number\nowner.a@example.com,+447400000002\n", encoding="utf-8")
    for extra in ([], ["--dry-run"]):
        code = main(["sync", str(src), "--log-format", "json", "--no-progress",
                     "--report", str(tmp_path / "r.csv"), *extra])  # fmt: skip
        assert code == 1
        err = capsys.readouterr().err
        lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        problems = [line for line in lines if line.get("event") == "row_problem"]
        assert len(problems) == 1 and problems[0]["code"] == "conflict"
        assert a["id"] in problems[0]["message"] and b["id"] in problems[0]["message"]
        for value in ("owner.a@example.com", "+447400000002", "447400000002"):
            assert value not in err
