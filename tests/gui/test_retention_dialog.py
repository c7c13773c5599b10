"""The retention purge in the Gallery tab: listed first, deleted only with a reason, audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from sqlite_file import edit_database

from tests.gui.analyst_support import enrol_gallery, make_context
from workstation.audit.actions import AuditAction
from workstation.gallery.store import Gallery
from workstation.gui.context import CaseInfo
from workstation.gui.gallery_manager import GalleryManagerWidget

WAIT_MS = 120_000


@pytest.fixture
def context(tmp_path: Path, qtbot, engine, photo_paths):
    folder = enrol_gallery(tmp_path / "gallery", engine, photo_paths)
    # obama was enrolled 400 days ago (the row's time set from outside; the log is untouched).
    edit_database(
        folder,
        "UPDATE subjects SET created_at = '2025-10-26T09:00:00+00:00' WHERE id = 'obama'",
        drop_guards=False,
    )
    ctx = make_context(folder, engine)
    ctx.set_case(CaseInfo("C-RET", "gallery maintenance"))  # browsing is recorded against it
    yield ctx
    ctx.pool.cancel_all()
    ctx.pool.wait()


def _subject_ids(widget: GalleryManagerWidget) -> list[str]:
    return [row.subject.id for row in widget.subjects_model.rows()]


def test_retention_lists_then_deletes_with_a_reason(qtbot, context) -> None:
    widget = GalleryManagerWidget(context)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["biden", "obama"], timeout=WAIT_MS)
    qtbot.mouseClick(widget.retention_button, Qt.MouseButton.LeftButton)
    dialog = widget.retention_dialog
    assert dialog is not None and dialog.isVisible() and dialog.days == 365
    qtbot.keyClicks(dialog.reason_edit, "retention rule 7(2)")
    assert not dialog.ok_button.isEnabled()  # not listed yet
    qtbot.mouseClick(dialog.list_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.listed is not None, timeout=WAIT_MS)
    assert dialog.listed == (365, ["obama"])
    assert "obama" in dialog.list_view.toPlainText()
    assert "biden" not in dialog.list_view.toPlainText()
    assert dialog.ok_button.isEnabled() and dialog.ok_button.text() == "Delete 1 subject(s)"
    dialog.days_spin.setValue(30)  # another period: the list must be made again
    assert dialog.listed is None and not dialog.ok_button.isEnabled()
    dialog.days_spin.setValue(365)
    qtbot.mouseClick(dialog.list_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.ok_button.isEnabled(), timeout=WAIT_MS)
    with qtbot.waitSignal(context.audit_changed, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _subject_ids(widget) == ["biden"], timeout=WAIT_MS)
    assert "1 subject(s) deleted" in widget.message_label.text()
    context.pool.wait()  # the list's re-read recorded before the chain is checked
    with Gallery(context.gallery_dir, create=False) as gallery:
        [purge] = [e for e in gallery.audit_events() if e.action == AuditAction.RETENTION]
        assert purge.details["subject_ids"] == ["obama"]
        assert purge.details["reason"] == "retention rule 7(2)"
        assert purge.user == "examiner1"
        assert gallery.verify_audit().intact


def test_retention_is_an_administrators_act(qtbot, tmp_path: Path, engine, photo_paths) -> None:
    """An analyst sees the button disabled, with the reason; the core refuses them anyway."""
    from examiners import examiner, register

    from workstation.audit.roles import Role
    from workstation.errors import NotPermittedError
    from workstation.gallery.admin import apply_retention
    from workstation.gui.context import AppContext

    folder = enrol_gallery(tmp_path / "gallery", engine, photo_paths)
    register(folder, "ann", roles=[Role.ANALYST])
    ctx = AppContext(folder, examiner=examiner("ann"))
    widget = GalleryManagerWidget(ctx)
    qtbot.addWidget(widget)
    with qtbot.waitSignal(ctx.identity_changed, timeout=WAIT_MS):
        ctx.refresh_identity()
    assert not widget.retention_button.isEnabled()
    assert "administrator" in widget.retention_button.toolTip()
    with Gallery(folder, examiner=examiner("ann")) as gallery:
        with pytest.raises(NotPermittedError, match="administrator"):
            apply_retention(gallery, 0, "rule 7(2)")
        assert gallery.subject_count() == 2
    ctx.pool.cancel_all()
    ctx.pool.wait()
