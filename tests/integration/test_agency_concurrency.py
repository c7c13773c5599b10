"""Several workstations on one agency gallery at once: separate `workstation` processes, each an
examiner with the key in their own profile, sharing one PostgreSQL database and one Milvus
server (Milvus Lite in server mode, as an agency's Milvus standalone). Nothing enrolled is lost
or duplicated, a second examiner confirms a lead from another PC exactly once, and the audit
chain holds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from agency_servers import MilvusServer
from examiners import finish, register, run_as, start_as

from workstation.audit.roles import Role
from workstation.gallery.agency import read_config
from workstation.gallery.milvus import MilvusVectors
from workstation.gallery.store import open_gallery


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    server = MilvusServer(tmp_path_factory.mktemp("milvus-server"))
    yield server
    server.stop()


@pytest.fixture
def shared(agency_servers, milvus_server, tmp_path: Path):
    """An agency gallery on the shared Milvus server, made by examiner1 (its first
    administrator); ines enrols and analyses, rex enrols and reviews, vic reviews."""
    folder = agency_servers.new_gallery(tmp_path / "shared", vectors_uri=milvus_server.uri)
    with open_gallery(folder, user="examiner1"):
        pass  # the genesis event: examiner1 is the administrator
    register(folder, "ines", (Role.ENROLLER, Role.ANALYST))
    register(folder, "rex", (Role.ENROLLER, Role.REVIEWER))
    register(folder, "vic", (Role.REVIEWER,))
    yield folder
    agency_servers.drop_gallery(folder)


def _manifest(path: Path, rows: list[tuple[str, Path]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", "image"])
        writer.writerows((subject, str(photo)) for subject, photo in rows)
    return path


def _consistent(folder: Path) -> int:
    """The database and the Milvus collection hold the same faces; returns how many."""
    with open_gallery(folder, user="examiner1") as gallery:
        messages: list[str] = []
        gallery.index(on_message=messages.append)
        rows = gallery.face_ids()
        sha256s = [f.image_sha256 for f in gallery.all_faces()]
        assert gallery.verify_audit().intact
    vectors = MilvusVectors(read_config(folder).vectors)
    assert np.array_equal(vectors.all_ids(), rows), messages
    assert len(set(sha256s)) == len(sha256s)  # no photo twice
    return len(rows)


def test_two_workstations_enrol_at_once_and_nothing_is_lost(
    shared: Path, shared_faces: Path, tmp_path: Path
) -> None:
    with open(shared_faces / "labels.csv", newline="") as handle:
        photos = [(r["identity"], shared_faces / r["path"]) for r in csv.DictReader(handle)][:24]
    # Each workstation has its own photos, plus one photo (and its subject) both enrol.
    first = _manifest(tmp_path / "first.csv", photos[:12] + photos[23:])
    second = _manifest(tmp_path / "second.csv", photos[12:])
    ines = start_as(shared, "ines", "enroll", "--manifest", str(first))
    rex = start_as(shared, "rex", "enroll", "--manifest", str(second))
    (code_a, out_a, err_a), (code_b, out_b, err_b) = finish(ines), finish(rex)
    assert code_a == 0 and code_b == 0, (err_a, err_b)
    assert "already enrolled" in out_a + out_b + err_a + err_b  # the shared photo, once
    faces = _consistent(shared)
    with open_gallery(shared, user="examiner1") as gallery:
        enrolled_by = {e.user for e in gallery.audit_events() if e.action == "enrol"}
        images = gallery.counts()["images"]
    assert images == 24 and faces >= 24
    assert enrolled_by == {"ines", "rex"}


def test_a_second_examiner_confirms_from_another_workstation(
    shared: Path, photo_paths: dict[str, Path]
) -> None:
    for subject, photo in (("P-OBAMA", "obama"), ("P-BIDEN", "biden")):
        code, _, err = run_as(
            shared, "ines", "enroll", "--subject", subject, str(photo_paths[photo])
        )
        assert code == 0, err
    code, out, err = run_as(
        shared, "ines", "search", "--case", "C-7", "--purpose", "robbery", "--json",
        str(photo_paths["obama2"]),
    )  # fmt: skip
    assert code == 0, err
    search = json.loads(out)
    assert search["candidates"][0]["subject_id"] == "P-OBAMA"
    search_id = str(search["search_id"])
    leads = {}
    for subject in ("P-OBAMA", "P-BIDEN"):
        code, out, err = run_as(
            shared, "ines", "decide", "--search", search_id, "--subject", subject,
            "--decision", "possible-lead", "--note", "same scar", "--json",
        )  # fmt: skip
        assert code == 0, err
        leads[subject] = str(json.loads(out)["id"])
    code, _, err = run_as(shared, "ines", "decide", "--confirm", leads["P-OBAMA"])
    assert code != 0 and "second examiner" in err
    code, out, err = run_as(shared, "rex", "decide", "--confirm", leads["P-OBAMA"], "--json")
    assert code == 0, err
    assert json.loads(out)["user"] == "rex"
    # Two reviewers confirm the other lead at the same moment, from two workstations: once.
    racing = [
        start_as(shared, user, "decide", "--confirm", leads["P-BIDEN"], "--json")
        for user in ("rex", "vic")
    ]
    results = [finish(p) for p in racing]
    assert sorted(code == 0 for code, _, _ in results) == [False, True], results
    code, out, err = run_as(shared, "vic", "audit", "verify")
    assert code == 0, out + err
    with open_gallery(shared, user="examiner1") as gallery:
        decided = [(d.user, d.decision.value) for d in gallery.decisions_for(int(search_id))]
    assert decided.count(("ines", "possible_lead")) == 2
    assert sum(1 for _, kind in decided if kind == "confirmed") == 2
    assert ("rex", "confirmed") in decided
