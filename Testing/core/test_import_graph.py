"""No import cycle in DeepDoseLib: the layers import downward only (STYLE.md).

The graph is read from the source with ``ast``: every ``import`` counts, also those inside functions
(a lazy import hides a cycle from Python's import machinery, not from the design). An edge goes to the
module imported, or to the package (its ``__init__``) when the name imported is not a module.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "DeepDoseLib"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> Dict[str, Set[str]]:
    """{module: modules it imports}, within DeepDoseLib."""
    files = {module_name(p): p for p in (ROOT / PACKAGE).rglob("*.py")}
    graph: Dict[str, Set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: List[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in files else module for a in node.names]
            for target in targets:
                while target and target not in files:  # `import DeepDoseLib.x.y` names a module; keep the known part
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    # the registry imports every method module by discovery (importlib): those are its imports too
    registry = f"{PACKAGE}.dose_methods.registry"
    graph[registry] |= {n for n in files if n.startswith(f"{PACKAGE}.dose_methods.") and n != registry}
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_graph_reads_relative_and_lazy_imports():
    graph = import_graph()
    assert "DeepDoseLib.inputs" in graph["DeepDoseLib.dose"]
    assert "DeepDoseLib.methods.led" in graph["DeepDoseLib.dose_methods.led"]  # imported inside run()


def test_no_import_cycle_in_deepdoselib():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in found)
