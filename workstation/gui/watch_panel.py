"""Cold-case watch in the app: the dialog that leaves a searched probe on watch, and the notice
bar that tells the examiner when a watch of one of their cases has found a new face (at start,
and after every enrolment). The rules, the threshold and the re-searches are the core's
(`workstation.gallery.watches`); this only asks and shows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QDate, QSettings, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QPushButton,
    QWidget,
)

from workstation.gallery.records import SearchRecord
from workstation.gallery.watches import DEFAULT_WATCH_DAYS, DEFAULT_WATCH_FMR, WatchHit, notices_for
from workstation.gui.context import AppContext, CaseInfo
from workstation.gui.reason_dialog import ReasonRequiredDialog
from workstation.gui.text import plain_label
from workstation.progress import CancelToken

# The rates offered; the command line takes any (--fmr).
FMR_CHOICES = ((1e-3, "1 in 1,000"), (1e-4, "1 in 10,000"), (1e-5, "1 in 100,000"))
_SEEN_KEY = "watch/notices_seen"  # when this examiner last saw the notices (this PC)


class WatchDialog(ReasonRequiredDialog):
    """Leave the probe of a search on watch: reason, false-match rate and last day."""

    def __init__(self, search: SearchRecord, parent: QWidget | None = None) -> None:
        super().__init__(
            f"Leave search {search.search_id} on watch",
            "Leave on watch",
            "Reason (required, recorded in the audit log), e.g. unidentified; no lead among "
            "the candidates",
            parent,
        )
        self.search_id = search.search_id
        intro = plain_label(
            f"Case {search.case_id}: the face searched in {search.probe.file_name} is searched "
            "again against every face enrolled from now on (new faces only). A new face scoring "
            "above the threshold is a hit: a search of the case to review, and a notice for the "
            "case's examiners. The probe's embedding is kept until the watch ends.",
            self,
        )
        intro.setWordWrap(True)
        self.fmr_combo = QComboBox(self)
        for rate, words in FMR_CHOICES:
            self.fmr_combo.addItem(words, rate)
        self.fmr_combo.setCurrentIndex(self.fmr_combo.findData(DEFAULT_WATCH_FMR))
        self.fmr_combo.setToolTip(
            "How rarely a stranger may reach the threshold; the calibration turns it into a score"
        )
        start = datetime.now(UTC).date() + timedelta(days=DEFAULT_WATCH_DAYS)
        self.until_edit = QDateEdit(QDate(start.year, start.month, start.day), self)
        self.until_edit.setCalendarPopup(True)
        self.until_edit.setDisplayFormat("yyyy-MM-dd")
        form = QFormLayout()
        form.addRow("False-match rate:", self.fmr_combo)
        form.addRow("Watch until:", self.until_edit)
        self.body.addWidget(intro)
        self.body.addLayout(form)
        self.setMinimumWidth(500)

    @property
    def fmr(self) -> float:
        return float(self.fmr_combo.currentData())

    @property
    def until(self) -> str:
        return self.until_edit.date().toString("yyyy-MM-dd")


def hit_words(hit: WatchHit, case_id: str) -> str:
    return (
        f"Watch {hit.watch_id} (case {case_id}): a new face of subject {hit.subject_id} scores "
        f"{hit.score:.3f} (FMR {hit.fmr_text or 'unknown'}), found "
        f"{hit.found_at[:16].replace('T', ' ')} UTC, search {hit.search_id}"
    )


class WatchNoticeBar(QFrame):
    """A yellow bar naming the watches' new hits on the examiner's cases; hidden when none."""

    open_case = Signal(object, int)  # the first hit's case (CaseInfo) and its search id
    notices_shown = Signal(int)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("watchNotice")
        self.setStyleSheet("#watchNotice { background: #fff4ce; border: 1px solid #e0c060; }")
        self.label = plain_label("", self)
        self.label.setWordWrap(True)
        self.open_button = QPushButton("Open the case", self)
        self.dismiss_button = QPushButton("Dismiss", self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.open_button)
        layout.addWidget(self.dismiss_button)
        self.hits: list[tuple[WatchHit, CaseInfo]] = []
        self.open_button.clicked.connect(self._open)
        self.dismiss_button.clicked.connect(self.dismiss)
        context.gallery_changed.connect(self.check)  # an enrolment in the app
        self.hide()

    def _settings(self) -> QSettings:
        from workstation.paths import config_dir

        return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)

    def check(self) -> None:
        """Read the new hits of the examiner's cases' watches on a worker."""
        context = self.context
        since = self._settings().value(_SEEN_KEY)
        user = context.user

        def work(cancel: CancelToken) -> list[tuple[WatchHit, CaseInfo]]:
            from workstation.gallery.reads import Read, record_read_once, watch_hits_consulted
            from workstation.gallery.watches import list_watches

            with context.open_gallery() as gallery:
                hits = notices_for(gallery, user, str(since) if since else None)
                cases = {w.id: CaseInfo(w.case_id, w.purpose) for w in list_watches(gallery)}
                shown = [(hit, cases[hit.watch_id]) for hit in hits]
                # The notice names subjects: recorded before it shows, one event per case
                # against that case and its watch's purpose (as Compare records against the
                # search's), once while the same hits are shown again within minutes.
                by_case: dict[CaseInfo, list[WatchHit]] = {}
                for hit, case in shown:
                    by_case.setdefault(case, []).append(hit)
                for case, case_hits in by_case.items():
                    record_read_once(
                        gallery,
                        context.reads,
                        Read.WATCHES,
                        watch_hits_consulted(case_hits),
                        case.case_id,
                        case.purpose,
                        what=tuple((h.watch_id, h.search_id, h.face_id) for h in case_hits),
                    )
            return shown

        context.pool.start(work, owner=self, on_result=self._show, on_error=self._on_failed)

    def _on_failed(self, message: str) -> None:
        # The hits could not be read, or the reading not recorded: no notice.
        self.hits = []
        self.hide()
        self.context.status_message.emit(f"Watch hits not shown: {message}")

    def _show(self, hits: list[tuple[WatchHit, CaseInfo]]) -> None:
        self.hits = hits
        if not hits:
            self.hide()
        else:
            lines = [hit_words(hit, case.case_id) for hit, case in hits[:3]]
            if len(hits) > 3:
                lines.append(f"... and {len(hits) - 3} more (workstation watch list)")
            self.label.setText("New watch hits to review:\n" + "\n".join(lines))
            self.show()
        self.notices_shown.emit(len(hits))

    def dismiss(self) -> None:
        """Seen: these hits are not shown again (they stay in the case and `watch list`)."""
        if self.hits:
            latest = max(hit.found_at for hit, _ in self.hits)
            settings = self._settings()
            settings.setValue(_SEEN_KEY, latest)
            settings.sync()
        self.hits = []
        self.hide()

    def _open(self) -> None:
        if self.hits:
            hit, case = self.hits[0]
            self.open_case.emit(case, hit.search_id)
