"""The agency gallery's own promises, on a real PostgreSQL server (pgserver) and Milvus Lite:
`agency init` is repeatable and writes no credentials, the vector collection is written in the
act (a deleted face leaves searches at once) and repaired from the database when a write was
interrupted, concurrent writers on two connections lose and duplicate nothing, and an embedded
gallery never needs the agency's client libraries.

(The gallery's behaviour itself, the same for both kinds, is tested by the modules that set
GALLERY_KINDS: they run on an embedded and on an agency gallery.)
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from workstation.audit.actions import AuditAction
from workstation.cli import main
from workstation.domain import ModelId
from workstation.errors import GalleryError, WorkstationError
from workstation.gallery.admin import delete_subject
from workstation.gallery.agency import CONFIG_NAME, read_config, shareable_url
from workstation.gallery.milvus import MilvusVectors
from workstation.gallery.store import Gallery, open_gallery

DIM = 16
MODEL = ModelId("synthetic-agency-test", "2" * 64, DIM)


@pytest.fixture
def agency_folder(agency_servers, tmp_path: Path):
    folder = agency_servers.new_gallery(tmp_path / "agency")
    yield folder
    agency_servers.drop_gallery(folder)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _vectors(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _enrol(gallery: Gallery, subjects: list[str], seed: int = 1) -> list[int]:
    with gallery.change(AuditAction.ENROL, {"faces": len(subjects)}) as change:
        change.bind_model(MODEL)
        for subject in dict.fromkeys(subjects):
            change.ensure_subject(subject)
        ids = change.add_faces_bulk(
            subjects,
            _vectors(len(subjects), seed),
            [f"{seed}-{subject}-{n}" for n, subject in enumerate(subjects)],
            model_id=str(MODEL),
            original_path="synthetic",
            width=112,
            height=112,
            box=(0, 0, 112, 112),
        )
    return [int(i) for i in ids]


def _collection_ids(folder: Path) -> set[int]:
    return {int(i) for i in MilvusVectors(read_config(folder).vectors).all_ids()}


# ---------------------------------------------------------------------- init and gallery.toml
def test_init_writes_a_shareable_gallery_toml_and_is_repeatable(agency_servers, tmp_path) -> None:
    with agency_servers.admin() as conn:
        conn.execute("CREATE DATABASE init_test")
    try:
        folder = tmp_path / "shared"
        url = agency_servers.url("init_test").replace("postgres@", "postgres:pw@")
        vectors = str(tmp_path / "v.db")
        for _ in range(2):  # a second init upgrades in place and changes nothing
            code, out, err = run(
                "agency", "init", str(folder), "--database", url, "--vectors", vectors
            )
            assert code == 0, err
            assert "agency gallery ready" in out
        text = (folder / CONFIG_NAME).read_text()
        # Each examiner connects as themselves: neither the user nor the password is shared. (Not
        # "pw" alone: the test server's random socket folder may contain those letters.)
        assert "postgres:" not in text and ":pw@" not in text and '"pw"' not in text
        assert read_config(folder).database_url == shareable_url(url)
        # The test's server trusts the local socket; an examiner's libpq names the role.
        with agency_servers.admin("init_test") as conn:
            conn.execute("CREATE ROLE examiner1 LOGIN SUPERUSER")
        with open_gallery(folder, user="examiner1") as gallery:
            assert gallery.kind == "agency" and gallery.user == "examiner1"
            assert [e.action for e in gallery.audit_events()] == ["genesis"]
        code, out, err = run("--gallery", str(folder), "agency", "info")
        assert code == 0, err
        assert "database: postgresql://" in out and "init_test" in out and "faces: 0" in out
    finally:
        with agency_servers.admin() as conn:
            conn.execute("DROP DATABASE IF EXISTS init_test WITH (FORCE)")
            conn.execute("DROP ROLE IF EXISTS examiner1")


def test_a_gallery_named_in_a_broken_toml_says_so(tmp_path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / CONFIG_NAME).write_text("[database]\nurl = 'postgresql:///x'\n")
    with pytest.raises(GalleryError, match=r"needs \[database\] url and \[vectors\] uri"):
        open_gallery(folder)
    (folder / CONFIG_NAME).write_text("[database\n")
    with pytest.raises(WorkstationError, match=r"not a valid gallery\.toml"):
        open_gallery(folder)


def test_the_agency_extra_is_optional(tmp_path) -> None:
    """An embedded gallery never imports the PostgreSQL or Milvus client libraries."""
    code = (
        "import sys; from workstation.gallery.store import Gallery; "
        f"Gallery({str(tmp_path / 'g')!r}).close(); "
        "assert 'psycopg' not in sys.modules and 'pymilvus' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_agency_clients_names_the_libraries_or_what_is_missing() -> None:
    """`workstation agency clients` (the installer's smoke test runs it in the frozen app)
    loads psycopg with its libpq and pymilvus with grpc and names their versions; without
    pymilvus it says the installation cannot open an agency gallery and exits non-zero."""
    import psycopg
    import pymilvus

    code, out, err = run("agency", "clients")
    assert code == 0, err
    assert f"psycopg {psycopg.__version__}" in out and "libpq " in out
    assert f"pymilvus {pymilvus.__version__}" in out and "grpc " in out
    # A separate interpreter in which pymilvus cannot be imported (as without the extra).
    script = (
        "import sys; sys.modules['pymilvus'] = None; from workstation.cli import main; "
        "sys.exit(main(['agency', 'clients']))"
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert child.returncode != 0
    assert "cannot open an agency gallery: missing pymilvus" in child.stderr + child.stdout


# ---------------------------------------------------------------------- the vector collection
def test_a_deleted_subject_leaves_the_collection_in_the_act(agency_folder) -> None:
    with open_gallery(agency_folder, user="examiner1") as gallery:
        kept = _enrol(gallery, ["P-1", "P-1"], seed=1)
        gone = _enrol(gallery, ["P-2", "P-2"], seed=2)
        assert _collection_ids(agency_folder) == set(kept + gone)
        delete_subject(gallery, "P-2", "court order 1/2026")
        # Removed from Milvus before the act committed: no search can propose them again.
        assert _collection_ids(agency_folder) == set(kept)
        assert gallery.verify_audit().intact


def test_an_interrupted_vector_write_is_repaired_on_the_next_open(agency_folder) -> None:
    with open_gallery(agency_folder, user="examiner1") as gallery:
        ids = _enrol(gallery, ["P-1", "P-2", "P-3"])
    vectors = MilvusVectors(read_config(agency_folder).vectors)
    # As if a workstation died between its Milvus write and its commit (a vector with no row)
    # and a delete reached Milvus for an act that then failed (a row with no vector): the
    # counts stay equal.
    vectors.delete([ids[0]])
    vectors.upsert(np.asarray([10**9], dtype=np.int64), _vectors(1, 9))
    messages: list[str] = []
    with open_gallery(agency_folder, user="examiner1") as reopened:
        index = reopened.index(on_message=messages.append)
        assert index.count == 3
        assert (
            len(messages) == 1
            and "1 missing vector(s) re-inserted, 1 without a face" in (messages[0])
        )
        assert _collection_ids(agency_folder) == set(ids)
        scores, found = index.search(_vectors(3, 1)[0], 3)
        assert int(found[0]) == ids[0] and scores[0] == pytest.approx(1.0, abs=1e-5)
        assert reopened.audit_events()[-1].action == "index_rebuild"
        assert reopened.verify_audit().intact


# ---------------------------------------------------------------------- concurrency
def test_two_workstations_enrol_at_once_and_nothing_is_lost(agency_folder) -> None:
    """Two connections (as two workstations would) enrol at once: the advisory write lock
    serialises them, so ids are unique, every face has its vector and the chain holds."""
    with open_gallery(agency_folder, user="examiner1") as first:
        _enrol(first, ["P-0"], seed=100)
    errors: list[BaseException] = []
    made: dict[int, list[int]] = {}

    def workstation(number: int) -> None:
        try:
            with open_gallery(agency_folder, user="examiner1") as gallery:
                made[number] = []
                for batch in range(4):
                    subjects = [f"W{number}-{batch}-{n}" for n in range(5)]
                    made[number] += _enrol(gallery, subjects, seed=number * 10 + batch)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=workstation, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    all_ids = made[1] + made[2]
    assert len(all_ids) == len(set(all_ids)) == 40
    with open_gallery(agency_folder, user="examiner1") as gallery:
        assert gallery.face_count() == 41
        assert _collection_ids(agency_folder) == {int(i) for i in gallery.face_ids()}
        report = gallery.verify_audit()
        assert report.intact and report.events == 1 + 1 + 8


def test_a_released_collection_is_loaded_on_open(agency_folder) -> None:
    """Milvus Lite in a new process (or a Milvus that was restarted) holds the collection as
    'released': opening the gallery loads it instead of failing every search."""
    with open_gallery(agency_folder, user="examiner1") as gallery:
        ids = _enrol(gallery, ["P-1", "P-2"])
    vectors = MilvusVectors(read_config(agency_folder).vectors)
    vectors.client.release_collection(read_config(agency_folder).vectors.collection)
    with open_gallery(agency_folder, user="examiner1") as reopened:
        _, found = reopened.index().search(_vectors(2, 1)[1], 2)
        assert int(found[0]) == ids[1]
