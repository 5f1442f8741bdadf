"""The package's import graph, read from the source: no cycles, and the library never imports its front doors.

Every import counts, wherever it is written: at the top, inside a function (lazy imports still run), under
``if TYPE_CHECKING:`` (a type-only arrow is still an arrow a reader has to follow), relative or absolute.
``from codeneedle.x import y`` is an arrow to ``codeneedle.x.y`` when ``y`` is a module, else to ``codeneedle.x``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import codeneedle

PACKAGE_DIR = Path(codeneedle.__file__).resolve().parent
LIBRARY = ("codeneedle.indexer", "codeneedle.training")
DOORS = ("codeneedle.cli", "codeneedle.console", "codeneedle.server")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """Every package module ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb level-1 packages above this module's own package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return {m for m in found if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one (Tarjan), each as a closed path a -> ... -> a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_in(graph, set(c)) for c in components]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest closed path through the component's first module (breadth-first back to it)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("a strongly connected component always closes")


def in_layer(module: str, layer: tuple[str, ...]) -> bool:
    return any(module == top or module.startswith(top + ".") or module.startswith(top + "_") for top in layer)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


# -- the rules ------------------------------------------------------------------------------------------------
def test_the_package_has_no_import_cycle(graph):
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_library_never_imports_a_front_door(graph):
    upward = sorted(f"{m} -> {t}" for m, targets in graph.items() if in_layer(m, LIBRARY)
                    for t in targets if in_layer(t, DOORS))
    assert not upward, "library modules importing the CLI/console/servers:\n" + "\n".join(upward)


# -- the reader itself ----------------------------------------------------------------------------------------
def test_every_kind_of_import_is_an_arrow(tmp_path, monkeypatch):
    pkg = tmp_path / "codeneedle"
    (pkg / "indexer").mkdir(parents=True)
    for name in ("__init__", "console", "indexer/__init__", "indexer/a", "indexer/b", "indexer/c", "indexer/d"):
        (pkg / f"{name}.py").write_text("")
    (pkg / "indexer" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"                          # relative, names a submodule
        "if TYPE_CHECKING:\n    from codeneedle.indexer.c import Thing\n"  # type-only
        "def later():\n    import codeneedle.console\n"  # lazy, absolute
        "from .d import helper\n")                   # relative, names a function
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE_DIR", pkg)
    modules = all_modules()
    assert imports_of("codeneedle.indexer.a", modules["codeneedle.indexer.a"], set(modules)) == {
        "codeneedle.indexer.b", "codeneedle.indexer.c", "codeneedle.indexer.d", "codeneedle.console"}


def test_a_cycle_is_reported_as_its_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_doors_are_the_cli_console_and_servers():
    assert in_layer("codeneedle.cli_options", DOORS) and in_layer("codeneedle.server.app", DOORS)
    assert in_layer("codeneedle.console", DOORS) and not in_layer("codeneedle.indexer.search", DOORS)
