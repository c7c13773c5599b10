"""Examiners in the app (Case > Examiners…): who may act in this gallery, with their roles and
key fingerprints, and (administrators) registering an examiner's public key, changing their
roles and revoking their key.

The rules are the core's, once (`workstation.gallery.examiners`: `register_examiner`,
`set_roles`, `revoke_examiner`, the same functions `workstation examiners add|roles|revoke`
call): the administrator role is checked and the audit event written in the same transaction
as the act; this dialog only asks and shows. An examiner without the administrator role sees
the list, with the acting buttons disabled and why (the core refuses them anyway).

The list holds the examiners' own registrations (names, roles, public keys), which every
signed event already carries: reading it is not a consultation of the gallery's records of
people searched, and is not recorded (as `examiners list` is not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from workstation.audit.roles import Role
from workstation.audit.signing import decode_public_key, fingerprint, short_fingerprint
from workstation.errors import KeyFileError
from workstation.gallery.examiners import (
    RegisteredExaminer,
    register_examiner,
    revoke_examiner,
    set_roles,
)
from workstation.gui.context import AppContext
from workstation.gui.reason_dialog import ReasonRequiredDialog, ok_cancel_buttons
from workstation.gui.table_base import Index, RowsTableModel
from workstation.gui.text import plain_label, tooltip
from workstation.progress import CancelToken

# What each role allows, in the words of workstation/audit/roles.py (the rule itself is there).
ROLE_WORDS: dict[Role, str] = {
    Role.ADMINISTRATOR: "examiners, deletions, merges, archiving, settings",
    Role.ENROLLER: "enrols photos",
    Role.ANALYST: "searches, compares, decides, exports, authorisations",
    Role.REVIEWER: "confirms another examiner's lead, verification sheets",
}
_REVOKED_TEXT = QColor(130, 130, 130)


def key_fingerprint_words(text: str) -> tuple[str | None, str]:
    """(the full fingerprint, words to show) for a public key as pasted; (None, why) when it
    is not one."""
    if not text.strip():
        return None, "Paste the public key the examiner printed (workstation examiners key)."
    try:
        full = fingerprint(decode_public_key(text))
    except KeyFileError as exc:
        return None, f"Not a usable public key: {exc}"
    return full, (
        f"Fingerprint {short_fingerprint(full)}: compare it with the one the examiner reads "
        "out to you before registering."
    )


class ExaminersTableModel(RowsTableModel):
    COL_NAME, COL_ROLES, COL_KEY, COL_REGISTERED, COL_BY, COL_STATE = range(6)
    HEADERS = ("Examiner", "Roles", "Key fingerprint", "Registered (UTC)", "By", "State")
    HEADER_TIPS = (
        "The name registered for the key (the examiner's login on their workstation)",
        "What the examiner may do in this gallery",
        "The first 16 hex digits of the SHA-256 of their public key (full value in the tooltip)",
        "When an administrator registered the key",
        "The administrator who registered it",
        "Active, or revoked (when, by whom, why)",
    )

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        examiner: RegisteredExaminer | None = self.row_at(index)
        if examiner is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (
                examiner.name,
                examiner.roles_text,
                short_fingerprint(examiner.fingerprint),
                examiner.registered_at.replace("T", " ")[:19],
                examiner.registered_by,
                "active"
                if examiner.active
                else f"revoked {(examiner.revoked_at or '').replace('T', ' ')[:16]}",
            )[column]
        if role == Qt.ItemDataRole.ForegroundRole and not examiner.active:
            return _REVOKED_TEXT
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"{examiner.name}: key {examiner.fingerprint}"]
            if not examiner.active:
                lines.append(
                    f"revoked {examiner.revoked_at} by {examiner.revoked_by}: "
                    f"{examiner.revoked_reason}"
                )
            return tooltip("\n".join(lines))
        return None


def _role_boxes(parent: QWidget, checked: frozenset[Role]) -> dict[Role, QCheckBox]:
    boxes = {}
    for role in Role:
        box = QCheckBox(f"{role.value}: {ROLE_WORDS[role]}", parent)
        box.setChecked(role in checked)
        boxes[role] = box
    return boxes


class RegisterExaminerDialog(QDialog):
    """Name, public key (pasted or from the file the examiner gave) and roles."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Register an examiner")
        intro = plain_label(
            "The examiner runs 'workstation examiners key' on their own login and hands you the "
            "public key and its fingerprint in person. The registration is recorded in the "
            "audit log, signed by you.",
            self,
        )
        intro.setWordWrap(True)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("their login on their workstation, e.g. ana")
        self.key_edit = QPlainTextEdit(self)
        self.key_edit.setPlaceholderText("ed25519:… or a PEM public key")
        self.key_edit.setMaximumHeight(80)
        self.file_button = QPushButton("From file…", self)
        self.fingerprint_label = plain_label("", self)
        self.fingerprint_label.setWordWrap(True)
        self.role_boxes = _role_boxes(self, frozenset({Role.ANALYST}))
        roles = QVBoxLayout()
        for box in self.role_boxes.values():
            roles.addWidget(box)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.file_button, 0, Qt.AlignmentFlag.AlignTop)
        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("Public key:", key_row)
        form.addRow("", self.fingerprint_label)
        form.addRow("Roles:", roles)
        self.buttons, self.ok_button = ok_cancel_buttons(self, "Register")
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.file_button.clicked.connect(self._on_file_clicked)
        self.name_edit.textChanged.connect(self._update)
        self.key_edit.textChanged.connect(self._update)
        for box in self.role_boxes.values():
            box.toggled.connect(self._update)
        self.setMinimumWidth(560)
        self._update()

    @property
    def name(self) -> str:
        return self.name_edit.text().strip()

    @property
    def public_key(self) -> str:
        return self.key_edit.toPlainText().strip()

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(role for role, box in self.role_boxes.items() if box.isChecked())

    def _on_file_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Public key file", "", "Public keys (*.pub);;All files (*)"
        )
        if path:
            self.load_key_file(Path(path))

    def load_key_file(self, path: Path) -> None:
        try:
            self.key_edit.setPlainText(path.read_text(encoding="ascii").strip())
        except (OSError, UnicodeDecodeError) as exc:
            self.fingerprint_label.setText(f"{path}: cannot read the public key ({exc})")

    def _update(self, *_args: object) -> None:
        full, words = key_fingerprint_words(self.public_key)
        self.fingerprint_label.setText(words)
        self.fingerprint_label.setStyleSheet("" if full or not self.public_key else "color:#b00020")
        self.ok_button.setEnabled(bool(self.name and full and self.roles))


class ExaminerRolesDialog(QDialog):
    """Change a registered examiner's roles."""

    def __init__(self, examiner: RegisteredExaminer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Roles of {examiner.name}")
        self.examiner = examiner
        intro = plain_label(
            f"{examiner.name} (key {short_fingerprint(examiner.fingerprint)}) holds: "
            f"{examiner.roles_text}. The change is recorded in the audit log.",
            self,
        )
        intro.setWordWrap(True)
        self.role_boxes = _role_boxes(self, examiner.roles)
        self.buttons, self.ok_button = ok_cancel_buttons(self, "Change roles")
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        for box in self.role_boxes.values():
            layout.addWidget(box)
            box.toggled.connect(self._update)
        layout.addWidget(self.buttons)
        self._update()

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(role for role, box in self.role_boxes.items() if box.isChecked())

    def _update(self, *_args: object) -> None:
        self.ok_button.setEnabled(bool(self.roles) and self.roles != self.examiner.roles)


class RevokeExaminerDialog(ReasonRequiredDialog):
    """Revoke an examiner's key, with a reason."""

    def __init__(self, examiner: RegisteredExaminer, parent: QWidget | None = None) -> None:
        super().__init__(
            f"Revoke {examiner.name}'s key",
            "Revoke key",
            "Reason (required, recorded in the audit log), e.g. left the unit; key exposed",
            parent,
        )
        self.examiner = examiner
        words = plain_label(
            f"{examiner.name}'s key {short_fingerprint(examiner.fingerprint)} will sign nothing "
            "in this gallery from now on. Their earlier events still verify. A revoked key is "
            "never registered again: they make a new key to come back.",
            self,
        )
        words.setWordWrap(True)
        self.body.addWidget(words)
        self.setMinimumWidth(480)


class ExaminersDialog(QDialog):
    """The registered examiners and, for administrators, register / change roles / revoke."""

    examiners_loaded = Signal(int)
    act_done = Signal(str)  # the message after an act the core accepted
    act_failed = Signal(str)
    dialog_opened = Signal(object)  # a register/roles/revoke dialog, before exec (tests, tours)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Examiners of this gallery")
        self.context = context
        self.model = ExaminersTableModel(self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.who_label = plain_label("", self)
        self.who_label.setWordWrap(True)
        self.status_label = plain_label("", self)
        self.status_label.setWordWrap(True)
        self.register_button = QPushButton("Register…", self)
        self.roles_button = QPushButton("Change roles…", self)
        self.revoke_button = QPushButton("Revoke key…", self)
        self.refresh_button = QPushButton("Refresh", self)
        self.close_button = QPushButton("Close", self)
        buttons = QHBoxLayout()
        for button in (self.register_button, self.roles_button, self.revoke_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.who_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status_label)
        layout.addLayout(buttons)
        self.register_button.clicked.connect(self.ask_register)
        self.roles_button.clicked.connect(self.ask_roles)
        self.revoke_button.clicked.connect(self.ask_revoke)
        self.refresh_button.clicked.connect(self.reload)
        self.close_button.clicked.connect(self.accept)
        self.table.selectionModel().currentRowChanged.connect(self._update_buttons)
        self.model.modelReset.connect(self._update_buttons)
        context.identity_changed.connect(self._update_buttons)
        self._message = ""
        self.resize(860, 420)
        self._update_buttons()
        self.reload()

    # ------------------------------------------------------------------ list
    def reload(self) -> None:
        context = self.context

        def work(_cancel: CancelToken) -> list[RegisteredExaminer]:
            with context.open_gallery() as gallery:
                return gallery.examiners()

        context.pool.start(work, owner=self, on_result=self._on_loaded, on_error=self._on_failed)

    def _on_loaded(self, examiners: list[RegisteredExaminer]) -> None:
        current = self.current_examiner()
        self.model.set_rows(examiners)
        if current is not None:
            self.select_examiner(current.name)
        active = sum(e.active for e in examiners)
        count = f"{active} active examiner(s), {len(examiners)} registered"
        # The last act's message stays in view above the new count.
        self.status_label.setText(f"{self._message}.\n{count}" if self._message else count)
        self.examiners_loaded.emit(len(examiners))

    def _on_failed(self, message: str) -> None:
        self.status_label.setText(message)
        self.act_failed.emit(message)

    def current_examiner(self) -> RegisteredExaminer | None:
        return self.model.row_at(self.table.currentIndex())

    def select_examiner(self, name: str) -> bool:
        for row, examiner in enumerate(self.model.rows()):
            if examiner.name == name and examiner.active:
                self.table.selectRow(row)
                return True
        return False

    def _is_administrator(self) -> bool:
        registration = self.context.registration
        return registration is not None and Role.ADMINISTRATOR in registration.roles

    def _update_buttons(self, *_args: object) -> None:
        registration = self.context.registration
        admin = self._is_administrator()
        chosen = self.current_examiner()
        self.register_button.setEnabled(admin)
        self.roles_button.setEnabled(admin and chosen is not None and chosen.active)
        self.revoke_button.setEnabled(admin and chosen is not None and chosen.active)
        if registration is None:
            who = f"You ({self.context.examiner.name}) are not registered in this gallery."
        else:
            who = f"You are {registration.name} ({registration.roles_text})."
        if not admin:
            why = "Registering, changing roles and revoking are an administrator's acts."
            for button in (self.register_button, self.roles_button, self.revoke_button):
                button.setToolTip(why)
            who += " " + why
        else:
            self.register_button.setToolTip("Register another examiner's public key with roles")
            self.roles_button.setToolTip("Change the chosen examiner's roles")
            self.revoke_button.setToolTip("Revoke the chosen examiner's key, with a reason")
        self.who_label.setText(who)

    # ------------------------------------------------------------------ acts
    def ask_register(self) -> None:
        dialog = RegisterExaminerDialog(self)
        self.dialog_opened.emit(dialog)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply_register(dialog.name, dialog.public_key, dialog.roles)

    def ask_roles(self) -> None:
        chosen = self.current_examiner()
        if chosen is None:
            return
        dialog = ExaminerRolesDialog(chosen, self)
        self.dialog_opened.emit(dialog)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply_roles(chosen.fingerprint, dialog.roles)

    def ask_revoke(self) -> None:
        chosen = self.current_examiner()
        if chosen is None:
            return
        dialog = RevokeExaminerDialog(chosen, self)
        self.dialog_opened.emit(dialog)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.apply_revoke(chosen.fingerprint, dialog.reason)

    def apply_register(self, name: str, public_key: str, roles: frozenset[Role]) -> None:
        """Register on a worker (the core checks the role and audits the act)."""

        def act(gallery: Any) -> str:
            done = register_examiner(gallery, name, public_key, roles)
            return (
                f"Registered {done.name} ({done.roles_text}), key "
                f"{short_fingerprint(done.fingerprint)}; recorded in the audit log"
            )

        self._run(act)

    def apply_roles(self, key_fingerprint: str, roles: frozenset[Role]) -> None:
        def act(gallery: Any) -> str:
            done = set_roles(gallery, key_fingerprint, roles)
            return f"{done.name} now holds: {done.roles_text}; recorded in the audit log"

        self._run(act)

    def apply_revoke(self, key_fingerprint: str, reason: str) -> None:
        def act(gallery: Any) -> str:
            done = revoke_examiner(gallery, key_fingerprint, reason)
            return (
                f"Revoked {done.name}'s key {short_fingerprint(done.fingerprint)}; recorded in "
                "the audit log"
            )

        self._run(act)

    def _run(self, act: Any) -> None:
        context = self.context

        def work(_cancel: CancelToken) -> str:
            with context.open_gallery() as gallery:
                return str(act(gallery))

        context.pool.start(work, owner=self, on_result=self._on_act_done, on_error=self._on_failed)

    def _on_act_done(self, message: str) -> None:
        self._message = message
        self.status_label.setText(message)
        self.context.status_message.emit(message)
        self.context.audit_changed.emit()
        self.context.refresh_identity()  # one's own roles may have changed
        self.act_done.emit(message)
        self.reload()
