"""The quality gate: a poor probe is searched only with an examiner's note saying why.

Poor probes (tiny, very blurred, near-profile, or a drawn box with no face found in it) give
unreliable scores: strangers can outscore the right person. Searching one anyway is sometimes
justified (it is the only image there is), but then the examiner must say so in a note, which is
stored with the search, audited, and printed in the case report.

This module is the one statement of the rule. The GUI asks `note_request(...)` before a search
(to ask for the note in words); the core enforces the rule in `search_face` whatever the caller
does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from workstation.domain import Face, Verdict
from workstation.errors import QualityGateError

GATE_PASSED = "passed"
GATE_OVERRIDDEN = "poor quality, searched with the examiner's note"


def needs_note(face: Face) -> bool:
    """True when this probe face may be searched only with an examiner's note."""
    return face.quality.verdict == Verdict.POOR


def faces_needing_note(faces: Iterable[Face]) -> list[Face]:
    """The faces that may be searched only with an examiner's note."""
    return [face for face in faces if needs_note(face)]


def note_request(
    faces: Sequence[tuple[str, Face]], note: str | None, kind: str = "Face"
) -> str | None:
    """What to tell the examiner before searching these faces without a note, or None.

    Args:
        faces: (number or name shown to the examiner, face) for each face to be searched.
        note: the examiner's note so far.
        kind: what the faces are called ("Face", "Track").
    """
    if note is not None and note.strip():
        return None
    poor = [(name, face) for name, face in faces if needs_note(face)]
    if not poor:
        return None
    reasons = "; ".join(r for _, face in poor for r in face.quality.reasons) or "poor quality"
    names = ", ".join(name for name, _ in poor)
    return (
        f"{kind} {names} is poor quality ({reasons}). Write a note saying why you search it "
        "anyway, then search again."
    )


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
