"""An agency enrolment process killed with SIGKILL in the middle of a batch (issue 13 item 3):
after its Milvus write and before its PostgreSQL commit, in the middle of its Milvus writes, and
just after its commit. On the next open the repair makes the collection match PostgreSQL (no
vector without a row, none missing), as an audited act, and `audit verify` passes.

Real processes and engines: the enrolment runs `workstation.gallery.enroll.enroll` with the real
models on real photos in a child process, against PostgreSQL (pgserver) and a Milvus Lite server
both processes share (as workstations share an agency's Milvus); the child is killed with a real
SIGKILL at the chosen point (its own patch of the Milvus write or the database commit sends it).

Vectors are written to Milvus before PostgreSQL commits (gallery/milvus.py), so a killed
workstation can leave vectors without rows, never rows without vectors; a row without a vector
(a Milvus delete whose act then failed) is repaired too (tests/unit/test_agency.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from workstation.audit.actions import AuditAction
from workstation.gallery.agency import read_config
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.milvus import MilvusVectors
from workstation.gallery.store import Gallery, open_gallery
from workstation.progress import drain
from workstation.vision.cvcompat import cv2_module

# The child: enrol the photos two per batch, and SIGKILL itself at `point` in the second batch.
CHILD = r"""
import os, signal, sys
from pathlib import Path
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.milvus import MilvusVectors
from workstation.gallery.postgres import PostgresDatabase
from workstation.gallery.store import open_gallery
from workstation.progress import drain
from workstation.vision.registry import create_engine

folder, point, *photos = sys.argv[1:]
state = {"batch": 0, "writes": 0}
# An act writes its new faces' vectors with MilvusVectors.insert (a repair upserts).
insert, commit = MilvusVectors.insert, PostgresDatabase.commit

def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)

def killing_insert(self, ids, vectors):
    if point == "mid_milvus_write" and state["batch"] == 1 and state["writes"] == 1:
        die()  # the batch's first vector is in Milvus, its second never gets there
    insert(self, ids, vectors)
    state["writes"] += 1

def killing_commit(self):
    if state["writes"] and state["batch"] == 1 and point == "before_commit":
        die()  # every vector of the batch is in Milvus, no row of it committed
    commit(self)
    if state["writes"]:
        if state["batch"] == 1 and point == "after_commit":
            die()  # committed, nothing after it (witness, index bookkeeping) ran
        state["batch"] += 1
        state["writes"] = 0

MilvusVectors.insert = killing_insert
PostgresDatabase.commit = killing_commit
items = [
    item for n, photo in enumerate(photos) for item in items_for_subject(f"P-{n}", [Path(photo)])
]
with open_gallery(folder, user="examiner1") as gallery:
    drain(enroll(gallery, create_engine(), items, batch_size=2))
print("finished without being killed")
"""


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    from agency_servers import MilvusServer, agency_available

    if agency_available() is not None:
        pytest.skip(agency_available())
    server = MilvusServer(tmp_path_factory.mktemp("milvus-server"))
    yield server
    server.stop()


@pytest.fixture
def six_photos(tmp_path: Path, photo_paths: dict[str, Path]) -> list[Path]:
    """Six real photos with six SHA-256s: the three fixtures and their mirror images."""
    photos = []
    for name, path in sorted(photo_paths.items()):
        photos.append(path)
        mirrored = tmp_path / f"{name}-mirrored.jpg"
        cv2 = cv2_module()
        cv2.imwrite(str(mirrored), cv2.flip(cv2.imread(str(path)), 1))
        photos.append(mirrored)
    return photos


def _collection_ids(folder: Path) -> set[int]:
    return {int(i) for i in MilvusVectors(read_config(folder).vectors).all_ids()}


def _face_ids(folder: Path) -> set[int]:
    with Gallery(folder, read_only=True) as gallery:
        return {int(i) for i in gallery.face_ids()}


@pytest.mark.parametrize(
    ("point", "faces_after", "vectors_after", "orphans"),
    [
        ("before_commit", 2, 4, 2),  # batch 2's vectors in Milvus, its rows never committed
        ("mid_milvus_write", 2, 3, 1),  # one vector of batch 2 written, then killed
        ("after_commit", 4, 4, 0),  # killed right after the commit: consistent, no repair
    ],
)
def test_an_enrolment_killed_mid_batch_is_repaired_on_the_next_open(
    point: str,
    faces_after: int,
    vectors_after: int,
    orphans: int,
    agency_servers,
    milvus_server,
    tmp_path: Path,
    engine,
    six_photos: list[Path],
) -> None:
    folder = agency_servers.new_gallery(tmp_path / "agency", vectors_uri=milvus_server.uri)
    try:
        with open_gallery(folder, user="examiner1"):
            pass  # genesis: the test's own profile is the administrator the child acts as
        child = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder), point, *map(str, six_photos)],
            capture_output=True,
            text=True,
            timeout=600,
            env=os.environ.copy(),
        )
        assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
        # What the kill left: the second batch's rows are committed or not at all, and Milvus
        # holds what the child wrote before it died.
        assert len(_face_ids(folder)) == faces_after
        held = _collection_ids(folder)
        assert len(held) == vectors_after and _face_ids(folder) <= held
        messages: list[str] = []
        with open_gallery(folder, user="examiner1") as reopened:
            before = reopened.audit_head()[0]
            reopened.index(on_message=messages.append)
            assert _collection_ids(folder) == _face_ids(folder)
            repairs = [e for e in reopened.audit_events() if e.seq > before]
            if orphans:
                assert [e.action for e in repairs] == [AuditAction.INDEX_REBUILD.value]
                assert repairs[0].details["vectors_without_row_deleted"] == orphans
                assert repairs[0].details["vectors_reinserted"] == 0
                assert f"{orphans} without a face deleted" in messages[0]
            else:
                assert repairs == [] and messages == []
            assert reopened.verify_audit().intact
            # Enrolling again finishes the job: committed photos are skipped by SHA-256.
            items = [
                item
                for n, photo in enumerate(six_photos)
                for item in items_for_subject(f"P-{n}", [photo])
            ]
            drain(enroll(reopened, engine, items, batch_size=2))
            assert len(_face_ids(folder)) == 6
            assert _collection_ids(folder) == _face_ids(folder)
            report = reopened.verify_audit()
            assert report.intact, report.problem
    finally:
        agency_servers.drop_gallery(folder)
