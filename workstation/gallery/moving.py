"""The two states `gallery copy` (workstation.gallery.copy) leaves a gallery in, read where every
gallery opens and every act begins (kept apart from the copy itself, which needs the store).

- **Moved.** A copy is a move: the source's last event is `gallery_copied_out`, naming the
  destination and the head copied. The destination goes on with the same chain (same gallery
  id, same events), so anything the source recorded after that event would be a second history
  of one gallery: witnesses would see a fork. The source therefore records nothing more, and
  every act, read events and exports included (each is an event), is refused with where the
  gallery went. `audit verify` records nothing, so it still works on the source.
- **Unfinished copy.** The destination is marked (a `meta` row) before the copy starts and the
  mark is removed in the same transaction that writes the copied rows; a copy interrupted at any
  point (cancelled, killed, power cut) leaves the mark, and a marked gallery never opens: an empty
  database there would otherwise become a new gallery with a new genesis event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workstation.audit.actions import AuditAction
from workstation.gallery import audit_store
from workstation.gallery.database import Database

UNFINISHED_COPY_KEY = "unfinished_copy"


def unfinished_copy(db: Database) -> dict[str, Any] | None:
    """What the mark of an unfinished copy says (source, start, examiner), or None."""
    if not db.table_exists("meta"):
        return None
    row = db.execute("SELECT value FROM meta WHERE key = ?", (UNFINISHED_COPY_KEY,)).fetchone()
    if row is None:
        return None
    try:
        mark = json.loads(str(row[0]))
    except ValueError:
        mark = {}
    return mark if isinstance(mark, dict) else {}


def unfinished_copy_refusal(db: Database, folder: Path) -> str | None:
    """Why the gallery at `folder` may not be opened (an unfinished copy), or None."""
    mark = unfinished_copy(db)
    if mark is None:
        return None
    source = mark.get("source", "?")
    return (
        f"{folder}: an unfinished copy of the gallery {source} (started {mark.get('started_at')} "
        f"by {mark.get('examiner')}; it was interrupted or cancelled), not a usable gallery. "
        f"Run `workstation gallery copy {source} {folder}` again to make it whole, or remove "
        "it (an embedded gallery: delete the folder; an agency gallery: its DBA drops the "
        "database and runs `workstation agency init` again)"
    )


def moved_refusal(db: Database, folder: Path) -> str | None:
    """Why nothing more may be recorded in the gallery at `folder` (it was moved), or None."""
    last = audit_store.last_event(db)
    if last is None or last.action != AuditAction.GALLERY_COPIED_OUT.value:
        return None
    details = last.details
    if Path(str(details.get("destination", ""))).resolve() == Path(folder).resolve():
        return None  # this is where it went: the chain goes on here
    return (
        f"{folder}: this gallery was moved to {details.get('destination')} at "
        f"{last.seq}:{last.hash} (by {last.user}, {last.time}); it records nothing more here "
        "(every act and every consultation is an event of the gallery's one chain, which goes "
        f"on there). Open {details.get('destination')} instead; `workstation audit verify` "
        "still checks this copy"
    )
