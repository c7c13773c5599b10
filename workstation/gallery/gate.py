"""The quality gate: a poor probe is searched only with an examiner's note saying why.

Poor probes (tiny, very blurred, near-profile, or a drawn box with no face found in it) give
unreliable scores: strangers can outscore the right person. Searching one anyway is sometimes
justified (it is the only image there is), but then the examiner must say so in a note, which is
stored with the search, audited, and printed in the case report.

The GUI calls `needs_note(face)` before a search to ask for the note; the core enforces the rule
in `search_face` whatever the caller does.
"""

from __future__ import annotations

from workstation.domain import Face, Verdict
from workstation.errors import QualityGateError

GATE_PASSED = "passed"
GATE_OVERRIDDEN = "poor quality, searched with the examiner's note"


def needs_note(face: Face) -> bool:
    """True when this probe face may be searched only with an examiner's note."""
    return face.quality.verdict == Verdict.POOR


def check_quality_gate(face: Face, note: str | None, probe_name: str) -> str:
    """Raise QualityGateError for a poor probe without a note; return the gate's outcome."""
    if not needs_note(face):
        return GATE_PASSED
    if note is None or not note.strip():
        reasons = face.quality.reasons
        raise QualityGateError(
            f"{probe_name}: the face to search is of poor quality ("
            + "; ".join(reasons or ("no reason recorded",))
            + "). Scores from such a face are unreliable; to search it anyway, give a note "
            "saying why (--note TEXT in the command line), which is kept in the audit log and "
            "the case report",
            reasons=tuple(reasons),
        )
    return GATE_OVERRIDDEN
