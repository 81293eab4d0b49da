"""tools/mutate.py plants the mutants it lists, in memory only (issue 16)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "mutate.py"

SOURCE = '''\
"""A module to mutate."""
import sys

LIMIT = 254


def too_long(text):
    return len(text) > LIMIT


def ok(flag):
    return not flag  # pragma: no mutate


if sys.platform == "win32":  # pragma: no cover - Windows only
    def lock():
        return 1 + 1
'''


@pytest.fixture
def tool(tmp_path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("_mutate_under_test", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        module.ROOT = tmp_path  # type: ignore[attr-defined]
        (tmp_path / "pkg").mkdir()
        (tmp_path / "pkg" / "__init__.py").write_text("")
        (tmp_path / "pkg" / "mod.py").write_text(SOURCE)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_lists_the_expected_mutants(tool: ModuleType) -> None:
    ids = [m.id for m in tool.list_mutants("pkg/mod.py")]
    assert ids == [
        "<LIMIT> | 254 | `254` -> `255`",
        "<LIMIT> | 254 | `254` -> `253`",
        "too_long | len(text) > LIMIT | `>` -> `>=`",
        "too_long | return len(text) > LIMIT | `return ...` -> `return None`",
    ]  # the pragma lines (no mutate, no cover) and the docstring are left alone


def test_a_child_process_imports_the_mutant_and_the_file_is_untouched(
    tool: ModuleType, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "sitecustomize.py").write_text(
        tool._SITECUSTOMIZE.format(env=tool._ENV, tool=str(TOOL), root=str(tmp_path))
    )
    probe = "import pkg.mod as m; print(m.LIMIT, m.too_long('x' * 254))"

    def run(mutant: str | None) -> str:
        env = {"PYTHONPATH": f"{work}:{tmp_path}", "PATH": "/usr/bin:/bin"}
        if mutant is not None:
            env[tool._ENV] = mutant
        done = subprocess.run(
            [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert run(None) == "254 False"
    assert run("pkg/mod.py::1") == "253 True"  # LIMIT 254 -> 253
    assert run("pkg/mod.py::2") == "254 True"  # > -> >=
    assert (tmp_path / "pkg" / "mod.py").read_text() == SOURCE


def test_a_decorator_mutant_runs_the_tests_that_name_its_class(
    tool: ModuleType, tmp_path: Path
) -> None:
    """A dataclass's generated methods have no source line coverage could see: the
    tests that name the class are run for a mutant of its decorator."""
    (tmp_path / "pkg" / "shapes.py").write_text(
        "from dataclasses import dataclass\n\n\n@dataclass(frozen=True)\nclass Point:\n"
        "    x: int = 0\n"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_shapes.py").write_text(
        "from pkg.shapes import Point\n\n\ndef test_frozen():\n    Point()\n\n\n"
        "def test_other():\n    pass\n"
    )
    frozen = next(m for m in tool.list_mutants("pkg/shapes.py") if "frozen" in m.id)
    cov = tool.CoverageMap(
        {}, {"tests/test_shapes.py::test_frozen[a]": 0.1, "tests/test_shapes.py::test_other": 0.1}
    )
    assert tool.tests_for(frozen, cov) == ["tests/test_shapes.py::test_frozen[a]"]
