"""Schemathesis against the running sandbox, driven by shared/api/openapi.yaml.

Two things in openapi.yaml are adjusted in memory first, because the
contract (contacts-api.md wins over openapi.yaml) says otherwise:

* ``Contact`` is ``allOf: [ContactInput, {id, created_at, updated_at}]``, but
  ``ContactInput`` has ``additionalProperties: false``, so under JSON Schema no
  contact with an ``id`` can validate. The test flattens ``Contact`` into one
  object (still closed to unknown properties) so response checking stays on.
* ``email`` and ``phone_number`` also accept ``""``: the contract's rule is
  "at least one present and non-empty", so an empty identifier counts as
  absent (rules.check_contact) and the sandbox stores it as null, while the
  schema's format and pattern would require a rejection.
* The ``Idempotency-Key`` header parameter is dropped: schemathesis reuses
  short keys across unrelated requests, and the contract answers those with
  ``422 idempotency_key_reused`` (and ``400`` above 255 characters), which
  the schema does not list. Idempotency has its own tests in test_sandbox.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from synckit.sandbox import Sandbox

OPENAPI = Path("/work/shared/api/openapi.yaml")
if not OPENAPI.exists():  # the checkout's copy of the contract, when not on the team machine
    OPENAPI = Path(__file__).resolve().parents[2] / "shared" / "api" / "openapi.yaml"


def adjusted_schema() -> dict[str, Any]:
    schema: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())
    comps = schema["components"]
    contact_input = comps["schemas"]["ContactInput"]
    extra = comps["schemas"]["Contact"]["allOf"][1]
    for name in ("email", "phone_number"):
        props = contact_input["properties"]
        props[name] = {"anyOf": [props[name], {"const": ""}]}
    flat = copy.deepcopy(contact_input)
    flat["properties"].update(extra["properties"])
    flat["required"] = extra["required"]
    comps["schemas"]["Contact"] = flat
    comps["parameters"].pop("IdempotencyKey")
    for item in schema["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and "parameters" in op:
                op["parameters"] = [
                    p for p in op["parameters"]
                    if p.get("$ref") != "#/components/parameters/IdempotencyKey"
                ]  # fmt: skip
    return schema


@pytest.mark.skipif(not OPENAPI.exists(), reason="openapi.yaml not available")
def test_schemathesis_finds_no_failures(sandbox: Sandbox, tmp_path: Path) -> None:
    schema_path = tmp_path / "openapi.json"
    schema_path.write_text(json.dumps(adjusted_schema()))
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", str(schema_path),
        "--url", sandbox.url,
        "-H", f"Authorization: Bearer {sandbox.token}",
        "--max-examples", "15",
        "--seed", "20261121",
        "--no-shrink",
        "--workers", "1",
        "--checks", "all",
        # The schema's pattern and format accept phone numbers libphonenumber
        # rejects (+10) and any string as a cursor; the contract answers those
        # with a documented 422, which this check would call "valid data rejected".
        "--exclude-checks", "positive_data_acceptance",
        "--request-timeout", "10",
        "--output-sanitize", "true",
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert sandbox.request_log(), "schemathesis sent nothing"
    assert all(rec.status < 500 for rec in sandbox.request_log())
