"""The main window: composes the case bar, the search page and the other panels (cases,
gallery, audit log, footage, duplicates) as tabs; owns menus, toolbar, shortcuts, the status
bar, drops and the saved window layout. It holds no search or gallery logic of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from workstation import CAVEAT, __version__
from workstation.domain import CaseStatus
from workstation.gui.audit_viewer import AuditViewerWidget
from workstation.gui.case_bar import CaseBarWidget, remember_recent
from workstation.gui.cases_panel import CasesPanelWidget
from workstation.gui.compare_view import CompareDialog
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.duplicates_page import DuplicatesWidget
from workstation.gui.examiners_dialog import ExaminersDialog
from workstation.gui.footage_panel import FootagePanelWidget
from workstation.gui.gallery_manager import GalleryManagerWidget
from workstation.gui.redaction_dialog import RedactionDialog
from workstation.gui.report_pdf import export_case_report_in_app
from workstation.gui.search_page import SearchPageWidget
from workstation.gui.settings_dialog import SettingsDialog
from workstation.gui.tasks import TaskWidget
from workstation.gui.text import plain_label, show_message
from workstation.gui.watch_panel import WatchNoticeBar
from workstation.paths import config_dir, default_gallery_dir
from workstation.reports.case_report import bundle_path_for
from workstation.vision.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

IMAGE_FILTER = (
    "Images (" + " ".join(f"*{suffix}" for suffix in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"
)


def window_settings() -> QSettings:
    """Window layout, kept in workstation's own config folder (never Qt's default location)."""
    return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)


class MainWindowWidget(QMainWindow):
    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle(f"workstation {__version__}: face search (investigative leads only)")
        self.setAcceptDrops(True)
        self.case_bar = CaseBarWidget(context, self)
        # Every panel that reads records asks for a case through the case bar's dialog.
        context.case_asker = self.case_bar.ask_case
        self.search_page = SearchPageWidget(context, self.case_bar.ensure_case, self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.search_page, "Search")
        # Every tab is a plain import: a tab that cannot be imported or built stops the app
        # with its error, never a window quietly missing a tab.
        self.cases_panel = CasesPanelWidget(context)
        self.gallery_manager = GalleryManagerWidget(context)
        self.audit_viewer = AuditViewerWidget(context)
        self.footage_panel = FootagePanelWidget(context)
        self.duplicates_page = DuplicatesWidget(context)
        self.panels: dict[str, QWidget] = {
            "Cases": self.cases_panel,
            "Gallery": self.gallery_manager,
            "Audit log": self.audit_viewer,
            "Footage": self.footage_panel,
            "Duplicates": self.duplicates_page,
        }
        for title, panel in self.panels.items():
            self.tabs.addTab(panel, title)
        self.footage_panel.probe_frame_chosen.connect(self._on_frame_chosen)
        self.cases_panel.case_opened.connect(self._on_case_opened)
        self.case_bar.case_status_shown.connect(self._on_case_status)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.case_bar)
        # New hits of the watches on this examiner's cases: read at start and after enrolments.
        self.watch_notices = WatchNoticeBar(context, self)
        self.watch_notices.open_case.connect(self._open_watched_case)
        layout.addWidget(self.watch_notices)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.compare_dialog: QDialog | None = None
        self.examiners_dialog: ExaminersDialog | None = None
        # By key ("search", "draw"...); it hides QWidget.actions(), which nothing here calls.
        self.actions: dict[str, QAction] = {}  # type: ignore[assignment]
        self._build_actions()
        self._build_menus_and_toolbar()
        self.gallery_label = plain_label("", self)  # folder and examiner names, as typed
        self.statusBar().addPermanentWidget(self.gallery_label)
        self._update_gallery_label()
        context.status_message.connect(self._on_status_message)
        context.case_changed.connect(self._on_case_changed)
        self.search_page.probe.file_opened.connect(self._on_file_opened)
        self.search_page.candidates.compare_requested.connect(self.open_compare)
        self._on_case_changed(context.case)
        self.resize(1400, 900)
        self.restore_layout()
        self.statusBar().showMessage("Ready. Open or drop a photo to begin.")
        self.watch_notices.check()

    # ------------------------------------------------------------------ actions
    def _action(self, key: str, text: str, shortcuts: list[str], slot: Any, tip: str = "") -> None:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        keys = ", ".join(
            QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in shortcuts
        )
        action.setToolTip(f"{tip or text} ({keys})" if keys else tip or text)
        action.setStatusTip(tip or text)
        action.triggered.connect(slot)
        self.addAction(action)
        self.actions[key] = action

    def _build_actions(self) -> None:
        page, probe, canvas = (
            self.search_page,
            self.search_page.probe,
            self.search_page.probe.canvas,
        )
        self._action(
            "open", "&Open photo…", ["Ctrl+O"], self.open_photo_dialog, "Open a probe photo"
        )
        self._action(
            "open_folder",
            "Open &folder…",
            ["Ctrl+Shift+O"],
            self.open_folder_dialog,
            "Open every photo in a folder, one after another",
        )
        self._action("next_photo", "Next photo", ["Alt+Right"], probe.next_photo)
        self._action("previous_photo", "Previous photo", ["Alt+Left"], probe.previous_photo)
        self._action(
            "export",
            "&Export case report…",
            ["Ctrl+E"],
            self.export_dialog,
            "Write the case report (PDF) and the evidence bundle (JSON)",
        )
        self._action(
            "redaction",
            "&Redaction before export…",
            ["Ctrl+Shift+R"],
            self.redaction_dialog,
            "Review which faces the exported report blurs; un-redact one with a note, or add a box",
        )
        self._action("settings", "&Settings…", ["Ctrl+,"], self.open_settings)
        self._action("quit", "&Quit", ["Ctrl+Q"], self.close)
        self._action(
            "case",
            "Set &case…",
            ["Ctrl+K"],
            self.case_bar.ask_case,
            "Set the case number and purpose",
        )
        self._action(
            "close_case",
            "Leave case",
            ["Ctrl+Shift+K"],
            lambda: self.context.set_case(None),
            "Set no current case (closing a case for good is in the Cases tab)",
        )
        self._action(
            "examiners",
            "E&xaminers…",
            ["Ctrl+Shift+E"],
            self.open_examiners,
            "Who may act in this gallery; administrators register, change roles, revoke",
        )
        self._action(
            "draw",
            "&Draw box",
            ["D"],
            probe.start_drawing,
            "Draw a box around a face the detector missed",
        )
        self._action("next_face", "Next face", ["]"], lambda: probe.select_next_face(1))
        self._action("previous_face", "Previous face", ["["], lambda: probe.select_next_face(-1))
        self._action(
            "search", "&Search this face", ["Ctrl+Return", "Ctrl+Enter"], page.search_selected
        )
        self._action("search_each", "Search &each face", ["Ctrl+Shift+Return"], page.search_each)
        self._action(
            "cancel",
            "Cancel",
            ["Esc"],
            self.cancel_current_task,
            "Stop the search, scan or enrolment running in the tab in view",
        )
        self._action("zoom_in", "Zoom &in", ["Ctrl++", "Ctrl+="], canvas.zoom_in)
        self._action("zoom_out", "Zoom &out", ["Ctrl+-"], canvas.zoom_out)
        self._action("fit", "&Fit to window", ["Ctrl+0"], canvas.fit_to_window)
        self._action("actual", "&Actual size (1:1)", ["Ctrl+1"], canvas.actual_size)
        self._action(
            "compare",
            "&Compare with candidate",
            ["C"],
            self.open_compare,
            "Compare the probe with the chosen candidate side by side",
        )
        self._action(
            "blind",
            "&Blind review",
            ["Ctrl+B"],
            page.candidates.blind_box.toggle,
            "Hide ranks and scores until every candidate has your decision",
        )
        self._action("reload", "Reload case searches", ["F5"], lambda: page.candidates.reload())
        self._action("about", "&About and caveat", ["F1"], self.show_about)
        for number in range(self.tabs.count()):
            title = self.tabs.tabText(number)
            self._action(
                f"tab_{number}",
                f"Go to {title}",
                [f"Alt+{number + 1}"],
                lambda _=False, n=number: self.tabs.setCurrentIndex(n),
            )
        self.actions["draw"].setCheckable(True)
        canvas.draw_mode_changed.connect(self.actions["draw"].setChecked)
        self.actions["blind"].setCheckable(True)
        page.candidates.blind_box.toggled.connect(self.actions["blind"].setChecked)

    def _build_menus_and_toolbar(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for opener in ("open", "open_folder"):
            file_menu.addAction(self.actions[opener])
        self.recent_menu = file_menu.addMenu("Recent files")
        self.recent_menu.aboutToShow.connect(self._on_recent_menu_shown)
        for key in (
            "next_photo",
            "previous_photo",
            None,
            "redaction",
            "export",
            None,
            "settings",
            None,
            "quit",
        ):
            file_menu.addSeparator() if key is None else file_menu.addAction(self.actions[key])
        menus = {
            "&Case": ("case", "close_case", None, "examiners"),
            "F&ace": (
                "draw",
                "next_face",
                "previous_face",
                None,
                "search",
                "search_each",
                "cancel",
            ),
            "&View": (
                "zoom_in",
                "zoom_out",
                "fit",
                "actual",
                None,
                *[k for k in self.actions if k.startswith("tab_")],
            ),
            "&Review": ("compare", "blind", "reload"),
            "&Help": ("about",),
        }
        for title, keys in menus.items():
            menu = bar.addMenu(title)
            for key in keys:
                menu.addSeparator() if key is None else menu.addAction(self.actions[key])
        toolbar = QToolBar("Main", self)
        toolbar.setObjectName("mainToolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for key in (
            "open",
            "case",
            None,
            "draw",
            "fit",
            "actual",
            None,
            "search",
            "search_each",
            "compare",
            "blind",
            None,
            "export",
        ):
            toolbar.addSeparator() if key is None else toolbar.addAction(self.actions[key])
        self.addToolBar(toolbar)

    # ------------------------------------------------------------------ opening photos
    def open_paths(self, paths: list[Path]) -> int:
        self.tabs.setCurrentWidget(self.search_page)
        return self.search_page.probe.open_paths(paths)

    def open_photo_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open probe photo", "", IMAGE_FILTER)
        if files:
            self.open_paths([Path(f) for f in files])

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of photos")
        if folder:
            self.open_paths([Path(folder)])

    def _on_recent_menu_shown(self) -> None:
        self.recent_menu.clear()
        recent = self.context.history.recent_files
        if not recent:
            self.recent_menu.addAction("(none)").setEnabled(False)
        for path in recent:
            self.recent_menu.addAction(path, self._opener(Path(path)))

    def _opener(self, path: Path) -> Callable[[], None]:
        # No parameters: Qt would hand a parameter the action's `checked` flag.
        return lambda: self._open_one(path)

    def _open_one(self, path: Path) -> None:
        self.open_paths([path])

    def _on_file_opened(self, path: str) -> None:
        remember_recent(self.context, "recent_files", path)

    def _on_case_status(self, status: CaseStatus) -> None:
        """A closed or archived case's decisions stay readable but cannot be added to."""
        why = {
            CaseStatus.OPEN: None,
            CaseStatus.CLOSED: "The case is closed: reopen it (Cases tab) to record decisions",
            CaseStatus.ARCHIVED: "The case is archived: it is read-only",
        }[status]
        self.search_page.decisions.set_locked(why)

    def _open_watched_case(self, case: CaseInfo, search_id: int) -> None:
        """A watch's hit: its case becomes the current one, showing the re-search that found it."""
        if self.context.case != case:
            self.context.set_case(case)
        self.search_page.candidates.reload(select_search_id=search_id)
        self._on_case_opened(case)

    def _on_case_opened(self, case: CaseInfo) -> None:
        """A case opened from the Cases tab: remembered, and its searches shown."""
        remember_recent(self.context, "recent_cases", case.case_id)
        self.tabs.setCurrentWidget(self.search_page)

    def _on_frame_chosen(self, frame: Any) -> None:
        self.tabs.setCurrentWidget(self.search_page)
        self.search_page.probe.load_frame(frame, self.footage_panel.lineage_for(frame))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def cancel_current_task(self) -> None:
        """Esc: cancel the work running in the tab in view (what its Cancel button does)."""
        current = self.tabs.currentWidget()
        for task in current.findChildren(TaskWidget) if current is not None else []:
            task.cancel()

    # ------------------------------------------------------------------ review and export
    def open_compare(self) -> None:
        candidates = self.search_page.candidates
        if candidates.current_candidate() is None:
            self.statusBar().showMessage("Choose a candidate to compare first.", 8000)
            return
        if self.compare_dialog is not None:
            self.compare_dialog.close()
        dialog = CompareDialog(self.context, candidates, self.search_page.probe.image, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda: setattr(self, "compare_dialog", None))
        self.compare_dialog = dialog
        dialog.show()

    def redaction_dialog(self) -> RedactionDialog | None:
        """The Redaction step: what the export of the current case blurs (see the dialog)."""
        case = self.context.case or self.case_bar.ask_case()
        if case is None:
            return None
        dialog = RedactionDialog(self.context, case.case_id, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def export_dialog(self) -> None:
        case = self.context.case or self.case_bar.ask_case()
        if case is None:
            return
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in case.case_id)
        default = str(Path.home() / f"case-{safe}-report.pdf")
        # The file dialog does not ask about the JSON bundle written beside the PDF: one
        # question below covers both files.
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export case report",
            default,
            "PDF (*.pdf)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return
        pdf_path = Path(path)
        if pdf_path.suffix.lower() == ".json":
            show_message(
                self,
                "Export case report",
                f"{pdf_path.name}: the report would replace its own evidence bundle (the "
                "bundle is saved beside the report as .json); give the report a .pdf name.",
            )
            return
        existing = [p for p in (pdf_path, bundle_path_for(pdf_path)) if p.exists()]
        overwrite = False
        if existing:
            names = "\n".join(str(p) for p in existing)
            box = QMessageBox(
                QMessageBox.Icon.Question,
                "Replace existing files?",
                f"These files already exist:\n{names}\n\nReplace them with this export?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                self,
            )
            box.setTextFormat(Qt.TextFormat.PlainText)  # file names are outside text
            box.setDefaultButton(QMessageBox.StandardButton.No)
            if box.exec() != QMessageBox.StandardButton.Yes:
                return
            overwrite = True
        self.export_report(pdf_path, overwrite=overwrite)

    def export_report(self, pdf_path: Path, overwrite: bool = False) -> None:
        """Export the current case's PDF report and JSON bundle (no dialogs); existing files
        are refused unless `overwrite`."""
        case = self.context.case
        if case is None:
            self.statusBar().showMessage("Set a case first: the report is per case.", 8000)
            return
        self.statusBar().showMessage(f"Exporting case {case.case_id} ...")
        export_case_report_in_app(
            self.context,
            self,
            case.case_id,
            pdf_path,
            self._on_exported,
            self._on_export_failed,
            overwrite=overwrite,
        )

    def _on_exported(self, pdf_path: Path, json_path: Path, pages: int) -> None:
        self.last_export = (pdf_path, json_path)
        self.statusBar().showMessage(
            f"Case report written: {pdf_path} ({pages} page(s)) and evidence bundle {json_path}"
        )

    def _on_export_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Export failed: {message}")

    def open_examiners(self) -> None:
        """The examiners of this gallery (administrators act on them there)."""
        self.examiners_dialog = ExaminersDialog(self.context, self)
        self.examiners_dialog.open()

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.context, self)
        dialog.gallery_folder_changed.connect(self._on_gallery_folder_changed)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self._update_gallery_label()
            self.case_bar.refresh_known_cases()
            self.search_page.candidates.reload()

    def _on_gallery_folder_changed(self, folder: str) -> None:
        """Switch to another gallery folder: panels open it per worker, so they follow at once."""
        self.context.gallery_dir = Path(folder) if folder else default_gallery_dir()
        self.context.gallery_changed.emit()
        self._update_gallery_label()
        self.statusBar().showMessage(f"Now working on the gallery {self.context.gallery_dir}")

    def show_about(self) -> None:
        show_message(
            self,
            "About workstation",
            f"workstation {__version__}\n\nGallery: {self.context.gallery_dir}\n"
            f"Examiner: {self.context.user}\n\n{CAVEAT}",
        )

    # ------------------------------------------------------------------ status and layout
    def _on_status_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)

    def _on_case_changed(self, case: CaseInfo | None) -> None:
        self.actions["export"].setEnabled(case is not None)
        self.actions["redaction"].setEnabled(case is not None)

    def _update_gallery_label(self) -> None:
        self.gallery_label.setText(
            f"Gallery: {self.context.gallery_dir}  ·  Examiner: {self.context.user}"
        )

    def restore_layout(self) -> None:
        stored = window_settings()
        geometry = stored.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = stored.value("state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        splitter = stored.value("search_splitter")
        if isinstance(splitter, QByteArray):
            self.search_page.splitter.restoreState(splitter)

    def save_layout(self) -> None:
        stored = window_settings()
        stored.setValue("geometry", self.saveGeometry())
        stored.setValue("state", self.saveState())
        stored.setValue("search_splitter", self.search_page.splitter.saveState())
        stored.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        self.context.pool.cancel_all()
        super().closeEvent(event)
