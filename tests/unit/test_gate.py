"""The quality gate on a real poor probe: a tiny copy of a fixture photo (eyes about 11 px
apart). Refused without an examiner's note; with one, searched, audited and in the bundle."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from workstation.cli import main
from workstation.domain import Verdict
from workstation.errors import QualityGateError, WorkstationError
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.gate import (
    GATE_OVERRIDDEN,
    GATE_PASSED,
    faces_needing_note,
    needs_note,
    note_request,
)
from workstation.gallery.search import search_image
from workstation.progress import drain
from workstation.reports.bundle import export_case_bundle
from workstation.vision.images import load_image


@pytest.fixture
def tiny_probe(tmp_path: Path, photo_paths: dict[str, Path]) -> Path:
    """Obama's portrait shrunk to 82 px wide: the face is found, but far too small."""
    with Image.open(photo_paths["obama2"]) as image:
        small = image.resize((round(image.width * 0.09), round(image.height * 0.09)))
        path = tmp_path / "tiny-obama2.png"
        small.save(path)
    return path


@pytest.fixture
def enrolled_gallery(gallery, engine, photo_paths):
    items = items_for_subject("P-OBAMA", [photo_paths["obama"]], "Barack Obama")
    items += items_for_subject("P-BIDEN", [photo_paths["biden"]], "Joe Biden")
    drain(enroll(gallery, engine, items))
    return gallery


def test_the_tiny_probe_really_is_poor(engine, tiny_probe: Path, photo_paths) -> None:
    faces = engine.analyze(load_image(tiny_probe).bgr)
    assert faces, "the detector should still find the shrunk face"
    assert faces[0].quality.verdict == Verdict.POOR
    assert any("px apart" in reason for reason in faces[0].quality.reasons)
    assert needs_note(faces[0])
    good = engine.analyze(load_image(photo_paths["obama2"]).bgr)[0]
    assert not needs_note(good)


def test_poor_probe_is_refused_without_a_note(enrolled_gallery, engine, tiny_probe: Path) -> None:
    events_before = len(enrolled_gallery.audit_events())
    for note in (None, "", "   "):
        with pytest.raises(QualityGateError) as caught:
            search_image(enrolled_gallery, engine, load_image(tiny_probe), "C-9", "lead", note=note)
        message = str(caught.value)
        assert str(tiny_probe) in message and "poor quality" in message and "px apart" in message
        assert caught.value.reasons and isinstance(caught.value, WorkstationError)
    # Nothing was recorded: no search row, no audit event.
    assert enrolled_gallery.counts()["searches"] == 0
    assert len(enrolled_gallery.audit_events()) == events_before


def test_poor_probe_with_a_note_is_searched_audited_and_reported(
    enrolled_gallery, engine, tiny_probe: Path, tmp_path: Path
) -> None:
    note = "only image of the suspect; CCTV still from the bank"
    result = search_image(
        enrolled_gallery, engine, load_image(tiny_probe), "C-9", "lead", note=note
    )
    assert result.quality_gate == GATE_OVERRIDDEN and result.note == note
    assert result.to_dict()["quality_gate"] == GATE_OVERRIDDEN
    assert result.params["quality_gate"] == GATE_OVERRIDDEN
    event = enrolled_gallery.audit_events(case_id="C-9")[-1]
    assert event.action == "search"
    assert event.details["note"] == note
    assert event.details["quality"] == "poor"
    assert event.details["quality_gate"] == GATE_OVERRIDDEN
    assert any("px apart" in r for r in event.details["quality_reasons"])
    bundle = export_case_bundle(enrolled_gallery, "C-9", tmp_path / "bundle.json")
    (search,) = bundle["searches"]
    assert search["note"] == note and search["quality_gate"] == GATE_OVERRIDDEN
    assert search["face"]["quality"]["verdict"] == "poor"
    assert search["calibration"]["sha256"] == result.calibration["sha256"]


def test_good_probe_passes_the_gate_without_a_note(enrolled_gallery, engine, photo_paths) -> None:
    result = search_image(
        enrolled_gallery, engine, load_image(photo_paths["obama2"]), "C-9", "lead"
    )
    assert result.quality_gate == GATE_PASSED and result.note is None


def test_cli_search_needs_note_for_a_poor_probe(
    enrolled_gallery, tiny_probe: Path, photo_paths
) -> None:
    folder = str(enrolled_gallery.folder)
    enrolled_gallery.close()

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        return main(["--gallery", folder, *argv], out=out, err=err), out.getvalue(), err.getvalue()

    base = ("search", "--case", "C-9", "--purpose", "lead")
    code, out, err = run(*base, str(tiny_probe))
    assert code == 1 and "poor quality" in err and "--note" in err and "Traceback" not in err
    # With --json the refused probe gets its error line and the good one goes on.
    code, out, _ = run(*base, "--json", str(tiny_probe), str(photo_paths["obama2"]))
    refused, searched = (json.loads(line) for line in out.splitlines())
    assert code == 0 and "poor quality" in refused["error"] and searched["error"] is None
    code, out, _ = run(*base, "--json", "--note", "only image available", str(tiny_probe))
    line = json.loads(out)
    assert code == 0 and line["note"] == "only image available"
    assert line["quality_gate"] == GATE_OVERRIDDEN and line["face"]["quality"]["verdict"] == "poor"


def test_the_gui_asks_the_core_what_to_say(engine, tiny_probe: Path, photo_paths) -> None:
    poor = engine.analyze(load_image(tiny_probe).bgr)[0]
    good = engine.analyze(load_image(photo_paths["obama2"]).bgr)[0]
    assert faces_needing_note([good, poor]) == [poor]
    request = note_request([("1", good), ("2", poor)], None)
    assert request is not None and request.startswith("Face 2 is poor quality (")
    assert all(reason in request for reason in poor.quality.reasons)
    assert "Write a note saying why" in request
    assert note_request([("2", poor)], "  ") == request  # a blank note is no note
    assert note_request([("2", poor)], "only image of the suspect") is None
    assert note_request([("1", good)], None) is None
    assert note_request([("4", poor)], None, kind="Track").startswith("Track 4 is poor")
