"""`workstation gallery copy`: a gallery moved from embedded to agency and back keeps its ids,
photos, decisions and audit chain, gives the same candidates and scores, and the gallery it left
records nothing more; a tampered source is refused, an interrupted copy never opens (real photos,
models, SQLite, FAISS, PostgreSQL and Milvus Lite)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from examiners import open_as
from sqlite_file import edit_database

from workstation.audit.actions import AuditAction
from workstation.cli import main
from workstation.domain import Decision
from workstation.errors import GalleryError, NotPermittedError
from workstation.gallery.admin import delete_subject
from workstation.gallery.copy import COPIED_TABLES, NOT_COPIED, copy_gallery
from workstation.gallery.database import SqliteDatabase
from workstation.gallery.decisions import confirm_lead, record_decision
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.schema import migrate
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery, open_gallery
from workstation.progress import CancelToken, drain
from workstation.vision.images import load_image


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def embedded_case(tmp_path: Path, engine, photo_paths: dict[str, Path]) -> Path:
    """An embedded gallery: two people (a third enrolled and deleted: its face id is the
    highest ever given), a search, a lead and a second examiner's confirmation."""
    folder = tmp_path / "embedded"
    with Gallery(folder, user="examiner1") as admin:
        items = items_for_subject("P-OBAMA", [photo_paths["obama"]], "Barack Obama")
        items += items_for_subject("P-BIDEN", [photo_paths["biden"]], "Joe Biden")
        items += items_for_subject("P-GONE", [photo_paths["obama2"]], "Deleted Person")
        drain(enroll(admin, engine, items))
        delete_subject(admin, "P-GONE", "enrolled by mistake")
    with open_as(folder, "alice") as alice:
        result = search_image(alice, engine, load_image(photo_paths["obama2"]), "C-1", "lead")
        lead = record_decision(alice, result.search_id, "P-OBAMA", Decision.POSSIBLE_LEAD, "scar")
    with open_as(folder, "bob") as bob:
        confirm_lead(bob, lead.id, "agree")
    return folder


def _search(gallery: Gallery, engine, photo: Path) -> list[tuple[str, int, float]]:
    result = search_image(gallery, engine, load_image(photo), "C-2", "after the copy")
    return [(c.subject_id, c.face_id, round(c.score, 6)) for c in result.candidates]


def _rows(gallery: Gallery) -> dict[str, object]:
    return {
        "subjects": [s.to_dict() for s in gallery.subjects()],
        "faces": [(f.id, f.subject_id, f.image_id, f.image_sha256) for f in gallery.all_faces()],
        "embeddings": [(ids.tolist(), vectors.tobytes()) for ids, vectors in gallery.embeddings()],
        "cases": gallery.cases(),
        "decisions": gallery.decisions_for(1),
        "examiners": gallery.examiners(),
        "gallery_id": gallery.gallery_id,
    }


def test_the_copy_knows_every_table_of_the_schema(tmp_path: Path) -> None:
    """A migration that adds a table must add it to schema.TABLES (else copies refuse it)."""
    import sqlite3

    conn = sqlite3.connect(tmp_path / "schema.sqlite")
    db = SqliteDatabase(conn, "schema", 1000)
    migrate(db)
    tables = {
        str(r[0])
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    conn.close()
    assert tables - NOT_COPIED == {table for table, _ in COPIED_TABLES}


def test_embedded_to_agency_and_back_keeps_everything(
    embedded_case: Path, agency_servers, tmp_path: Path, engine, photo_paths
) -> None:
    agency = agency_servers.new_gallery(tmp_path / "agency")
    back = tmp_path / "back"
    try:
        with Gallery(embedded_case, user="examiner1") as source:
            before = _search(source, engine, photo_paths["obama2"])
            rows = _rows(source)
            events = [e.to_dict() for e in source.audit_events()]
            assert rows["faces"] and len(rows["decisions"]) == 2
            summary = drain(copy_gallery(source, agency))
        assert summary is not None and summary.kind == "agency"
        assert summary.rows["faces"] == 2 and summary.rows["decisions"] == 2
        assert summary.photos == 2 and summary.vectors == 2
        with open_gallery(agency, user="examiner1") as copied:
            report = copied.verify_audit()
            assert report.intact, report.problem
            copied_events = copied.audit_events()
            # The source's chain, then its last event (copied out), then the copy's first.
            assert [e.to_dict() for e in copied_events[: len(events)]] == events
            out, came_in, rebuilt = copied_events[len(events) : len(events) + 3]
            assert out.action == AuditAction.GALLERY_COPIED_OUT.value
            assert out.details["destination"] == str(agency.resolve())
            assert out.details["head_seq"] == events[-1]["seq"]
            assert came_in.action == AuditAction.GALLERY_COPIED_IN.value
            assert (came_in.details["head_seq"], came_in.details["head_hash"]) == (
                out.seq,
                out.hash,
            )
            assert came_in.prev_hash == out.hash
            assert rebuilt.action == AuditAction.INDEX_REBUILD.value
            face = copied.faces_of("P-OBAMA")[0]
            assert copied.image_file(face).read_bytes() == photo_paths["obama"].read_bytes()
            assert _rows(copied) == rows
            assert _search(copied, engine, photo_paths["obama2"]) == before
        # The gallery it left: verifies (the copy went on elsewhere: behind, not rolled back),
        # and refuses every act, naming where it went and the head.
        with Gallery(embedded_case, read_only=True) as left:
            report = left.verify_audit()
            assert report.intact, report.problem
            assert report.witnessed_elsewhere > out.seq
            assert left.audit_head() == (out.seq, out.hash)
        with Gallery(embedded_case, user="examiner1") as left:
            with pytest.raises(GalleryError, match=f"moved to {agency.resolve()} at {out.seq}:"):
                drain(enroll(left, engine, items_for_subject("P-NEW", [photo_paths["biden"]])))
            with pytest.raises(GalleryError, match="moved to"):
                _search(left, engine, photo_paths["obama2"])
            assert left.audit_head() == (out.seq, out.hash)
        code, _, err = run("--gallery", str(embedded_case), "audit", "verify")
        assert code == 0, err
        # And back into a new embedded gallery, from the command line.
        code, out_text, err = run("gallery", "copy", str(agency), str(back))
        assert code == 0, err
        assert "audit chain in the copy: intact" in out_text
        assert f"was moved to {back}" in out_text
        with Gallery(back, user="examiner1") as returned:
            assert returned.verify_audit().intact
            assert _rows(returned) == rows
            assert _search(returned, engine, photo_paths["obama2"]) == before
            # New rows go on counting above every id the source ever gave (P-GONE's face: 3).
            drain(enroll(returned, engine, items_for_subject("P-3", [photo_paths["obama2"]])))
            assert returned.faces_of("P-3")[0].id == 4
            assert returned.verify_audit().intact
        with open_gallery(agency, user="examiner1") as agency_left:
            with pytest.raises(GalleryError, match="moved to"):
                _search(agency_left, engine, photo_paths["obama2"])
            assert agency_left.verify_audit().intact
    finally:
        agency_servers.drop_gallery(agency)


def test_a_source_edited_outside_the_program_is_refused(embedded_case: Path, tmp_path) -> None:
    edit_database(embedded_case, "UPDATE subjects SET name = 'Someone Else' WHERE id = 'P-BIDEN'")
    with (
        Gallery(embedded_case, user="examiner1") as source,
        pytest.raises(GalleryError, match=r"does not verify.*nothing was copied"),
    ):
        drain(copy_gallery(source, tmp_path / "dest"))
    assert not (tmp_path / "dest").exists()
    with Gallery(embedded_case, user="examiner1") as source:  # not frozen
        assert source.audit_events()[-1].action != AuditAction.GALLERY_COPIED_OUT.value


def test_only_an_administrator_moves_a_gallery(embedded_case: Path, tmp_path) -> None:
    with (
        open_as(embedded_case, "carol", roles=["analyst"]) as carol,
        pytest.raises(NotPermittedError, match="carol may not move the gallery"),
    ):
        drain(copy_gallery(carol, tmp_path / "dest"))
    assert not (tmp_path / "dest").exists()


def test_an_interrupted_copy_never_opens_and_the_same_copy_finishes_it(
    embedded_case: Path, tmp_path: Path, engine, photo_paths
) -> None:
    dest = tmp_path / "dest"
    token = CancelToken()
    with Gallery(embedded_case, user="examiner1") as source:
        head = source.audit_head()
        work = copy_gallery(source, dest, token)
        for step in work:
            if step.message.startswith("copied "):
                token.cancel()
        # Cancelled mid-copy: the source is untouched and not frozen.
        assert source.audit_head() == head
    for opening in (
        lambda: Gallery(dest, user="examiner1"),
        lambda: Gallery(dest, read_only=True),
        lambda: open_gallery(dest, user="examiner1", create=True),
    ):
        with pytest.raises(GalleryError, match="unfinished copy of the gallery"):
            opening()
    code, _, err = run("--gallery", str(dest), "audit", "verify")
    assert code != 0 and "unfinished copy" in err
    # A photo missing from the source: refused mid-copy, the destination stays marked.
    with Gallery(embedded_case, user="examiner1") as source:
        stored = source.image_file(source.faces_of("P-BIDEN")[0])
    hidden = stored.with_name(stored.name + ".hidden")
    stored.rename(hidden)
    with (
        Gallery(embedded_case, user="examiner1") as source,
        pytest.raises(GalleryError, match="cannot be read"),
    ):
        drain(copy_gallery(source, dest))
    with pytest.raises(GalleryError, match="unfinished copy"):
        Gallery(dest, read_only=True)
    hidden.rename(stored)
    # The same copy again makes it whole.
    with Gallery(embedded_case, user="examiner1") as source:
        summary = drain(copy_gallery(source, dest))
    assert summary is not None and summary.rows["faces"] == 2
    with Gallery(dest, user="examiner1") as copied:
        assert copied.verify_audit().intact
        assert copied.faces_of("P-OBAMA")
    # And a gallery is copied only into an empty one.
    with (
        Gallery(tmp_path / "other", user="examiner1") as other,
        pytest.raises(GalleryError, match="not empty"),
    ):
        drain(copy_gallery(other, dest))


def test_a_copy_cut_between_the_two_commits_is_finished_by_running_it_again(
    embedded_case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source froze (its last event names the destination), then the process died before
    the destination committed: the destination is empty and marked, and the same copy again
    copies the frozen source, gallery_copied_out included, and finishes the move."""
    from workstation.gallery.change import GalleryChange

    dest = tmp_path / "dest"
    commit = GalleryChange.commit

    def commit_then_die(change: GalleryChange) -> int:
        commit(change)
        raise RuntimeError("power cut")

    with Gallery(embedded_case, user="examiner1") as source:
        monkeypatch.setattr(GalleryChange, "commit", commit_then_die)
        with pytest.raises(RuntimeError, match="power cut"):
            drain(copy_gallery(source, dest))
        monkeypatch.setattr(GalleryChange, "commit", commit)
        moved_at = source.audit_head()
        assert source.audit_event(moved_at[0]).action == AuditAction.GALLERY_COPIED_OUT.value
    with pytest.raises(GalleryError, match="unfinished copy"):
        Gallery(dest, read_only=True)
    with Gallery(embedded_case, user="examiner1") as source:
        with pytest.raises(GalleryError, match="moved to"):
            drain(copy_gallery(source, tmp_path / "elsewhere"))
        summary = drain(copy_gallery(source, dest))
        assert summary is not None and summary.moved_at == moved_at
        assert source.audit_head() == moved_at
    with Gallery(dest, user="examiner1") as copied:
        assert copied.verify_audit().intact
        assert copied.audit_event(moved_at[0] + 1).action == AuditAction.GALLERY_COPIED_IN.value
