"""Quick checks of the packaging files (PyInstaller itself never runs inside pytest).

The frozen build is exercised by packaging/smoke_test; here: the files parse, name what they must,
are executable, and a frozen app finds its bundled models and still checks their hashes.
"""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from workstation.errors import ModelError
from workstation.vision import models

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
SCRIPTS = [
    PACKAGING / "build",
    PACKAGING / "smoke_test",
    PACKAGING / "lock",
    PACKAGING / "linux" / "install",
]


def test_spec_parses_as_python_and_names_the_pieces() -> None:
    source = (PACKAGING / "workstation.spec").read_text()
    tree = ast.parse(source, filename="workstation.spec")
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= called
    assert "models/manifest.json" in source  # hashes checked at build time
    assert "entry_point.py" in source
    assert '"insightface"' in source  # the optional backend is left out by default
    assert "cv2/qt/" in source  # OpenCV's own Qt 5 never ships
    assert (PACKAGING / "entry_point.py").is_file()


def _spec_list(name: str) -> list[str]:
    tree = ast.parse((PACKAGING / "workstation.spec").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{name} not found in the spec")


def _imported_top_level(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_modules_left_out_of_the_build_are_used_only_by_the_insightface_backend() -> None:
    """The frozen build drops these; any other module importing one would crash there."""
    left_out = set(_spec_list("INSIGHTFACE_ONLY"))
    assert "insightface" in left_out
    allowed = REPO / "workstation" / "vision" / "insightface_backend.py"
    offenders = {
        str(path.relative_to(REPO)): sorted(_imported_top_level(path) & left_out)
        for path in (REPO / "workstation").rglob("*.py")
        if path != allowed and _imported_top_level(path) & left_out
    }
    assert not offenders, f"add to the build or drop the import: {offenders}"


def test_entry_point_runs_the_program_entry() -> None:
    """The frozen build starts where `workstation` does: workstation.entry (CLI, app, PDF)."""
    tree = ast.parse((PACKAGING / "entry_point.py").read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert any(i.module == "workstation.entry" and i.names[0].name == "main" for i in imports)
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert config["project"]["scripts"]["workstation"] == "workstation.entry:main"
    assert config["project"]["gui-scripts"]["workstation-gui"] == "workstation.entry:main"


def test_desktop_file_has_the_required_keys() -> None:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(PACKAGING / "linux" / "workstation.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    for key in ("Type", "Name", "Exec", "Icon", "Categories", "Terminal"):
        assert entry.get(key), key
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "workstation"
    assert entry["Icon"] == "workstation"
    assert entry["Terminal"] == "false"
    assert entry["Categories"].endswith(";")
    validate = shutil.which("desktop-file-validate")  # desktop-file-utils, when installed
    if validate:
        subprocess.run([validate, str(PACKAGING / "linux" / "workstation.desktop")], check=True)


def test_icons_exist_and_are_what_they_claim() -> None:
    icons = REPO / "resources" / "icons"
    root = ET.parse(icons / "workstation.svg").getroot()
    assert root.tag.endswith("svg")
    png = (icons / "workstation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (256, 256)
    assert (icons / "workstation.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_executable_bash(script: Path) -> None:
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    if sys.platform != "win32":
        assert os.access(script, os.X_OK), f"{script} is not executable"
    bash = shutil.which("bash")
    if bash:
        subprocess.run([bash, "-n", str(script)], check=True)


def test_build_script_checks_the_model_manifest() -> None:
    text = (PACKAGING / "build").read_text()
    assert "resources/models/manifest.json" in text
    assert "load_verified" in text  # before PyInstaller
    assert "$INTERNAL/models" in text  # and the copies inside the build
    assert "opencv-python-headless" in text


def test_inno_setup_script_installs_the_windowed_executable() -> None:
    text = (PACKAGING / "windows" / "workstation.iss").read_text()
    assert "workstation-gui.exe" in text
    assert "dist\\workstation" in text
    assert "workstation-gui" in (PACKAGING / "workstation.spec").read_text()


def test_pyproject_has_a_build_extra_with_pyinstaller() -> None:
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert any(req.startswith("pyinstaller") for req in project["optional-dependencies"]["build"])


# ------------------------------------------------------------------ the lock file
def _locked() -> dict[str, tuple[str, list[str]]]:
    """{name: (version, [hashes])} from packaging/requirements.lock."""
    import re

    locked: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for line in (PACKAGING / "requirements.lock").read_text().splitlines():
        pin = re.match(r"^([A-Za-z0-9._-]+)==([^ \\;]+)", line)
        if pin:
            name = re.sub(r"[-_.]+", "-", pin.group(1)).lower()
            locked[name] = (pin.group(2), [])
        elif line.strip().startswith("--hash=sha256:"):
            locked[name][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif line and not line.startswith(("#", " ")):
            raise AssertionError(f"unpinned or unexpected line in the lock: {line!r}")
    return locked


def test_lock_pins_every_dependency_with_hashes() -> None:
    import re
    import tomllib

    locked = _locked()
    assert locked
    for name, (version, hashes) in locked.items():
        assert hashes, f"{name}=={version} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["build"], "setuptools"]
    for requirement in wanted:
        name = re.sub(r"[-_.]+", "-", re.split(r"[=<>!~ ;\[]", requirement)[0]).lower()
        assert name in locked, f"{name} (from pyproject.toml) is not in the lock"
        exact = re.search(r"==([0-9][^,; ]*)", requirement)
        if exact:
            assert locked[name][0] == exact.group(1), f"{name}: lock and pyproject.toml disagree"


def test_build_installs_only_from_the_lock_with_hashes() -> None:
    text = (PACKAGING / "build").read_text().replace("\\\n", " ")  # join continued lines
    installs = [line for line in text.splitlines() if "-m pip install" in line]
    assert len(installs) == 2, installs  # the locked set, then the project
    assert any("--require-hashes" in line for line in installs)
    assert "requirements.lock" in text
    # Nothing is resolved from the registry by name: the project itself goes in with --no-deps
    # and without build isolation (which would fetch setuptools unpinned).
    assert "$REPO[build]" not in text
    project = [line for line in installs if line.rstrip().endswith('"$REPO"')]
    assert len(project) == 1 and "--no-deps" in project[0]
    assert "--no-build-isolation" in text
    assert "packaging/lock" in text


# ------------------------------------------------------------------ frozen model lookup
def _fake_frozen_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tamper: bool = False) -> Path:
    bundle = tmp_path / "_internal"
    (bundle / "models").mkdir(parents=True)
    for key in models.load_manifest()["models"]:
        source = models.locate_model(key)
        target = bundle / "models" / source.name
        shutil.copyfile(source, target)
        if tamper:
            with open(target, "ab") as handle:
                handle.write(b"\0")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle), raising=False)
    return bundle


def test_not_frozen_means_no_bundled_folder() -> None:
    assert not getattr(sys, "frozen", False)
    assert models.bundled_model_dir() is None


def test_frozen_app_loads_its_bundled_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _fake_frozen_app(tmp_path, monkeypatch)
    assert models.bundled_model_dir() == bundle / "models"
    for key in models.load_manifest()["models"]:
        model = models.load_verified(key)
        assert model.path.parent == bundle / "models"


def test_frozen_app_still_refuses_a_tampered_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_frozen_app(tmp_path, monkeypatch, tamper=True)
    with pytest.raises(ModelError, match="altered or replaced"):
        models.load_verified(models.DEFAULT_RECOGNIZER)


def test_explicit_model_dir_wins_over_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_frozen_app(tmp_path, monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    path = models.locate_model(models.DEFAULT_DETECTOR, model_dir=elsewhere)
    assert path.parent == elsewhere
