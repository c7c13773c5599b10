"""Reads added after the first ones (issue 11 item 5, what was left): the list of cases, the
watches with their hits and the subjects a retention purge would delete are consultations too.
On the command line each writes exactly one signed `view` event with its case, purpose,
examiner and the ids it showed (never names), and is refused without a case, writing nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from workstation.audit.actions import AuditAction
from workstation.cli import main
from workstation.gallery.reads import Read
from workstation.gallery.store import Gallery

SUPERVISION = ["--case", "SUPERVISION-2026", "--purpose", "case supervision"]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def events(folder: Path) -> list:
    with Gallery(folder, read_only=True) as gallery:
        return gallery.audit_events()


def head(folder: Path) -> int:
    return events(folder)[-1].seq


def the_one_view(folder: Path, before: int, read: Read, case_id: str = "SUPERVISION-2026"):
    written = [e for e in events(folder) if e.seq > before]
    assert [e.action for e in written] == [AuditAction.VIEW.value], written
    (event,) = written
    assert event.case_id == case_id and event.purpose
    assert event.signature and event.key  # signed by the examiner's registered key
    assert event.details["read"] == read.value
    return event


@pytest.fixture
def watched(tmp_path: Path, photo_paths: dict[str, Path]) -> tuple[Path, int]:
    """Biden enrolled; obama2 searched in case C-5 (no match) and left on watch; then Obama
    enrolled as P-NEW: a hit. Returns the gallery folder and the search id."""
    g = tmp_path / "g"
    assert (
        run("--gallery", str(g), "enroll", "--subject", "P-BIDEN", str(photo_paths["biden"]))[0]
        == 0
    )
    code, out, err = run(
        "--gallery", str(g), "search", "--case", "C-5", "--purpose", "robbery", "--json",
        str(photo_paths["obama2"]),
    )  # fmt: skip
    assert code == 0, err
    search_id = json.loads(out)["search_id"]
    code, _, err = run("--gallery", str(g), "watch", "add", "--search", str(search_id),
                       "--reason", "unresolved")  # fmt: skip
    assert code == 0, err
    assert (
        run("--gallery", str(g), "enroll", "--subject", "P-NEW", str(photo_paths["obama"]))[0] == 0
    )
    return g, search_id


@pytest.mark.parametrize(
    "argv, words",
    [
        (["cases"], "listing cases needs a case number and a purpose"),
        (["cases", "list", "--json", "--case", "SUP-1"], "listing cases needs"),
        (["cases", "--past-retention", "--purpose", "p"], "listing cases needs"),
        (["watch", "list"], "listing watches and their hits needs a case number"),
        (["watch", "list", "--all", "--json", "--case", "C-5"], "listing watches"),
        (
            ["retention", "--older-than", "0", "--reason", "rule", "--dry-run"],
            "listing the subjects a retention purge would delete needs a case number",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_these_reads_without_a_case_are_refused_and_write_nothing(
    watched: tuple[Path, int], argv: list[str], words: str
) -> None:
    g, _ = watched
    before = head(g)
    code, out, err = run("--gallery", str(g), *argv)
    assert code == 1 and out == ""
    assert words in err and "audit log" in err
    assert head(g) == before


def test_listing_cases_records_the_case_numbers_it_showed(watched: tuple[Path, int]) -> None:
    g, _ = watched
    before = head(g)
    code, out, err = run("--gallery", str(g), "cases", "--json", *SUPERVISION)
    assert code == 0, err
    (line,) = [json.loads(text) for text in out.splitlines()]
    event = the_one_view(g, before, Read.CASE_LIST)
    assert event.details == {
        "read": "case_list",
        "past_retention_only": False,
        "cases": {"count": 1, "ids": ["C-5"]},
    }
    # The standing reference is not a case, and reading C-5's row does not make the reader
    # one of its examiners or move its last activity.
    code, out, err = run("--gallery", str(g), "cases", "list", "--json", *SUPERVISION)
    assert [json.loads(text) for text in out.splitlines()] == [line]

    before = head(g)
    code, out, err = run("--gallery", str(g), "cases", "--past-retention", *SUPERVISION)
    assert code == 0 and "0 case(s)" in out, err
    event = the_one_view(g, before, Read.CASE_LIST)
    assert event.details["past_retention_only"] is True
    assert event.details["cases"] == {"count": 0, "ids": []}


def test_watch_list_records_its_hits_by_id_never_by_name(
    watched: tuple[Path, int], photo_paths: dict[str, Path]
) -> None:
    g, search_id = watched
    before = head(g)
    code, out, err = run("--gallery", str(g), "watch", "list", "--json", "--case", "C-5",
                         "--purpose", "review the watch")  # fmt: skip
    assert code == 0, err
    (line,) = [json.loads(text) for text in out.splitlines()]
    (hit,) = line["hits"]
    event = the_one_view(g, before, Read.WATCHES, case_id="C-5")
    assert event.purpose == "review the watch"
    assert event.details == {
        "read": "watches",
        "watches": {"count": 1, "ids": [line["id"]]},
        "hits": 1,
        "searches": {"count": 1, "ids": [hit["search_id"]]},
        "subjects": {"count": 1, "ids": ["P-NEW"]},
        "face_ids": {"count": 1, "ids": [hit["face_id"]]},
    }
    assert hit["search_id"] != search_id  # the re-search that found it


def test_retention_dry_run_records_the_subjects_it_listed(watched: tuple[Path, int]) -> None:
    g, _ = watched
    before = head(g)
    code, out, err = run("--gallery", str(g), "retention", "--older-than", "0", "--reason",
                         "rule 7", "--dry-run", "--case", "MAINT-2026", "--purpose",
                         "gallery maintenance")  # fmt: skip
    assert code == 0, err
    assert "would delete P-BIDEN" in out and "would delete P-NEW" in out
    event = the_one_view(g, before, Read.RETENTION_LIST, case_id="MAINT-2026")
    assert event.details["older_than_days"] == 0 and event.details["faces"] == 2
    assert sorted(event.details["subjects"]["ids"]) == ["P-BIDEN", "P-NEW"]
    with Gallery(g, read_only=True) as gallery:
        assert gallery.subject_count() == 2  # a dry run deletes nothing
        assert gallery.verify_audit().intact
