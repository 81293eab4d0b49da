#!/usr/bin/env python3
"""Mutation testing for synckit: plant one small bug at a time and count how many the tests notice.

Usage (from the repository root, with the dev virtualenv active)::

    nice -n 15 python tools/mutate.py synckit/rules.py synckit/errors.py

What it does, per module given:

1. Runs the tests once under coverage with one context per test
   (``pytest --cov-context=test``), so it knows which tests execute each line
   (cached by the hash of ``synckit/`` and ``tests/``; ``--fresh`` redoes it).
2. Plants mutants with :mod:`ast`: flipped comparisons (``<``/``<=``,
   ``==``/``!=``, ``in``/``not in``, ``is``/``is not``), ``and``/``or``, a
   dropped ``not``, ``True``/``False``, ±1 on numeric constants, ``+``/``-``
   and ``*``/``/``, ``return x`` → ``return None``, a dropped call statement,
   ``break``/``continue``. Lines marked ``# pragma: no mutate``, annotations,
   ``__all__``, ``if TYPE_CHECKING:`` blocks and ``if`` statements coverage
   excludes (``# pragma: no cover`` on the ``if`` line, e.g. a Windows-only
   branch: no test here runs it) are left alone.
3. Runs each mutant against only the tests that cover its statement (for a
   module-level constant or a decorator: the tests that cover the lines that
   use the name), fastest first, stopping at the first failure.
4. Prints a score table: killed / (mutants - listed equivalents). Survivors
   are listed with an id; a survivor that cannot change behaviour goes into
   ``tools/mutation_equivalents.toml`` with the reason, after review.

The mutant never touches a file: the test process (and any subprocess it
starts, through a ``sitecustomize`` on ``PYTHONPATH``) imports the module from
the mutated syntax tree by an import hook. Killing this script at any point
leaves the working tree as it was.

Why not mutmut or cosmic-ray: mutmut 3 skips decorated functions
(``@lru_cache`` on ``rules.is_valid_email``) and module constants, exactly
where this code base keeps its rules; cosmic-ray writes each mutant into the
source file on disk and runs one fixed test command for every mutant.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = Path(__file__).resolve().parent / "mutation_equivalents.toml"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "synckit-mutate"
_ENV = "SYNCKIT_MUTANT"  # "<relative path>::<mutant index>", read by the import hook
_PRAGMA = "pragma: no mutate"
_NO_COVER = "pragma: no cover"

# --------------------------------------------------------------------------- mutants

_COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
}
_SYMBOL = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.And: "and", ast.Or: "or",
}  # fmt: skip


@dataclass
class Mutant:
    """One planted bug: where it is, what it changes, and how to find the tests that matter."""

    index: int
    path: str  # relative to the repository root
    line: int
    change: str  # e.g. "`>` -> `>=`"
    snippet: str  # the source of the mutated node
    scope: str  # "is_valid_email", "APIError.__init__", "<module>"
    stmt_lines: tuple[int, int]  # the statement's lines coverage can see
    names: frozenset[str] = frozenset()  # for code run at import time: the names it defines
    in_body: bool = True  # inside a function body (else: runs at import time)
    span: tuple[int, int] | None = None  # a decorator's class or function: tests of its lines
    occurrence: int = 0

    @property
    def id(self) -> str:
        tail = f" #{self.occurrence + 1}" if self.occurrence else ""
        return f"{self.scope} | {self.snippet} | {self.change}{tail}"


class _Mutator(ast.NodeTransformer):
    """Walks a module in a fixed order; records every mutation point, or applies one of them.

    Listing and applying share this single traversal, so index ``k`` always
    means the same change.
    """

    def __init__(self, source: str, path: str, target: int | None = None) -> None:
        self.source = source
        self.lines = source.splitlines()
        self.path = path
        self.target = target
        self.points: list[Mutant] = []
        self._scope: list[str] = []
        self._in_body = False  # inside a function body
        self._names: frozenset[str] = frozenset()
        self._stmt: ast.stmt | None = None
        self._label = ""  # "key: " or "name=" before a constant, so its id says which one
        self._span: tuple[int, int] | None = None

    # -- bookkeeping
    def _skip(self, node: ast.AST) -> bool:
        line = getattr(node, "lineno", None)
        return line is not None and _PRAGMA in self.lines[line - 1]

    def _point(self, node: ast.AST, change: str) -> bool:
        """Record a point; True if it is the one to apply."""
        if self._skip(node):
            return False
        # A statement mutated as a whole (a dropped call, a return) is its own statement:
        # not the compound one around it, whose header may run only at import time.
        stmt = node if isinstance(node, ast.stmt) else self._stmt
        if isinstance(stmt, (ast.If, ast.While, ast.For, ast.With, ast.Try)) and getattr(
            stmt, "body", None
        ):
            # A compound statement: coverage sees its header lines, not the body's.
            lines = (stmt.lineno, max(stmt.lineno, stmt.body[0].lineno - 1))
        elif stmt is not None:
            lines = (stmt.lineno, stmt.end_lineno or stmt.lineno)
        else:
            lines = (getattr(node, "lineno", 0), getattr(node, "lineno", 0))
        snippet = " ".join((ast.get_source_segment(self.source, node) or "?").split())
        if len(snippet) > 70:
            snippet = snippet[:67] + "..."
        index = len(self.points)
        self.points.append(
            Mutant(
                index=index,
                path=self.path,
                line=getattr(node, "lineno", 0),
                change=change,
                snippet=(self._label + snippet) if isinstance(node, ast.Constant) else snippet,
                scope=".".join(self._scope) or f"<{','.join(sorted(self._names))}>",
                stmt_lines=lines,
                names=self._names,
                in_body=self._in_body,
                span=None if self._in_body else self._span,
            )
        )
        return index == self.target

    # -- scopes and statements
    def generic_visit(self, node: ast.AST) -> ast.AST:
        if isinstance(node, ast.stmt):
            outer, self._stmt = self._stmt, node
            try:
                return super().generic_visit(node)
            finally:
                self._stmt = outer
        return super().generic_visit(node)

    def _visit_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        # Decorators and defaults run at import time: select tests by the function's name.
        outer_names, self._names = self._names, frozenset({node.name})
        outer_stmt, self._stmt = self._stmt, node
        outer_span, self._span = self._span, (node.lineno, node.end_lineno or node.lineno)
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args = self.visit(node.args)
        self._names, self._stmt, self._span = outer_names, outer_stmt, outer_span
        self._scope.append(node.name)
        outer_body, self._in_body = self._in_body, True
        node.body = self._visit_body(node.body)
        self._in_body = outer_body
        self._scope.pop()
        return node

    visit_FunctionDef = _visit_def
    visit_AsyncFunctionDef = _visit_def

    def _visit_body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for i, stmt in enumerate(body):
            if (
                i == 0
                and isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                out.append(stmt)  # docstring
                continue
            new = self.visit(stmt)
            out.extend(new if isinstance(new, list) else [new])
        return out

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        outer_names, self._names = self._names, frozenset({node.name})
        outer_span, self._span = self._span, (node.lineno, node.end_lineno or node.lineno)
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.bases = [self.visit(b) for b in node.bases]
        node.keywords = [self.visit(k) for k in node.keywords]
        self._names, self._span = outer_names, outer_span
        self._scope.append(node.name)
        node.body = self._visit_body(node.body)
        self._scope.pop()
        return node

    def visit_arguments(self, node: ast.arguments) -> ast.AST:
        # Annotations are not behaviour; defaults are.
        node.defaults = [self.visit(d) for d in node.defaults]
        node.kw_defaults = [self.visit(d) if d is not None else None for d in node.kw_defaults]
        return node

    def visit_If(self, node: ast.If) -> ast.AST:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        ):
            return node
        if _NO_COVER in self.lines[node.lineno - 1]:
            # Excluded from coverage, as coverage excludes it (the whole statement, its
            # else too): code no test here can run, e.g. a Windows-only branch.
            return node
        return self.generic_visit(node)

    def _visit_assign(self, node: ast.Assign | ast.AnnAssign) -> ast.AST:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        if "__all__" in names:
            return node
        if isinstance(node, ast.AnnAssign):
            if node.value is None:
                return node
            if not self._in_body:
                outer, self._names = self._names, frozenset(names)
                outer_stmt, self._stmt = self._stmt, node
                node.value = self.visit(node.value)
                self._names, self._stmt = outer, outer_stmt
                return node
            outer_stmt, self._stmt = self._stmt, node
            node.value = self.visit(node.value)
            self._stmt = outer_stmt
            return node
        if not self._in_body:
            outer, self._names = self._names, frozenset(names)
            try:
                return self.generic_visit(node)
            finally:
                self._names = outer
        return self.generic_visit(node)

    visit_Assign = _visit_assign
    visit_AnnAssign = _visit_assign

    # -- the mutations
    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for i, op in enumerate(node.ops):
            swap = _COMPARE_SWAP.get(type(op))
            if swap is None:
                continue
            change = f"`{_SYMBOL[type(op)]}` -> `{_SYMBOL[swap]}`"
            if len(node.ops) > 1:
                change += f" (comparison {i + 1})"
            if self._point(node, change):
                node.ops[i] = swap()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        swap = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self._point(node, f"`{_SYMBOL[type(node.op)]}` -> `{_SYMBOL[swap]}`"):
            node.op = swap()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not) and self._point(node, "drop `not`"):
            return node.operand
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        swap = _BINOP_SWAP.get(type(node.op))
        if swap is not None and self._point(
            node, f"`{_SYMBOL[type(node.op)]}` -> `{_SYMBOL[swap]}`"
        ):
            node.op = swap()
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        swap = _BINOP_SWAP.get(type(node.op))
        if swap is not None and self._point(
            node, f"`{_SYMBOL[type(node.op)]}=` -> `{_SYMBOL[swap]}=`"
        ):
            node.op = swap()
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._point(node, f"`{value}` -> `{not value}`"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, (int, float)):
            for delta in (1, -1):
                new = value + delta
                if self._point(node, f"`{value!r}` -> `{new!r}`"):
                    return ast.copy_location(ast.Constant(new), node)
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        for i, (key, value) in enumerate(zip(node.keys, node.values, strict=True)):
            if key is not None:
                node.keys[i] = self.visit(key)
                self._label = (ast.get_source_segment(self.source, key) or "?") + ": "
            node.values[i] = self.visit(value)
            self._label = ""
        return node

    def visit_keyword(self, node: ast.keyword) -> ast.AST:
        self._label = f"{node.arg}=" if node.arg else ""
        node.value = self.visit(node.value)
        self._label = ""
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node  # f-strings: text, not logic

    def visit_Return(self, node: ast.Return) -> ast.AST:
        self.generic_visit(node)
        value = node.value
        if value is None or (isinstance(value, ast.Constant) and value.value is None):
            return node
        if self._point(node, "`return ...` -> `return None`"):
            return ast.copy_location(ast.Return(value=None), node)
        return node

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Call) and self._point(node, "drop the call"):
            return ast.copy_location(ast.Pass(), node)
        return node

    def visit_Break(self, node: ast.Break) -> ast.AST:
        if self._point(node, "`break` -> `continue`"):
            return ast.copy_location(ast.Continue(), node)
        return node

    def visit_Continue(self, node: ast.Continue) -> ast.AST:
        if self._point(node, "`continue` -> `break`"):
            return ast.copy_location(ast.Break(), node)
        return node


def list_mutants(path: str) -> list[Mutant]:
    """Every mutant of the module at ``path`` (relative to the repository root)."""
    source = (ROOT / path).read_text(encoding="utf-8")
    mutator = _Mutator(source, path)
    mutator.visit(ast.parse(source, filename=path))
    seen: Counter[tuple[str, str, str]] = Counter()
    for m in mutator.points:
        key = (m.scope, m.snippet, m.change)
        m.occurrence = seen[key]
        seen[key] += 1
    return mutator.points


def mutant_code(path: str, index: int) -> Any:
    """The compiled module with mutant ``index`` applied (line numbers kept)."""
    source = (ROOT / path).read_text(encoding="utf-8")
    tree = ast.parse(source, filename=path)
    mutator = _Mutator(source, path, target=index)
    tree = mutator.visit(tree)
    if index >= len(mutator.points):
        raise SystemExit(f"mutate: {path} has no mutant {index}")
    ast.fix_missing_locations(tree)
    return compile(tree, str(ROOT / path), "exec", dont_inherit=True)


def mutant_source(path: str, index: int) -> str:
    """The mutated statement as source, for showing a survivor."""
    source = (ROOT / path).read_text(encoding="utf-8")
    mutator = _Mutator(source, path, target=index)
    tree = mutator.visit(ast.parse(source, filename=path))
    line = mutator.points[index].line
    best: ast.AST | None = None
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and node.lineno <= line <= (node.end_lineno or node.lineno):
            best = node  # ast.walk is breadth-first: the last hit is the innermost
        elif isinstance(node, ast.expr) and node.lineno == line and best is None:
            best = node  # a decorator sits above its def's first line
    if best is None:
        return source.splitlines()[line - 1].strip()
    return " ".join(ast.unparse(best).split())[:200]


# --------------------------------------------------------------------------- the import hook


class _MutantLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, code: Any) -> None:
        super().__init__(fullname, path)
        self._code = code

    def get_code(self, fullname: str) -> Any:
        return self._code


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, path: str, index: int) -> None:
        self.file = ROOT / path
        self.fullname = ".".join(Path(path).with_suffix("").parts)
        if self.fullname.endswith(".__init__"):
            self.fullname = self.fullname[: -len(".__init__")]
        self.index = index

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.fullname:
            return None
        rel = str(self.file.relative_to(ROOT))
        loader = _MutantLoader(fullname, str(self.file), mutant_code(rel, self.index))
        package = [str(self.file.parent)] if self.file.name == "__init__.py" else None
        return importlib.util.spec_from_file_location(
            fullname, self.file, loader=loader, submodule_search_locations=package
        )


def install_hook(spec: str) -> None:
    """Called by the generated ``sitecustomize``: import the mutant instead of the module."""
    path, _, index = spec.rpartition("::")
    sys.meta_path.insert(0, _MutantFinder(path, int(index)))


# Loads a copy of this file taken at start, so editing it during a run changes nothing.
_SITECUSTOMIZE = """\
import os
if os.environ.get({env!r}):
    import importlib.util as _u
    import pathlib as _p
    _spec = _u.spec_from_file_location("_synckit_mutate", {tool!r})
    _mod = _u.module_from_spec(_spec)
    import sys as _s
    _s.modules["_synckit_mutate"] = _mod  # dataclasses look their module up there
    _spec.loader.exec_module(_mod)
    _mod.ROOT = _p.Path({root!r})
    _mod.install_hook(os.environ[{env!r}])
"""

# A pytest plugin for the coverage run: each test's duration and outcome.
_PLUGIN = """\
import json, os
_seen = {}
def pytest_runtest_logreport(report):
    d = _seen.setdefault(report.nodeid, [0.0, "passed"])
    d[0] += report.duration
    if report.failed:
        d[1] = "failed"
    elif report.skipped and report.when == "setup":
        d[1] = "skipped"
def pytest_sessionfinish(session):
    with open(os.environ["SYNCKIT_MUTATE_TIMES"], "w") as f:
        json.dump(_seen, f)
"""

# --------------------------------------------------------------------------- coverage map


@dataclass
class CoverageMap:
    """Which tests run each line (paths relative to the root), and how long each test takes."""

    lines: dict[str, dict[int, set[str]]]
    durations: dict[str, float]
    failed: set[str] = field(default_factory=set)


def _tree_hash(test_args: list[str]) -> str:
    digest = hashlib.sha256(" ".join(test_args).encode())
    for folder in ("synckit", "tests"):
        for file in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    for extra in ("pyproject.toml", "tools/mutate.py"):
        digest.update((ROOT / extra).read_bytes())
    return digest.hexdigest()[:20]


def build_coverage_map(work: Path, test_args: list[str], *, fresh: bool) -> CoverageMap:
    key = _tree_hash(test_args)
    cached = CACHE / f"{key}.json"
    if cached.exists() and not fresh:
        raw = json.loads(cached.read_text())
        print(f"mutate: coverage map from cache ({cached})", file=sys.stderr)
        return CoverageMap(
            {p: {int(k): set(v) for k, v in m.items()} for p, m in raw["lines"].items()},
            raw["durations"],
            set(raw["failed"]),
        )
    print("mutate: running the tests once under coverage (a context per test)", file=sys.stderr)
    (work / "_mutate_plugin.py").write_text(_PLUGIN)
    env = {
        **os.environ,
        "COVERAGE_FILE": str(work / ".coverage"),
        "SYNCKIT_MUTATE_TIMES": str(work / "times.json"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(work), os.environ.get("PYTHONPATH")])),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop(_ENV, None)
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
        "-p", "_mutate_plugin", "--cov=synckit", "--cov-context=test", "--cov-report=",
        *test_args,
    ]  # fmt: skip
    started = time.monotonic()
    done = _run(cmd, env=env, timeout=None, quiet=False)
    if done not in (0, 1):
        raise SystemExit(f"mutate: the coverage run failed (pytest exit {done})")
    from coverage import CoverageData

    data = CoverageData(basename=str(work / ".coverage"))
    data.read()
    lines: dict[str, dict[int, set[str]]] = {}
    for file in data.measured_files():
        try:
            rel = str(Path(file).resolve().relative_to(ROOT))
        except ValueError:
            continue
        per_line: dict[int, set[str]] = {}
        for line, contexts in data.contexts_by_lineno(file).items():
            tests = {c.rpartition("|")[0] for c in contexts if c}
            if tests:
                per_line[line] = tests
        lines[rel] = per_line
    times = json.loads((work / "times.json").read_text())
    durations = {k: float(v[0]) for k, v in times.items()}
    failed = {k for k, v in times.items() if v[1] == "failed"}
    print(f"mutate: coverage run took {time.monotonic() - started:.0f} s", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(
        json.dumps(
            {
                "lines": {p: {str(k): sorted(v) for k, v in m.items()} for p, m in lines.items()},
                "durations": durations,
                "failed": sorted(failed),
            }
        )
    )
    return CoverageMap(lines, durations, failed)


def _imported_from(node: ast.ImportFrom, rel: str) -> str:
    """The dotted module an ``import from`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = list(Path(rel).with_suffix("").parts)[: -node.level]
    return ".".join([*package, *([node.module] if node.module else [])])


@functools.cache
def _references(names: frozenset[str], module: str) -> dict[str, set[int]]:
    """Lines in synckit that use any of ``names`` defined in ``module`` (a relative path)."""
    dotted = ".".join(Path(module).with_suffix("").parts)
    short = dotted.rpartition(".")[2]
    out: dict[str, set[int]] = {}
    for file in sorted((ROOT / "synckit").rglob("*.py")):
        rel = str(file.relative_to(ROOT))
        tree = ast.parse(file.read_text(encoding="utf-8"))
        local = set(names) if rel == module else set()
        aliases: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _imported_from(node, rel)
                if source == dotted:
                    local |= {a.asname or a.name for a in node.names if a.name in names}
                elif f"{source}.{short}" == dotted:
                    aliases |= {a.asname or a.name for a in node.names if a.name == short}
        hits: set[int] = set()
        for node in ast.walk(tree):
            name_hit = (
                isinstance(node, ast.Name) and node.id in local and isinstance(node.ctx, ast.Load)
            )
            if name_hit or (
                isinstance(node, ast.Attribute)
                and node.attr in names
                and isinstance(node.value, ast.Name)
                and (node.value.id in aliases or node.value.id in ("self", "cls") or rel == module)
            ):
                hits.add(node.lineno)
        if hits:
            out[rel] = hits
    return out


@functools.cache
def _tests_naming(names: frozenset[str]) -> frozenset[str]:
    """Tests (node ids without parameters) whose own source names any of ``names``.

    Code a decorator generates (a dataclass's ``__init__``, ``__setattr__``...)
    has no source line, so coverage cannot tell which tests run it: a test that
    builds the class itself is found by its name instead.
    """
    out: set[str] = set()
    for file in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = str(file.relative_to(ROOT))
        tree = ast.parse(file.read_text(encoding="utf-8"))
        found: list[tuple[str, ast.AST]] = []
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((node.name, node))
            elif isinstance(node, ast.ClassDef):
                found += [
                    (f"{node.name}::{f.name}", f)
                    for f in node.body
                    if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                ]
        for name, func in found:
            if name.rpartition("::")[2].startswith("test") and any(
                (isinstance(n, ast.Name) and n.id in names)
                or (isinstance(n, ast.Attribute) and n.attr in names)
                for n in ast.walk(func)
            ):
                out.add(f"{rel}::{name}")
    return frozenset(out)


def tests_for(m: Mutant, cov: CoverageMap) -> list[str]:
    """The tests that can notice ``m``, fastest first."""
    tests: set[str] = set()
    per_line = cov.lines.get(m.path, {})
    if m.in_body:
        for line in range(m.stmt_lines[0], m.stmt_lines[1] + 1):
            tests |= per_line.get(line, set())
    else:
        for rel, hits in _references(m.names, m.path).items():
            for line in hits:
                tests |= cov.lines.get(rel, {}).get(line, set())
        if m.span is not None:  # a decorator: also the tests that run the decorated code
            for line in range(m.span[0], m.span[1] + 1):
                tests |= per_line.get(line, set())
        naming = _tests_naming(m.names)
        tests |= {t for t in cov.durations if t.partition("[")[0] in naming}
        if not tests:  # used nowhere we can see: every test that runs the module
            for found in per_line.values():
                tests |= found
    tests -= cov.failed
    return sorted(tests, key=lambda t: (cov.durations.get(t, 1.0), t))


# --------------------------------------------------------------------------- running


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(cmd: list[str], *, env: dict[str, str], timeout: float | None, quiet: bool) -> int:
    """Run in its own process group; on timeout or Ctrl-C the whole group dies. -1 = timeout."""
    out = subprocess.DEVNULL if quiet else None
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=out,
        start_new_session=True,
        # Tests send Ctrl-C to the programs they start; a shell's background job
        # ignores SIGINT and children would inherit that.
        preexec_fn=_default_sigint,
    )
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Result:
    mutant: Mutant
    outcome: str  # killed | timeout | survived | uncovered | equivalent | equivalent-killed
    tests: int
    seconds: float


def check_hook(work: Path, m: Mutant) -> None:
    """Stop unless a child process really imports the mutant (a broken hook would make
    every mutant 'survive')."""
    module = ".".join(Path(m.path).with_suffix("").parts).removesuffix(".__init__")
    probe = (
        f"import {module} as m, sys; "
        "sys.exit(0 if type(m.__spec__.loader).__name__ == '_MutantLoader' else 1)"
    )
    env = {**os.environ, _ENV: f"{m.path}::{m.index}", "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(work), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"mutate: the import hook does not load mutants:\n{done.stderr}")


def run_mutant(m: Mutant, tests: list[str], work: Path, cov: CoverageMap) -> tuple[str, float]:
    env = {
        **os.environ,
        _ENV: f"{m.path}::{m.index}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(work), os.environ.get("PYTHONPATH")])),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("COVERAGE_FILE", None)
    budget = sum(cov.durations.get(t, 1.0) for t in tests)
    timeout = max(60.0, 3 * budget + 30)
    cmd = [
        sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
        *tests,
    ]  # fmt: skip
    started = time.monotonic()
    code = _run(cmd, env=env, timeout=timeout, quiet=True)
    took = time.monotonic() - started
    if code == -1:
        return "timeout", took
    if code == 0:
        return "survived", took
    if code == 5:
        return "uncovered", took  # no test collected: nothing noticed it
    return "killed", took  # failures, or the mutant broke import/collection


def load_equivalents() -> dict[tuple[str, str], str]:
    if not EQUIVALENTS.exists():
        return {}
    data = tomllib.loads(EQUIVALENTS.read_text(encoding="utf-8"))
    out: dict[tuple[str, str], str] = {}
    for entry in data.get("equivalent", []):
        if not str(entry.get("reason", "")).strip():
            raise SystemExit(f"mutate: {EQUIVALENTS.name}: {entry.get('id')!r} has no reason")
        out[(entry["module"], entry["id"])] = entry["reason"]
    return out


def score_table(results: list[Result], modules: list[str]) -> str:
    rows = [
        "| module | mutants | killed | survived | equivalent (listed) | score |",
        "|---|---|---|---|---|---|",
    ]
    for module in modules:
        mine = [r for r in results if r.mutant.path == module]
        if not mine:
            continue
        count = Counter(r.outcome for r in mine)
        killed = count["killed"] + count["timeout"] + count["equivalent-killed"]
        equivalent = count["equivalent"]
        survived = count["survived"] + count["uncovered"]
        scored = len(mine) - equivalent
        score = f"{100 * killed / scored:.1f} %" if scored else "-"
        rows.append(
            f"| `{module}` | {len(mine)} | {killed} | {survived} | {equivalent} | {score} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Mutation testing: plant small bugs one at a time, count the ones tests notice."
    )
    parser.add_argument("modules", nargs="+", help="files to mutate, e.g. synckit/rules.py")
    parser.add_argument(
        "--tests",
        nargs="+",
        default=["tests"],
        help="test paths for the coverage run (default: tests)",
    )
    parser.add_argument("--only", help="run only mutants whose id or line contains this text")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--fresh", action="store_true", help="redo the coverage run")
    parser.add_argument(
        "--check-equivalents",
        action="store_true",
        help="run the listed equivalent mutants too (a killed one means the list is wrong)",
    )
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument(
        "--survivors-of",
        type=Path,
        help="run again only the mutants a --json run left alive (after adding tests)",
    )
    parser.add_argument(
        "--rescore",
        type=Path,
        help="run nothing: score the results a --json run wrote, with today's equivalents list",
    )
    args = parser.parse_args(argv)

    modules: list[str] = []
    for module in args.modules:
        path = Path(module).resolve()
        if not path.is_file() or ROOT not in path.parents:
            parser.error(f"{module}: not a file in {ROOT}")
        modules.append(str(path.relative_to(ROOT)))

    mutants = [m for module in modules for m in list_mutants(module)]
    if args.list:
        for m in mutants:
            print(f"{m.path}:{m.line}  {m.id}")
        return 0
    if args.only:
        mutants = [m for m in mutants if args.only in m.id or args.only == f"{m.path}:{m.line}"]

    equivalents = load_equivalents()
    known = {(m.path, m.id) for m in list_mutants_all(modules)}
    stale = [k for k in equivalents if k[0] in modules and k not in known]
    for module, ident in stale:
        print(f"mutate: stale entry in {EQUIVALENTS.name}: {module}: {ident}", file=sys.stderr)

    results: list[Result] = []
    if args.survivors_of:
        by_id = {(m.path, m.id): m for m in mutants}
        alive = []
        for item in json.loads(args.survivors_of.read_text()):
            found = by_id.get((item["path"], item["id"]))
            if found is None:
                print(f"mutate: no such mutant today: {item['id']}", file=sys.stderr)
            elif item["outcome"] in ("killed", "timeout", "equivalent-killed"):
                results.append(Result(found, "killed", item["tests"], item["seconds"]))
            else:
                alive.append(found)
        mutants = alive
    if args.rescore:
        by_id = {(m.path, m.id): m for m in mutants}
        for item in json.loads(args.rescore.read_text()):
            found = by_id.get((item["path"], item["id"]))
            if found is None:
                print(f"mutate: no such mutant today: {item['id']}", file=sys.stderr)
                continue
            outcome = item["outcome"].removeprefix("equivalent-")
            if outcome == "equivalent":
                outcome = "survived"
            if (found.path, found.id) in equivalents:
                outcome = "equivalent-killed" if outcome in ("killed", "timeout") else "equivalent"
            results.append(Result(found, outcome, item["tests"], item["seconds"]))
        return _finish(results, modules, args.json)
    work = Path(tempfile.mkdtemp(prefix="synckit-mutate-"))
    try:
        shutil.copyfile(Path(__file__).resolve(), work / "_synckit_mutate.py")
        (work / "sitecustomize.py").write_text(
            _SITECUSTOMIZE.format(env=_ENV, tool=str(work / "_synckit_mutate.py"), root=str(ROOT))
        )
        if mutants:
            check_hook(work, mutants[0])
        cov = build_coverage_map(work, args.tests, fresh=args.fresh)
        if cov.failed:
            print(f"mutate: {len(cov.failed)} test(s) fail unmutated; left out", file=sys.stderr)
        for n, m in enumerate(mutants, 1):
            tests = tests_for(m, cov)
            equivalent = (m.path, m.id) in equivalents
            if equivalent and not args.check_equivalents:
                outcome, took = "equivalent", 0.0  # reviewed: no test can tell
            elif not tests:
                outcome, took = "uncovered", 0.0
            else:
                outcome, took = run_mutant(m, tests, work, cov)
            if equivalent:
                outcome = "equivalent-killed" if outcome in ("killed", "timeout") else "equivalent"
            results.append(Result(m, outcome, len(tests), took))
            print(
                f"[{n}/{len(mutants)}] {outcome:9} {took:6.1f}s {len(tests):4} tests  "
                f"{m.path}:{m.line}  {m.id}",
                file=sys.stderr,
                flush=True,
            )
    except KeyboardInterrupt:
        print("mutate: interrupted; partial results below", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _finish(results, modules, args.json)


def _finish(results: list[Result], modules: list[str], json_path: Path | None) -> int:
    if json_path:  # first: the results are the expensive part
        rows = [
            {
                "path": r.mutant.path,
                "line": r.mutant.line,
                "id": r.mutant.id,
                "outcome": r.outcome,
                "tests": r.tests,
                "seconds": round(r.seconds, 2),
            }
            for r in results
        ]
        json_path.write_text(json.dumps(rows, indent=1))
    survivors = [r for r in results if r.outcome in ("survived", "uncovered")]
    if survivors:
        print("\nSurvivors (add a test, or list the id in tools/mutation_equivalents.toml):")
        for r in survivors:
            m = r.mutant
            print(f"- {m.path}:{m.line} [{r.outcome}] {m.id}")
            try:
                shown = mutant_source(m.path, m.index)
            except (IndexError, SyntaxError):  # the file was edited during the run
                shown = "(the module changed since the run: see its id)"
            print(f"    mutant: {shown}")
    wrong = [r for r in results if r.outcome == "equivalent-killed"]
    for r in wrong:
        print(f"mutate: listed as equivalent but a test killed it: {r.mutant.id}", file=sys.stderr)
    print()
    print(score_table(results, modules))
    return 0


def list_mutants_all(modules: list[str]) -> Iterator[Mutant]:
    for module in modules:
        yield from list_mutants(module)


if __name__ == "__main__":
    sys.exit(main())
