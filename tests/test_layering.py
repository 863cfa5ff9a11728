"""Layering: the engine (``hubkit/``) never imports a world (``hubkit_micro``), pytest, or the pytest layer
(``hubkit_fixtures``, ``hubkit_reports``); only ``hubkit/pytest_plugin.py``, the entry point that wires the
pytest layer in, may.

Worlds, judges and commands reach the engine through registries and entry points; the engine reaches
none of them by name. Every module is parsed with ``ast``: imports inside functions count too, and so does a
string naming a ``hubkit_micro`` module (``importlib.import_module("hubkit_micro...")``, an entry-point value).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "hubkit"
ENGINE_MODULES = sorted(ENGINE.rglob("*.py"))
WORLD_NAME = re.compile(r"hubkit_micro(\.\w+)*(:\w+)?")
PYTEST_ALLOWED = {ENGINE / "pytest_plugin.py"}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
    return out


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def test_the_engine_has_modules():
    assert ENGINE / "__init__.py" in ENGINE_MODULES and len(ENGINE_MODULES) > 20


@pytest.mark.parametrize("path", ENGINE_MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_engine_module_imports_no_world_and_no_pytest_layer(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(REPO)
    bad = [f"{rel}:{line} imports {name}" for line, name in _imports(tree) if _top(name) == "hubkit_micro"]
    bad += [f"{rel}:{node.lineno} names the module {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and WORLD_NAME.fullmatch(node.value)]
    if path not in PYTEST_ALLOWED:
        bad += [f"{rel}:{line} imports {name} (only hubkit/pytest_plugin.py may)" for line, name in _imports(tree)
                if _top(name) in ("pytest", "_pytest", "pluggy", "hubkit_fixtures", "hubkit_reports")]
    assert not bad, "\n".join(bad)


def test_the_micro_world_is_its_own_package():
    assert not (ENGINE / "microworld").exists()
    assert (REPO / "hubkit_micro" / "__init__.py").is_file()
    assert not list((ENGINE / "judges").glob("micro*.py"))


# -- the graph docs/architecture.md draws ---------------------------------------------------------------
LAYERS = {"suites": REPO / "suites", "hubkit_fixtures": REPO / "fixtures", "hubkit_reports": REPO / "reports",
          "hubkit_asserts": REPO / "hub_asserts", "hubkit_micro": REPO / "hubkit_micro", "hubkit": ENGINE}
PLUGIN = "hubkit.pytest_plugin"


def _layer_of_module(name: str) -> str | None:
    if name == PLUGIN or name.startswith(PLUGIN + "."):
        return PLUGIN
    return _top(name) if _top(name) in LAYERS else None


def _layer_of_path(path: Path) -> str:
    if path == ENGINE / "pytest_plugin.py":
        return PLUGIN
    return next(name for name, folder in LAYERS.items() if folder in path.parents)


def import_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for folder in LAYERS.values():
        for path in folder.rglob("*.py"):
            source = _layer_of_path(path)
            for _, name in _imports(ast.parse(path.read_text(encoding="utf-8"))):
                target = _layer_of_module(name)
                if target and target != source:
                    edges.setdefault(source, set()).add(target)
    return edges


def test_the_architecture_doc_draws_the_real_import_graph():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("<!-- import-graph: begin -->", 1)[1].split("<!-- import-graph: end -->", 1)[0]
    drawn = {}
    for line in block.splitlines():
        if "->" in line:
            source, targets = (part.strip() for part in line.split("->", 1))
            drawn[source] = {t.strip() for t in targets.split(",")}
    assert drawn == import_graph()


def test_data_flows_one_way():
    """No cycles between layers: every arrow goes from a layer to one that never reaches back."""
    graph = import_graph()

    def reaches(a: str, b: str, seen=()) -> bool:
        return any(t == b or (t not in seen and reaches(t, b, seen + (t,))) for t in graph.get(a, ()))

    cycles = [(a, b) for a in graph for b in graph[a] if reaches(b, a)]
    assert not cycles
