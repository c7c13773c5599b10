"""Reads are recorded with the case they serve (issue 11 item 5): each consultation on the
command line writes exactly one signed `view` (or `compare`) event with its case, purpose,
examiner and the ids consulted, and is refused, writing nothing, without a case."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import same_person_line
from examiners import examiner, open_as, profile_env

from workstation.audit.actions import AuditAction
from workstation.cli import main
from workstation.errors import CaseRequiredError, IdentityError
from workstation.footage.scan import ScanOptions, ScanResult
from workstation.footage.search import record_scan
from workstation.gallery.reads import (
    ID_LIST_LIMIT,
    Read,
    ReadLedger,
    id_list,
    record_read,
)
from workstation.gallery.store import Gallery
from workstation.vision.video import VideoInfo

CASE = ["--case", "2026-0042", "--purpose", "armed robbery"]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def enrolled(tmp_path: Path, photo_paths: dict[str, Path]) -> Path:
    gallery = tmp_path / "g"
    for subject, photo in (("P-OBAMA", "obama"), ("P-OBAMA-2", "obama2"), ("P-BIDEN", "biden")):
        code, _, err = run(
            "--gallery", str(gallery), "enroll", "--subject", subject, str(photo_paths[photo])
        )
        assert code == 0, err
    return gallery


def events(folder: Path) -> list:
    with Gallery(folder, read_only=True) as gallery:
        return gallery.audit_events()


def new_events(folder: Path, before: int) -> list:
    return [e for e in events(folder) if e.seq > before]


def head(folder: Path) -> int:
    return events(folder)[-1].seq


def the_one_view(folder: Path, before: int, read: Read) -> dict:
    written = new_events(folder, before)
    assert [e.action for e in written] == [AuditAction.VIEW.value], written
    event = written[0]
    assert (event.case_id, event.purpose, event.user) == ("2026-0042", "armed robbery", "examiner1")
    assert event.signature and event.key  # signed by the examiner's registered key
    assert event.details["read"] == read.value
    return event.details


# ---------------------------------------------------------------------- refused without a case
@pytest.mark.parametrize(
    "argv, words",
    [
        (["subjects"], "listing subjects needs a case number and a purpose"),
        (["subjects", "--json", "--case", "C"], "listing subjects needs"),
        (["subjects", "--purpose", "p"], "listing subjects needs"),
        (["duplicates"], "listing duplicate subjects needs"),
        (["audit", "show"], "reading the audit log needs"),
        (["audit", "show", "--all", "--case", " ", "--purpose", "p"], "reading the audit log"),
        (["compare", "a.jpg", "b.jpg"], "comparing needs a case number and a purpose"),
        (["footage", "video.mp4"], "a search needs a case number and a purpose"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_a_read_without_a_case_is_refused_and_writes_nothing(
    enrolled: Path, argv: list[str], words: str
) -> None:
    before = head(enrolled)
    code, out, err = run("--gallery", str(enrolled), *argv)
    assert code == 1 and out == ""
    assert words in err and "audit log" in err
    assert new_events(enrolled, before) == []


# ---------------------------------------------------------------------- one event per read
def test_listing_subjects_records_the_ids_listed_not_the_query(enrolled: Path) -> None:
    before = head(enrolled)
    code, out, err = run("--gallery", str(enrolled), "subjects", *CASE)
    assert code == 0, err
    assert "3 subject(s)" in out
    details = the_one_view(enrolled, before, Read.SUBJECT_LIST)
    assert details["filtered"] is False
    assert details["subjects"] == {"count": 3, "ids": ["P-BIDEN", "P-OBAMA", "P-OBAMA-2"]}

    before = head(enrolled)
    code, out, _ = run("--gallery", str(enrolled), "subjects", *CASE, "--json", "--query", "OBAMA")
    assert code == 0 and len(out.splitlines()) == 2
    details = the_one_view(enrolled, before, Read.SUBJECT_LIST)
    assert details["filtered"] is True
    assert details["subjects"]["ids"] == ["P-OBAMA", "P-OBAMA-2"]
    # The typed query (it may be a name) is not kept in the append-only log.
    assert "OBAMA" not in json.dumps({k: v for k, v in details.items() if k != "subjects"})


def test_duplicates_records_the_pairs_shown(enrolled: Path) -> None:
    before = head(enrolled)
    with Gallery(enrolled, read_only=True) as gallery:
        threshold = round(same_person_line(gallery.model_id), 4)
    code, out, err = run(
        "--gallery", str(enrolled), "duplicates", *CASE, "--threshold", str(threshold)
    )
    assert code == 0, err
    assert "1 possible duplicate pair(s)" in out
    details = the_one_view(enrolled, before, Read.DUPLICATES)
    assert details["threshold"] == threshold and details["pairs"] == 1
    assert sorted(details["subjects"]["ids"]) == ["P-OBAMA", "P-OBAMA-2"]
    assert details["face_ids"]["count"] == 2 and all(
        isinstance(f, int) for f in details["face_ids"]["ids"]
    )


def test_audit_show_records_the_filter_and_the_range_it_showed(enrolled: Path) -> None:
    before = head(enrolled)
    code, out, err = run("--gallery", str(enrolled), "audit", "show", *CASE, "--all", "--json")
    assert code == 0, err
    shown = [json.loads(line) for line in out.splitlines()]
    assert [e["seq"] for e in shown] == list(range(1, before + 1))
    details = the_one_view(enrolled, before, Read.AUDIT_LOG)
    assert details == {
        "read": "audit_log",
        "case_filter": None,
        "events": before,
        "first_seq": 1,
        "last_seq": before,
    }
    # By default the log of the case served is shown: here the reading just recorded.
    before = head(enrolled)
    code, out, _ = run("--gallery", str(enrolled), "audit", "show", *CASE, "--json")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [before]
    assert the_one_view(enrolled, before, Read.AUDIT_LOG)["case_filter"] == "2026-0042"
    before = head(enrolled)
    code, out, _ = run("--gallery", str(enrolled), "audit", "show", *CASE, "--of-case", "X-1")
    assert code == 0 and out == ""
    details = the_one_view(enrolled, before, Read.AUDIT_LOG)
    assert details["case_filter"] == "X-1" and details["events"] == 0
    code, _, _ = run("--gallery", str(enrolled), "audit", "verify")
    assert code == 0  # read events are signed and chained like every other


def test_compare_is_recorded_against_its_case(enrolled: Path, photo_paths) -> None:
    before = head(enrolled)
    code, out, err = run(
        "--gallery",
        str(enrolled),
        "compare",
        *CASE,
        "--json",
        str(photo_paths["obama"]),
        str(photo_paths["biden"]),
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["score"] < same_person_line(result["model_id"])
    written = [e for e in new_events(enrolled, before) if e.action == "compare"]
    assert len(written) == 1
    event = written[0]
    assert (event.case_id, event.purpose, event.user) == ("2026-0042", "armed robbery", "examiner1")
    assert len(event.details["sha256_a"]) == 64 and len(event.details["sha256_b"]) == 64


def test_a_read_by_an_unregistered_login_is_refused(enrolled: Path) -> None:
    stranger = examiner("mallory")  # a key of their own, registered nowhere
    before = head(enrolled)
    with Gallery(enrolled, examiner=stranger) as gallery, pytest.raises(IdentityError):
        record_read(gallery, Read.SUBJECT_LIST, {"subjects": id_list([])}, "C", "p")
    assert new_events(enrolled, before) == []


def test_a_registered_examiner_of_any_role_may_read(enrolled: Path) -> None:
    before = head(enrolled)
    with profile_env(enrolled, "enroller.eve", roles=["enroller"]):
        code, _, err = run("--user", "enroller.eve", "--gallery", str(enrolled), "subjects", *CASE)
    assert code == 0, err
    written = [e for e in new_events(enrolled, before) if e.action == "view"]
    assert len(written) == 1 and written[0].user == "enroller.eve"


def test_footage_scan_needs_a_case(tmp_path: Path) -> None:
    with open_as(tmp_path / "g", "examiner1") as gallery:
        info = VideoInfo(
            path=tmp_path / "v.mp4",
            sha256="0" * 64,
            fps=25.0,
            frame_count=1,
            width=64,
            height=48,
            codec="mp4v",
            file_bytes=1,
        )
        scan = ScanResult(
            info,
            ScanOptions(),
            [],
            step_frames=1,
            frames_decoded=1,
            samples=1,
            faces_detected=0,
            embeddings_computed=0,
            elapsed_s=0.1,
        )
        before = gallery.audit_head()[0]
        with pytest.raises(CaseRequiredError, match="scanning footage needs a case number"):
            record_scan(gallery, scan, None, None)
        record_scan(gallery, scan, "2026-0042", "armed robbery")
        (event,) = [e for e in gallery.audit_events() if e.seq > before]
        assert event.action == "footage_scan" and event.case_id == "2026-0042"
        assert event.details["video"]["sha256"] == "0" * 64


# ---------------------------------------------------------------------- volume
def test_a_large_id_set_is_counted_and_digested() -> None:
    few = id_list(["b", "a"])
    assert few == {"count": 2, "ids": ["b", "a"]}
    many = id_list(f"P-{i:06d}" for i in range(ID_LIST_LIMIT + 1))
    assert set(many) == {"count", "first", "last", "sha256"}
    assert many["count"] == ID_LIST_LIMIT + 1 and many["first"] == "P-000000"
    same = id_list(reversed([f"P-{i:06d}" for i in range(ID_LIST_LIMIT + 1)]))
    assert same["sha256"] == many["sha256"]  # the set, not the order shown


def test_the_ledger_records_a_repeat_once_within_its_window() -> None:
    now = [0.0]
    ledger = ReadLedger(repeat_seconds=300, clock=lambda: now[0])
    key = ReadLedger.key(Read.SUBJECT_PHOTOS, "C", "p", "P-1")
    assert ledger.claim(key) and not ledger.claim(key)
    assert ledger.claim(ReadLedger.key(Read.SUBJECT_PHOTOS, "C", "p", "P-2"))
    assert ledger.claim(ReadLedger.key(Read.SUBJECT_PHOTOS, "C2", "p", "P-1"))  # another case
    now[0] = 301.0
    assert ledger.claim(key)  # a later consultation is recorded again
    ledger.release(key)
    assert ledger.claim(key)  # a failed recording is not counted
