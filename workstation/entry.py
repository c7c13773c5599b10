"""The program's entry point, above both the command line and the desktop app.

`workstation` (and `workstation-gui`, `python -m workstation`, the frozen build) start here.
The command line (workstation.cli and workstation.commands) never imports the GUI: this module
hands it what only the GUI package has, the desktop app and Qt's PDF writer, as hooks (the
`gui` command, or no command, starts the app; `export --pdf` draws the report with Qt). PySide6
is imported only when one of them is used, so `--help` and the other commands start fast and
run where Qt cannot.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workstation.cli import main as cli_main
from workstation.commands.context import AppHooks
from workstation.errors import WorkstationError

if TYPE_CHECKING:
    from workstation.reports.case_report import PageSetup


def run_gui(gallery_dir: Path, user: str | None, backend: str | None) -> int:
    """Open the desktop app on a gallery; returns its exit code."""
    try:
        from workstation.gui.app import run_app
    except ImportError as exc:
        raise WorkstationError(f"the desktop app cannot start: {exc}") from exc
    logging.basicConfig(level=logging.WARNING)
    return int(run_app(gallery_dir=gallery_dir, user=user, backend=backend))


def render_pdf(html: str, pdf_path: Path, images: Mapping[str, bytes], page: PageSetup) -> int:
    """Draw report HTML to a PDF with Qt (offscreen when there is no display)."""
    try:
        from workstation.gui.report_pdf import render_pdf as qt_render_pdf
    except ImportError as exc:
        raise WorkstationError(f"the PDF writer cannot start: {exc}") from exc
    return qt_render_pdf(html, pdf_path, images, page)


HOOKS = AppHooks(run_gui=run_gui, render_pdf=render_pdf)


def main(argv: Sequence[str] | None = None) -> int:
    """`workstation [options] [COMMAND ...]`: the desktop app by default, else a command."""
    return cli_main(argv, hooks=HOOKS)
