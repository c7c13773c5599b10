"""OpenCV must be the pinned release and must not leave its bundled Qt in the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_cv2_is_the_pinned_release() -> None:
    from workstation.vision.cvcompat import cv2_module

    pinned = next(
        line.split("==")[1].split('"')[0]
        for line in (Path(__file__).resolve().parents[2] / "pyproject.toml")
        .read_text()
        .splitlines()
        if '"opencv-python-headless==' in line
    )
    assert cv2_module().__version__ == ".".join(pinned.split(".")[:3])


def test_cv2_qt_variables_are_removed() -> None:
    code = (
        "import os; from workstation.vision.cvcompat import cv2_module; import pathlib; "
        "cv2 = cv2_module(); d = pathlib.Path(cv2.__file__).resolve().parent; "
        "print([k for k in ('QT_QPA_PLATFORM_PLUGIN_PATH', 'QT_QPA_FONTDIR') "
        "if k in os.environ and str(d) in os.environ[k]])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QT_QPA_")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]"


def test_user_qt_variables_are_kept() -> None:
    code = (
        "import os; from workstation.vision.cvcompat import cv2_module; cv2_module(); "
        "print(os.environ.get('QT_QPA_FONTDIR'))"
    )
    env = {**os.environ, "QT_QPA_FONTDIR": "/usr/share/fonts/mine"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "/usr/share/fonts/mine"


def test_serial_inference_is_one_thread_until_its_last_user_leaves() -> None:
    from workstation.vision.cvcompat import cv2_module, serial_inference

    cv2 = cv2_module()
    default = cv2.getNumThreads()
    with serial_inference():
        assert cv2.getNumThreads() == 1
        with serial_inference():  # two enrolments at once
            assert cv2.getNumThreads() == 1
        assert cv2.getNumThreads() == 1  # the other is still running
        with serial_inference(active=False):
            assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == default


def test_qt_variables_are_undone_when_cv2_was_imported_before_the_guard(monkeypatch) -> None:
    # A test module or a library that runs `import cv2` first leaves OpenCV's variables set by
    # the time the guard imports it (found in the full suite: the GUI tests then saw them).
    from workstation.vision import cvcompat

    cv2 = cvcompat.cv2_module()
    bundled = str(Path(cv2.__file__).resolve().parent / "qt" / "plugins")
    monkeypatch.setattr(cvcompat, "_cv2", None)
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", bundled)
    monkeypatch.setenv("QT_QPA_FONTDIR", "/usr/share/fonts")
    cvcompat.cv2_module()
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ
    assert os.environ["QT_QPA_FONTDIR"] == "/usr/share/fonts"  # not OpenCV's: kept
