"""The gallery's unit of work (`Gallery.change`) on a real SQLite gallery with real FAISS files:
the act, its audit event and the generation commit together; the vector index and the stored
photos follow only after the commit; a failure leaves all of them as they were."""

from __future__ import annotations

import numpy as np
import pytest
from examiners import open_as

from workstation.audit.actions import AuditAction
from workstation.domain import BBox, Face, FaceSource, ModelId, Quality, Verdict
from workstation.errors import GalleryError
from workstation.gallery.store import Gallery

DIM = 32
MODEL = ModelId("synthetic-change-test", "1" * 64, DIM)


def _vectors(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _face(vector: np.ndarray) -> Face:
    quality = Quality(0.9, 60.0, 100.0, 0.0, 0.0, 0.0, Verdict.GOOD, ())
    return Face(0, BBox(0, 0, 10, 10), None, FaceSource.DETECTED, True, quality, vector, MODEL)


def _add(gallery: Gallery, subjects: list[str], vectors: np.ndarray, **kwargs) -> list[int]:
    with gallery.change(AuditAction.ENROL, {"faces": len(subjects)}, **kwargs) as change:
        change.bind_model(MODEL)
        for subject in dict.fromkeys(subjects):
            change.ensure_subject(subject, f"name of {subject}")
        base = gallery.counts()["images"]
        ids = change.add_faces_bulk(
            subjects,
            vectors,
            [f"{s}-{base + n}" for n, s in enumerate(subjects)],
            model_id=str(MODEL),
            original_path="synthetic",
            width=112,
            height=112,
            box=(0, 0, 112, 112),
        )
    return [int(i) for i in ids]


def test_a_change_commits_the_act_its_event_and_one_generation(gallery: Gallery) -> None:
    before = gallery.generation
    face_ids = _add(gallery, ["A", "A", "B"], _vectors(3, 1))
    assert gallery.generation == before + 1  # once for the whole change
    assert gallery.face_count() == 3 and gallery.subject_count() == 2
    genesis, event = gallery.audit_events()  # the gallery's genesis event, then the act
    assert genesis.action == AuditAction.GENESIS
    assert event.action == AuditAction.ENROL and event.details == {"faces": 3}
    assert gallery.verify_audit().intact
    # The index followed the commit, in memory and on disk: a fresh connection needs no rebuild.
    index = gallery.index()
    assert index.count == 3 and index.generation == gallery.generation
    with Gallery(gallery.folder) as other:
        messages: list[str] = []
        assert other.index(on_message=messages.append).count == 3
        assert messages == []
    query = gallery.face_vectors([face_ids[2]])[face_ids[2]]
    assert index.search(query, 1)[1][0] == face_ids[2]


def test_a_change_that_writes_must_record_its_audit_event(gallery: Gallery) -> None:
    with (
        pytest.raises(RuntimeError, match="must record its audit event"),
        gallery.change() as change,
    ):
        change.add_subject("UNAUDITED")
    assert gallery.subject("UNAUDITED") is None
    assert [e.action for e in gallery.audit_events()] == [AuditAction.GENESIS]
    assert not gallery.in_transaction


def test_an_unknown_action_is_refused(gallery: Gallery) -> None:
    with pytest.raises(ValueError, match="not an audited act"), gallery.change() as change:
        change.add_subject("X")
        change.record("renamed", {})
    assert gallery.subject("X") is None and len(gallery.audit_events()) == 1  # the genesis


def test_a_failed_change_leaves_database_index_and_photos_alone(gallery: Gallery) -> None:
    face_ids = _add(gallery, ["A", "B"], _vectors(2, 2))
    photo = gallery.folder / "images" / "ab" / "stored-copy.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"not really a photo")
    generation, index = gallery.generation, gallery.index()
    with pytest.raises(ZeroDivisionError), gallery.change(AuditAction.DELETE) as change:
        change.remove_subject("A")
        change.details["reason"] = "test"
        raise ZeroDivisionError
    assert gallery.subject("A") is not None and gallery.face_count() == 2
    assert gallery.generation == generation and gallery.audit_events()[-1].action == "enrol"
    assert index.count == 2 and index.deleted == 0 and gallery.index() is index
    assert photo.exists()
    assert not gallery.in_transaction
    # The same act without the error goes through, and the index follows.
    with gallery.change(AuditAction.DELETE, {"reason": "test"}) as change:
        removed, _ = change.remove_subject("A")
    assert removed == [face_ids[0]] and gallery.generation == generation + 1
    assert gallery.index() is index and index.count == 1


def test_removed_faces_take_their_photos_only_after_the_commit(gallery: Gallery, tmp_path) -> None:
    source = tmp_path / "photo.jpg"
    source.write_bytes(b"\xff\xd8 test bytes")
    stored = gallery.store_image_copy(source, "ab" * 32)
    shared = gallery.store_image_copy(source, "cd" * 32)
    with gallery.change(AuditAction.ENROL, {"test": True}) as change:
        change.bind_model(MODEL)
        change.add_subjects([("A", None, {}), ("B", None, {})])
        only_a = change.add_image("ab" * 32, str(source), 10, 10, stored_path=stored)
        both = change.add_image("cd" * 32, str(source), 10, 10, stored_path=shared)
        for subject, image_id, vector in zip(
            ("A", "A", "B"), (only_a, both, both), _vectors(3, 3), strict=True
        ):
            change.add_face(subject, image_id, _face(vector), str(MODEL))
    with gallery.change(AuditAction.DELETE, {"reason": "test"}) as change:
        face_ids, removed = change.remove_subject("A")
        # Inside the change nothing is deleted from disk yet.
        assert (gallery.folder / stored).exists()
    # The photo only A used is gone with its file; the one B still uses stays.
    assert removed == ["ab" * 32]
    assert not (gallery.folder / stored).exists() and (gallery.folder / shared).exists()
    assert gallery.image_id_for_sha256("cd" * 32) == both
    assert len(face_ids) == 2


def test_a_failed_step_is_undone_alone(gallery: Gallery) -> None:
    _add(gallery, ["A"], _vectors(1, 4))
    index = gallery.index()
    change = gallery.open_change()
    with change.step("the first photo"):
        change.ensure_subject("B")
        change.add_faces_bulk(
            ["B"],
            _vectors(1, 5),
            ["b-photo"],
            model_id=str(MODEL),
            original_path="b",
            width=1,
            height=1,
            box=(0, 0, 1, 1),
        )
        change.record(AuditAction.ENROL, {"subject_id": "B"})
    with (
        pytest.raises(GalleryError, match="refused the second photo"),
        change.step("the second photo"),
    ):
        change.ensure_subject("C")
        change.record(AuditAction.ENROL, {"subject_id": "C"})
        change.add_faces_bulk(  # the same photo hash again: the database refuses it
            ["C"],
            _vectors(1, 6),
            ["b-photo"],
            model_id=str(MODEL),
            original_path="c",
            width=1,
            height=1,
            box=(0, 0, 1, 1),
        )
    change.commit()
    assert gallery.subject("B") is not None and gallery.subject("C") is None
    assert [e.details.get("subject_id") for e in gallery.audit_events()][2:] == ["B"]
    assert index.count == 2 and gallery.index() is index  # C's face never reached the index
    assert gallery.verify_audit().intact


def test_changes_do_not_nest(gallery: Gallery) -> None:
    with gallery.change(AuditAction.ENROL, {"test": True}) as change:
        change.add_subject("A")
        with pytest.raises(RuntimeError, match="nested"), gallery.change():
            pass
    assert gallery.subject("A") is not None


def test_a_change_from_a_fresh_connection_updates_the_saved_index(gallery: Gallery) -> None:
    """A GUI worker opens its own connection: its change must update the saved index in place
    instead of leaving it to be rebuilt."""
    face_ids = _add(gallery, ["A", "B", "C"], _vectors(3, 7))
    with open_as(gallery.folder, "examiner2") as worker:
        with worker.change(AuditAction.DELETE, {"reason": "test"}) as change:
            change.remove_faces([face_ids[1]])
        new_ids = _add(worker, ["D"], _vectors(1, 8))
    with Gallery(gallery.folder) as later:
        messages: list[str] = []
        index = later.index(on_message=messages.append)
        assert messages == [] and index.count == 3
        assert "index_rebuild" not in [e.action for e in later.audit_events()]
        query = later.face_vectors(new_ids)[new_ids[0]]
        assert index.search(query, 1)[1][0] == new_ids[0]
