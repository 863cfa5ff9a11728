"""Installing hubkit puts only ``hubkit*`` names into site-packages.

The pytest layers live in repo-root folders (``fixtures/``, ``reports/``, ``hub_asserts/``) but install
as ``hubkit_fixtures``, ``hubkit_reports``, ``hubkit_asserts`` (setuptools ``package-dir``): a generic
top-level name such as ``fixtures`` (a PyPI package) would be shadowed by, or shadow, someone else's.
Importing a folder by its old name would also load the same module twice under two names (two
``StashKey`` objects, two plugin registrations), so no file may do that.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OLD_NAMES = {"fixtures": "hubkit_fixtures", "reports": "hubkit_reports", "hub_asserts": "hubkit_asserts"}
SKIP_DIRS = {".venv", "venv", "build", "dist", ".scratch", ".hubkit-cache", "__pycache__", ".git"}


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _top(name: str) -> str:
    return name.split(".")[0]


def test_pyproject_installs_only_hubkit_names():
    config = _setuptools_config()
    packages = config.get("packages")
    # `packages.find` cannot rename a folder, so it is how a generic name would come back.
    assert isinstance(packages, list), (
        "pyproject.toml: [tool.setuptools] packages must be an explicit list (with package-dir mapping "
        "fixtures/ reports/ hub_asserts/ to hubkit_* names), not packages.find"
    )
    names = set(packages) | set(config.get("py-modules", [])) | set(config.get("package-dir", {})) - {""}
    names |= set(config.get("package-data", {})) - {"*", ""}
    generic = sorted(n for n in names if not _top(n).startswith("hubkit"))
    assert not generic, f"pyproject.toml would install generic top-level names: {generic}"
    for new, folder in (("hubkit_fixtures", "fixtures"), ("hubkit_reports", "reports"), ("hubkit_asserts", "hub_asserts")):
        assert new in packages and config["package-dir"].get(new) == folder, f"{new} must map to {folder}/"


def _package_dir(name: str, package_dir: dict[str, str]) -> Path:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in package_dir:
            return ROOT / package_dir[prefix] / Path(*parts[cut:])
    return ROOT / package_dir.get("", ".") / Path(*parts)


def test_every_package_folder_is_listed():
    """The explicit list must not drop a subpackage (a wheel would silently lack it)."""
    config = _setuptools_config()
    packages, package_dir = config["packages"], config.get("package-dir", {})
    missing = []
    for top in sorted({_top(p) for p in packages}):
        base = _package_dir(top, package_dir)
        assert (base / "__init__.py").is_file(), f"{top}: {base} has no __init__.py"
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            name = ".".join((top, *rel.parts))
            if name not in packages and not SKIP_DIRS & set(rel.parts):
                missing.append(name)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_installed_distribution_has_only_hubkit_top_level_names():
    try:
        top_level = importlib.metadata.distribution("hubkit").read_text("top_level.txt")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("hubkit is not installed (pip install -e .)")
    if top_level is None:
        pytest.skip("the installed hubkit has no top_level.txt")
    generic = sorted(n for n in top_level.split() if not n.startswith("hubkit"))
    assert not generic, f"the installed hubkit exposes {generic}: reinstall with `pip install -e .`"


def test_names_resolve_outside_the_repo(tmp_path):
    """From another directory the new names find the repo folders and the old ones do not."""
    code = (
        "import importlib.util, json\n"
        "names = ['hubkit_fixtures', 'hubkit_reports', 'hubkit_asserts', 'fixtures', 'reports', 'hub_asserts']\n"
        "specs = {n: importlib.util.find_spec(n) for n in names}\n"
        "print(json.dumps({n: s.origin if s else None for n, s in specs.items()}))\n"
    )
    env = {"PATH": "", "PYTHONNOUSERSITE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    origins = json.loads(out.stdout)
    for old, new in OLD_NAMES.items():
        assert origins[new], f"{new} is not importable: pip install -e ."
        origin = origins[old]
        assert origin is None or not Path(origin).resolve().is_relative_to(ROOT), f"`import {old}` finds {origin}"


def _python_files():
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if not SKIP_DIRS & set(rel.parts) and not any(p.endswith(".egg-info") for p in rel.parts):
            yield path


def _old_name_imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if fname in {"import_module", "__import__", "importorskip"} and isinstance(node.args[0].value, str):
                modules = [node.args[0].value]
        elif isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytest_plugins" for t in node.targets):
            modules = [c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
        found += [(node.lineno, m) for m in modules if _top(m) in OLD_NAMES]
    return found


def test_no_file_imports_a_folder_by_its_old_name():
    bad = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        bad += [f"{path.relative_to(ROOT)}:{line}: {m} -> {OLD_NAMES[_top(m)]}" for line, m in _old_name_imports(tree)]
    assert not bad, "import the installed names, not the folders:\n" + "\n".join(bad)


def test_the_ast_check_sees_old_names():
    tree = ast.parse(
        "import fixtures\nfrom reports.html import attach\nimport importlib\nimportlib.import_module('hub_asserts')\n"
        "pytest_plugins = ['fixtures.session']\nimport hubkit_fixtures\nfrom . import reports\n"
    )
    assert sorted(m for _, m in _old_name_imports(tree)) == ["fixtures", "fixtures.session", "hub_asserts", "reports.html"]
