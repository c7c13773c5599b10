"""The gallery with real models, SQLite and FAISS: enrolment, search, deletion, the index."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import same_person_line
from examiners import open_as
from gallery_storage import INDEX_DAMAGES, damage_index, saved_index_state
from PIL import Image
from sqlite_file import read_database

from workstation.audit.actions import AuditAction
from workstation.domain import BBox, ModelId
from workstation.errors import CaseRequiredError, GalleryError, ModelMismatchError, WorkstationError
from workstation.gallery.admin import delete_subject, reembed
from workstation.gallery.decisions import confirm_lead, decisions_for, record_decision
from workstation.gallery.enroll import FAILED, SKIPPED, enroll, items_for_subject, read_manifest
from workstation.gallery.index_build import rebuild_index
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.progress import CancelToken, drain
from workstation.vision.images import load_image

# Every test taking `gallery` runs on both kinds of gallery (tests/conftest.py).
GALLERY_KINDS = ("embedded", "agency")


def _enrol_fixture_people(gallery: Gallery, engine, photo_paths: dict[str, Path]):
    items = items_for_subject("P-OBAMA", [photo_paths["obama"]], "Barack Obama")
    items += items_for_subject("P-BIDEN", [photo_paths["biden"]], "Joe Biden")
    return drain(enroll(gallery, engine, items))


def test_enrol_then_search_finds_the_right_person(gallery, engine, photo_paths) -> None:
    report = _enrol_fixture_people(gallery, engine, photo_paths)
    assert report.enrolled == 2 and report.failed == 0
    assert gallery.face_count() == 2 and gallery.subject_count() == 2
    assert gallery.model_id == str(engine.model)
    result = search_image(
        gallery, engine, load_image(photo_paths["obama2"]), "2026-0042", "robbery lead"
    )
    assert [c.subject_id for c in result.candidates] == ["P-OBAMA", "P-BIDEN"]
    assert result.candidates[0].name == "Barack Obama"
    same = same_person_line(engine.model)
    assert result.candidates[0].score > same > result.candidates[1].score
    event = gallery.audit_events(case_id="2026-0042")[-1]
    assert event.action == "search" and event.purpose == "robbery lead"
    assert event.details["probe_sha256"] == result.probe.sha256
    assert event.details["model_id"] == str(engine.model)
    assert [c["subject_id"] for c in event.details["candidates"]] == ["P-OBAMA", "P-BIDEN"]
    assert event.details["candidates"][0]["score"] == pytest.approx(
        result.candidates[0].score, abs=1e-5
    )
    assert gallery.verify_audit().intact


def test_one_row_per_subject_with_its_best_face(gallery, engine, photo_paths) -> None:
    items = items_for_subject("P-OBAMA", [photo_paths["obama"], photo_paths["obama2"]])
    items += items_for_subject("P-BIDEN", [photo_paths["biden"]])
    drain(enroll(gallery, engine, items))
    result = search_image(gallery, engine, load_image(photo_paths["obama"]), "C", "p", top_k=20)
    assert [c.subject_id for c in result.candidates] == ["P-OBAMA", "P-BIDEN"]
    assert result.candidates[0].score == pytest.approx(1.0, abs=1e-4)  # its own photo
    top1 = search_image(gallery, engine, load_image(photo_paths["obama"]), "C", "p", top_k=1)
    assert len(top1.candidates) == 1


def test_enrolment_is_idempotent_and_keeps_a_copy(gallery, engine, photo_paths) -> None:
    _enrol_fixture_people(gallery, engine, photo_paths)
    again = drain(enroll(gallery, engine, items_for_subject("OTHER", [photo_paths["obama"]])))
    assert again.count(SKIPPED) == 1 and "already enrolled" in again.outcomes[0].message
    assert gallery.face_count() == 2 and gallery.subject("OTHER") is None
    face = gallery.faces_of("P-OBAMA")[0]
    stored = gallery.image_file(face)
    assert stored.resolve() != photo_paths["obama"].resolve()  # the gallery's own copy
    assert stored.read_bytes() == photo_paths["obama"].read_bytes()


def test_bad_photos_are_reported_and_the_rest_goes_on(
    gallery, engine, photo_paths, tmp_path
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    shutil.copy(photo_paths["obama"], folder / "a.jpg")
    (folder / "b.jpg").write_text("this is not a photo")
    Image.new("RGB", (200, 200), (90, 90, 90)).save(folder / "c.png")
    data = photo_paths["biden"].read_bytes()
    (folder / "d.jpg").write_bytes(data[: len(data) // 4])
    report = drain(enroll(gallery, engine, items_for_subject("S1", [folder])))
    by_name = {Path(o.path).name: o for o in report.outcomes}
    assert by_name["a.jpg"].status == "enrolled"
    assert by_name["b.jpg"].status == FAILED and "not an image" in by_name["b.jpg"].message
    assert by_name["c.png"].status == FAILED and "no face" in by_name["c.png"].message
    assert by_name["d.jpg"].status == FAILED and "truncated" in by_name["d.jpg"].message
    assert gallery.face_count() == 1


def test_group_photo_enrols_the_largest_face(gallery, engine, photo_paths, tmp_path) -> None:
    big = Image.open(photo_paths["obama"])
    small = Image.open(photo_paths["biden"]).resize((300, 680))
    group = Image.new("RGB", (big.width + small.width, big.height), (120, 120, 120))
    group.paste(big, (0, 0))
    group.paste(small, (big.width, 0))
    path = tmp_path / "group.jpg"
    group.save(path, quality=92)
    report = drain(enroll(gallery, engine, items_for_subject("G", [path])))
    assert report.enrolled == 1 and report.outcomes[0].other_faces == 1
    assert "1 other face(s)" in report.outcomes[0].message
    result = search_image(gallery, engine, load_image(photo_paths["obama2"]), "C", "p")
    assert result.candidates[0].subject_id == "G"
    assert result.candidates[0].score > same_person_line(engine.model)


def test_manifest_rows_attributes_and_bad_rows(gallery, engine, photo_paths, tmp_path) -> None:
    folder = tmp_path / "mugshots"
    folder.mkdir()
    shutil.copy(photo_paths["obama"], folder / "o.jpg")
    shutil.copy(photo_paths["biden"], folder / "b.jpg")
    manifest = folder / "manifest.csv"
    manifest.write_text(
        "subject_id,image,name,booking_no\n"
        "S-1,o.jpg,Barack Obama,B-77\n"
        ",b.jpg,No Id,\n"
        "S-2,,Nobody,\n"
        "S-3,missing.jpg,Ghost,\n"
        f"S-4,{folder / 'b.jpg'},Joe Biden,B-78\n"
    )
    items, bad = read_manifest(manifest)
    assert [i.subject_id for i in items] == ["S-1", "S-3", "S-4"]
    assert [b.source for b in bad] == ["manifest.csv line 3", "manifest.csv line 4"]
    report = drain(enroll(gallery, engine, items, already_failed=bad))
    assert report.enrolled == 2 and report.failed == 3
    missing = next(o for o in report.outcomes if o.subject_id == "S-3")
    assert missing.source == "manifest.csv line 5" and "not found" in missing.message
    subject = gallery.subject("S-1")
    assert subject is not None and subject.name == "Barack Obama"
    assert subject.attributes == {"booking_no": "B-77"}


def test_manifest_without_required_columns(tmp_path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,photo\n1,a.jpg\n")
    with pytest.raises(WorkstationError, match=r"m\.csv: the manifest needs the columns"):
        read_manifest(manifest)


def test_cancel_stops_between_photos(gallery, engine, photo_paths) -> None:
    cancel = CancelToken()
    items = items_for_subject("A", [photo_paths["obama"]]) + items_for_subject(
        "B", [photo_paths["biden"]]
    )
    # One photo a batch: a photo is reported after its batch committed, so with the default
    # batch both would already be written when the first is reported.
    steps = enroll(gallery, engine, items, cancel=cancel, batch_size=1)
    next(steps)  # started
    next(steps)  # first photo done
    cancel.cancel()
    report = drain(steps)
    assert report.cancelled and report.enrolled == 1
    assert gallery.face_count() == 1 and gallery.index().count == 1


def test_search_needs_case_and_purpose(gallery, engine, photo_paths) -> None:
    image = load_image(photo_paths["obama"])
    for case, purpose in (("", "p"), ("C", " "), (None, None)):
        with pytest.raises(CaseRequiredError):
            search_image(gallery, engine, image, case, purpose)
    assert [e.action for e in gallery.audit_events()] == ["genesis"]


def test_drawn_box_search_is_recorded_as_manual(gallery, engine, photo_paths) -> None:
    _enrol_fixture_people(gallery, engine, photo_paths)
    image = load_image(photo_paths["obama2"])
    face = engine.analyze(image.bgr)[0]
    box = BBox(face.box.x - 10, face.box.y - 10, face.box.w + 20, face.box.h + 20)
    result = search_image(gallery, engine, image, "C", "p", box=box)
    assert result.face.source.value == "manual"
    assert result.candidates[0].subject_id == "P-OBAMA"
    details = gallery.audit_events()[-1].details
    assert details["face_source"] == "manual" and details["box"] == box.as_list()


def test_other_model_is_refused(gallery, engine, photo_paths) -> None:
    _enrol_fixture_people(gallery, engine, photo_paths)
    with gallery.change(AuditAction.REEMBED, {"test": "another model bound"}) as change:
        change.set_model(ModelId("other-model", "ab" * 32, 128))
    with pytest.raises(ModelMismatchError, match="built with model other-model"):
        search_image(gallery, engine, load_image(photo_paths["obama"]), "C", "p")
    with pytest.raises(ModelMismatchError):
        drain(enroll(gallery, engine, items_for_subject("X", [photo_paths["obama2"]])))


@pytest.mark.parametrize("damage", INDEX_DAMAGES)
def test_damaged_index_is_rebuilt_from_sqlite(gallery, engine, photo_paths, damage) -> None:
    _enrol_fixture_people(gallery, engine, photo_paths)
    folder = gallery.folder
    damage_index(gallery, damage)
    messages: list[str] = []
    with open_as(folder, "examiner2") as reopened:
        index = reopened.index(on_message=messages.append)
        assert index.count == 2
        assert len(messages) == 1 and "from the database" in messages[0]
        result = search_image(reopened, engine, load_image(photo_paths["obama2"]), "C", "p")
        assert result.candidates[0].subject_id == "P-OBAMA"
        assert reopened.audit_events()[-2].action == "index_rebuild"
    with Gallery(folder) as third:
        quiet: list[str] = []
        assert third.index(on_message=quiet.append).count == 2 and quiet == []


def test_delete_subject_needs_a_reason_and_is_audited(gallery, engine, photo_paths) -> None:
    _enrol_fixture_people(gallery, engine, photo_paths)
    stored = gallery.image_file(gallery.faces_of("P-BIDEN")[0])
    with pytest.raises(WorkstationError, match="needs a reason"):
        delete_subject(gallery, "P-BIDEN", " ")
    with pytest.raises(GalleryError, match="not in the gallery"):
        delete_subject(gallery, "NOBODY", "typo")
    delete_subject(gallery, "P-BIDEN", "court order 17/2026")
    assert gallery.subject("P-BIDEN") is None and gallery.face_count() == 1
    assert not stored.exists()
    event = gallery.audit_events()[-1]
    assert event.action == "delete" and event.details["reason"] == "court order 17/2026"
    result = search_image(gallery, engine, load_image(photo_paths["biden"]), "C", "p")
    assert [c.subject_id for c in result.candidates] == ["P-OBAMA"]


def test_decisions_and_second_examiner(gallery, engine, photo_paths) -> None:
    _enrol_fixture_people(gallery, engine, photo_paths)
    result = search_image(gallery, engine, load_image(photo_paths["obama2"]), "C-9", "lead")
    lead = record_decision(gallery, result.search_id, "P-OBAMA", "possible_lead", "same scar")
    record_decision(gallery, result.search_id, "P-BIDEN", "excluded", "different ears")
    with pytest.raises(WorkstationError, match="not a candidate"):
        record_decision(gallery, result.search_id, "P-NOBODY", "excluded")
    with pytest.raises(WorkstationError, match="second examiner"):
        confirm_lead(gallery, lead.id)
    with open_as(gallery.folder, "examiner2") as second:
        confirmed = confirm_lead(second, lead.id, "agree")
    assert confirmed.confirms == lead.id and confirmed.user == "examiner2"
    kinds = [d.decision for d in decisions_for(gallery, result.search_id)]
    assert kinds == ["possible_lead", "excluded", "confirmed"]
    decisions = [e for e in gallery.audit_events(case_id="C-9") if e.action == "decision"]
    assert [e.user for e in decisions] == ["examiner1", "examiner1", "examiner2"]


def test_reembed_switches_model_and_keeps_search_working(
    gallery, engine, photo_paths, tiny_insightface_pack
) -> None:
    from workstation.vision.registry import create_engine

    _enrol_fixture_people(gallery, engine, photo_paths)
    tiny = create_engine("insightface", insightface_pack=tiny_insightface_pack)
    summary = drain(reembed(gallery, tiny))
    assert summary["faces"] == 2 and summary["new_model_id"] == str(tiny.model)
    assert gallery.model_id == str(tiny.model) and gallery.model_dim == 64
    assert {f.model_id for f in gallery.all_faces()} == {str(tiny.model)}
    actions = [e.action for e in gallery.audit_events()]
    assert actions[-2:] == ["reembed", "index_rebuild"]
    result = search_image(gallery, tiny, load_image(photo_paths["obama"]), "C", "p")
    assert result.candidates[0].subject_id == "P-OBAMA"  # its own photo, same face region
    assert result.candidates[0].score == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ModelMismatchError):
        search_image(gallery, engine, load_image(photo_paths["obama"]), "C", "p")


def test_index_rebuild_is_audited_and_matches(gallery, engine, photo_paths) -> None:
    _enrol_fixture_people(gallery, engine, photo_paths)
    before = gallery.index().search(
        engine.analyze(load_image(photo_paths["obama"]).bgr)[0].embedding, 2
    )
    index = drain(rebuild_index(gallery, reason="test"))
    after = index.search(engine.analyze(load_image(photo_paths["obama"]).bgr)[0].embedding, 2)
    assert np.array_equal(before[1], after[1]) and np.allclose(before[0], after[0])
    assert saved_index_state(gallery) == (2, gallery.generation)
    assert gallery.audit_events()[-1].details["reason"] == "test"


def test_schema_is_migrated_and_newer_is_refused(tmp_path) -> None:
    import sqlite3

    from workstation.gallery.schema import SCHEMA_VERSION

    with Gallery(tmp_path / "g"):
        pass
    assert read_database(tmp_path / "g", "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert read_database(tmp_path / "g", "PRAGMA journal_mode") == [("wal",)]
    conn = sqlite3.connect(tmp_path / "g" / "gallery.sqlite")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(GalleryError, match="newer than this program"):
        Gallery(tmp_path / "g")
    with pytest.raises(GalleryError, match="no gallery here"):
        Gallery(tmp_path / "nothing", create=False)


def test_delete_from_a_fresh_connection_updates_the_index_in_place(
    gallery, engine, photo_paths
) -> None:
    _enrol_fixture_people(gallery, engine, photo_paths)
    with open_as(gallery.folder, "examiner2") as fresh:  # as a GUI worker opens it
        delete_subject(fresh, "P-BIDEN", "duplicate record")
    with Gallery(gallery.folder) as later:
        messages: list[str] = []
        assert later.index(on_message=messages.append).count == 1
        assert messages == []
    assert [e.action for e in gallery.audit_events()][-1] == "delete"


def test_bulk_rows_are_stored_as_given_and_a_taken_subject_id_is_refused(gallery) -> None:
    """add_subjects / add_faces_bulk write their rows in one statement per table (PostgreSQL:
    COPY): every value reads back as given (no name, attributes, the embedding's exact bytes),
    the event's row hashes verify, the faces are searchable, and a subject id already taken
    refuses the act with the gallery's message."""
    model = ModelId("synthetic-bulk-test", "3" * 64, 16)
    vectors = np.random.default_rng(7).standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    subjects = [f"B-{n:03d}" for n in range(300)]
    with gallery.change(AuditAction.ENROL, {"faces": 300}) as change:
        change.bind_model(model)
        change.add_subjects(
            [(s, None if n % 2 else f"O'Brien \\ {n}\t", {"n": n}) for n, s in enumerate(subjects)]
        )
        ids = change.add_faces_bulk(
            subjects,
            vectors,
            [f"{n:064x}" for n in range(300)],
            model_id=str(model),
            original_path="/bulk/é photo.jpg",
            width=112,
            height=112,
            box=(0, 0, 112, 112),
        )
    assert gallery.subject("B-000").name == "O'Brien \\ 0\t"
    assert gallery.subject("B-001").name is None
    assert gallery.subject("B-002").attributes == {"n": 2}
    stored = gallery.face_vectors([int(i) for i in ids])
    assert all(stored[int(i)].tobytes() == vectors[n].tobytes() for n, i in enumerate(ids))
    assert gallery.verify_audit().intact
    _, found = gallery.index().search(vectors[123], 1)
    assert int(found[0]) == int(ids[123])
    with (
        pytest.raises(GalleryError, match="already in the gallery"),
        gallery.change(AuditAction.ENROL, {"faces": 0}) as change,
    ):
        change.add_subjects([("B-new", None, {}), ("B-007", None, {})])
    assert gallery.subject("B-new") is None and gallery.subject_count() == 300


def test_a_watch_fmr_reads_back_exactly_and_an_old_float4_column_is_migrated(
    gallery, gallery_kind, engine, photo_paths
) -> None:
    """The false-match rate and threshold a watch stores read back as written on both kinds
    of gallery (PostgreSQL's REAL is a 4-byte float: 1e-4 came back as 9.99999974738e-05).
    An agency gallery made before DOUBLE PRECISION (REAL columns, the schema before) is migrated
    when its owner upgrades it (`agency init` again), and 1e-4 stored as a 4-byte float then
    reads back as 1e-4, also in SQL."""
    from workstation.gallery.schema import REAL_COLUMNS, SCHEMA_VERSION
    from workstation.gallery.watches import add_watch, list_watches

    _enrol_fixture_people(gallery, engine, photo_paths)
    search = search_image(gallery, engine, load_image(photo_paths["obama2"]), "C-9", "robbery")
    watch = add_watch(gallery, engine, search.search_id, "the man in the lobby", fmr=1e-4)
    stored = list_watches(gallery)[0]
    assert stored.fmr == 1e-4 and stored.threshold == watch.threshold
    if gallery_kind == "embedded":
        return
    # The agency gallery as the previous version made it: REAL (float4) columns, one schema back.
    db = gallery._conn
    for table, columns in REAL_COLUMNS.items():
        for column in columns:
            db.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE REAL")
    db.set_schema_version(SCHEMA_VERSION - 1)
    # Stored as a 4-byte float: widened (any SQL arithmetic or comparison does it) it is not 1e-4.
    widened = "SELECT fmr::double precision FROM watches"
    assert float(db.execute(widened).fetchone()[0]) == pytest.approx(9.99999974738e-05, rel=1e-9)
    folder = gallery.folder
    gallery.close()
    from workstation.gallery.agency import init_agency, read_config

    config = read_config(folder)  # its owner upgrades it, as `workstation agency init` does
    test_config = (folder / "gallery.toml").read_text()  # init writes the URL without a user
    init_agency(
        folder,
        config.database_url,
        config.vectors.uri,
        collection=config.vectors.collection,
        index_type=config.vectors.index_type,
        role_prefix=config.role_prefix,
    )
    (folder / "gallery.toml").write_text(test_config)
    with Gallery(folder, user="examiner1") as reopened:
        assert reopened._conn.schema_version() == SCHEMA_VERSION
        assert list_watches(reopened)[0].fmr == 1e-4
        assert float(reopened._conn.execute(widened).fetchone()[0]) == 1e-4
        tables = ", ".join(f"'{table}'" for table in REAL_COLUMNS)
        types = reopened._conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            f"WHERE table_name IN ({tables}) AND data_type IN ('real', 'double precision')"
        ).fetchall()
        assert sorted((t, c) for t, c, _ in types) == sorted(
            (t, c) for t, cols in REAL_COLUMNS.items() for c in cols
        )
        assert {d for _, _, d in types} == {"double precision"}
        assert reopened.verify_audit().intact
