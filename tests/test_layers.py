"""Imports go one way (README, "Layout"): every module that is not an entry point
imports only from its own layer or the layers below, counting imports inside
functions. Read from the source, so it needs no database."""

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

# No database, broker or model weights: part of `make test-fast`.
pytestmark = pytest.mark.fast

# Bottom to top.
LAYERS = ["pipeline", "core", "organizations", "webhooks", "recognition", "gallery", "sightings", "frames"]
# Entry points sit on top of every layer and may import anything.
ENTRY_MODULES = {"admin", "apps", "forms", "tasks", "urls", "views"}
ENTRY_APPS = {"api"}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return "pipeline" if parts[1:3] == ["recognition", "pipeline"] else parts[1]


def is_entry_point(path: Path, root: Path) -> bool:
    parts = path.relative_to(root / "apps").with_suffix("").parts
    return parts[0] in ENTRY_APPS or "management" in parts or "migrations" in parts or parts[-1] in ENTRY_MODULES


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name


def violations(root: Path = REPO) -> list[str]:
    found = []
    for path in sorted((root / "apps").rglob("*.py")):
        if is_entry_point(path, root):
            continue
        layer = layer_of(".".join(path.relative_to(root).with_suffix("").parts))
        for line, imported in imported_modules(path):
            if imported.startswith("apps.") and LAYERS.index(layer_of(imported)) > LAYERS.index(layer):
                found.append(f"{path.relative_to(root)}:{line} ({layer}) imports {imported}")
    return found


def test_every_import_goes_down_the_layers():
    assert violations() == []


def test_every_app_has_a_layer():
    apps = {p.name for p in (REPO / "apps").iterdir() if (p / "__init__.py").exists()}
    assert apps - ENTRY_APPS <= set(LAYERS)


def test_the_check_sees_an_upward_import(tmp_path):
    """A gallery module importing the frame services is caught."""
    module = tmp_path / "apps" / "gallery" / "upward.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from apps.frames.services import identify\n")
    assert violations(tmp_path) == ["apps/gallery/upward.py:2 (gallery) imports apps.frames.services"]


MAX_MODULE_LINES = 400


def long_modules(root: Path) -> list[str]:
    """Modules over MAX_MODULE_LINES lines: a sign of one file doing several jobs."""
    folders = ["apps", "project", "benchmarks", "clients", "tools", "tests"]
    return [
        f"{path.relative_to(root)}: {lines} lines"
        for folder in folders
        for path in sorted((root / folder).rglob("*.py"))
        if "migrations" not in path.parts and (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]


def test_no_module_is_over_400_lines():
    assert long_modules(REPO) == []


def test_the_length_check_sees_a_long_module(tmp_path):
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "big.py").write_text("x = 1\n" * 401)
    (tmp_path / "apps" / "migrations").mkdir()
    (tmp_path / "apps" / "migrations" / "0001_initial.py").write_text("x = 1\n" * 900)
    assert long_modules(tmp_path) == ["apps/big.py: 401 lines"]
