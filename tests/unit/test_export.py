"""Exports (issue 12 item 3): written to a temporary file, fsynced and moved into place, then
audited with each file's SHA-256; a failed export leaves no file and no event; an existing file
is replaced only when asked; a report and its bundle are never one file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from workstation.audit.actions import AuditAction
from workstation.cli import main as cli_main
from workstation.commands.context import AppHooks
from workstation.errors import WorkstationError
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.hashing import sha256_file
from workstation.progress import drain
from workstation.reports.bundle import export_case_bundle
from workstation.reports.case_report import PageSetup, export_case_report
from workstation.vision.images import load_image

CASE = "C-EXPORT-1"


@pytest.fixture
def case_gallery(tmp_path: Path, engine, photo_paths) -> Path:
    folder = tmp_path / "gallery"
    with Gallery(folder, user="examiner1") as gallery:
        items = items_for_subject("P-1", [photo_paths["obama"]], "Barack Obama")
        items += items_for_subject("P-2", [photo_paths["biden"]], "Joe Biden")
        drain(enroll(gallery, engine, items))
        search_image(gallery, engine, load_image(photo_paths["obama2"]), CASE, "robbery")
    return folder


def _renderer(html_text: str, pdf_path: Path, images, page: PageSetup) -> int:
    pdf_path.write_bytes(b"%PDF-1.4 drawn by the test renderer\n" + html_text.encode()[:200])
    return 2


def _exports(folder: Path) -> list:
    with Gallery(folder, create=False, read_only=True) as gallery:
        return [e for e in gallery.audit_events() if e.action == AuditAction.EXPORT]


def _cli(folder: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    hooks = AppHooks(render_pdf=_renderer)
    code = cli_main(["--gallery", str(folder), *argv], out, err, hooks=hooks)
    return code, out.getvalue(), err.getvalue()


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".partial")]


def test_the_export_event_names_each_file_with_the_sha256_of_its_bytes(
    case_gallery: Path, tmp_path: Path
) -> None:
    pdf = tmp_path / "out" / "report.pdf"
    code, _, err = _cli(case_gallery, "export", "--case", CASE, "--pdf", str(pdf))
    assert code == 0, err
    bundle_path = pdf.with_suffix(".json")
    bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
    [event] = _exports(case_gallery)
    files = {f["kind"]: f for f in event.details["files"]}
    assert files["evidence-bundle-json"]["sha256"] == sha256_file(bundle_path)
    assert files["case-report-pdf"]["sha256"] == sha256_file(pdf)
    assert files["case-report-pdf"]["bytes"] == pdf.stat().st_size
    # The bundle carries the head the export event was appended to.
    assert bundle["audit"]["head_hash"] == event.prev_hash == event.details["bundle_head_hash"]
    assert bundle["export"]["audit_head_before_export"]["seq"] == event.seq - 1
    with Gallery(case_gallery, create=False, read_only=True) as gallery:
        assert gallery.verify_audit().intact
    assert not _leftovers(pdf.parent)


def test_an_existing_file_is_replaced_only_when_asked(case_gallery: Path, tmp_path: Path) -> None:
    target = tmp_path / "bundle.json"
    target.write_text("an earlier examiner's bundle", encoding="utf-8")
    code, _, err = _cli(case_gallery, "export", "--case", CASE, "--out", str(target))
    assert code == 1 and "already exists" in err and "--overwrite" in err
    assert target.read_text(encoding="utf-8") == "an earlier examiner's bundle"
    assert _exports(case_gallery) == []  # nothing written, nothing recorded
    code, _, err = _cli(case_gallery, "export", "--case", CASE, "--out", str(target), "--overwrite")
    assert code == 0, err
    [event] = _exports(case_gallery)
    assert event.details["files"][0]["replaced_existing"] is True
    assert event.details["files"][0]["sha256"] == sha256_file(target)
    # The PDF and its bundle: refused if either exists.
    pdf = tmp_path / "bundle.pdf"  # its bundle would be bundle.json, which exists now
    code, _, err = _cli(case_gallery, "export", "--case", CASE, "--pdf", str(pdf))
    assert code == 1 and f"{target}: already exists" in err and not pdf.exists()
    assert len(_exports(case_gallery)) == 1 and not _leftovers(tmp_path)


def test_a_report_and_its_bundle_are_never_one_file(case_gallery: Path, tmp_path: Path) -> None:
    same = tmp_path / "x.json"
    for argv in (["--pdf", str(same)], ["--pdf", str(same), "--out", str(same)]):
        code, _, err = _cli(case_gallery, "export", "--case", CASE, *argv, "--overwrite")
        assert code == 1 and "would be the same file" in err, err
    assert not same.exists() and _exports(case_gallery) == []
    # Another spelling of the same path is the same file too.
    code, _, err = _cli(
        case_gallery,
        "export",
        "--case",
        CASE,
        "--pdf",
        str(tmp_path / "r.pdf"),
        "--out",
        str(tmp_path / "sub" / ".." / "r.pdf"),
    )
    assert code == 1 and "would be the same file" in err


def test_a_failed_export_leaves_no_file_and_no_event(case_gallery: Path, tmp_path: Path) -> None:
    def broken(html_text: str, pdf_path: Path, images, page: PageSetup) -> int:
        pdf_path.write_bytes(b"%PDF-1.4 half")
        raise OSError(28, "No space left on device")

    pdf = tmp_path / "report.pdf"
    with Gallery(case_gallery, user="examiner1") as gallery:
        head_before = gallery.verify_audit().head_hash
        with pytest.raises(WorkstationError, match=r"report\.pdf: could not be written"):
            export_case_report(gallery, CASE, pdf, broken)
        assert gallery.verify_audit().head_hash == head_before
    assert not pdf.exists() and not pdf.with_suffix(".json").exists()
    assert list(tmp_path.glob(".*partial")) == []
    # A folder that cannot be written: no event either.
    with Gallery(case_gallery, user="examiner1") as gallery, pytest.raises(WorkstationError):
        export_case_bundle(gallery, CASE, Path("/proc/not-writable/bundle.json"))
    assert _exports(case_gallery) == []


def test_a_file_that_appears_while_the_export_is_written_is_not_replaced(
    case_gallery: Path, tmp_path: Path
) -> None:
    pdf = tmp_path / "report.pdf"

    def racing(html_text: str, pdf_path: Path, images, page: PageSetup) -> int:
        pdf.write_bytes(b"someone else's file")  # the name is taken meanwhile
        pdf_path.write_bytes(b"%PDF-1.4 ours")
        return 1

    with (
        Gallery(case_gallery, user="examiner1") as gallery,
        pytest.raises(WorkstationError) as caught,
    ):
        export_case_report(gallery, CASE, pdf, racing)
    assert "appeared while the export was being written" in str(caught.value)
    assert pdf.read_bytes() == b"someone else's file"
    assert not pdf.with_suffix(".json").exists() and _exports(case_gallery) == []
