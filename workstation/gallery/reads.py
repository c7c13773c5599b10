"""Reads recorded with the case they serve (issue 11 item 5).

Law-enforcement logging rules (the EU Law Enforcement Directive, art. 25) ask for every
consultation of personal data to be logged with its justification, date and time and the
identity of the person consulting, not only every change. So each read of the gallery's records
is one audit event (`AuditAction.VIEW`) carrying the case number and purpose it served, the
examiner (signed, like every event), the time, and what was consulted: subject ids, face ids,
search ids, audit sequence numbers, a video's SHA-256. Never names, free text typed as a query,
or photos: the audit log is append-only and issue 12 forbids personal data in it (a name kept
there could never be deleted).

`record_read` is the one place a read is recorded: one `gallery.change()` with nothing but its
event, so it runs over any storage that implements the gallery's unit of work. A read that
cannot be recorded (no case, an examiner not registered in the gallery, a read-only gallery) is
refused: the caller shows nothing.

Volume: a read is recorded per consultation, never per thumbnail or scroll step. The app
records a subject's photos once per selection, a page of the subject list once per page, a
candidate once per Compare opening; `ReadLedger` keeps the same read of the same records for
the same case from being recorded again within a few minutes (re-selecting a subject while
going back and forth between two).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from workstation.audit.actions import AuditAction
from workstation.audit.log import AuditEvent
from workstation.errors import CaseRequiredError

if TYPE_CHECKING:
    from workstation.gallery.store import Gallery

__all__ = [
    "ID_LIST_LIMIT",
    "READ_REPEAT_SECONDS",
    "Read",
    "ReadLedger",
    "case_searches_consulted",
    "cases_consulted",
    "duplicates_consulted",
    "id_list",
    "record_read",
    "record_read_once",
    "require_read_case",
    "retention_consulted",
    "sheets_consulted",
    "watch_hits_consulted",
    "watches_consulted",
]


class Read(str, Enum):
    """What kind of consultation a VIEW event records (its details' "read")."""

    SUBJECT_LIST = "subject_list"  # a page of the subject list (ids shown), or all of it
    SUBJECT_PHOTOS = "subject_photos"  # one subject's photos (its face ids)
    COMPARE = "compare"  # a candidate opened side by side with the probe
    DUPLICATES = "duplicates"  # the list of probable duplicate subjects
    AUDIT_LOG = "audit_log"  # audit events shown (the case filter, the sequence range)
    FOOTAGE = "footage"  # a video consulted (its SHA-256)
    CASE_LIST = "case_list"  # the list of cases (ids shown), a supervisory consultation
    CASE_SEARCHES = "case_searches"  # a case's recorded searches, candidates and decisions
    WATCHES = "watches"  # watches and their hits (subjects and faces found)
    RETENTION_LIST = "retention_list"  # the subjects a retention purge would delete
    SHEETS = "comparison_sheets"  # the ACE-V sheets shown on one candidate

    def __str__(self) -> str:
        return self.value


# What each read is called in a refusal ("listing subjects needs a case number ...").
_READ_WORDS: dict[Read, str] = {
    Read.SUBJECT_LIST: "listing subjects",
    Read.SUBJECT_PHOTOS: "viewing a subject's photos",
    Read.COMPARE: "comparing",
    Read.DUPLICATES: "listing duplicate subjects",
    Read.AUDIT_LOG: "reading the audit log",
    Read.FOOTAGE: "scanning footage",
    Read.CASE_LIST: "listing cases",
    Read.CASE_SEARCHES: "reading a case's searches",
    Read.WATCHES: "listing watches and their hits",
    Read.RETENTION_LIST: "listing the subjects a retention purge would delete",
    Read.SHEETS: "reading comparison sheets",
}

# Up to this many ids are listed in the event; a larger set (a whole 300,000-subject gallery
# listed with `subjects --json`) is recorded by its count, first and last id and the SHA-256 of
# the sorted ids, which proves which set was read against the gallery as it was (its own
# events say which subjects existed then) without a 3 MB event.
ID_LIST_LIMIT = 1000

# The same read of the same records for the same case is not recorded again within this time
# (seconds) in one session: going back and forth between two subjects is one consultation of
# each, not one per click.
READ_REPEAT_SECONDS = 300.0


def require_read_case(
    case_id: str | None, purpose: str | None, read: Read | str
) -> tuple[str, str]:
    """The case number and purpose, stripped; CaseRequiredError saying why when either is missing.

    Administrative reads (an administrator listing subjects for gallery maintenance) need a
    case too: a standing reference the agency keeps for maintenance (docs/ACCOUNTABILITY.md).
    """
    case_id, purpose = (case_id or "").strip(), (purpose or "").strip()
    if not case_id or not purpose:
        words = _READ_WORDS.get(Read(read), str(read))
        raise CaseRequiredError(
            f"{words} needs a case number and a purpose (--case ID --purpose TEXT): every "
            "consultation of the gallery's records is recorded against them in the audit log; "
            "for gallery maintenance use the agency's standing maintenance reference"
        )
    return case_id, purpose


def id_list(ids: Iterable[Any], limit: int = ID_LIST_LIMIT) -> dict[str, Any]:
    """Ids consulted, for an event's details: listed when few, else counted and digested."""
    values = [i if isinstance(i, int) else str(i) for i in ids]
    if len(values) <= limit:
        return {"count": len(values), "ids": values}
    ordered = sorted(values, key=str)
    digest = hashlib.sha256("\n".join(map(str, ordered)).encode("utf-8")).hexdigest()
    return {"count": len(values), "first": ordered[0], "last": ordered[-1], "sha256": digest}


def duplicates_consulted(pairs: Iterable[Any], threshold: float) -> dict[str, Any]:
    """What a duplicates list showed: the threshold, how many pairs, the subjects and faces."""
    pairs = list(pairs)
    subjects = dict.fromkeys(s for p in pairs for s in (p.subject_a, p.subject_b))
    faces = dict.fromkeys(f for p in pairs for f in (p.face_a, p.face_b))
    return {
        "threshold": round(float(threshold), 5),
        "pairs": len(pairs),
        "subjects": id_list(subjects),
        "face_ids": id_list(faces),
    }


def cases_consulted(case_ids: Iterable[str], past_retention_only: bool = False) -> dict[str, Any]:
    """What a list of cases showed: the case numbers (their purposes, examiners and counts are
    the gallery's own records, found from the ids)."""
    return {"past_retention_only": past_retention_only, "cases": id_list(case_ids)}


def case_searches_consulted(case_id: str, searches: Iterable[Any]) -> dict[str, Any]:
    """What a case's searches showed (`SearchRecord`s): their ids, the candidates' subjects and
    faces, the decisions and the comparison sheets shown with them."""
    searches = list(searches)
    candidates = [c for s in searches for c in s.candidates]
    sheets = [
        sheet.id
        for s in searches
        for view in s.sheets
        for sheet in ((view.own,) if view.own else ()) + tuple(view.others)
    ]
    return {
        "case_id": case_id,
        "searches": id_list(s.search_id for s in searches),
        "subjects": id_list(dict.fromkeys(c.subject_id for c in candidates)),
        "face_ids": id_list(dict.fromkeys(c.face_id for c in candidates)),
        "decisions": id_list(d.id for s in searches for d in s.decisions),
        "sheets": id_list(sheets),
    }


def sheets_consulted(view: Any, search_id: int) -> dict[str, Any]:
    """What the sheets panel showed on one candidate (`SheetsView`): the sheet ids shown (the
    examiner's own and the others' they may see) and how many were withheld."""
    shown = ([view.own] if view.own is not None else []) + list(view.others)
    return {
        "search_id": search_id,
        "subject_id": view.subject_id,
        "sheets": id_list(sheet.id for sheet in shown),
        "withheld": int(view.withheld),
    }


def watches_consulted(watches: Iterable[Any]) -> dict[str, Any]:
    """What a list of watches showed (`Watch`es with their hits): watch ids, and each hit's
    search, subject and face."""
    watches = list(watches)
    hits = [h for w in watches for h in w.hits]
    return {
        "watches": id_list(w.id for w in watches),
        "hits": len(hits),
        "searches": id_list(dict.fromkeys(h.search_id for h in hits)),
        "subjects": id_list(dict.fromkeys(h.subject_id for h in hits)),
        "face_ids": id_list(dict.fromkeys(h.face_id for h in hits)),
    }


def watch_hits_consulted(hits: Iterable[Any]) -> dict[str, Any]:
    """What a notice of watch hits showed (`WatchHit`s): as `watches_consulted`, hits alone."""
    hits = list(hits)
    return {
        "watches": id_list(dict.fromkeys(h.watch_id for h in hits)),
        "hits": len(hits),
        "searches": id_list(dict.fromkeys(h.search_id for h in hits)),
        "subjects": id_list(dict.fromkeys(h.subject_id for h in hits)),
        "face_ids": id_list(dict.fromkeys(h.face_id for h in hits)),
    }


def retention_consulted(older_than_days: int, subjects: Iterable[Any]) -> dict[str, Any]:
    """What a retention list showed (`SubjectInfo`s): the period, the subject ids, face count."""
    subjects = list(subjects)
    return {
        "older_than_days": older_than_days,
        "subjects": id_list(s.id for s in subjects),
        "faces": sum(int(s.face_count) for s in subjects),
    }


def record_read(
    gallery: Gallery,
    read: Read,
    consulted: Mapping[str, Any],
    case_id: str | None,
    purpose: str | None,
) -> AuditEvent:
    """Record one consultation (an audit event of its own, signed; nothing else is written).

    `consulted` holds ids and hashes only. Raises CaseRequiredError without a case and purpose,
    IdentityError when the examiner is not registered in the gallery, GalleryError when it is
    read-only: the caller then shows nothing.
    """
    case_id, purpose = require_read_case(case_id, purpose, read)
    details = {"read": Read(read).value, **consulted}
    with gallery.change(AuditAction.VIEW, details, case_id=case_id, purpose=purpose) as change:
        pass
    return change.events[-1]


class ReadLedger:
    """Which reads this session recorded lately, so a repeat is not recorded again at once.

    Thread-safe (the app claims on its GUI thread and records on a worker). `claim` says
    whether a read is due and marks it; `release` forgets a claim whose recording failed.
    """

    def __init__(
        self,
        repeat_seconds: float = READ_REPEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repeat_seconds = repeat_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._recorded: dict[Hashable, float] = {}

    @staticmethod
    def key(
        read: Read, case_id: str | None, purpose: str | None, what: Hashable
    ) -> tuple[Hashable, ...]:
        return (Read(read).value, case_id, purpose, what)

    def claim(self, key: Hashable) -> bool:
        """True when this read is due (and now counted as recorded); False for a repeat."""
        now = self._clock()
        with self._lock:
            last = self._recorded.get(key)
            if last is not None and now - last < self.repeat_seconds:
                return False
            if len(self._recorded) > 10_000:  # a long session: forget the stale ones
                self._recorded = {
                    k: t for k, t in self._recorded.items() if now - t < self.repeat_seconds
                }
            self._recorded[key] = now
            return True

    def release(self, key: Hashable) -> None:
        """Forget a claim (its recording failed: the next attempt records it)."""
        with self._lock:
            self._recorded.pop(key, None)


def record_read_once(
    gallery: Gallery,
    ledger: ReadLedger,
    read: Read,
    consulted: Mapping[str, Any],
    case_id: str | None,
    purpose: str | None,
    what: Hashable,
) -> AuditEvent | None:
    """`record_read`, unless the ledger recorded the same read (`what`, the same case) lately;
    None then. A failed recording is forgotten (the next attempt records) and raised."""
    key = ReadLedger.key(read, case_id, purpose, what)
    if not ledger.claim(key):
        return None
    try:
        return record_read(gallery, read, consulted, case_id, purpose)
    except BaseException:
        ledger.release(key)
        raise
