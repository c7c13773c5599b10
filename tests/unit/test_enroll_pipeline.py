"""Pipelined, batched enrolment on real photos: consistency of database, index and audit log
when it finishes, when it is cancelled half-way, and when its process is killed mid-batch."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workstation.audit.actions import AuditAction
from workstation.gallery.enroll import EnrollItem, enroll
from workstation.gallery.search import rank_candidates
from workstation.gallery.store import Gallery
from workstation.progress import CancelToken, drain
from workstation.vision.images import load_image


def _items(shared_faces: Path, count: int) -> list[EnrollItem]:
    with open(shared_faces / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:count]
    return [
        EnrollItem(row["identity"], shared_faces / row["path"], f"labels.csv {row['path']}")
        for row in rows
    ]


def _assert_consistent(folder: Path) -> int:
    """Faces, enrol audit events and the (re)opened index agree; the audit chain verifies."""
    with Gallery(folder) as gallery:
        faces = gallery.face_count()
        events = [e.details for e in gallery.audit_events() if e.action == AuditAction.ENROL]
        face_ids = {face.id for face in gallery.all_faces()}
        assert {e["face_id"] for e in events} == face_ids and len(events) == faces
        assert gallery.counts()["images"] == faces
        assert gallery.verify_audit().intact
        if faces:
            index = gallery.index()
            assert index.count == faces
            # Every face in the index is a face in the database.
            for face_id in list(face_ids)[:5]:
                vector = gallery.face_vectors([face_id])[face_id]
                _, ids = index.search(vector, 1)
                assert ids[0] == face_id
        return faces


def test_pipelined_enrolment_of_real_photos(gallery, engine, shared_faces) -> None:
    items = _items(shared_faces, 24)
    from workstation.vision.cvcompat import cv2_module

    threads = cv2_module().getNumThreads()
    report = drain(enroll(gallery, engine, items, workers=2, batch_size=5))
    assert cv2_module().getNumThreads() == threads  # one thread per worker only while enrolling
    assert report.enrolled + report.failed == 24 and report.enrolled >= 20
    # Outcomes come back in the order the photos were given.
    assert [o.source for o in report.outcomes] == [i.source for i in items]
    assert {"decode", "analyze", "write", "wait"} <= set(report.timings)
    # Each of the two workers had its own instance of the models (inference in parallel).
    first_engine, second_engine = engine.replicas(2)
    assert first_engine is engine and second_engine is not engine
    assert second_engine.model == engine.model
    assert _assert_consistent(gallery.folder) == report.enrolled
    # Searching with an enrolled photo finds that very face first, for its own subject.
    for first in [o for o in report.outcomes if o.status == "enrolled"][:5]:
        faces = engine.analyze(load_image(first.path).bgr)
        top = rank_candidates(gallery, faces[0].embedding, 3)
        assert top[0].subject_id == first.subject_id and top[0].face_id == first.face_id
        assert top[0].score > 0.85  # mated pairs of different photos score 0.75 on average


def test_cancelled_batched_enrolment_resumes_consistently(gallery, engine, shared_faces) -> None:
    items = _items(shared_faces, 16)
    cancel = CancelToken()
    steps = enroll(gallery, engine, items, cancel=cancel, batch_size=4)
    next(steps)  # starting
    for _ in range(6):  # six photos reported: the second batch is committed, half reported
        next(steps)
    cancel.cancel()
    first = drain(steps)
    # Photos are reported after their batch committed: the rest of the batch being reported
    # (committed) is still reported, and nothing after it is written.
    reported = len(first.outcomes)
    assert first.cancelled and 6 <= reported <= 8
    assert _assert_consistent(gallery.folder) == first.enrolled
    assert not list(gallery.folder.glob("images/*/*.pending"))
    gallery.forget_index()
    second = drain(enroll(gallery, engine, items, batch_size=4))
    assert not second.cancelled
    assert second.skipped == first.enrolled
    assert second.enrolled == sum(1 for o in second.outcomes[reported:] if o.status == "enrolled")
    assert _assert_consistent(gallery.folder) == first.enrolled + second.enrolled


_KILLED_ENROLMENT = textwrap.dedent(
    """
    import csv, sys
    from pathlib import Path
    from workstation.gallery.enroll import EnrollItem, enroll
    from workstation.gallery.store import Gallery
    from workstation.vision.registry import create_engine

    folder, faces = Path(sys.argv[1]), Path(sys.argv[2])
    with open(faces / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))[:30]
    items = [EnrollItem(r["identity"], faces / r["path"], r["path"]) for r in rows]
    # The test's login (conftest's "examiner1"), with the same profile and key as the parent.
    with Gallery(folder, user="examiner1") as gallery:
        for step in enroll(gallery, create_engine(), items, batch_size=8):
            print(step.done, step.message, sep="\t", flush=True)
    """
)


@pytest.mark.slow
def test_enrolment_killed_mid_batch_leaves_a_consistent_gallery(
    tmp_path, engine, shared_faces
) -> None:
    folder = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_ENROLMENT, str(folder), str(shared_faces)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    told: set[int] = set()  # faces the user was told were enrolled
    for line in child.stdout:
        done, message = line.rstrip("\n").split("\t", 1)
        if message.startswith("enrolled"):
            told.add(int(message.split("face ")[1].split()[0]))
        if int(done) >= 11:  # killed right after a message, the third batch being prepared
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    # Only whole batches were committed, and every photo reported enrolled is among them.
    kept = _assert_consistent(folder)
    assert 0 < kept < 30
    with Gallery(folder) as gallery:
        assert told and told <= {face.id for face in gallery.all_faces()}
        assert not list(folder.glob("images/*/*.pending"))  # the dead process's copies went
    with Gallery(folder) as gallery:
        report = drain(enroll(gallery, engine, _items(shared_faces, 30), batch_size=8))
        assert report.skipped == kept
    assert _assert_consistent(folder) == kept + report.enrolled


def test_faiss_openmp_threads_wait_passively_unless_the_environment_says_otherwise() -> None:
    # Spinning OpenMP threads took CPU from enrolment's inference threads (issue 10 part 5);
    # libgomp reads the policy when FAISS loads, always after the package is imported.
    probe = "import os, workstation, faiss; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    default = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert default.stdout.strip() == "PASSIVE", default.stderr
    chosen = subprocess.run(
        [sys.executable, "-c", probe],
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
        capture_output=True,
        text=True,
    )
    assert chosen.stdout.strip() == "ACTIVE", chosen.stderr
