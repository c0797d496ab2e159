"""The source tree shows the architecture: packages by job, and no import cycles.

Imports are read from the source (so `if TYPE_CHECKING:` imports count: a cycle there is still a
cycle in the design), and importing `a.b.c` counts as importing the packages `a` and `a.b`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gateway

PACKAGE = Path(gateway.__file__).parent


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> Iterator[str]:
    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            target = known(name)
            if target is None:
                continue
            parts = target.split(".")
            yield from (".".join(parts[:i]) for i in range(1, len(parts) + 1))


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {
            target
            for target in _imports(path, modules)
            if target != name and not name.startswith(target + ".")  # a module's own parents
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_gateway_has_no_import_cycles() -> None:
    graph = import_graph()
    assert "gateway.call.bridge" in graph and "gateway.tools.runner" in graph
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_tools_package_never_imports_the_call() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("gateway.tools"):
            assert not any(t.startswith("gateway.call") for t in targets), name


def test_top_level_modules_are_few_and_families_are_packages() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert top == [
        "__init__", "__main__", "cli", "event_loop", "frame_batcher", "server", "settings",
    ]
    for package in PACKAGE.rglob("__init__.py"):
        stems = [p.stem for p in package.parent.glob("*.py") if p.stem != "__init__"]
        prefixes = [s.split("_")[0] for s in stems if "_" in s]
        crowded = {p for p in prefixes if prefixes.count(p) >= 3 and p in stems}
        assert not crowded, f"{package.parent}: modules {crowded}_* belong in a package"
