"""Stored text reaches the terminal escaped: a name holding an ANSI sequence, a line break or a
bidirectional override prints as visible escapes, never acted on by the terminal."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pytest

from workstation.cli import main
from workstation.commands.context import json_text, shown, terminal_text

RED_NAME = "\x1b[31mCONFIRMED MATCH\x1b[0m"
FAKE_LINE_NAME = "Ann\n     1  0.9999  1 in 10,000,000  P-999  planted"
REVERSED_NAME = "Bob \u202e9999.0 erocs"
# Anything a terminal acts on: C0/C1 controls other than line break and tab, DEL, bidi controls.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_helpers() -> None:
    assert shown(RED_NAME) == "\\x1b[31mCONFIRMED MATCH\\x1b[0m"
    assert shown("a\nb\tc\rd\x9b\u202e") == "a\\nb\\tc\\rd\\x9b\\u202e"
    assert shown(None) == ""
    assert terminal_text("line 1\n\tline 2\x1b[2J") == "line 1\n\tline 2\\x1b[2J"
    encoded = json_text({"name": RED_NAME + "\x9b" + REVERSED_NAME})
    assert not UNSAFE.search(encoded)
    assert json.loads(encoded) == {"name": RED_NAME + "\x9b" + REVERSED_NAME}


@pytest.fixture
def gallery(tmp_path: Path, photo_paths: dict[str, Path]) -> Path:
    folder = tmp_path / "g"
    photos = tmp_path / "photos"
    photos.mkdir()
    for subject, name, photo in (
        ("P-1", RED_NAME, "obama"),
        ("P-2", FAKE_LINE_NAME, "biden"),
        ("P-3\x1b]0;owned\x07", REVERSED_NAME, "obama2"),
    ):
        copy = str(shutil.copy(photo_paths[photo], photos / f"{photo}.jpg"))
        code, _, err = run(
            "--gallery", str(folder), "enroll", "--subject", subject, "--name", name, copy
        )
        assert code == 0, err
    return folder


def _assert_terminal_safe(*texts: str) -> None:
    for text in texts:
        assert not UNSAFE.search(text), f"a control character reaches the terminal: {text!r}"


def test_subjects_listing_escapes_names(gallery: Path) -> None:
    code, out, err = run(
        "--gallery", str(gallery), "subjects", "--case", "C-1", "--purpose", "test"
    )
    assert code == 0, err
    _assert_terminal_safe(out, err)
    assert "P-1\t\\x1b[31mCONFIRMED MATCH\\x1b[0m\t1 face(s)" in out
    assert "P-3\\x1b]0;owned\\x07\tBob \\u202e9999.0 erocs\t1 face(s)" in out
    # The planted line break is escaped: the listing has one line per subject and the total.
    assert len(out.splitlines()) == 4
    assert "Ann\\n     1  0.9999" in out


def test_search_output_escapes_candidate_names(gallery: Path, photo_paths: dict[str, Path]) -> None:
    code, out, err = run(
        "--gallery",
        str(gallery),
        "search",
        "--case",
        "C-\x1b[8m1",
        "--purpose",
        "p",
        "--note",
        "seen\x1b[2K",
        str(photo_paths["obama2"]),
    )
    assert code == 0, err
    _assert_terminal_safe(out, err)
    assert "\\x1b[31mCONFIRMED MATCH\\x1b[0m" in out
    assert "case C-\\x1b[8m1" in out
    assert not any(line.lstrip().startswith("1  0.9999") for line in out.splitlines())


def test_audit_show_and_json_lines_are_escaped(gallery: Path) -> None:
    code, out, err = run(
        "--gallery", str(gallery), "audit", "show", "--case", "C-1", "--purpose", "test", "--all"
    )
    assert code == 0, err
    _assert_terminal_safe(out, err)
    assert "P-3\\x1b]0;owned\\x07" in out  # a hostile subject id in the events, escaped
    # Names are not written into the audit log any more (issue 12 item 1): only ids.
    assert "CONFIRMED MATCH" not in out
    code, out, err = run(
        "--gallery", str(gallery), "subjects", "--case", "C-1", "--purpose", "test", "--json"
    )
    assert code == 0, err
    _assert_terminal_safe(out)
    names = {row["subject_id"]: row["name"] for row in map(json.loads, out.splitlines())}
    assert names["P-1"] == RED_NAME and names["P-2"] == FAKE_LINE_NAME  # exact for programs


def test_error_lines_escape_file_names(tmp_path: Path, gallery: Path) -> None:
    hostile = tmp_path / "evil\x1b[2Jname.jpg"
    hostile.write_text("not a photo")
    code, _, err = run(
        "--gallery", str(gallery), "search", "--case", "C", "--purpose", "p", str(hostile)
    )
    assert code == 1
    _assert_terminal_safe(err)
    assert "evil\\x1b[2Jname.jpg" in err
    code, _, err = run(
        "--gallery",
        str(tmp_path / "no\x1b[5mgallery"),
        "subjects",
        "--case",
        "C-1",
        "--purpose",
        "test",
    )
    assert code == 1
    _assert_terminal_safe(err)
    assert "no\\x1b[5mgallery: no gallery here" in err
