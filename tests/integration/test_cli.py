"""The `workstation` command line, run as users and scripts run it."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import same_person_line
from examiners import profile_env
from sqlite_file import edit_database

from workstation.cli import main
from workstation.gallery.store import Gallery
from workstation.hashing import sha256_file


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def enrolled(tmp_path: Path, photo_paths: dict[str, Path]) -> Path:
    gallery = tmp_path / "g"
    code, _, err = run(
        "--gallery",
        str(gallery),
        "enroll",
        "--subject",
        "P-OBAMA",
        "--name",
        "Barack Obama",
        str(photo_paths["obama"]),
    )
    assert code == 0, err
    code, _, err = run(
        "--gallery", str(gallery), "enroll", "--subject", "P-BIDEN", str(photo_paths["biden"])
    )
    assert code == 0, err
    return gallery


def test_search_json_contract(enrolled: Path, photo_paths, tmp_path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_text("nope")
    with profile_env(enrolled, "det.smith"):  # another examiner, from their own profile
        code, out, _ = run(
            "--gallery",
            str(enrolled),
            "--user",
            "det.smith",
            "search",
            "--case",
            "2026-0042",
            "--purpose",
            "armed robbery",
            "--json",
            str(photo_paths["obama2"]),
            str(bad),
        )
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2
    good, failed = lines
    assert good["probe"] == str(photo_paths["obama2"]) and good["error"] is None
    assert len(good["sha256"]) == 64
    assert {"box", "quality"} <= set(good["face"])
    first = good["candidates"][0]
    assert (
        first["rank"] == 1 and first["subject_id"] == "P-OBAMA" and first["name"] == "Barack Obama"
    )
    assert {"score", "fmr"} <= set(first)
    assert (
        failed["probe"] == str(bad)
        and "not an image" in failed["error"]
        and failed["candidates"] == []
    )


def test_search_refuses_without_case_or_purpose(enrolled: Path, photo_paths) -> None:
    code, out, err = run(
        "--gallery", str(enrolled), "search", "--case", "C1", str(photo_paths["obama"])
    )
    assert code == 1 and "needs a case number and a purpose" in err and "Traceback" not in err + out


def test_search_by_face_number_and_box(enrolled: Path, photo_paths) -> None:
    code, out, _ = run(
        "--gallery",
        str(enrolled),
        "search",
        "--case",
        "C",
        "--purpose",
        "p",
        "--face",
        "3",
        "--json",
        str(photo_paths["obama"]),
    )
    assert code == 1 and "only 1 face(s) found" in json.loads(out)["error"]
    code, out, _ = run(
        "--gallery",
        str(enrolled),
        "search",
        "--case",
        "C",
        "--purpose",
        "p",
        "--box",
        "180,210,300,420",
        "--json",
        str(photo_paths["obama2"]),
    )
    result = json.loads(out)
    assert code == 0 and result["face"]["source"] == "manual"
    code, _, err = run(
        "--gallery",
        str(enrolled),
        "search",
        "--case",
        "C",
        "--purpose",
        "p",
        "--box",
        "1,2,3",
        str(photo_paths["obama2"]),
    )
    assert code == 2 and "X,Y,W,H" in err


def test_human_readable_search_shows_the_caveat(enrolled: Path, photo_paths) -> None:
    code, out, _ = run(
        "--gallery",
        str(enrolled),
        "search",
        "--case",
        "C",
        "--purpose",
        "p",
        str(photo_paths["obama2"]),
    )
    assert code == 0 and "investigative leads, not identifications" in out and "P-OBAMA" in out


def test_compare_and_pairs(enrolled: Path, photo_paths, tmp_path) -> None:
    code, out, _ = run(
        "--gallery",
        str(enrolled),
        "compare",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--json",
        str(photo_paths["obama"]),
        str(photo_paths["obama2"]),
    )
    same = json.loads(out)
    assert code == 0 and same["error"] is None and "fmr" in same
    assert same["score"] > same_person_line(same["model_id"])
    pairs = tmp_path / "pairs.csv"
    shutil.copy(photo_paths["obama"], tmp_path / "o.jpg")
    shutil.copy(photo_paths["biden"], tmp_path / "b.jpg")
    pairs.write_text("image_a,image_b\no.jpg,b.jpg\no.jpg,missing.jpg\n")
    code, out, _ = run(
        "--gallery",
        str(enrolled),
        "compare",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--pairs",
        str(pairs),
        "--json",
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 2
    assert rows[0]["image_a"].endswith("o.jpg") and rows[0]["error"] is None
    assert rows[0]["score"] < same_person_line(rows[0]["model_id"])
    assert rows[1]["score"] is None and "missing.jpg: file not found" in rows[1]["error"]


def test_enroll_manifest_reports_bad_rows(tmp_path: Path, photo_paths) -> None:
    shutil.copy(photo_paths["obama"], tmp_path / "o.jpg")
    manifest = tmp_path / "list.csv"
    manifest.write_text("subject_id,image,name\nA,o.jpg,Alpha\n,o.jpg,\nB,gone.jpg,\n")
    code, out, err = run("--gallery", str(tmp_path / "g"), "enroll", "--manifest", str(manifest))
    assert code == 0
    assert "list.csv line 3" in err and "subject_id is empty" in err
    assert "list.csv line 4" in err and "file not found" in err
    assert "1 enrolled, 0 skipped, 2 failed" in out


def test_subjects_list_and_delete(enrolled: Path) -> None:
    code, out, _ = run(
        "--gallery", str(enrolled), "subjects", "--case", "C-1", "--purpose", "test", "--json"
    )
    assert code == 0 and {json.loads(line)["subject_id"] for line in out.splitlines()} == {
        "P-OBAMA",
        "P-BIDEN",
    }
    code, out, _ = run(
        "--gallery", str(enrolled), "subjects", "delete", "P-BIDEN", "--reason", "expunged"
    )
    assert code == 0 and "deleted subject P-BIDEN" in out
    code, out, _ = run("--gallery", str(enrolled), "subjects", "--case", "C-1", "--purpose", "test")
    assert "P-BIDEN" not in out and "1 subject(s)" in out


def test_audit_verify_show_and_tamper(enrolled: Path, photo_paths) -> None:
    run(
        "--gallery",
        str(enrolled),
        "search",
        "--case",
        "C-7",
        "--purpose",
        "p",
        "--json",
        str(photo_paths["obama2"]),
    )
    code, out, _ = run("--gallery", str(enrolled), "audit", "verify")
    assert code == 0 and "intact: 4 events" in out  # genesis, two enrolments, the search
    head = out.split("hash ")[-1].strip()
    assert len(head) == 64
    code, out, _ = run(
        "--gallery",
        str(enrolled),
        "audit",
        "show",
        "--case",
        "C-7",
        "--purpose",
        "review",
        "--json",
    )
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["action"] for e in events] == ["search"] and events[0]["hash"] == head
    edit_database(enrolled, "UPDATE audit SET user = 'mallory' WHERE seq = 2")
    code, out, _ = run("--gallery", str(enrolled), "audit", "verify")
    assert code == 1 and "BROKEN at event 2" in out


def test_index_info_rebuild_and_models(enrolled: Path) -> None:
    code, out, _ = run("--gallery", str(enrolled), "index", "info", "--json")
    info = json.loads(out)
    assert code == 0 and info["count"] == 2 and info["kind"]
    for derived in enrolled.glob("faces.*"):  # every index file, whatever the index kind
        derived.unlink()
    code, out, err = run("--gallery", str(enrolled), "index", "info")
    assert code == 0 and "rebuilding it from the database" in err and "count: 2" in out
    code, out, _ = run("--gallery", str(enrolled), "index", "rebuild")
    assert code == 0 and "index rebuilt: 2 faces" in out
    code, out, _ = run("models", "--json")
    models = json.loads(out)["models"]
    assert code == 0 and all(m["status"].startswith("ok") for m in models)


def test_altered_model_fails_in_one_line(tmp_path: Path, photo_paths) -> None:
    from workstation.vision.models import DEFAULT_DETECTOR, DEFAULT_RECOGNIZER, locate_model

    folder = tmp_path / "models"
    folder.mkdir()
    for key in (DEFAULT_DETECTOR, DEFAULT_RECOGNIZER):
        shutil.copy(locate_model(key), folder)
    (folder / locate_model(DEFAULT_RECOGNIZER).name).write_bytes(b"tampered")
    code, _, err = run(
        "--model-dir",
        str(folder),
        "--gallery",
        str(tmp_path / "g"),
        "enroll",
        "--subject",
        "A",
        str(photo_paths["obama"]),
    )
    assert code == 1 and err.count("\n") == 1 and "altered or replaced" in err


def test_decide_and_export_bundle(enrolled: Path, photo_paths, tmp_path) -> None:
    ana = profile_env(enrolled, "ana")  # two more examiners, each from their own profile
    ben = profile_env(enrolled, "ben")
    with ana:
        code, out, _ = run(
            "--gallery",
            str(enrolled),
            "--user",
            "ana",
            "search",
            "--case",
            "C-1",
            "--purpose",
            "p",
            "--json",
            str(photo_paths["obama2"]),
        )
    search_id = json.loads(out)["search_id"]
    with ana:
        code, out, _ = run(
            "--gallery",
            str(enrolled),
            "--user",
            "ana",
            "decide",
            "--search",
            str(search_id),
            "--subject",
            "P-OBAMA",
            "--decision",
            "possible-lead",
            "--json",
        )
    decision_id = json.loads(out)["id"]
    with ana:
        code, _, err = run(
            "--gallery", str(enrolled), "--user", "ana", "decide", "--confirm", str(decision_id)
        )
    assert code == 1 and "second examiner" in err
    with ben:
        code, out, _ = run(
            "--gallery", str(enrolled), "--user", "ben", "decide", "--confirm", str(decision_id)
        )
    assert code == 0 and "confirmed" in out
    target = tmp_path / "bundle.json"
    with ana:
        code, out, err = run(
            "--gallery", str(enrolled), "export", "--case", "C-1", "--out", str(target)
        )
    assert code == 0, err
    bundle = json.loads(target.read_text())
    assert code == 0 and bundle["case"]["id"] == "C-1"
    assert bundle["case"]["examiners"] == ["ana", "ben"]
    assert (
        bundle["searches"][0]["probe"]["sha256"]
        == json.loads(json.dumps(bundle))["searches"][0]["probe"]["sha256"]
    )
    assert [d["decision"] for d in bundle["searches"][0]["decisions"]] == [
        "possible_lead",
        "confirmed",
    ]
    # The bundle carries the head just before its export; the export event, appended after
    # it, carries the bundle's SHA-256 (a file cannot hold its own hash).
    assert bundle["audit"]["chain_intact"] and bundle["audit"]["events"][-1]["action"] != "export"
    assert bundle["audit"]["head_hash"] == bundle["audit"]["events"][-1]["hash"]
    with Gallery(enrolled, create=False, read_only=True) as gallery:
        export = gallery.audit_events(case_id="C-1")[-1]
    assert export.action == "export" and export.prev_hash == bundle["audit"]["head_hash"]
    assert export.details["files"][0]["sha256"] == sha256_file(target)
    assert (
        export.details["bundle_head_hash"] == bundle["export"]["audit_head_before_export"]["hash"]
    )
    assert "not identifications" in bundle["caveat"]


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "WORKSTATION_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "workstation", "--version"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.startswith("workstation ")
    result = subprocess.run(
        [sys.executable, "-m", "workstation", "audit", "verify"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (
        result.returncode == 1
        and "no gallery here" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_settings_are_used_and_changes_audited(enrolled: Path, photo_paths) -> None:
    code, out, _ = run("--gallery", str(enrolled), "settings", "set", "top_k", "1")
    assert code == 0 and "top_k = 1" in out
    code, out, _ = run(
        "--gallery",
        str(enrolled),
        "search",
        "--case",
        "C",
        "--purpose",
        "p",
        "--json",
        str(photo_paths["obama2"]),
    )
    assert len(json.loads(out)["candidates"]) == 1
    code, out, _ = run(
        "--gallery",
        str(enrolled),
        "audit",
        "show",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--all",
        "--json",
    )
    change = next(json.loads(line) for line in out.splitlines() if '"settings_change"' in line)
    assert change["details"]["changes"]["top_k"] == [20, 1]
    code, _, err = run("--gallery", str(enrolled), "settings", "set", "colour", "blue")
    assert code == 1 and "unknown setting 'colour'" in err
    code, _, err = run("--gallery", str(enrolled), "settings", "set", "backend", "magic")
    assert code == 1 and "backend must be one of" in err
