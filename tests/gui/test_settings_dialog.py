"""Settings dialog: saved into the user's config folder, audited, engine reset on model change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from workstation.gallery.store import Gallery
from workstation.gui.context import AppContext
from workstation.gui.settings_dialog import SettingsDialog
from workstation.settings import load_settings, settings_path
from workstation.vision.registry import DEFAULT_CONFIGURATION, configuration, offered_keys

WAIT_MS = 60_000


@pytest.fixture
def context(tmp_path: Path, qtbot):
    ctx = AppContext(tmp_path / "gallery", user="examiner1", settings=load_settings())
    yield ctx
    ctx.pool.wait()


@pytest.fixture
def insightface_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder holding one pack folder, the way insightface lays them out on disk."""
    home = tmp_path / "insightface"
    pack = home / "models" / "buffalo_test"
    pack.mkdir(parents=True)
    (pack / "w600k_r50.onnx").write_bytes(b"placeholder; never loaded by these tests")
    monkeypatch.setenv("INSIGHTFACE_HOME", str(home))
    return home


def _save(qtbot, dialog: SettingsDialog) -> None:
    with qtbot.waitSignal(dialog.accepted, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)


def _settings_events(gallery_dir: Path) -> list:
    with Gallery(gallery_dir) as gallery:
        assert gallery.verify_audit().intact
        return [e for e in gallery.audit_events() if e.action == "settings_change"]


def test_save_writes_config_and_audits_the_change(
    qtbot, context: AppContext, tmp_path: Path
) -> None:
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.top_k_spin.value() == 20
    assert not dialog.licence_label.isVisible()  # shipped model: no licence warning
    new_gallery = tmp_path / "other-gallery"
    dialog.gallery_edit.setText(str(new_gallery))
    dialog.top_k_spin.setValue(35)
    with qtbot.waitSignal(dialog.gallery_folder_changed, timeout=WAIT_MS) as moved:
        _save(qtbot, dialog)
    assert moved.args == [str(new_gallery)]

    # Stored in the user's config folder (redirected into tmp by conftest).
    assert settings_path().is_relative_to(tmp_path)
    stored = json.loads(settings_path().read_text(encoding="utf-8"))
    assert stored["top_k"] == 35 and stored["gallery"] == str(new_gallery)
    assert load_settings().top_k == 35
    assert context.settings.top_k == 35
    events = _settings_events(context.gallery_dir)
    assert len(events) == 1
    assert events[0].user == "examiner1"
    assert events[0].details["changes"] == {
        "gallery": [None, str(new_gallery)],
        "top_k": [20, 35],
    }


def test_insightface_shows_licence_and_resets_the_engine(
    qtbot, context: AppContext, insightface_home: Path
) -> None:
    first_engine = context.engine()  # the shipped model, loaded as a search would
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.backend_combo.setCurrentIndex(dialog.backend_combo.findData("insightface"))
    assert dialog.licence_label.isVisible()
    assert "non-commercial research only" in dialog.licence_label.text()
    assert dialog.pack_combo.currentText() == "buffalo_test"
    _save(qtbot, dialog)

    assert context.settings.backend == "insightface"
    assert context.settings.insightface_pack == "buffalo_test"
    assert load_settings().backend == "insightface"
    # The loaded engine was dropped: the next use builds the newly chosen one.
    assert context._engine is None
    changes = _settings_events(context.gallery_dir)[0].details["changes"]
    assert changes["backend"] == [DEFAULT_CONFIGURATION, "insightface"]
    assert changes["insightface_pack"] == [None, "buffalo_test"]
    assert first_engine is not None


def test_changing_only_the_candidate_count_keeps_the_engine(qtbot, context: AppContext) -> None:
    engine = context.engine()
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.top_k_spin.setValue(50)
    _save(qtbot, dialog)
    assert context.engine() is engine
    assert dialog.saved_changes == {"top_k": [20, 50]}


def test_nothing_changed_writes_no_audit_event(qtbot, context: AppContext) -> None:
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    _save(qtbot, dialog)
    assert dialog.saved_changes == {}
    assert _settings_events(context.gallery_dir) == []


def test_insightface_without_a_pack_is_refused_in_words(
    qtbot, context: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "empty"))
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.backend_combo.setCurrentIndex(dialog.backend_combo.findData("insightface"))
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert "Choose an insightface model pack" in dialog.error_label.text()
    assert dialog.isVisible() and dialog.result() == 0
    assert not settings_path().exists()
    assert context.settings.backend == DEFAULT_CONFIGURATION


def test_cancel_saves_nothing(qtbot, context: AppContext) -> None:
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.top_k_spin.setValue(99)
    dialog.buttons.rejected.emit()
    assert not settings_path().exists()
    assert context.settings.top_k == 20
    assert _settings_events(context.gallery_dir) == []


def test_damaged_settings_file_is_reported_not_overwritten(qtbot, context: AppContext) -> None:
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text("{not json", encoding="utf-8")
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.top_k_spin.setValue(30)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.saving, timeout=WAIT_MS)
    text = dialog.error_label.text()
    assert "The settings were not saved" in text and "settings.json" in text
    assert "Traceback" not in text
    assert settings_path().read_text(encoding="utf-8") == "{not json"
    assert _settings_events(context.gallery_dir) == []


def test_face_model_choices_come_from_the_registry_with_their_trade_off(
    qtbot, context: AppContext
) -> None:
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    combo = dialog.backend_combo
    assert tuple(combo.itemData(i) for i in range(combo.count())) == offered_keys()
    assert combo.currentData() == DEFAULT_CONFIGURATION
    other = next(k for k in offered_keys() if k != DEFAULT_CONFIGURATION and k != "insightface")
    combo.setCurrentIndex(combo.findData(other))
    assert dialog.backend_summary.text() == configuration(other).summary
    assert dialog.backend_summary.isVisible() and not dialog.licence_label.isVisible()
    with qtbot.waitSignal(dialog.accepted, timeout=WAIT_MS):
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert load_settings().backend == other
    (event,) = _settings_events(context.gallery_dir)
    assert event.details["changes"]["backend"] == [DEFAULT_CONFIGURATION, other]


def test_a_longer_model_summary_is_shown_whole(qtbot, context: AppContext) -> None:
    """Switching to a model whose summary wraps to more lines grows the dialog: the summary is
    not clipped (it was: the dialog kept the height of the summary it opened with)."""
    dialog = SettingsDialog(context)
    qtbot.addWidget(dialog)
    dialog.show()
    summaries = {key: configuration(key).summary for key in offered_keys()}
    longest = max(summaries, key=lambda key: len(summaries[key]))
    shortest = min(summaries, key=lambda key: len(summaries[key]))
    # Every way round: from the shortest to the longest and back, then through all of them.
    for key in (longest, shortest, longest, *summaries):
        dialog.backend_combo.setCurrentIndex(dialog.backend_combo.findData(key))
        qtbot.wait(50)
        label = dialog.backend_summary
        assert label.text() == summaries[key]
        assert label.height() >= label.heightForWidth(label.width()), key
