"""The package's structure: no import cycles, and the shared stages never import a family."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "edgeaffect"


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path, module_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgeaffect"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("edgeaffect")}
    return found


def _graph(module_level_only: bool) -> dict[str, set[str]]:
    modules = {_module(p): p for p in PKG.rglob("*.py")}
    return {m: {i for i in _imports(p, module_level_only) if i in modules and i != m} for m, p in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycles_at_import_time():
    assert _cycle(_graph(module_level_only=True)) is None


def test_shared_stages_never_import_a_family_module():
    """Only the family folders (and the CLI's per-family corpus commands) name a family."""
    graph = _graph(module_level_only=False)
    offenders = {m: sorted(i for i in deps if i.startswith("edgeaffect.families.") and
                           i.split(".")[2] not in ("base", "tasks"))
                 for m, deps in graph.items()
                 if not m.startswith("edgeaffect.families") and m != "edgeaffect.cli"}
    assert {m: d for m, d in offenders.items() if d} == {}
