"""The layout is the architecture: imports follow the data's one-way flow.

socket → transport → driver (stream) → dialect → events → pipeline → renderer →
stdout. Every import in ``forgectl/`` counts, function-level ones included; only
those under ``if TYPE_CHECKING:`` (annotations) do not.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "forgectl"

#: A module in the first group never imports one in the second.
FORBIDDEN: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    (
        ("forgectl.transport",),
        (
            "forgectl.stream",
            "forgectl.dialects",
            "forgectl.pipeline",
            "forgectl.filters",
            "forgectl.status",
            "forgectl.client",
            "forgectl.output",
            "forgectl.cli",
        ),
        "transports know bytes and frames, nothing above them",
    ),
    (
        ("forgectl.dialects",),
        (
            "forgectl.stream",
            "forgectl.pipeline",
            "forgectl.filters",
            "forgectl.status",
            "forgectl.client",
            "forgectl.output",
            "forgectl.cli",
        ),
        "dialects turn frames into events; the driver calls them, never the reverse",
    ),
    (
        ("forgectl.stream",),
        (
            "forgectl.pipeline",
            "forgectl.filters",
            "forgectl.status",
            "forgectl.client",
            "forgectl.output",
            "forgectl.cli",
        ),
        "the driver yields events; what consumes them sits above it",
    ),
    (
        ("forgectl.pipeline", "forgectl.filters", "forgectl.status"),
        (
            "forgectl.transport",
            "forgectl.stream",
            "forgectl.dialects",
            "forgectl.client",
            "forgectl.output",
            "forgectl.cli",
        ),
        "the pipeline sees events only: any stream, from any dialect, feeds it",
    ),
    (
        ("forgectl.output",),
        (
            "forgectl.transport",
            "forgectl.stream",
            "forgectl.dialects",
            "forgectl.client",
            "forgectl.cli",
        ),
        "renderers see events only",
    ),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:  # the else branch runs
                yield from _imports(child)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def imports_of(name: str) -> set[str]:
    """The forgectl modules ``name`` imports (a package's submodule when a name
    imported from it is one)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = name if _is_package(name) else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name in MODULES)
            continue
        if node.level:
            base = here.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        if target not in MODULES:
            continue
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            out.add(sub if sub in MODULES else target)
    out.discard(name)
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    return found


def test_the_checker_sees_function_level_imports() -> None:
    # The pipeline imports the errors inside a function only: a checker that
    # missed that would pass anything.
    assert "forgectl.errors" in GRAPH["forgectl.pipeline"]
    assert "forgectl.cli.main" in GRAPH["forgectl.__main__"]


def test_no_import_cycles() -> None:
    assert _cycles() == []


@pytest.mark.parametrize(("lower", "upper", "why"), FORBIDDEN)
def test_layers_import_downwards_only(
    lower: tuple[str, ...], upper: tuple[str, ...], why: str
) -> None:
    wrong = sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.startswith(lower)
        for target in targets
        if target.startswith(upper)
    )
    assert wrong == [], why


def test_the_core_never_imports_click() -> None:
    wrong = []
    for name, path in MODULES.items():
        if name.startswith("forgectl.cli") or name == "forgectl.__main__":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _imports(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            if any(n and n.split(".")[0] == "click" for n in names):
                wrong.append(name)
    assert wrong == []
