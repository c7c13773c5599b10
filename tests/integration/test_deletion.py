"""Deleted means deleted (issue 12 item 1): after a subject is deleted, no file under the
gallery folder holds their embedding, their photo's SHA-256, their name or their photo's path;
the audit chain still verifies; retention deletes what is past its period, audited, with a
dry run."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlite_file import append_unsigned_event, edit_database

from workstation.audit.actions import AuditAction
from workstation.cli import main
from workstation.gallery import audit_store, schema
from workstation.gallery.admin import delete_subject
from workstation.gallery.database import SqliteDatabase
from workstation.gallery.opening import INDEX_FILES_GLOB
from workstation.gallery.store import Gallery
from workstation.vision.images import load_image

NAME = "Zebulon Quintavalle-Deletable"
SUBJECT = "P-ZQ-4711"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _enrol_search_decide_export(tmp_path: Path, photo_paths: dict[str, Path]) -> dict:
    """The subject's life in the gallery up to the deletion; returns what must vanish."""
    source = tmp_path / "seized phone of zebulon" / "zebulon-mugshot-4711.jpg"
    source.parent.mkdir()
    shutil.copyfile(photo_paths["obama"], source)
    gallery = tmp_path / "g"
    for argv in (
        ["enroll", "--subject", SUBJECT, "--name", NAME, str(source)],
        ["enroll", "--subject", "P-OTHER", "--name", "Somebody Else", str(photo_paths["biden"])],
    ):
        code, _, err = run("--gallery", str(gallery), *argv)
        assert code == 0, err
    code, out, err = run(
        "--gallery", str(gallery), "search", "--case", "C-DEL-1", "--purpose", "robbery",
        "--json", str(photo_paths["obama2"]),
    )  # fmt: skip
    assert code == 0, err
    search = json.loads(out)
    assert search["candidates"][0]["subject_id"] == SUBJECT  # they became a candidate
    code, _, err = run(
        "--gallery", str(gallery), "decide", "--search", str(search["search_id"]),
        "--subject", SUBJECT, "--decision", "possible-lead", "--note", "ears and chin agree",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = run(
        "--gallery", str(gallery), "export", "--case", "C-DEL-1",
        "--out", str(tmp_path / "exports" / "case.json"),
    )  # fmt: skip
    assert code == 0, err
    with Gallery(gallery, create=False) as opened:
        embeddings = opened.subject_embeddings(SUBJECT)
        [face] = opened.faces_of(SUBJECT)
        assert opened.index().count == 2  # the index files exist and hold the face
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert face.image_sha256 == digest
    return {
        "gallery": gallery,
        "embeddings": embeddings,
        "sha256": digest,
        "path": str(source.resolve()),
        "search_id": search["search_id"],
    }


def _needles(facts: dict) -> dict[str, bytes]:
    needles = {
        "name": NAME.encode("utf-8"),
        "name (UTF-16)": NAME.encode("utf-16-le"),
        "photo SHA-256 (hex)": facts["sha256"].encode("ascii"),
        "photo SHA-256 (raw)": bytes.fromhex(facts["sha256"]),
        "photo path": facts["path"].encode("utf-8"),
        "photo file name": b"zebulon-mugshot-4711",
    }
    for n, vector in enumerate(facts["embeddings"]):
        raw = vector.astype("<f4").tobytes()
        needles[f"embedding {n}"] = raw
        needles[f"embedding {n} (first 64 bytes)"] = raw[:64]
        needles[f"embedding {n} (last 64 bytes)"] = raw[-64:]
    return needles


def _found(folder: Path, needles: dict[str, bytes], index_files: bool) -> list[str]:
    index = set(folder.glob(INDEX_FILES_GLOB))
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if (path in index) != index_files:
            continue
        data = path.read_bytes()
        found += [
            f"{what} in {path.relative_to(folder)}" for what, n in needles.items() if n in data
        ]
    return found


def test_a_deleted_subject_leaves_nothing_in_the_database_wal_or_photos(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    facts = _enrol_search_decide_export(tmp_path, photo_paths)
    gallery = facts["gallery"]
    needles = _needles(facts)
    # Before the deletion they are there (the needles are right).
    assert _found(gallery, needles, index_files=False)
    code, out, err = run(
        "--gallery", str(gallery), "subjects", "delete", SUBJECT, "--reason", "acquitted"
    )
    assert code == 0, err
    assert _found(gallery, needles, index_files=False) == []
    assert not list((gallery / "images").rglob("*.jpg"))[1:]  # only the other subject's copy
    code, out, err = run("--gallery", str(gallery), "audit", "verify")
    assert code == 0, out + err
    with Gallery(gallery, create=False, read_only=True) as opened:
        [deletion] = [e for e in opened.audit_events() if e.action == AuditAction.DELETE]
        assert deletion.details["subject_id"] == SUBJECT
        assert deletion.details["reason"] == "acquitted"
        assert deletion.details["photos_removed"] == 1
        # The past search stays, its candidate shown as a deleted subject.
        record = opened.search_record(facts["search_id"])
        assert record.candidates[0].subject_id == SUBJECT
    assert (gallery / "gallery.sqlite-wal").stat().st_size == 0  # checkpointed and truncated


def test_a_deleted_subject_leaves_nothing_in_the_vector_index_files(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    facts = _enrol_search_decide_export(tmp_path, photo_paths)
    gallery = facts["gallery"]
    needles = {k: v for k, v in _needles(facts).items() if k.startswith("embedding")}
    assert _found(gallery, needles, index_files=True)
    code, _, err = run(
        "--gallery", str(gallery), "subjects", "delete", SUBJECT, "--reason", "acquitted"
    )
    assert code == 0, err
    assert _found(gallery, needles, index_files=True) == []
    with Gallery(gallery, create=False) as opened:
        assert opened.index().count == 1


def test_a_deletion_removes_the_index_files_it_cannot_update(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    """An index behind the database (another process enrolled; not caught up here) cannot
    remove the faces in place: its files go, to be rebuilt from the database."""
    facts = _enrol_search_decide_export(tmp_path, photo_paths)
    gallery = facts["gallery"]
    code, _, err = run(
        "--gallery", str(gallery), "enroll", "--subject", "P-3", str(photo_paths["obama2"])
    )
    assert code == 0, err
    manifest = next(gallery.glob("faces.*.json"))
    stale = json.loads(manifest.read_text())
    stale["generation"] = int(stale["generation"]) - 1  # saved one change behind
    manifest.write_text(json.dumps(stale))
    code, _, err = run(
        "--gallery", str(gallery), "subjects", "delete", SUBJECT, "--reason", "acquitted"
    )
    assert code == 0, err
    needles = {k: v for k, v in _needles(facts).items() if k.startswith("embedding")}
    assert _found(gallery, needles, index_files=True) == []
    with Gallery(gallery, create=False) as opened:
        assert opened.index().count == 2  # rebuilt from the database on next use


def test_enrolment_and_merge_events_carry_ids_not_personal_data(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    facts = _enrol_search_decide_export(tmp_path, photo_paths)
    gallery = facts["gallery"]
    code, _, err = run(
        "--gallery", str(gallery), "merge", "P-OTHER", SUBJECT, "--reason", "same person"
    )
    assert code == 0, err
    with Gallery(gallery, create=False, read_only=True) as opened:
        events = opened.audit_events()
    text = json.dumps([e.to_dict() for e in events], ensure_ascii=False)
    for what in (NAME, "Somebody Else", facts["sha256"], facts["path"], "zebulon-mugshot"):
        assert what not in text, what
    enrol = next(e for e in events if e.action == AuditAction.ENROL)
    assert {"subject_id", "face_id", "image_id"} <= set(enrol.details)


def test_retention_deletes_what_is_past_its_period_in_one_audited_act(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    gallery = tmp_path / "g"
    for subject, photo in (("P-OLD", "obama"), ("P-NEW", "biden")):
        code, _, err = run("--gallery", str(gallery), "enroll", "--subject", subject,
                           "--name", f"Name of {subject}", str(photo_paths[photo]))  # fmt: skip
        assert code == 0, err
    # P-OLD was enrolled 400 days ago (the row's time set from outside; the audit log is not
    # touched).
    edit_database(
        gallery,
        "UPDATE subjects SET created_at = '2025-10-26T09:00:00+00:00' WHERE id = 'P-OLD'",
        drop_guards=False,
    )
    with Gallery(gallery, create=False, read_only=True) as opened:
        events_before = len(opened.audit_events())
    code, out, err = run("--gallery", str(gallery), "retention", "--older-than", "365",
                         "--reason", "retention rule 7(2)", "--dry-run")  # fmt: skip
    assert code == 1 and out == "" and "needs a case number" in err  # the list names subjects
    code, out, err = run("--gallery", str(gallery), "retention", "--older-than", "365",
                         "--reason", "retention rule 7(2)", "--dry-run",
                         "--case", "MAINT-2026", "--purpose", "retention review")  # fmt: skip
    assert code == 0, err
    assert "would delete P-OLD" in out and "P-NEW" not in out and "dry run" in out
    with Gallery(gallery, create=False, read_only=True) as opened:
        # Nothing deleted; the listing is one read event naming the ids it showed.
        assert opened.subject_count() == 2
        (listed,) = opened.audit_events()[events_before:]
        assert listed.action == AuditAction.VIEW and listed.case_id == "MAINT-2026"
        assert listed.details["read"] == "retention_list"
        assert listed.details["subjects"] == {"count": 1, "ids": ["P-OLD"]}
    code, out, err = run("--gallery", str(gallery), "retention", "--older-than", "365",
                         "--reason", "retention rule 7(2)")  # fmt: skip
    assert code == 0, err
    assert "deleted P-OLD" in out
    with Gallery(gallery, create=False) as opened:
        assert [s.id for s in opened.subjects()] == ["P-NEW"]
        [purge] = [e for e in opened.audit_events() if e.action == AuditAction.RETENTION]
        assert purge.details["subject_ids"] == ["P-OLD"]
        assert purge.details["reason"] == "retention rule 7(2)"
        assert purge.details["older_than_days"] == 365
        assert "Name of P-OLD" not in json.dumps(purge.details)
        assert opened.verify_audit().intact
        assert opened.index().count == 1
    code, _, err = run("--gallery", str(gallery), "retention", "--older-than", "30",
                       "--reason", "")  # fmt: skip
    assert code == 1 and "reason" in err


@pytest.mark.parametrize("days", ["-1"])
def test_retention_refuses_a_negative_period(tmp_path: Path, photo_paths, days: str) -> None:
    gallery = tmp_path / "g"
    code, _, err = run(
        "--gallery", str(gallery), "enroll", "--subject", "S", str(photo_paths["obama"])
    )
    assert code == 0, err
    code, _, err = run(
        "--gallery", str(gallery), "retention", "--older-than", days, "--reason", "r"
    )
    assert code == 1 and "0 or more" in err


def _gallery_with_named_search_rows(folder: Path, engine, photo: Path) -> None:
    """A gallery as schema 2 left it, its searches keeping each candidate's name in the row (as
    they did before names were looked up at read time): P-1 (NAME) and P-2 enrolled, two
    searches naming both, unsigned events. The current code writes no such rows."""
    folder.mkdir(parents=True)
    conn = sqlite3.connect(folder / "gallery.sqlite")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for migration in schema.MIGRATIONS[:2]:
        migration(SqliteDatabase(conn, "test", 30_000))
    conn.execute("PRAGMA user_version = 2")
    now, model = "2026-01-01T00:00:00+00:00", engine.model
    vector = np.asarray(engine.analyze(load_image(photo).bgr)[0].embedding, np.float32)
    for key, value in (("model_id", model), ("model_name", model.name), ("model_dim", model.dim)):
        conn.execute("INSERT INTO meta VALUES (?, ?)", (key, str(value)))
    for number, (subject, name) in enumerate(((SUBJECT, NAME), ("P-2", "Somebody Else")), 1):
        conn.execute(
            "INSERT INTO subjects (id, name, created_at, created_by) VALUES (?, ?, ?, 'e')",
            (subject, name, now),
        )
        conn.execute(
            "INSERT INTO images (sha256, original_path, width, height, imported_at, imported_by) "
            "VALUES (?, ?, 100, 100, ?, 'e')",
            (f"{number:064d}", f"/photos/p{number}.jpg", now),
        )
        conn.execute(
            "INSERT INTO faces (subject_id, image_id, box, source, aligned, quality, verdict, "
            "model_id, embedding, created_at) VALUES (?, ?, '[0,0,10,10]', 'detected', 1, '{}', "
            "'accept', ?, ?, ?)",
            (subject, number, str(model), (vector * number).tobytes(), now),
        )
        append_unsigned_event(conn, "e", "enrol", {"face_id": number, "subject_id": subject})
    conn.execute("INSERT INTO cases VALUES ('C-1', 'robbery', ?, 'e')", (now,))
    candidates = json.dumps(
        [
            {"rank": 1, "face_id": 1, "subject_id": SUBJECT, "name": NAME, "score": 0.61},
            {"rank": 2, "face_id": 2, "subject_id": "P-2", "name": "Somebody Else", "score": 0.2},
        ]
    )
    for search_id in (1, 2):
        conn.execute(
            "INSERT INTO searches (case_id, purpose, user, created_at, probe_sha256, face, "
            "model_id, params, gallery_size, candidates) VALUES ('C-1', 'robbery', 'e', ?, 'ab', "
            "'{}', ?, '{}', 2, ?)",
            (now, str(model), candidates),
        )
        append_unsigned_event(conn, "e", "search", {"search_id": search_id})
    conn.execute("COMMIT")
    conn.close()


def test_a_name_kept_by_an_older_search_row_is_scrubbed_and_the_scrub_is_audited(
    tmp_path: Path, engine, photo_paths: dict[str, Path]
) -> None:
    """Row hashes and scrubbing (docs/ACCOUNTABILITY.md): the deletion event re-records the
    scrubbed search rows' new hashes, so `audit verify` passes, honestly; a row edited outside
    the program before the deletion is scrubbed too but stays named by `audit verify`."""
    folder = tmp_path / "g"
    _gallery_with_named_search_rows(folder, engine, photo_paths["obama"])
    with Gallery(folder) as gallery:  # migrated on opening; adopted: its rows are the baseline
        gallery.adopt()
        assert gallery.verify_audit().intact
    # Search 2 is edited outside the program (its score) before the deletion.
    edit_database(
        folder,
        "UPDATE searches SET candidates = replace(candidates, '0.61', '0.99') WHERE id = 2",
        drop_guards=False,
    )
    with Gallery(folder) as gallery:
        assert set(gallery.row_problems("searches", ["1", "2"])) == {"2"}
        details = delete_subject(gallery, SUBJECT, "acquitted")
        deletion = gallery.audit_events()[-1]
        assert deletion.action == AuditAction.DELETE and details["subject_id"] == SUBJECT
        latest = audit_store.DatabaseRowSource(gallery.conn).latest_row_entries(
            "searches", ["1", "2"]
        )
        # Search 1 verified before the scrub: the deletion event holds its new hash.
        assert latest["1"][0] == deletion.seq and latest["1"][1] is not None
        assert latest["2"][0] < deletion.seq  # search 2 did not: nothing re-recorded for it
        for search_id in (1, 2):
            (text,) = gallery.conn.execute(
                "SELECT candidates FROM searches WHERE id = ?", (search_id,)
            ).fetchone()
            kept = json.loads(text)
            assert [c.get("name") for c in kept] == [None, "Somebody Else"]
            assert kept[0]["subject_id"] == SUBJECT  # ids and scores stay
        report = gallery.verify_audit()
        assert not report.intact and "search 2" in (report.problem or "")
        assert set(gallery.row_problems("searches", ["1", "2"])) == {"2"}
    needles = {"name": NAME.encode("utf-8"), "name (UTF-16)": NAME.encode("utf-16-le")}
    assert _found(folder, needles, index_files=False) == []
    assert _found(folder, needles, index_files=True) == []


def test_scrubbed_search_rows_verify_after_the_deletion(
    tmp_path: Path, engine, photo_paths: dict[str, Path]
) -> None:
    folder = tmp_path / "g"
    _gallery_with_named_search_rows(folder, engine, photo_paths["obama"])
    with Gallery(folder) as gallery:
        gallery.adopt()
        delete_subject(gallery, SUBJECT, "acquitted")
    code, out, err = run("--gallery", str(folder), "audit", "verify")
    assert code == 0, out + err
    needles = {"name": NAME.encode("utf-8"), "name (UTF-16)": NAME.encode("utf-16-le")}
    assert _found(folder, needles, index_files=False) == []
