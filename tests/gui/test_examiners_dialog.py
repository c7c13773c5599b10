"""Examiners in the app (issue 11 items 1-2 on the GUI): the list with roles and key
fingerprints; an administrator registers a key, changes roles and revokes, through the core's
own functions (the role checked and the act audited in one transaction); anyone else sees the
list with the acts disabled, and the core refuses them even when asked directly."""

from __future__ import annotations

from pathlib import Path

import pytest
from examiners import as_examiner, examiner, open_as
from PySide6.QtCore import QTimer

from tests.gui.analyst_support import WAIT_MS
from workstation.audit.roles import Role
from workstation.audit.signing import short_fingerprint
from workstation.gallery.store import Gallery
from workstation.gui.context import AppContext
from workstation.gui.examiners_dialog import (
    ExaminerRolesDialog,
    ExaminersDialog,
    RegisterExaminerDialog,
    RevokeExaminerDialog,
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "gallery"
    with open_as(folder, "examiner1"):  # its creator: the first administrator
        pass
    return folder


def opened(qtbot, folder: Path, name: str, roles=("administrator",)) -> ExaminersDialog:
    context = AppContext(folder, examiner=as_examiner(folder, name, roles))
    with qtbot.waitSignal(context.identity_changed, timeout=WAIT_MS):
        context.refresh_identity()
    dialog = ExaminersDialog(context)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.model.rowCount() > 0, timeout=WAIT_MS)
    dialog.show()
    return dialog


def actions(folder: Path) -> list[str]:
    with Gallery(folder, read_only=True) as gallery:
        return [e.action for e in gallery.audit_events()]


def test_an_administrator_registers_changes_roles_and_revokes(qtbot, folder: Path) -> None:
    dialog = opened(qtbot, folder, "examiner1")
    assert [e.name for e in dialog.model.rows()] == ["examiner1"]
    assert dialog.register_button.isEnabled() and "administrator" in dialog.who_label.text()
    ana_key = examiner("ana").public_key_text()
    seen = []

    def register(form: RegisterExaminerDialog) -> None:
        seen.append(form)
        assert not form.ok_button.isEnabled()  # no name, no key yet
        form.name_edit.setText("ana")
        form.key_edit.setPlainText("ed25519:not-a-key")
        assert "Not a usable public key" in form.fingerprint_label.text()
        assert not form.ok_button.isEnabled()
        form.key_edit.setPlainText(ana_key)
        form.role_boxes[Role.REVIEWER].setChecked(True)  # analyst is ticked already
        assert form.ok_button.isEnabled()
        QTimer.singleShot(0, form.accept)

    dialog.dialog_opened.connect(register)
    with qtbot.waitSignal(dialog.examiners_loaded, timeout=WAIT_MS):
        dialog.register_button.click()
    dialog.dialog_opened.disconnect(register)
    ana = next(e for e in dialog.model.rows() if e.name == "ana")
    assert short_fingerprint(ana.fingerprint) in seen[0].fingerprint_label.text()
    assert ana.roles == frozenset({Role.ANALYST, Role.REVIEWER}) and ana.active
    assert ana.registered_by == "examiner1"
    assert "Registered ana" in dialog.status_label.text()

    def roles(form: ExaminerRolesDialog) -> None:
        form.role_boxes[Role.ANALYST].setChecked(False)
        QTimer.singleShot(0, form.accept)

    assert dialog.select_examiner("ana") and dialog.roles_button.isEnabled()
    dialog.dialog_opened.connect(roles)
    with qtbot.waitSignal(dialog.examiners_loaded, timeout=WAIT_MS):
        dialog.roles_button.click()
    dialog.dialog_opened.disconnect(roles)
    ana = next(e for e in dialog.model.rows() if e.name == "ana")
    assert ana.roles == frozenset({Role.REVIEWER})

    def revoke(form: RevokeExaminerDialog) -> None:
        assert not form.ok_button.isEnabled()  # a reason is required
        form.reason_edit.setPlainText("left the unit")
        QTimer.singleShot(0, form.accept)

    assert dialog.select_examiner("ana")
    dialog.dialog_opened.connect(revoke)
    with qtbot.waitSignal(dialog.examiners_loaded, timeout=WAIT_MS):
        dialog.revoke_button.click()
    ana = next(e for e in dialog.model.rows() if e.name == "ana")
    assert not ana.active and ana.revoked_reason == "left the unit"
    model = dialog.model
    row = model.rows().index(ana)
    state = model.data(model.index(row, model.COL_STATE))
    assert state.startswith("revoked")
    dialog.table.selectRow(row)
    assert not dialog.revoke_button.isEnabled() and not dialog.roles_button.isEnabled()

    assert actions(folder)[-3:] == ["examiner_add", "examiner_roles", "examiner_revoke"]
    with Gallery(folder, read_only=True) as gallery:
        assert all(e.user == "examiner1" for e in gallery.audit_events()[-3:])
        assert gallery.verify_audit().intact


def test_only_an_administrator_may_act_the_core_refuses_anyone_else(qtbot, folder: Path) -> None:
    dialog = opened(qtbot, folder, "bob", roles=("analyst",))
    assert {e.name for e in dialog.model.rows()} == {"examiner1", "bob"}
    assert not dialog.register_button.isEnabled()
    assert "administrator's acts" in dialog.register_button.toolTip()
    assert "You are bob (analyst)" in dialog.who_label.text()
    dialog.select_examiner("examiner1")
    assert not dialog.revoke_button.isEnabled() and not dialog.roles_button.isEnabled()
    before = actions(folder)
    # Asked directly (as a tampered GUI would): the core refuses, naming the role.
    with qtbot.waitSignal(dialog.act_failed, timeout=WAIT_MS) as failed:
        dialog.apply_register("mallory", examiner("mallory").public_key_text(), {Role.ANALYST})
    assert "administrator" in failed.args[0] and "bob" in failed.args[0]
    with qtbot.waitSignal(dialog.act_failed, timeout=WAIT_MS) as failed:
        dialog.apply_revoke(dialog.model.rows()[0].fingerprint, "take over")
    assert "administrator" in failed.args[0]
    assert actions(folder) == before
