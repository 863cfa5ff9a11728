"""Layering: the engine (``hubkit/``) never imports a world (``hubkit_micro``) nor pytest.

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
def test_engine_module_imports_no_world_and_no_pytest(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rel = path.relative_to(REPO)
    bad = [f"{rel}:{line} imports {name}" for line, name in _imports(tree) if _top(name) == "hubkit_micro"]
    bad += [f"{rel}:{node.lineno} names the module {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and WORLD_NAME.fullmatch(node.value)]
    if path not in PYTEST_ALLOWED:
        bad += [f"{rel}:{line} imports {name} (only hubkit/pytest_plugin.py may)" for line, name in _imports(tree)
                if _top(name) in ("pytest", "_pytest", "pluggy")]
    assert not bad, "\n".join(bad)


def test_the_micro_world_is_its_own_package():
    assert not (ENGINE / "microworld").exists()
    assert (REPO / "hubkit_micro" / "__init__.py").is_file()
    assert not list((ENGINE / "judges").glob("micro*.py"))
