"""``df.synckit``: the accessor is the library call, over real HTTP for the upserts."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pandas as pd
import pytest

import synckit
import synckit.accessor
from synckit.sandbox import Sandbox


@pytest.fixture
def frame() -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "email": ["Ada@Example.com ", "bad@", None, "grace@example.org"],
            "phone_number": [None, "020 7946 0018", "07400 123456", None],
            "first_name": ["Ada", "Bad", "Phone", "Grace"],
            "email_consent": ["Subscribed", None, None, "yes"],
        },
        index=pd.Index([2, 3, 4, 5], name="row"),
    )
    return df


def test_registered_on_dataframes() -> None:
    # The module's current class: another test reloads the module.
    current = synckit.accessor.SynckitAccessor
    assert isinstance(pd.DataFrame().synckit, current)
    assert pd.DataFrame.synckit is current


def test_import_registers_in_a_fresh_interpreter() -> None:
    code = "import pandas as pd, synckit.accessor\nprint(type(pd.DataFrame().synckit).__name__)\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "SynckitAccessor"


def test_reload_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = importlib.reload(synckit.accessor)
    assert isinstance(pd.DataFrame().synckit, module.SynckitAccessor)


def test_validate_matches_the_function(frame: pd.DataFrame) -> None:
    via_accessor = frame.synckit.validate(default_region="GB")
    direct = synckit.validate(frame, default_region="GB")
    pd.testing.assert_frame_equal(via_accessor.errors, direct.errors)
    pd.testing.assert_frame_equal(via_accessor.valid, direct.valid)
    # Options really reach validate: GB national numbers become +44 numbers.
    assert via_accessor.valid.loc[4, "phone_number"] == "+447400123456"
    assert set(via_accessor.errors["row"]) == {3, 5}


def test_validate_default_region_changes_the_outcome(frame: pd.DataFrame) -> None:
    us = frame.synckit.validate()  # default_region="US": a GB national number is not valid
    assert 4 in set(us.errors.loc[us.errors["field"] == "phone_number", "row"])


def test_upsert_creates_the_valid_rows(frame: pd.DataFrame, sandbox: Sandbox) -> None:
    with synckit.Client(sandbox.url, token=sandbox.token) as client:
        report = frame.synckit.upsert(client, default_region="GB", progress=False)
    statuses = report.rows["status"].astype(str).to_dict()
    assert statuses == {2: "created", 3: "invalid", 4: "created", 5: "invalid"}
    stored = {c["email"] or c["phone_number"] for c in sandbox.contacts()}
    assert stored == {"ada@example.com", "+447400123456"}


def test_dry_run_sends_no_write(frame: pd.DataFrame, sandbox: Sandbox) -> None:
    with synckit.Client(sandbox.url, token=sandbox.token) as client:
        plan = frame.synckit.dry_run(client, default_region="GB", progress=False)
    assert plan.dry_run
    assert sorted(plan.rows["status"].astype(str)) == [
        "invalid", "invalid", "would_create", "would_create"
    ]  # fmt: skip
    assert sandbox.contacts() == []
    assert not [r for r in sandbox.request_log() if r.method in ("POST", "PATCH", "DELETE")]


def test_dry_run_refuses_a_dry_run_flag(frame: pd.DataFrame, sandbox: Sandbox) -> None:
    with synckit.Client(sandbox.url, token=sandbox.token) as client, pytest.raises(TypeError):
        frame.synckit.dry_run(client, dry_run=False)
    assert sandbox.request_log() == []
