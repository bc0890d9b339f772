"""The library's shape: no import cycle between its modules, not even inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import aws_cloudwatch_logs_handler

PACKAGE = Path(aws_cloudwatch_logs_handler.__file__).parent
NAME = "aws_cloudwatch_logs_handler"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(part for part in parts if part != "__init__") or "__init__"


def _runtime_imports(tree: ast.AST, module: str, *, is_package: bool) -> set[str]:
    """The package's modules that ``module`` imports when it runs (anywhere in its code).

    Imports under ``if TYPE_CHECKING:`` are left out: they never run, so they cannot cycle.
    """
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level > 0:  # relative: from . import x / from ._x import y
                parts = [] if module == "__init__" else module.split(".")
                package = parts if is_package else parts[:-1]
                package = package[: len(package) - (node.level - 1)]
                prefix = "".join(f"{part}." for part in package)
                if node.module:
                    found.add(prefix + node.module)
                else:
                    found.update(prefix + alias.name for alias in node.names)
            elif node.module and node.module.startswith(NAME):
                found.add(node.module[len(NAME) :].lstrip(".") or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(f"{NAME}."):
                    found.add(alias.name[len(NAME) + 1 :])
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports at run time."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text())
        graph[module] = _runtime_imports(tree, module, is_package=path.name == "__init__.py")
    modules = set(graph)
    return {module: {m for m in imports if m in modules} for module, imports in graph.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a path of module names, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def walk(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := walk(target)):
                return cycle
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(graph):
        if module not in state and (cycle := walk(module)):
            return cycle
    return None


def test_the_library_has_no_import_cycle() -> None:
    """No module imports, directly or through others, a module that imports it back."""
    graph = import_graph()
    assert "_sender" in graph["_handler"]  # the walk found the package and its imports
    assert "cdk._alarm" in graph["cdk"]  # and relative imports inside the subpackage
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check itself can fail: a graph with a cycle is reported with its path."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
