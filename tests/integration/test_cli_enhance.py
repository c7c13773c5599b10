"""`workstation search --enhance STEPS` and `workstation enhance replay`, and the lineage in the
evidence bundle and the case report (the original, the working copy, both SHA-256s, the steps
in order and how to redo them; "no enhancement" for a plain search)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from examiners import open_as

from workstation.cli import main
from workstation.reports.bundle import build_case_bundle
from workstation.reports.case_report import report_html, report_images
from workstation.reports.enhancement_report import NO_ENHANCEMENT
from workstation.vision.enhancement import apply, pixels_sha256
from workstation.vision.enhancement_steps import parse_steps
from workstation.vision.images import load_image

STEPS = [
    {"step": "rotate", "angle": -4},
    {"step": "brightness_contrast", "brightness": 12, "contrast": 1.15},
    {"step": "denoise", "h": 6},
    {"step": "sharpen", "sigma": 1.2, "amount": 0.8},
]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def enrolled(tmp_path: Path, photo_paths: dict[str, Path]) -> Path:
    gallery = tmp_path / "g"
    for subject, photo in (("P-OBAMA", "obama"), ("P-BIDEN", "biden")):
        code, _, err = run(
            "--gallery", str(gallery), "enroll", "--subject", subject, str(photo_paths[photo])
        )
        assert code == 0, err
    return gallery


def _search(gallery: Path, photo: Path, *extra: str) -> tuple[int, dict, str]:
    code, out, err = run(
        "--gallery",
        str(gallery),
        "search",
        "--case",
        "C-15",
        "--purpose",
        "bank robbery",
        *extra,
        "--json",
        str(photo),
    )
    return code, json.loads(out.splitlines()[-1]) if out.strip() else {}, err


def test_search_enhanced_then_replay_matches_and_the_report_shows_it(
    enrolled: Path, photo_paths, tmp_path: Path
) -> None:
    steps_file = tmp_path / "steps.json"
    steps_file.write_text(json.dumps(STEPS))
    code, result, err = _search(enrolled, photo_paths["obama2"], "--enhance", str(steps_file))
    assert code == 0, err
    lineage = result["probe_enhancement"]
    assert result["candidates"][0]["subject_id"] == "P-OBAMA"
    assert (
        result["sha256"] == lineage["original_sha256"] == load_image(photo_paths["obama2"]).sha256
    )
    assert [s["step"] for s in lineage["steps"]] == [s["step"] for s in STEPS]
    working = apply(load_image(photo_paths["obama2"]).bgr, parse_steps(STEPS))
    assert lineage["working_sha256"] == pixels_sha256(working)
    assert lineage["opencv"] and lineage["box_coordinates"] == "working copy"
    search_id = str(result["search_id"])

    # Replay on the original (copied elsewhere: the path does not matter, the bytes do).
    copy = Path(shutil.copy(photo_paths["obama2"], tmp_path / "evidence.jpg"))
    code, out, err = run(
        "--gallery", str(enrolled), "enhance", "replay", "--search", search_id, str(copy)
    )
    assert code == 0, err
    assert "MATCH" in out and "4. sharpen (sigma=1.2, amount=0.8)" in out
    # Another file is not the original: refused, with both SHA-256s.
    code, out, _ = run(
        "--gallery",
        str(enrolled),
        "enhance",
        "replay",
        "--search",
        search_id,
        "--json",
        str(photo_paths["obama"]),
    )
    replayed = json.loads(out)
    assert code == 1 and not replayed["matches"] and "NOT THE ORIGINAL" in replayed["verdict"]

    # A plain search of the same case says "no enhancement".
    code, plain, err = _search(enrolled, photo_paths["obama2"])
    assert code == 0 and plain["probe_enhancement"] is None, err
    code, out, _ = run(
        "--gallery",
        str(enrolled),
        "enhance",
        "replay",
        "--search",
        str(plain["search_id"]),
        str(copy),
    )
    assert code == 0 and "no enhancement" in out

    with open_as(enrolled, "reviewer") as gallery:
        bundle = build_case_bundle(gallery, "C-15")
        images = report_images(gallery, bundle)
        assert gallery.verify_audit().intact
    enhanced, unenhanced = bundle.data["searches"]
    assert enhanced["probe"]["enhancement"]["enhanced"] is True
    assert enhanced["probe"]["enhancement"]["working_sha256"] == lineage["working_sha256"]
    assert "enhance replay" in enhanced["probe"]["enhancement"]["how_to_redo"]
    assert unenhanced["probe"]["enhancement"] == {"enhanced": False, "text": "no enhancement"}
    assert images[f"enh-original-{search_id}"].startswith(b"\x89PNG")
    assert images[f"enh-working-{search_id}"].startswith(b"\x89PNG")
    page = report_html(bundle, "case.json", "0" * 64, images)
    assert lineage["working_sha256"] in page and lineage["original_sha256"] in page
    assert "1. rotate (angle=-4); 2. brightness_contrast (brightness=12, contrast=1.15)" in page
    assert "Working copy searched" in page and "To redo:" in page
    assert NO_ENHANCEMENT in page


def test_bad_steps_are_refused_before_any_search(enrolled: Path, photo_paths) -> None:
    code, result, _ = _search(
        enrolled, photo_paths["obama2"], "--enhance", '[{"step": "gamma", "gamma": 50}]'
    )
    assert code == 1 and not result
    code, _, err = run(
        "--gallery",
        str(enrolled),
        "search",
        "--case",
        "C-15",
        "--purpose",
        "p",
        "--enhance",
        '[{"step": "upscale", "factor": 2, "method": "ai"}]',
        str(photo_paths["obama2"]),
    )
    assert code == 1 and "step 1 'upscale': unknown parameter 'method'" in err
    assert "Traceback" not in err
    with open_as(enrolled, "reviewer") as gallery:
        assert gallery.case_search_records("C-15") == []
    code, out, _ = run("enhance", "steps")
    assert code == 0 and "clip_limit" in out and "fastNlMeansDenoisingColored" in out
