"""Ids are never reused after a delete, also in galleries made before the upgrade: migration 3
rebuilds the tables with AUTOINCREMENT, keeping rows, indexes, triggers and foreign keys."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from workstation.audit.log import verify_chain
from workstation.gallery import schema
from workstation.gallery.admin import delete_subject
from workstation.gallery.decisions import record_decision
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.progress import drain
from workstation.vision.images import load_image

ID_TABLES = ("images", "faces", "searches", "decisions", "calibrations")


def _schema(conn: sqlite3.Connection) -> dict[str, Any]:
    """Everything a rebuild must keep: tables' rows, indexes, triggers, foreign keys."""
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'sqlite_sequence' "
            "ORDER BY name"
        )
    ]
    return {
        "rows": {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in tables},
        "columns": {t: conn.execute(f'PRAGMA table_info("{t}")').fetchall() for t in tables},
        "indexes_and_triggers": conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE type IN "
            "('index', 'trigger') ORDER BY name"
        ).fetchall(),
        "foreign_keys": {
            t: conn.execute(f'PRAGMA foreign_key_list("{t}")').fetchall() for t in tables
        },
    }


def _enrol(gallery: Gallery, engine, subject: str, photo: Path) -> int:  # type: ignore[no-untyped-def]
    report = drain(enroll(gallery, engine, items_for_subject(subject, [photo])))
    assert report.enrolled == 1, report.summary()
    face_id = report.outcomes[-1].face_id
    assert face_id is not None
    return face_id


def test_a_gallery_of_the_previous_version_never_reuses_deleted_ids(
    tmp_path: Path, engine, photo_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "gallery"
    # The previous program version: schema 2, with the real enrolment, search and delete code.
    with monkeypatch.context() as previous:
        previous.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:2])
        previous.setattr(schema, "SCHEMA_VERSION", 2)
        with Gallery(folder, user="examiner1") as gallery:
            obama = _enrol(gallery, engine, "P-1", photo_paths["obama"])
            biden = _enrol(gallery, engine, "P-2", photo_paths["biden"])
            assert (obama, biden) == (1, 2)
            search = search_image(
                gallery, engine, load_image(photo_paths["obama2"]), "C-1", "robbery"
            )
            assert {c.face_id for c in search.candidates} == {obama, biden}
            record_decision(gallery, search.search_id, "P-2", "excluded", "not him")
            # The last-enrolled subject is deleted: its ids are the highest ones.
            delete_subject(gallery, "P-2", "enrolled by mistake")
            before = _schema(gallery.conn)
        # What the old schema did: the next enrolment took the deleted face's id again, so the
        # old search's candidate 2 would now show another person's photo.
        reused = tmp_path / "copy"
        shutil.copytree(folder, reused)
        with Gallery(reused, user="examiner1") as old_copy:
            assert _enrol(old_copy, engine, "P-3", photo_paths["biden"]) == biden

    with Gallery(folder, user="examiner1") as gallery:  # this version: migrated on opening
        conn = gallery.conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert _schema(conn) == before  # same rows, columns, indexes, triggers, foreign keys
        for table in ID_TABLES:
            (sql,) = conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            ).fetchone()
            assert "AUTOINCREMENT" in sql, table
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert verify_chain(conn).intact
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET user = 'mallory' WHERE seq = 1")
        conn.rollback()  # the refused UPDATE opened a transaction

        # The deleted face's id is never given again, nor its image's.
        new_face = _enrol(gallery, engine, "P-3", photo_paths["biden"])
        assert new_face == biden + 1
        assert gallery.face(biden) is None  # the old candidate: "no longer in the gallery"
        new_image = gallery.face(new_face).image_id
        assert new_image not in {row[0] for row in before["rows"]["images"]}
        # The search and decision tables keep counting from where they were.
        later = search_image(gallery, engine, load_image(photo_paths["obama2"]), "C-1", "again")
        assert later.search_id == search.search_id + 1


def test_ids_deleted_after_the_upgrade_are_not_reused(gallery, engine, photo_paths) -> None:  # type: ignore[no-untyped-def]
    first = _enrol(gallery, engine, "P-1", photo_paths["obama"])
    second = _enrol(gallery, engine, "P-2", photo_paths["biden"])
    delete_subject(gallery, "P-2", "court order")
    third = _enrol(gallery, engine, "P-3", photo_paths["biden"])
    assert first < second < third


def test_sequence_starts_above_ids_only_the_audit_log_remembers(tmp_path: Path) -> None:
    """A face deleted before the upgrade, when it was the highest, is named only in the audit
    log: its id is skipped too."""
    folder = tmp_path / "g"
    folder.mkdir()
    conn = sqlite3.connect(folder / "gallery.sqlite")
    conn.execute("BEGIN IMMEDIATE")
    for migration in schema.MIGRATIONS[:2]:
        migration(conn)
    conn.execute("PRAGMA user_version = 2")
    from workstation.audit.log import append_event

    append_event(conn, user="e", action="enrol", details={"face_id": 41, "subject_id": "X"})
    append_event(conn, user="e", action="search", details={"search_id": 7})
    append_event(conn, user="e", action="decision", details={"decision_id": 3})
    conn.execute("COMMIT")
    conn.close()
    with Gallery(folder) as gallery:
        sequence = dict(gallery.conn.execute("SELECT name, seq FROM sqlite_sequence"))
    assert sequence == {"images": 0, "faces": 41, "searches": 7, "decisions": 3, "calibrations": 0}


def test_bulk_added_faces_never_take_a_deleted_id(gallery) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from workstation.audit.actions import AuditAction

    def add(subject: str, count: int) -> list[int]:
        with gallery.change(AuditAction.ENROL, {"test": subject}) as change:
            change.add_subjects([(subject, None, {})])
            ids = change.add_faces_bulk(
                [subject] * count,
                np.ones((count, 8), dtype=np.float32),
                [f"{subject}-{k}" for k in range(count)],
                model_id="synthetic@0",
                original_path="/nowhere.jpg",
                width=100,
                height=100,
                box=(10, 10, 50, 50),
            )
        return [int(i) for i in ids]

    assert add("A", 2) == [1, 2]
    assert add("B", 2) == [3, 4]
    delete_subject(gallery, "B", "test")
    assert add("C", 1) == [5]  # not 3: B's ids stay retired
