"""The one list of audited acts: every audit event's `action` is one of these.

The value is what the audit table stores and what the hash covers, so a value never changes
once released; a new kind of act is a new member here (and nowhere else): `append_event`
refuses any other action, and the audit viewer, reports and tests read the names from here.
"""

from __future__ import annotations

from enum import Enum


class AuditAction(str, Enum):
    """What an audit event records."""

    ENROL = "enrol"  # a photo's face enrolled for a subject
    DELETE = "delete"  # a subject, its faces and photos removed (with a reason)
    MERGE = "merge"  # two subjects joined into one (with a reason)
    REEMBED = "reembed"  # every embedding recomputed with another model
    INDEX_REBUILD = "index_rebuild"  # the vector index rebuilt from the database
    CALIBRATE = "calibrate"  # a score calibration computed and stored
    SEARCH = "search"  # a 1:N search of the gallery (case and purpose required)
    COMPARE = "compare"  # a 1:1 comparison of two photos
    DECISION = "decision"  # an examiner's decision on a candidate, or a confirmation
    FOOTAGE_SCAN = "footage_scan"  # a video scanned into face tracks
    FOOTAGE_FIND = "footage_find"  # a gallery subject looked for in footage
    EXPORT = "export"  # a case exported (evidence bundle, report)
    SETTINGS_CHANGE = "settings_change"  # an audited setting changed
    PERMISSIONS_FIX = "permissions_fix"  # the data folders' permissions restricted
    # The gallery's id and its first administrator's key: the first signed event of a chain
    # (when the gallery is created, or when a gallery made before signing is adopted).
    GENESIS = "genesis"
    EXAMINER_ADD = "examiner_add"  # an examiner's public key registered, with their roles
    EXAMINER_REVOKE = "examiner_revoke"  # an examiner's key revoked (it signs nothing after)
    EXAMINER_ROLES = "examiner_roles"  # an examiner's roles changed
    CASE_AUTHORISE = "case_authorise"  # who approved a case's searches, when, the reference
    RETENTION = "retention"  # subjects past the retention period deleted (ids, reason)
    # Records consulted (a subject's photos, the subject list, a candidate in Compare, the
    # duplicates list, the audit log), with the case and purpose they served: law-enforcement
    # logging rules ask for consultation to be logged, not only changes (gallery/reads.py).
    VIEW = "view"
    # ACE-V (issue 15): an examiner's comparison sheet on a candidate (analysis, features,
    # conclusion, annotations), and a second examiner's blind verification sheet.
    COMPARISON_SHEET = "comparison_sheet"
    VERIFICATION_SHEET = "verification_sheet"
    CASE_CLOSE = "case_close"  # a case closed (with a reason and its retention date)
    CASE_REOPEN = "case_reopen"  # a closed case reopened (with a reason)
    CASE_ARCHIVE = "case_archive"  # a case archived: read-only from then on (with a reason)
    WATCH_ADD = "watch_add"  # a searched probe left on watch (case, reason, FMR, expiry)
    WATCH_SEARCH = "watch_search"  # a watched probe searched against newly enrolled faces
    WATCH_END = "watch_end"  # a watch ended (with a reason) or expired; its embedding deleted
    # `gallery copy` (issue 13 item 4) is a move: the source's last event names the gallery it
    # moved to and the head copied (it records nothing after it); the destination's first new
    # event, right after that one in the same chain, names where it came from.
    GALLERY_COPIED_OUT = "gallery_copied_out"
    GALLERY_COPIED_IN = "gallery_copied_in"
    # Redaction on export (issue 15 item 5): a box the examiner adds to a probe image's
    # redaction, and a box they un-redact (shown in exports) with a note.
    REDACTION_BOX = "redaction_box"
    UNREDACT = "unredact"
    # Rows of tables the chain came to cover after they were written (watches and their hits,
    # rows.COVERED_LATER), hashed as found by the first examiner to open the upgraded gallery.
    ROWS_ADOPTED = "rows_adopted"

    def __str__(self) -> str:
        return self.value
