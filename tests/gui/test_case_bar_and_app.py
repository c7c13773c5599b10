"""The case bar and its dialog; starting the app (cv2's Qt variables removed first)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QDialogButtonBox

from tests.gui.analyst_support import CASE, WAIT_MS
from workstation.gui.case_bar import CaseBarWidget, CaseDialog
from workstation.gui.context import AppContext, CaseInfo
from workstation.settings import load_history


def test_dialog_needs_case_number_and_purpose(qtbot) -> None:
    dialog = CaseDialog(["2026-0001"], {"2026-0001": "find the driver"})
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()
    dialog.case_combo.setEditText("2026-0999")
    assert not ok.isEnabled()
    dialog.purpose_edit.setText("identify the person in still 4")
    assert ok.isEnabled()
    assert dialog.case_info() == CaseInfo("2026-0999", "identify the person in still 4")


def test_recent_case_fills_in_its_purpose(qtbot) -> None:
    dialog = CaseDialog(["2026-0001", "2026-0002"], {"2026-0002": "find the driver"})
    qtbot.addWidget(dialog)
    assert dialog.case_combo.count() == 2
    dialog.case_combo.setCurrentIndex(1)
    assert dialog.purpose_edit.text() == "find the driver"


def test_bar_shows_case_and_remembers_it(qtbot, tmp_path: Path) -> None:
    context = AppContext(tmp_path / "gallery", user="examiner7")
    bar = CaseBarWidget(context)
    qtbot.addWidget(bar)
    assert "none set" in bar.case_label.text()
    assert "examiner7" in bar.user_label.text()
    with qtbot.waitSignal(context.case_changed, timeout=WAIT_MS):
        bar.apply(CASE)
    assert CASE.case_id in bar.case_label.text() and CASE.purpose in bar.purpose_label.text()
    assert bar.ensure_case() == CASE  # no dialog when a case is set
    # Recent cases are the examiner's history, kept apart from the audited settings.
    assert load_history().recent_cases == [CASE.case_id]
    assert (tmp_path / "user-config" / "history.json").exists()
    assert not (tmp_path / "user-config" / "settings.json").exists()
    dialog = bar.make_dialog()
    qtbot.addWidget(dialog)
    assert dialog.case_combo.itemText(0) == CASE.case_id
    context.pool.wait()


def test_create_application_removes_cv2_qt_variables(qtbot, monkeypatch) -> None:
    from workstation.gui.application import create_application

    app = create_application()
    assert app is not None and app.applicationName() == "workstation"
    import cv2

    cv2_dir = str(Path(cv2.__file__).resolve().parent)
    for name in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        assert not os.environ.get(name, "").startswith(cv2_dir)


def test_run_app_opens_the_window_and_returns_an_exit_code(qtbot, tmp_path: Path) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from workstation.gui.app import run_app
    from workstation.gui.main_window import MainWindowWidget

    seen: list[str] = []

    def look_and_quit() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindowWidget)]
        seen.extend(str(w.context.gallery_dir) for w in windows if w.isVisible())
        for window in windows:
            window.close()
        QApplication.quit()

    QTimer.singleShot(0, look_and_quit)  # runs as soon as the event loop starts
    code = run_app(gallery_dir=tmp_path / "g", user="examiner1")
    assert code == 0
    assert str(tmp_path / "g") in seen


def test_unexpected_error_is_logged_and_reported_in_words(qtbot, tmp_path: Path) -> None:
    import sys

    from workstation.gui.app import install_error_hook
    from workstation.gui.main_window import MainWindowWidget

    window = MainWindowWidget(AppContext(tmp_path / "gallery", user="examiner1"))
    qtbot.addWidget(window)
    previous = sys.excepthook
    log_path, uninstall = install_error_hook(window)
    try:
        raise KeyError("face 17")
    except KeyError:
        sys.excepthook(*sys.exc_info())
    finally:
        uninstall()
    assert sys.excepthook is previous
    message = window.statusBar().currentMessage()
    assert "KeyError" in message and "keeps running" in message and str(log_path) in message
    assert "Traceback" in log_path.read_text(encoding="utf-8")
    window.context.pool.wait()


def test_first_start_on_a_new_gallery_registers_its_creator(qtbot, tmp_path: Path) -> None:
    """At first start every tab's worker opens the new gallery at once; the examiner must come
    out as its first administrator, not "not registered here" because one opening found the
    database busy while another was creating it."""
    from workstation.gui.main_window import MainWindowWidget

    context = AppContext(tmp_path / "new-gallery", user="examiner1")
    window = MainWindowWidget(context)
    qtbot.addWidget(window)
    context.pool.start(lambda _cancel: context.engine(), owner=context)
    qtbot.waitUntil(
        lambda: context.registration is not None or context.identity_problem is not None,
        timeout=WAIT_MS,
    )
    assert context.identity_problem is None
    assert context.registration is not None and "administrator" in context.registration.roles_text
    context.pool.wait()
