"""Settings declared once, changed in one audited act (file and audit event together), and the
UI history kept apart; on real files in the config folder and a real gallery."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from workstation.audit.actions import AuditAction
from workstation.errors import GalleryError, WorkstationError
from workstation.gallery.change import GalleryChange
from workstation.gallery.settings_change import apply_settings_change
from workstation.gallery.store import Gallery
from workstation.settings import (
    Settings,
    declared_settings,
    engine_keys,
    history_path,
    load_history,
    load_settings,
    save_history,
    settings_path,
    with_setting,
)
from workstation.vision.registry import configuration, offered_keys


def _events(gallery: Gallery) -> list:
    return [e for e in gallery.audit_events() if e.action == AuditAction.SETTINGS_CHANGE]


def test_each_setting_is_declared_once_with_default_label_and_check() -> None:
    specs = {spec.key: spec for spec in declared_settings()}
    assert list(specs) == ["gallery", "backend", "insightface_pack", "model_dir", "top_k"]
    assert all(spec.label for spec in specs.values())
    assert Settings().values() == {key: spec.default for key, spec in specs.items()}
    assert engine_keys() == {"backend", "insightface_pack", "model_dir"}
    assert specs["top_k"].check(0) == "the number of candidates must be 1 to 1000, not 0"
    assert (
        specs["backend"].check("magic") is not None
        and specs["backend"].check("fast-mirror") is None
    )


def test_typed_values_are_parsed_and_checked() -> None:
    assert with_setting(Settings(), "top_k", "30").top_k == 30
    assert with_setting(Settings(), "gallery", "default").gallery is None
    with pytest.raises(WorkstationError, match="top_k must be a whole number, not 'many'"):
        with_setting(Settings(), "top_k", "many")
    with pytest.raises(WorkstationError, match="unknown setting 'colour'; settable: backend"):
        with_setting(Settings(), "colour", "blue")
    offered = ", ".join(offered_keys())
    with pytest.raises(WorkstationError, match=f"backend must be one of {offered}, not 'magic'"):
        with_setting(Settings(), "backend", "magic").validate()


def test_a_change_is_saved_and_audited_together(gallery: Gallery) -> None:
    changes = apply_settings_change(gallery, Settings(top_k=35))
    assert changes == {"top_k": [20, 35]}
    assert load_settings().top_k == 35
    (event,) = _events(gallery)
    assert event.details == {"changes": {"top_k": [20, 35]}, "file": str(settings_path())}
    assert json.loads(settings_path().read_text())["schema"] == 2
    assert not settings_path().with_name("settings.json.part").exists()
    # Nothing changed: nothing written, nothing audited.
    assert apply_settings_change(gallery, Settings(top_k=35)) == {}
    assert len(_events(gallery)) == 1


def test_an_invalid_value_changes_nothing(gallery: Gallery) -> None:
    with pytest.raises(WorkstationError, match="number of candidates must be 1 to 1000"):
        apply_settings_change(gallery, Settings(top_k=5000))
    assert not settings_path().exists() and _events(gallery) == []


def test_when_the_audit_event_cannot_be_written_the_file_stays_as_it_was(tmp_path: Path) -> None:
    with Gallery(tmp_path / "g") as writable:
        apply_settings_change(writable, Settings(top_k=30))
    before = settings_path().read_bytes()
    with (
        Gallery(tmp_path / "g", read_only=True) as read_only,
        # Refused before anything is written (the unit of work will not open read-only).
        pytest.raises((GalleryError, sqlite3.OperationalError), match=r"read-?only"),
    ):
        apply_settings_change(read_only, Settings(top_k=40))
    assert settings_path().read_bytes() == before
    assert not settings_path().with_name("settings.json.part").exists()


def test_when_the_commit_fails_after_the_rename_the_old_file_is_put_back(
    gallery: Gallery, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply_settings_change(gallery, Settings(top_k=30))
    before = settings_path().read_bytes()
    events = len(gallery.audit_events())

    def commit_fails(self: GalleryChange) -> int:
        raise OSError("disk full at COMMIT")

    real_commit = GalleryChange.commit
    monkeypatch.setattr(GalleryChange, "commit", commit_fails)
    with pytest.raises(OSError, match="disk full"):
        apply_settings_change(gallery, Settings(top_k=40))
    monkeypatch.setattr(GalleryChange, "commit", real_commit)
    assert not gallery.in_transaction
    assert settings_path().read_bytes() == before and load_settings().top_k == 30
    assert len(gallery.audit_events()) == events
    assert not settings_path().with_name("settings.json.part").exists()


def test_a_damaged_settings_file_is_reported_never_overwritten(gallery: Gallery) -> None:
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text("{not json", encoding="utf-8")
    with pytest.raises(WorkstationError, match="settings file cannot be read"):
        apply_settings_change(gallery, Settings(top_k=30))
    assert settings_path().read_text(encoding="utf-8") == "{not json"
    assert _events(gallery) == []


def test_ui_history_is_kept_apart_and_never_audited(gallery: Gallery) -> None:
    events_before = gallery.audit_events()  # the gallery's genesis
    history = load_history()
    assert history.recent_cases == [] and history.recent_files == []
    for case in ("C-1", "C-2", "C-1"):
        history.remember("recent_cases", case)
    save_history(history)
    assert load_history().recent_cases == ["C-1", "C-2"]
    assert history_path().exists() and not settings_path().exists()
    assert gallery.audit_events() == events_before


def test_recent_lists_of_an_older_settings_file_are_carried_over() -> None:
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    old = {"schema": 1, "top_k": 25, "recent_cases": ["C-9"], "recent_files": ["/tmp/a.jpg"]}
    settings_path().write_text(json.dumps(old), encoding="utf-8")
    assert load_settings().top_k == 25
    history = load_history()
    assert history.recent_cases == ["C-9"] and history.recent_files == ["/tmp/a.jpg"]
    assert history_path().exists()  # carried over once, kept from then on


def test_a_settings_file_naming_a_renamed_configuration_loads_as_its_new_name() -> None:
    # 'opencv' (SFace, one view) became 'fast' on 1 December 2026; a file saved before must
    # still load, with the configuration that gives the same embeddings.
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(json.dumps({"schema": 1, "backend": "opencv"}), encoding="utf-8")
    loaded = load_settings()
    assert loaded.backend == "fast"
    loaded.validate()
    assert str(configuration("opencv").expected_model_id()) == str(
        configuration("fast").expected_model_id()
    )
