"""ACE-V comparison sheets (issue 15 item 1): the examiner's feature-by-feature comparison of a
probe with one candidate, and the second examiner's blind verification (the one place the rules
live; the vocabulary and the stored form are in workstation.gallery.sheets).

Analysis, Comparison, Evaluation, Verification:

- **Analysis** of the probe: what is visible and what limits the comparison (resolution, pose,
  lighting, occlusion, compression...).
- **Comparison**, feature by feature, after FISWG's "Facial Image Comparison Feature List for
  Morphological Analysis" (version 2.0, 2018-09-11; ASTM E3149), condensed to the components an
  examiner marks on screen (FEATURES): each similar, dissimilar, not visible or not comparable,
  with an optional note. No anthropometric measurement (distances, ratios): FISWG advises
  against photo-anthropometry, and the sheet has no such field.
- **Evaluation**: a conclusion on a written scale (CONCLUSION_SCALE), beside the lead /
  excluded / inconclusive decision the examiner records on the candidate.
- **Verification** by a second examiner, blind by default: until they have recorded their own
  sheet on the candidate, `sheets_for` gives them nobody else's sheet or conclusion (only how
  many are withheld); then every sheet is shown, and `differences` says where they disagree.
  The rule is symmetric ("you see other examiners' sheets on a candidate once you have recorded
  yours"), so it holds whoever opens the candidate first, and the evidence bundle applies it to
  the examiner exporting.

A sheet is never edited: recording again adds a new version (the latest of each examiner
counts; the earlier ones stay, audited). The first examiner to record a sheet on a candidate
examines (`examination`, an analyst's act); every other examiner's sheet verifies it
(`verification`, a reviewer's act, naming the sheet it verifies). Each is one audited act
(`AuditAction.COMPARISON_SHEET` / `VERIFICATION_SHEET`). Its event names the sheet and carries
the SHA-256 of its body, never the body: the audit log is shown to every examiner (the audit
viewer, every exported bundle), and the findings or the conclusion there would undo blind
verification. The sheet's row is covered by the event's row hashes like any row.

Annotations (arrows, circles, short labels) are saved with the sheet in the pixels of the
aligned crop the compare view shows and the report prints: ANNOTATION_SPACE.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from workstation.audit.actions import AuditAction
from workstation.audit.log import canonical_json
from workstation.domain import same_examiner
from workstation.errors import WorkstationError
from workstation.gallery.sheets import (
    EXAMINATION,
    VERIFICATION,
    ComparisonSheet,
    SheetInput,
    SheetsView,
    latest_by_examiner,
)
from workstation.gallery.store import Gallery


def record_sheet(
    gallery: Gallery, search_id: int, subject_id: str, sheet: SheetInput
) -> ComparisonSheet:
    """Record the acting examiner's comparison sheet on one candidate of a search (audited).

    The first examiner's sheet on a candidate examines it; any other examiner's verifies the
    first (and needs the reviewer role). Recording again adds a new version.
    """
    body = sheet.checked()
    search = gallery.search_row(search_id)
    if search is None:
        raise WorkstationError(f"search {search_id} does not exist in {gallery.folder}")
    candidates = {c["subject_id"] for c in json.loads(search["candidates"])}
    if subject_id not in candidates:
        raise WorkstationError(f"subject {subject_id!r} is not a candidate of search {search_id}")
    user = gallery.user
    # Which role this sheet has is decided again inside the write transaction (below): a sheet
    # another examiner recorded a moment ago counts. The audit action is chosen here from what
    # is stored now and checked again there.
    role, verifies = _role_for(gallery.comparison_sheet_versions(search_id, subject_id), user)
    action = AuditAction.COMPARISON_SHEET if role == EXAMINATION else AuditAction.VERIFICATION_SHEET
    details = {
        "search_id": search_id,
        "subject_id": subject_id,
        "role": role,
        "verifies": verifies,
        # The body's hash, not the body: the log is read by everyone, the sheet is not yet.
        "sheet_sha256": hashlib.sha256(canonical_json(body).encode()).hexdigest(),
    }
    with gallery.change(
        action, details, case_id=search["case_id"], purpose=search["purpose"]
    ) as change:
        stored = gallery.comparison_sheet_versions(search_id, subject_id)
        if _role_for(stored, change.acting.name) != (role, verifies):
            raise WorkstationError(
                f"another examiner recorded a sheet on {subject_id} of search {search_id} just "
                "now; open the candidate again and record yours"
            )
        sheet_id, created_at = change.add_comparison_sheet(
            search_id, subject_id, role, verifies, json.dumps(body, sort_keys=True)
        )
        change.details["sheet_id"] = sheet_id
    return ComparisonSheet(
        sheet_id,
        search_id,
        subject_id,
        role,
        verifies,
        change.acting.name,
        change.acting.fingerprint,
        created_at,
        body,
    )


def _role_for(sheets: Sequence[ComparisonSheet], user: str) -> tuple[str, int | None]:
    current = latest_by_examiner(sheets)
    mine = next((s for s in current if same_examiner(s.examiner, user)), None)
    if mine is not None:  # a new version keeps the role of the examiner's first sheet
        return mine.role, mine.verifies
    examination = next((s for s in current if s.role == EXAMINATION), None)
    if examination is None:
        return EXAMINATION, None
    return VERIFICATION, examination.id


def sheets_for(gallery: Gallery, search_id: int, subject_id: str) -> SheetsView:
    """The sheets on one candidate that the examiner opening the gallery may see now (the
    blind-verification rule, `sheets.blind_view`, applied by the gallery's read)."""
    return gallery.comparison_sheets(search_id, subject_id)
