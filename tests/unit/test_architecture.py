"""Only workstation/gui/ may import Qt: the core, storage and reports must run headless."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "workstation"
QT_MODULES = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "PySide2")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_qt_import_outside_gui_package() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "gui" in path.relative_to(PACKAGE).parts:
            continue
        for module in _imported_modules(path):
            if module.split(".")[0] in QT_MODULES:
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert offenders == []


def test_only_the_program_entry_imports_the_gui() -> None:
    """The command line and the core never import workstation.gui (nor the entry above it): the
    entry hands them the app and the PDF renderer. Checks every module, imports inside
    functions included, so a new module cannot slip past the import-linter contract's list."""
    above = {PACKAGE / "entry.py", PACKAGE / "__main__.py"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path in above or "gui" in path.relative_to(PACKAGE).parts:
            continue
        for module in _imported_modules(path):
            if module.startswith(("workstation.gui", "workstation.entry")):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert offenders == []


def test_gui_package_does_import_qt() -> None:
    """Guards the check above against walking the wrong folder."""
    gui_imports = set().union(*(_imported_modules(p) for p in (PACKAGE / "gui").rglob("*.py")))
    assert any(name.startswith("PySide6") for name in gui_imports)


def test_import_linter_contract_holds() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run(
        [lint, "--no-cache"], cwd=PACKAGE.parent, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Only workstation.gui imports Qt KEPT" in result.stdout
    assert "Only the program entry reaches the GUI KEPT" in result.stdout
    assert "Layers: entry -> gui | cli" in result.stdout and "BROKEN" not in result.stdout


def test_every_module_is_in_a_layer() -> None:
    """A new top-level module or package must be placed in the layers contract (pyproject.toml,
    docs/ARCHITECTURE.md); a module left out of it would be checked by no layer."""
    contracts = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"][
        "importlinter"
    ]["contracts"]
    layers = next(c["layers"] for c in contracts if c["name"].startswith("Layers: entry"))
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    present = {
        f"workstation.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" or (path / "__init__.py").exists())
        and path.name not in ("__init__.py", "__main__.py")
    }
    assert present - placed == set(), "place these modules in the layers contract"
    assert placed - present == set(), "the layers contract names modules that do not exist"


def test_core_runs_without_qt_loaded() -> None:
    """Importing the CLI and core in a fresh interpreter must not pull in PySide6."""
    code = (
        "import sys, workstation.cli, workstation.gallery.search, workstation.gallery.enroll, "
        "workstation.reports.bundle, workstation.audit.log, workstation.vision.engine; "
        "print(any(m.startswith('PySide6') for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_every_package_ships_in_the_wheel() -> None:
    """pyproject.toml lists packages explicitly (to map resources/ in); a new one must be added."""
    import tomllib

    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(PACKAGE.parent).parts)
        for init in PACKAGE.rglob("__init__.py")
    }
    assert found - listed == set()


def test_sql_lives_in_the_gallery_and_the_audit_log_only() -> None:
    """The gallery owns the schema (issue 14): no SQL, connection or sqlite3 import elsewhere,
    so that another storage can implement the gallery's methods (issue 13)."""
    import re

    pattern = re.compile(
        r"import sqlite3|\bSELECT\b|\bINSERT INTO\b|\bDELETE FROM\b|\bUPDATE \w+ SET\b"
        r"|\.execute(many)?\(|\.conn\b|\b_conn\b|sqlite_utils"
    )
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] in ("gallery", "audit"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert offenders == []
