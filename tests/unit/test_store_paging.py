"""Paged subject queries of the gallery (the Gallery tab's list), on a real SQLite gallery."""

from __future__ import annotations

from pathlib import Path

from synthetic_subjects import add_synthetic_subjects, faces_for, name_for

from workstation.audit.actions import AuditAction
from workstation.gallery.store import Gallery
from workstation.gallery.subject_reads import SubjectInfo

COUNT = 1_500


def _all_pages(gallery: Gallery, query: str | None, limit: int) -> list[SubjectInfo]:
    rows: list[SubjectInfo] = []
    while page := gallery.subject_page(query, len(rows), limit):
        assert len(page) <= limit
        rows.extend(page)
    return rows


def test_pages_cover_every_subject_once_in_id_order_with_first_face(
    gallery: Gallery, photo_paths: dict[str, Path]
) -> None:
    add_synthetic_subjects(gallery, COUNT, photo_paths["obama"])
    first = gallery.subject_page(None, 0, 200)
    assert [s.id for s in first] == [f"SYN-{i:05d}" for i in range(200)]
    assert gallery.subject_total(None) == gallery.subject_total("") == COUNT

    rows = _all_pages(gallery, None, 200)
    everything = gallery.subjects()
    assert [s.id for s in rows] == [s.id for s in everything]
    assert [s.face_count for s in rows] == [faces_for(i) for i in range(COUNT)]
    assert [s.name for s in rows] == [name_for(i) for i in range(COUNT)]
    # first_face_id is the subject's lowest face id, None for a subject without faces.
    for subject in rows[:60] + rows[-60:]:
        faces = gallery.faces_of(subject.id)
        assert subject.first_face_id == (faces[0].id if faces else None)
    assert any(s.first_face_id is None for s in rows[:60])
    # Apart from first_face_id, a page row is what subjects() says.
    assert [
        SubjectInfo(s.id, s.name, s.attributes, s.created_at, s.face_count) for s in rows
    ] == everything


def test_search_filters_in_sql_across_pages(gallery: Gallery, photo_paths: dict[str, Path]) -> None:
    add_synthetic_subjects(gallery, COUNT, photo_paths["obama"])
    by_name = _all_pages(gallery, "moreno", 200)  # LIKE ignores ASCII case
    assert [s.id for s in by_name] == [f"SYN-{i:05d}" for i in range(0, COUNT, 3)]
    assert gallery.subject_total("moreno") == len(by_name) == 500
    assert [s.id for s in by_name] == [s.id for s in gallery.subjects("moreno")]

    by_id = _all_pages(gallery, "SYN-012", 7)
    assert [s.id for s in by_id] == [f"SYN-{i:05d}" for i in range(1200, 1300)]
    assert gallery.subject_total("SYN-012") == 100

    assert gallery.subject_page("nobody by that name", 0, 200) == []
    assert gallery.subject_total("nobody by that name") == 0
    assert gallery.subject_page(None, COUNT, 200) == []  # past the end
    assert gallery.subject_page(None, 10, 0) == []


def test_typed_wildcards_match_literally(gallery: Gallery, photo_paths: dict[str, Path]) -> None:
    with gallery.change(AuditAction.ENROL, {"test": "subjects only"}) as change:
        change.add_subjects(
            (subject_id, name, {})
            for subject_id, name in [
                ("A_1", None),
                ("AB1", None),
                ("C%2", "50% sure"),
                ("CD2", "fifty"),
            ]
        )
    assert [s.id for s in gallery.subject_page("A_", 0, 10)] == ["A_1"]
    assert [s.id for s in gallery.subject_page("%", 0, 10)] == ["C%2"]
    assert gallery.subject_total("_") == 1
    assert [s.id for s in gallery.subject_page("a", 0, 10)] == ["AB1", "A_1"]  # binary order
    assert gallery.subject_page("A_", 0, 10)[0].first_face_id is None


def test_page_query_pages_subjects_first_and_uses_the_faces_index(
    gallery: Gallery, photo_paths: dict[str, Path]
) -> None:
    """The plan, not a timing: subjects are read in id order and faces only by index."""
    add_synthetic_subjects(gallery, 300, photo_paths["obama"])
    # A test of the SQLite store's own SQL: it watches the store's private connection.
    conn = gallery._conn.connection
    executed: list[str] = []
    conn.set_trace_callback(executed.append)
    gallery.subject_page("moreno", 100, 50)
    gallery.subject_page(None, 100, 50)
    conn.set_trace_callback(None)
    for sql in executed:
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
        assert any("SEARCH f USING COVERING INDEX faces_subject" in step for step in plan), plan
        assert not any(step.startswith("SCAN f") for step in plan), plan
        # Paging happens on the subjects' primary-key index, before faces are joined.
        assert any("sqlite_autoindex_subjects_1" in step for step in plan), plan
        assert "LIMIT 50 OFFSET 100" in sql
