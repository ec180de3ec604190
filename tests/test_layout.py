"""The package's structure, as the README's "Layout" section orders it: every import
(module-level or inside a function) points to its own layer or a lower one, no file imports
itself back through others, and no code outside a family's folder names a family."""

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "edgeaffect"

# Bottom to top; a module belongs to the layer of its first name under edgeaffect/.
LAYERS = (
    ("foundation", {"__init__", "errors", "_optional", "io", "logs", "progress", "schema", "keras_backend", "machine", "home"}),
    ("inputs", {"data", "media", "features", "runtime"}),
    ("contract", {"contract"}),
    ("device", {"device"}),
    ("train", {"train"}),
    ("export", {"export"}),
    ("roofline", {"roofline"}),
    ("measure", {"measure"}),
    ("remote", {"remote"}),
    ("demo", {"demo"}),
    ("report", {"report"}),
    ("families", {"families"}),
    ("workflows", {"workflows"}),
    ("cli", {"cli"}),
)
LEVEL = {part: i for i, (_, parts) in enumerate(LAYERS) for part in parts}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = {_module(p): p for p in PKG.rglob("*.py")}


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> set[str]:
    """Every edgeaffect module this one imports, lazy imports included (``from a import b``
    counts ``a.b`` where b is a module, else ``a``)."""
    path = MODULES[module]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, path.name == "__init__.py", node)
            subs = {f"{target}.{a.name}" for a in node.names} & MODULES.keys()
            found |= subs or {target}
    return {m for m in found if m in MODULES and m != module}


GRAPH = {m: _imports(m) for m in MODULES}


def _layer(module: str) -> int:
    parts = module.split(".")
    return LEVEL[parts[1] if len(parts) > 1 else "__init__"]


def test_every_module_has_a_layer():
    assert sorted(m for m in MODULES if (m.split(".") + ["__init__"])[1] not in LEVEL) == []


def test_imports_point_down():
    upward = sorted(f"{m} ({LAYERS[_layer(m)][0]}) -> {i} ({LAYERS[_layer(i)][0]})"
                    for m, deps in GRAPH.items() for i in deps if _layer(i) > _layer(m))
    assert upward == []


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


def test_no_file_level_import_cycle():
    """Package faces (``__init__``) that only hand names on are left out: importing a name
    through them is not a loop of the code's own."""
    graph = {m: {i for i in deps if MODULES[i].name != "__init__.py"} for m, deps in GRAPH.items()
             if MODULES[m].name != "__init__.py"}
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _family_words() -> set[str]:
    from edgeaffect.contract import list_families, list_models

    return set(list_families()) | set(list_models())


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _names_in_code(path: Path, words: set[str]) -> list[str]:
    """Family and model names in a file's code: string constants (docstrings aside) and
    identifiers (split at underscores). Comments and docstrings may cite a paper."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    pattern = re.compile(r"(?<!\w)(" + "|".join(map(re.escape, sorted(words, key=len, reverse=True))) + r")(?!\w)",
                         re.IGNORECASE)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            found += [f"{path.name}:{node.lineno} '{m}'" for m in pattern.findall(node.value)]
        names = []
        if isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names = [node.name]
        elif isinstance(node, ast.arg):
            names = [node.arg]
        for name in names:
            found += [f"{path.name}:{node.lineno} {name}" for part in name.lower().split("_") if part in words]
    return found


def test_no_shared_module_imports_a_family():
    """Shared code finds families through the registry, never by their module."""
    offenders = {m: sorted(i for i in deps if i.startswith("edgeaffect.families."))
                 for m, deps in GRAPH.items() if not m.startswith("edgeaffect.families")}
    assert {m: d for m, d in offenders.items() if d} == {}


def test_no_family_named_outside_the_families():
    words = {w.lower() for w in _family_words()}
    shared = [p for m, p in MODULES.items() if not m.startswith("edgeaffect.families.")]
    offenders = [hit for p in shared for hit in _names_in_code(p, words)]
    assert offenders == []


def test_the_name_finder_sees_code_not_comments(tmp_path):
    src = tmp_path / "x.py"
    src.write_text('"""Cites the aver paper."""\n# aver-ravdess in a comment\nMODEL = "aver-ravdess"\n'
                   'def load_aver():\n    return "averaged"\n')
    assert sorted(_names_in_code(src, {"aver", "aver-ravdess"})) == ["x.py:3 'aver-ravdess'", "x.py:4 load_aver"]


@pytest.mark.parametrize("family", ["contract", "device", "runtime"])
def test_device_side_layers_import_no_framework(family):
    """What runs on a Pi or a Jetson never imports TensorFlow or librosa at module level."""
    heavy = {"tensorflow", "tf_keras", "librosa", "tensorflow_model_optimization", "tf2onnx", "torch"}
    for m, p in MODULES.items():
        if m.split(".")[1:2] != [family]:
            continue
        tree = ast.parse(p.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names}
        names |= {(n.module or "").split(".")[0] for n in top if isinstance(n, ast.ImportFrom)}
        assert not names & heavy, (m, names & heavy)
