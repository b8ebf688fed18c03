"""Layering rules (DESIGN.md section 2), checked on the source and on what really gets imported."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6")


def imported_roots(package_dir: Path) -> dict[str, set[str]]:
    """Top-level module names imported anywhere in each file of a package (static, includes lazy imports)."""
    found = {}
    for path in package_dir.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("vivim_core", QT + ("vivim_studio",)),
    ("vivim_studio/document", QT),
    ("vivim_studio/services", QT),
    ("vivim_studio/qt", ("torch",)),
])
def test_source_imports_respect_layers(package, forbidden):
    offenders = {f: sorted(n & set(forbidden)) for f, n in imported_roots(ROOT / package).items() if n & set(forbidden)}
    assert not offenders, f"{package} must not import {forbidden}: {offenders}"


def test_importing_every_core_module_loads_no_qt():
    code = (
        "import importlib, pkgutil, sys, vivim_core\n"
        "for m in pkgutil.walk_packages(vivim_core.__path__, 'vivim_core.'):\n"
        "    if not m.name.endswith('__main__') and 'triton' not in m.name:  # __main__ runs the CLI; Triton is optional\n"
        "        importlib.import_module(m.name)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {QT!r}]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_cli_help_does_not_import_torch():
    code = (
        "import sys\nfrom vivim_core.cli import build_parser\nbuild_parser().format_help()\n"
        "assert 'torch' not in sys.modules, 'torch imported by --help'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
