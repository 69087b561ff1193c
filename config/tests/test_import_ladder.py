"""The apps form a ladder (docs/architecture.md, "The house"): a package imports only packages
below it, not even inside a function, and no modules import each other in a circle. Read from
the source's import statements, so a new arrow up or a new circle fails here before anyone
reads the diagram. Tests are left out: they exercise the composed house from any floor."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Lowest first; packages on one rung do not import each other.
LADDER: list[set[str]] = [
    {"common", "ctg"},
    {"audit"},
    {"accounts"},
    {"clinical"},
    {"monitoring"},
    {"alerts"},
    {"notifications"},
    {"hl7v2"},
    {"fhir_api"},
    {"operations"},
    {"frontend"},
    {"config"},
]
RUNG = {package: rung for rung, packages in enumerate(LADDER) for package in packages}
# Development tooling and test support stand outside the ladder: they may import any app, and
# no app imports them.
OUTSIDE = {"devtools", "testing"}


def _is_test(path: Path) -> bool:
    return "tests" in path.parts or path.name.startswith("test") or path.name == "conftest.py"


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in RUNG:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts or _is_test(relative):
                continue
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of the house that ``name`` (a module, or a name inside one) is, if any."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """The house's modules (and the packages outside it) that ``module`` imports anywhere in
    its source, with the line."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in OUTSIDE:
                yield name, node.lineno
                continue
            target = _resolve(name)
            if target is not None and target != module:
                yield target, node.lineno


GRAPH = {module: sorted(set(_imports(module, path))) for module, path in MODULES.items()}


def test_no_package_imports_a_package_above_it_beside_it_or_outside_the_house():
    upward = [
        f"{module}:{line} imports {target}"
        for module, targets in GRAPH.items()
        for target, line in targets
        if (a := module.split(".")[0]) != (b := target.split(".")[0])
        and (b in OUTSIDE or RUNG[b] >= RUNG[a])
    ]
    assert upward == []


def _circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other in a circle: the strongly connected
    components of two or more (Tarjan's algorithm, iteratively)."""
    circles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> Iterator[str]:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        return iter(sorted(edges.get(node, ())))

    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, visit(root))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    work.append((child, visit(child)))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while not component or component[-1] != node:
                    component.append(stack.pop())
                    on_stack.discard(component[-1])
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_no_modules_import_each_other_in_a_circle():
    edges = {module: {t for t, _ in targets if t in MODULES} for module, targets in GRAPH.items()}
    assert _circles(edges) == []


def test_the_ladder_names_every_package_and_sees_their_imports():
    # Every app of the house is on the ladder, and the reading of imports finds the arrows
    # the house is known to have (a broken reader would pass the two tests above vacuously).
    apps = {p.parent.name for p in ROOT.glob("*/apps.py")} - OUTSIDE
    assert apps <= set(RUNG), apps - set(RUNG)
    arrows = {(m.split(".")[0], t.split(".")[0]) for m, ts in GRAPH.items() for t, _ in ts}
    assert {("alerts", "monitoring"), ("monitoring", "clinical"), ("hl7v2", "notifications")} <= (
        arrows
    )
    assert ("monitoring.live.publish", "monitoring.live.hub") in {
        (m, t) for m, ts in GRAPH.items() for t, _ in ts
    }
    # And the circle finder finds a circle, however long, beside modules that are not in one.
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"a"}}) == [
        ["a", "b", "c"]
    ]
