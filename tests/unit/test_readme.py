"""README's two commands are the ones users and CI run."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _code_lines(text: str) -> list[str]:
    blocks = re.findall(r"```\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_test_command() -> None:
    readme_lines = _code_lines((REPO / "README.md").read_text())
    test_commands = [line for line in readme_lines if line.endswith("-m pytest") and "venv" in line]
    assert len(test_commands) == 1
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_commands[0] in ci_lines


def test_readme_start_command_starts_the_app() -> None:
    readme_lines = _code_lines((REPO / "README.md").read_text())
    start = [line for line in readme_lines if "venv" in line and line.endswith("/workstation")]
    assert len(start) == 1 and "pip install -e ." in start[0]


def test_readme_says_leads_not_identifications() -> None:
    text = (REPO / "README.md").read_text()
    assert "investigative leads, not identifications" in text
    assert "libxcb-cursor0" in text  # Qt 6's xcb plugin needs it on Linux


def _claims(text: str) -> str:
    start, end = "<!-- accountability-claims -->", "<!-- /accountability-claims -->"
    assert start in text and end in text
    return text[text.index(start) : text.index(end)]


def test_readme_claims_accountability_word_for_word_as_the_docs_and_the_report() -> None:
    from workstation.reports.bundle import RECORDS_LEFT_OUT, RECORDS_VERIFIED

    readme = (REPO / "README.md").read_text()
    docs = (REPO / "docs" / "ACCOUNTABILITY.md").read_text()
    assert _claims(readme) == _claims(docs)
    assert RECORDS_VERIFIED in _claims(docs)
    assert RECORDS_LEFT_OUT in docs
    # What it does not prove is said, too.
    assert "can still forge" in _claims(docs)
