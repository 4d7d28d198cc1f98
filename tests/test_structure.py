"""The shape of the package: no import cycles, modules short enough to read, the CLI a
thin layer (no private names used across modules, no SQL outside the storage layer)."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

SRC = ROOT / "src" / "facecluster"
MAX_LINES = 400
# The storage layer: the only modules that may hold SQL.
STORAGE = {
    "cache", "cache_writes", "dbfile", "generations", "person_store", "schema", "vector_log"
}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(p for p in parts if p != "__init__")
        out[name] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports when it is imported (not under TYPE_CHECKING,
    not inside functions)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body + node.orelse + node.finalbody)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".") if package else []
                    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    mod = node.module or ""
                    target = mod.removeprefix("facecluster").lstrip(".")
                    if not mod.startswith("facecluster"):
                        continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}".lstrip(".")
                    found.add(sub if sub in known else target)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("facecluster."):
                        found.add(alias.name.removeprefix("facecluster."))

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return {m for m in found if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            connect(v)
    return out


def test_no_import_cycles() -> None:
    mods = modules()
    known = set(mods)
    graph = {name: module_level_imports(name, path, known) for name, path in mods.items()}
    assert graph["cli"], "the checker must see the CLI's imports"
    assert cycles(graph) == []


def test_the_cycle_checker_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_every_module_is_short_enough_to_read() -> None:
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_private_name_is_used_across_modules() -> None:
    """A leading underscore means 'this module only': the CLI and the library talk through
    public names."""
    offenders = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            ours = isinstance(node, ast.ImportFrom) and (
                node.level or "facecluster" in (node.module or "")
            )
            if ours:
                offenders += [
                    f"{name}: {alias.name}"
                    for alias in node.names  # type: ignore[attr-defined]
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert offenders == []


def test_sql_lives_in_the_storage_layer() -> None:
    offenders = []
    for name, path in modules().items():
        if name in STORAGE:
            continue
        text = path.read_text(encoding="utf-8")
        for keyword in ("SELECT ", "INSERT ", "DELETE FROM", "UPDATE ", "PRAGMA "):
            if f'"{keyword}' in text or f"'{keyword}" in text:
                offenders.append(f"{name}: {keyword.strip()}")
    assert offenders == []
