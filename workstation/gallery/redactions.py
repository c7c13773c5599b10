"""The examiner's redaction marks on a search's probe image (issue 15 item 5): boxes added by
hand to the redaction (a face the detector missed, a tattoo, a name badge) and boxes
un-redacted with a note. Each is an audited act (`redaction_box`, `unredact`) naming the
search, the case, the image (SHA-256) and the box; the probe file is never changed. What the
export does with them is in workstation.reports.redaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from workstation.audit.actions import AuditAction
from workstation.domain import BBox
from workstation.errors import WorkstationError
from workstation.gallery.store import Gallery

# An un-redaction names a box; it applies to the redaction box it overlaps this much (IoU).
# Detection of the same image is deterministic (same model, same pixels), so a detected box is
# found again at the same place; 0.5 allows for a box typed by hand with rounded numbers.
SAME_BOX_IOU = 0.5
KINDS = ("drawn", "unredact")


def same_box(a: BBox, b: BBox) -> bool:
    """Whether two boxes name the same redaction box."""
    return a.iou(b) >= SAME_BOX_IOU


@dataclass(frozen=True)
class RedactionMark:
    """One stored redaction mark."""

    id: int
    search_id: int
    case_id: str
    image_ref: str
    kind: str  # 'drawn' or 'unredact'
    box: BBox
    note: str | None
    user: str
    created_at: str

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RedactionMark:
        return cls(
            int(row["id"]),
            int(row["search_id"]),
            str(row["case_id"]),
            str(row["image_ref"]),
            str(row["kind"]),
            BBox(float(row["x"]), float(row["y"]), float(row["w"]), float(row["h"])),
            row["note"],
            str(row["user"]),
            str(row["created_at"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "mark_id": self.id,
            "kind": self.kind,
            "box": [round(v, 1) for v in self.box.as_list()],
            "note": self.note,
            "examiner": self.user,
            "at": self.created_at,
        }


def redaction_marks(gallery: Gallery, search_ids: Iterable[int]) -> dict[int, list[RedactionMark]]:
    """{search id: its marks, oldest first}."""
    found: dict[int, list[RedactionMark]] = {}
    for row in gallery.redaction_mark_rows(search_ids):
        mark = RedactionMark.from_row(row)
        found.setdefault(mark.search_id, []).append(mark)
    return found


def _checked_box(box: BBox | Sequence[float], width: int | None, height: int | None) -> BBox:
    if not isinstance(box, BBox):
        values = [float(v) for v in box]
        if len(values) != 4:
            raise WorkstationError(f"a redaction box is x, y, width, height; got {box!r}")
        box = BBox(*values)
    if not (box.w > 0 and box.h > 0 and box.x >= 0 and box.y >= 0):
        raise WorkstationError(
            f"redaction box {box.as_list()} must have a positive width and height inside the image"
        )
    if width and height and (box.x >= width or box.y >= height):
        raise WorkstationError(
            f"redaction box {box.as_list()} lies outside the probe image ({width} x {height} px)"
        )
    return box


def _record_mark(
    gallery: Gallery,
    action: AuditAction,
    search_id: int,
    kind: str,
    box: BBox | Sequence[float],
    note: str | None,
) -> RedactionMark:
    record = gallery.search_record(search_id)  # refuses an unknown search, naming it
    # Stored as listed (0.1 px), so the mark read back is the one returned.
    checked = BBox(*_checked_box(box, record.probe.width, record.probe.height).as_list())
    frame = record.probe.frame
    image = (
        f"{record.probe.sha256}#frame={frame.get('frame_index')}" if frame else record.probe.sha256
    )
    details = {
        "search_id": search_id,
        "image_sha256": record.probe.sha256,
        "image_ref": image,
        "box": [round(v, 1) for v in checked.as_list()],
        "note": note,
    }
    with gallery.change(action, details, case_id=record.case_id, purpose=record.purpose) as change:
        mark_id, created_at = change.add_redaction_mark(
            search_id,
            record.case_id,
            image,
            kind,
            (checked.x, checked.y, checked.w, checked.h),
            note,
        )
        change.details["mark_id"] = mark_id
    return RedactionMark(
        mark_id,
        search_id,
        record.case_id,
        image,
        kind,
        checked,
        note,
        change.acting.name,
        created_at,
    )


def add_redaction_box(
    gallery: Gallery, search_id: int, box: BBox | Sequence[float], note: str | None = None
) -> RedactionMark:
    """Add a box (probe image pixels) to the redaction of a search's probe (audited)."""
    return _record_mark(gallery, AuditAction.REDACTION_BOX, search_id, "drawn", box, note)


def unredact(
    gallery: Gallery, search_id: int, box: BBox | Sequence[float], note: str
) -> RedactionMark:
    """Show one redaction box of a search's probe unredacted in exports, saying why (audited).

    The note is required: it is what a reader of the report is told."""
    if not note or not note.strip():
        raise WorkstationError(
            "un-redacting a face needs a note saying why it may be shown (it is printed in the "
            "report and kept in the audit log)"
        )
    return _record_mark(gallery, AuditAction.UNREDACT, search_id, "unredact", box, note.strip())


__all__ = [
    "SAME_BOX_IOU",
    "RedactionMark",
    "add_redaction_box",
    "redaction_marks",
    "same_box",
    "unredact",
]
