"""Dependency floors sit above the published advisories, and the installed versions meet them.

The fixed versions below are the advisories' own "first patched version" (see
the comments in pyproject.toml for the identifiers); a floor below one would
let pip install a version with a known hole.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# package -> the newest first-patched version among its advisories that concern us
FIXED = {"werkzeug": "3.1.6", "requests": "2.33.0", "urllib3": "2.7.0"}


def floors() -> dict[str, Version]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out: dict[str, Version] = {}
    for text in project["dependencies"]:
        req = Requirement(text)
        lows = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
        if lows:
            out[req.name.lower()] = max(lows)
    return out


@pytest.mark.parametrize(("package", "fixed"), sorted(FIXED.items()))
def test_floor_is_above_the_advisories(package: str, fixed: str) -> None:
    assert package in floors(), f"{package} has no floor"
    assert floors()[package] >= Version(fixed)


def test_installed_versions_meet_the_floors() -> None:
    for package, floor in floors().items():
        assert Version(version(package)) >= floor, package
