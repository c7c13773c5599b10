"""Start the desktop app. `workstation`, `workstation gui`, `python -m workstation` and the
`workstation-gui` launcher all reach `run_app` through the program entry (workstation.entry)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from workstation.gui.application import create_application

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication, QMainWindow, QWidget


def install_error_hook(window: QMainWindow) -> tuple[Path, Callable[[], None]]:
    """Log any unexpected error with its traceback to a file and tell the user in plain words;
    the app keeps running. Returns the log file's path and a function that undoes the hook."""
    import traceback

    from workstation.paths import data_dir
    from workstation.permissions import make_private_dir

    log_path = data_dir() / "workstation.log"
    try:
        make_private_dir(log_path.parent)  # the log names probe photos and cases
        handler: logging.Handler = logging.FileHandler(log_path, encoding="utf-8")
    except OSError:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    log = logging.getLogger("workstation.gui")

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        with contextlib.suppress(RuntimeError):  # the window may already be gone
            window.statusBar().showMessage(
                f"Unexpected error ({kind.__name__}: {value}). The app keeps running; the "
                f"details are in {log_path}."
            )

    previous = sys.excepthook
    sys.excepthook = hook

    def uninstall() -> None:
        sys.excepthook = previous
        logging.getLogger().removeHandler(handler)
        handler.close()

    return log_path, uninstall


def run_app(
    gallery_dir: Path | str | None = None,
    user: str | None = None,
    backend: str | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Open the main window on a gallery and run until it closes; returns the exit code."""
    app = create_application(argv)
    from workstation.errors import WorkstationError
    from workstation.gui.context import AppContext
    from workstation.gui.main_window import MainWindowWidget
    from workstation.gui.passphrase import unlock_examiner_key
    from workstation.paths import default_gallery_dir
    from workstation.settings import Settings, load_history, load_settings

    problem = None
    try:
        settings = load_settings()
    except WorkstationError as exc:
        settings, problem = Settings(), f"{exc}. Default settings are used for this session."
    if backend:
        settings.backend = backend
    folder = Path(gallery_dir or settings.gallery or default_gallery_dir())
    context = AppContext(folder, user, settings, history=load_history())
    # A key protected by a passphrase is unlocked here, on the GUI thread, before any worker
    # needs it to sign.
    key_problem = unlock_examiner_key(context.examiner)
    if key_problem:
        problem = f"{problem}  {key_problem}" if problem else key_problem
    window = MainWindowWidget(context)
    _log_path, uninstall_hook = install_error_hook(window)
    window.show()
    # Load the models in the background now, so the first photo is quick and a missing or
    # altered model file is reported at once.
    context.pool.start(
        lambda _cancel: context.engine(),
        owner=window,
        on_error=lambda m: window.statusBar().showMessage(m),
    )
    from workstation.permissions import exposure_warnings

    problems = [problem] if problem else []
    problems += exposure_warnings(folder)
    if problems:
        for text in problems:
            logging.getLogger("workstation.gui").warning("%s", text)
        window.statusBar().showMessage("  ".join(problems))
    _quit_after_for_smoke_test(app, window)
    try:
        code = app.exec()
    finally:
        uninstall_hook()
    context.pool.cancel_all()
    context.pool.wait(5000)
    return int(code)


SMOKE_QUIT_ENV = "WORKSTATION_SMOKE_QUIT_AFTER_MS"


def _quit_after_for_smoke_test(app: QApplication, window: QWidget) -> None:
    """Quit by itself after WORKSTATION_SMOKE_QUIT_AFTER_MS (packaging/smoke_test runs the
    frozen app offscreen and needs it to end on its own); unset, nothing happens."""
    value = os.environ.get(SMOKE_QUIT_ENV, "").strip()
    if not value.isdigit():
        return
    from PySide6.QtCore import QTimer

    def quit_now() -> None:
        print(f"smoke test: window '{window.windowTitle()}' shown, quitting", flush=True)
        app.quit()

    QTimer.singleShot(int(value), quit_now)
