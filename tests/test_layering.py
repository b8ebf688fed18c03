"""Layering rules, checked on the source and on what really gets imported:

* vivim_core knows nothing of Qt or of the Studio;
* the Studio's document model and services are Qt-free;
* the Studio's Qt views talk to the document and the services only: from vivim_core they import nothing but
  `vivim_core.errors` (the base of the errors they show), and never torch;
* no module of the Studio imports another that imports it back (a cycle).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a file imports anywhere (static, includes lazy imports; a relative import
    resolved against the file's package; `from package import name` counts as package.name too)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)
    return names


def imported_roots(package_dir: Path) -> dict[str, set[str]]:
    """Top-level module names imported anywhere in each file of a package."""
    return {str(path.relative_to(ROOT)): {name.split(".")[0] for name in imported_modules(path)}
            for path in package_dir.rglob("*.py")}


@pytest.mark.parametrize("package, forbidden", [
    ("vivim_core", QT + ("vivim_studio",)),
    ("vivim_studio/document", QT),
    ("vivim_studio/services", QT),
    ("vivim_studio/qt", ("torch",)),
])
def test_source_imports_respect_layers(package, forbidden):
    offenders = {f: sorted(n & set(forbidden)) for f, n in imported_roots(ROOT / package).items() if n & set(forbidden)}
    assert not offenders, f"{package} must not import {forbidden}: {offenders}"


def test_qt_views_import_from_vivim_core_only_its_errors():
    offenders = {}
    for path in (ROOT / "vivim_studio" / "qt").rglob("*.py"):
        core = {n for n in imported_modules(path) if n.split(".")[0] == "vivim_core"}
        if core - {"vivim_core.errors", "vivim_core.errors.VivimError"}:
            offenders[str(path.relative_to(ROOT))] = sorted(core)
    assert not offenders, f"vivim_studio/qt must reach vivim_core through the services: {offenders}"


def test_studio_modules_import_no_cycle():
    """No module of the Studio imports, even lazily inside a function, a module that imports it back (a package
    importing its own submodules aside: Python imports a submodule's packages first anyway)."""
    files = {module_name(p): p for p in (ROOT / "vivim_studio").rglob("*.py")}
    graph = {}
    for name, path in files.items():
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = {m for m in imported_modules(path) if m in files} - ancestors - {name}
    cycles, done = [], set()

    def visit(name: str, trail: list[str]) -> None:  # depth first; `done`: modules whose imports hold no cycle
        if name in trail:
            cycles.append(trail[trail.index(name):] + [name])
            return
        if name not in done:
            for following in sorted(graph[name]):
                visit(following, trail + [name])
            done.add(name)

    for start in sorted(graph):
        visit(start, [])
    assert not cycles, f"import cycles: {cycles[:3]}"


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
