"""The command line given what users really give it: spreadsheet exports, multi-frame files."""

from __future__ import annotations

import codecs
import io
import json
import shutil
from pathlib import Path

from PIL import Image

from workstation.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_excel_unicode_text_manifest_enrols(tmp_path: Path, photo_paths: dict[str, Path]) -> None:
    shutil.copy(photo_paths["obama"], tmp_path / "o.jpg")
    shutil.copy(photo_paths["biden"], tmp_path / "b.jpg")
    manifest = tmp_path / "export.txt"
    text = "subject_id\timage\tname\r\nP-1\to.jpg\tBarack Obama\r\nP-2\tb.jpg\tJosé Bidén\r\n"
    manifest.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    gallery = tmp_path / "g"
    code, out, err = run("--gallery", str(gallery), "enroll", "--manifest", str(manifest))
    assert code == 0, err
    assert "2 enrolled, 0 skipped, 0 failed" in out
    code, out, _ = run(
        "--gallery", str(gallery), "subjects", "--case", "C-1", "--purpose", "test", "--json"
    )
    names = {row["subject_id"]: row["name"] for row in map(json.loads, out.splitlines())}
    assert names == {"P-1": "Barack Obama", "P-2": "José Bidén"}


def test_code_page_manifest_is_refused_in_one_line(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    manifest = tmp_path / "ansi.csv"
    manifest.write_bytes("subject_id,image,name\nP-1,o.jpg,Müller\n".encode("cp1252"))
    gallery = tmp_path / "g"
    code, out, err = run("--gallery", str(gallery), "enroll", "--manifest", str(manifest))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{manifest} line 2: the manifest is not UTF-8 text" in err and "UTF-8" in err


def test_pairs_file_in_utf16_with_tabs(tmp_path: Path, photo_paths: dict[str, Path]) -> None:
    shutil.copy(photo_paths["obama"], tmp_path / "o.jpg")
    shutil.copy(photo_paths["obama2"], tmp_path / "o2.jpg")
    pairs = tmp_path / "pairs.txt"
    pairs.write_bytes(
        codecs.BOM_UTF16_LE + "image_a\timage_b\r\no.jpg\to2.jpg\r\n".encode("utf-16-le")
    )
    gallery = str(tmp_path / "g")
    assert (
        run("--gallery", gallery, "enroll", "--subject", "P-1", str(photo_paths["biden"]))[0] == 0
    )
    code, out, err = run(
        "--gallery",
        gallery,
        "compare",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--pairs",
        str(pairs),
        "--json",
    )
    assert code == 0, err
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["error"] is None and row["score"] > 0.5


def test_multi_page_tiff_probe_says_only_the_first_page_is_used(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    gallery = tmp_path / "g"
    code, _, err = run(
        "--gallery", str(gallery), "enroll", "--subject", "P-1", str(photo_paths["obama"])
    )
    assert code == 0, err
    probe = tmp_path / "pages.tif"
    face = Image.open(photo_paths["obama2"]).convert("RGB")
    face.save(probe, "TIFF", save_all=True, append_images=[Image.new("RGB", face.size)] * 2)
    code, out, err = run(
        "--gallery", str(gallery), "search", "--case", "C-1", "--purpose", "p", str(probe)
    )
    assert code == 0, err
    assert f"warning: {probe}: the file holds 3 frames (TIFF); only the first was used" in err
    assert "P-1" in out


def test_multi_frame_enrolment_says_so_in_the_outcome(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    animated = tmp_path / "animated.gif"
    face = Image.open(photo_paths["biden"]).convert("RGB")
    face.save(animated, "GIF", save_all=True, append_images=[Image.new("RGB", face.size)])
    code, out, err = run(
        "--gallery", str(tmp_path / "g"), "enroll", "--subject", "P-9", "--json", str(animated)
    )
    assert code == 0, err
    outcome = json.loads(out.splitlines()[0])
    assert outcome["status"] == "enrolled"
    assert "WARNING: the file holds 2 frames (GIF), only the first was used" in outcome["message"]
