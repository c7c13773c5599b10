"""Ids are never reused after a delete, also in galleries made before the upgrade: migration 3
rebuilds the tables with AUTOINCREMENT, keeping rows, indexes, triggers and foreign keys."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlite_file import append_unsigned_event

from workstation.gallery import schema
from workstation.gallery.admin import delete_subject
from workstation.gallery.database import SqliteDatabase
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


def _enrol(gallery: Gallery, engine, subject: str, photo: Path) -> int:
    report = drain(enroll(gallery, engine, items_for_subject(subject, [photo])))
    assert report.enrolled == 1, report.summary()
    face_id = report.outcomes[-1].face_id
    assert face_id is not None
    return face_id


def _previous_version_gallery(folder: Path, engine, photo: Path) -> None:
    """A gallery as the previous program version (schema 2) left it, written as that version's
    enrolment, search, decision and deletion wrote their rows and (unsigned) events: P-1 and P-2
    enrolled (faces 1 and 2), one search, P-2 excluded, then P-2 deleted. The current code cannot
    write a schema-2 gallery any more (it signs every event and hashes every row)."""
    folder.mkdir(parents=True)
    conn = sqlite3.connect(folder / "gallery.sqlite")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for migration in schema.MIGRATIONS[:2]:
        migration(SqliteDatabase(conn, "test", 30_000))
    conn.execute("PRAGMA user_version = 2")
    now, model = "2026-01-01T00:00:00+00:00", engine.model
    face = engine.analyze(load_image(photo).bgr)[0]
    vector = np.asarray(face.embedding, dtype=np.float32).tobytes()
    for key, value in (
        ("model_id", str(model)),
        ("model_name", model.name),
        ("model_dim", model.dim),
    ):
        conn.execute("INSERT INTO meta VALUES (?, ?)", (key, str(value)))
    for number, subject in ((1, "P-1"), (2, "P-2")):
        conn.execute(
            "INSERT INTO subjects (id, name, created_at, created_by) VALUES (?, NULL, ?, 'e')",
            (subject, now),
        )
        conn.execute(
            "INSERT INTO images (sha256, original_path, width, height, imported_at, imported_by) "
            "VALUES (?, ?, 100, 100, ?, 'e')",
            (f"{number:064d}", f"/photos/{subject}.jpg", now),
        )
        conn.execute(
            "INSERT INTO faces (subject_id, image_id, box, source, aligned, quality, verdict, "
            "model_id, embedding, created_at) VALUES (?, ?, '[0,0,10,10]', 'detected', 1, '{}', "
            "'accept', ?, ?, ?)",
            (subject, number, str(model), vector, now),
        )
        append_unsigned_event(conn, "e", "enrol", {"face_id": number, "subject_id": subject})
    conn.execute("INSERT INTO cases VALUES ('C-1', 'robbery', ?, 'e')", (now,))
    conn.execute(
        "INSERT INTO searches (case_id, purpose, user, created_at, probe_sha256, face, model_id, "
        "params, gallery_size, candidates) VALUES ('C-1', 'robbery', 'e', ?, 'ab', '{}', ?, "
        "'{}', 2, '[]')",
        (now, str(model)),
    )
    append_unsigned_event(conn, "e", "search", {"search_id": 1})
    conn.execute(
        "INSERT INTO decisions (search_id, subject_id, decision, user, created_at) "
        "VALUES (1, 'P-2', 'excluded', 'e', ?)",
        (now,),
    )
    append_unsigned_event(conn, "e", "decision", {"decision_id": 1})
    # The last-enrolled subject is deleted: its ids are the highest ones.
    conn.execute("DELETE FROM faces WHERE subject_id = 'P-2'")
    conn.execute("DELETE FROM images WHERE id = 2")
    conn.execute("DELETE FROM subjects WHERE id = 'P-2'")
    append_unsigned_event(conn, "e", "delete", {"subject_id": "P-2", "face_ids": [2]})
    conn.execute("COMMIT")
    conn.close()


def _kept(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every table, column, row, index, trigger and foreign key of `before` is in `after`
    (later migrations may add tables and nullable columns: rows are compared on the columns
    that were there)."""
    for table, rows in before["rows"].items():
        width = len(before["columns"][table])
        assert after["columns"][table][:width] == before["columns"][table], table
        assert [row[:width] for row in after["rows"][table]] == rows, table
        assert after["foreign_keys"][table] == before["foreign_keys"][table], table
    assert set(before["indexes_and_triggers"]) <= set(after["indexes_and_triggers"])


def test_a_gallery_of_the_previous_version_never_reuses_deleted_ids(
    tmp_path: Path, engine, photo_paths: dict[str, Path]
) -> None:
    folder = tmp_path / "gallery"
    _previous_version_gallery(folder, engine, photo_paths["obama"])
    conn = sqlite3.connect(folder / "gallery.sqlite")
    before = _schema(conn)
    conn.close()
    # What the old schema did: the next face took the deleted face's id again, so the old
    # search's candidate 2 would now show another person's photo.
    reused = tmp_path / "copy"
    shutil.copytree(folder, reused)
    conn = sqlite3.connect(reused / "gallery.sqlite")
    with conn:
        cursor = conn.execute(
            "INSERT INTO faces (subject_id, image_id, box, source, aligned, quality, verdict, "
            "model_id, embedding, created_at) SELECT subject_id, image_id, box, source, aligned, "
            "quality, verdict, model_id, embedding, created_at FROM faces WHERE id = 1"
        )
    assert cursor.lastrowid == 2
    conn.close()

    with Gallery(folder) as gallery:  # this version: migrated on opening
        conn = gallery.conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        _kept(before, _schema(conn))  # same rows, columns, indexes, triggers, foreign keys
        for table in ID_TABLES:
            (sql,) = conn.execute(
                "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
            ).fetchone()
            assert "AUTOINCREMENT" in sql, table
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert gallery.verify_audit().intact
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET user = 'mallory' WHERE seq = 1")
        conn.rollback()  # the refused UPDATE opened a transaction
        gallery.adopt()  # its examiner becomes the first administrator; events are signed on
        assert gallery.verify_audit().intact

        # The deleted face's id is never given again, nor its image's.
        new_face = _enrol(gallery, engine, "P-3", photo_paths["biden"])
        assert new_face == 3
        assert gallery.face(2) is None  # the old candidate: "no longer in the gallery"
        new_image = gallery.face(new_face).image_id
        assert new_image not in {row[0] for row in before["rows"]["images"]}
        # The search and decision tables keep counting from where they were.
        later = search_image(gallery, engine, load_image(photo_paths["obama2"]), "C-1", "again")
        assert later.search_id == 2


def test_ids_deleted_after_the_upgrade_are_not_reused(gallery, engine, photo_paths) -> None:
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
        migration(SqliteDatabase(conn, "test", 30_000))
    conn.execute("PRAGMA user_version = 2")
    append_unsigned_event(conn, "e", "enrol", {"face_id": 41, "subject_id": "X"})
    append_unsigned_event(conn, "e", "search", {"search_id": 7})
    append_unsigned_event(conn, "e", "decision", {"decision_id": 3})
    conn.execute("COMMIT")
    conn.close()
    with Gallery(folder) as gallery:
        sequence = dict(gallery.conn.execute("SELECT name, seq FROM sqlite_sequence"))
    assert sequence == {"images": 0, "faces": 41, "searches": 7, "decisions": 3, "calibrations": 0}


def test_bulk_added_faces_never_take_a_deleted_id(gallery) -> None:
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
