"""The package's architecture, checked: layers import only downwards, and only the methods
folder names a method."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from cam_core.methods import METHODS

PACKAGE = Path(__file__).resolve().parents[1] / "cam_core"

LAYERS = (
    {"errors", "storage", "progress", "locations", "jobs"},
    {"intake"},
    {"methods"},
    {"data"},
    {"modelling"},
    {"evaluation"},
    {"analysis"},
    {"review"},
    {"present"},
    {"cli", "__main__"},
)
"""Groups of ``cam_core``, lowest first: a group imports only from groups at or below it."""


def _group(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


def _level(group: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if group in layer)


def _sources() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cam_core"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cam_core"))
    return found


def test_every_module_belongs_to_a_layer() -> None:
    for path in _sources():
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        _level(top)  # raises StopIteration for a module outside every layer


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_from_a_higher_layer(path: Path) -> None:
    own = _level(path.relative_to(PACKAGE).parts[0].removesuffix(".py"))
    for module in _imports(path):
        if module == "cam_core":
            continue
        assert _level(_group(module)) <= own, f"{path.name} imports {module} from above"


def test_only_the_methods_folder_names_a_method() -> None:
    names = set(METHODS)
    for path in _sources():
        if path.relative_to(PACKAGE).parts[0] == "methods":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        literals = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not literals & names, f"{path.relative_to(PACKAGE)} names {literals & names}"
