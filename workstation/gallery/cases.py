"""Cases: the authorisation of a case's searches (the EU AI Act's log of remote biometric
identification asks who approved the search and when), their status and the list of cases.

A case is made by its first search (case number and purpose); its authorisation (who approved
the searches, when, the reference of the approval) is optional and recorded either with that
first search or later by `authorise_case`, in an audited act either way.

A case is open, closed or archived (`workstation.gallery.case_rules` says what each allows);
closing, reopening and archiving are audited acts with a reason, and closing or archiving sets
the date the case's records are kept until. `case_summaries` is the list of cases every surface
shows (`workstation cases`, the Cases tab).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from workstation.audit.actions import AuditAction
from workstation.domain import CaseAuthorisation, CaseStatus
from workstation.errors import CaseStatusError, WorkstationError
from workstation.gallery.case_rules import STATUS_MOVES, case_act_refusal

if TYPE_CHECKING:
    from workstation.gallery.store import Gallery


def case_authorisation(
    by: str | None, at: str | None, reference: str | None
) -> CaseAuthorisation | None:
    """The authorisation given as words (command line, case dialog), or None when none is given.

    All three are needed: an approval without its author, date or reference proves nothing.
    """
    values = [(v or "").strip() for v in (by, at, reference)]
    if not any(values):
        return None
    if not all(values):
        raise WorkstationError(
            "an authorisation needs who approved the search, when, and the approval's reference "
            "(--authorised-by NAME --authorised-at DATE --authorisation REF)"
        )
    return CaseAuthorisation(*values)


def authorise_case(gallery: Gallery, case_id: str, authorisation: CaseAuthorisation) -> None:
    """Record (or correct) who approved the searches of an existing case (audited)."""
    case = gallery.case(case_id)
    if case is None:
        raise WorkstationError(f"case {case_id!r} has no searches in the gallery {gallery.folder}")
    previous = CaseAuthorisation.from_case_row(case)
    with gallery.change(
        AuditAction.CASE_AUTHORISE,
        {
            "authorisation": authorisation.to_dict(),
            "previous": previous.to_dict() if previous else None,
        },
        case_id=case_id,
        purpose=str(case["purpose"]),
    ) as change:
        change.authorise_case(case_id, authorisation)


# ---------------------------------------------------------------------- status
# A closed or archived case's records are due for deletion this long after it was closed,
# unless the examiner gives the date their law sets (--retain-until): no closed case is kept
# without a date.
DEFAULT_RETENTION_DAYS = 730


def retention_date(text: str | None, today: date | None = None) -> str:
    """The retention date as YYYY-MM-DD: `text` checked, or the default from today."""
    today = today or datetime.now(UTC).date()
    if text is None or not text.strip():
        return (today + timedelta(days=DEFAULT_RETENTION_DAYS)).isoformat()
    try:
        return date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise WorkstationError(
            f"retention date {text!r} is not a date: write it as YYYY-MM-DD"
        ) from None


def _required_reason(reason: str | None, act: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise WorkstationError(f"a reason is required to {act} a case")
    return reason


def _move_case(
    gallery: Gallery,
    case_id: str,
    action: AuditAction,
    reason: str | None,
    retain_until: str | None,
) -> CaseStatus:
    """One audited status move; returns the status the case had."""
    wanted = STATUS_MOVES[action]
    reason = _required_reason(reason, action.value.removeprefix("case_"))
    case = gallery.case(case_id)
    if case is None:
        raise WorkstationError(f"case {case_id!r} has no searches in the gallery {gallery.folder}")
    details: dict[str, object] = {"reason": reason, "status": wanted.value}
    if retain_until is not None:
        details["retain_until"] = retain_until
    with gallery.change(action, details, case_id=case_id, purpose=str(case["purpose"])) as change:
        previous = change.set_case_status(case_id, wanted, reason, retain_until)
        change.details["previous_status"] = previous.value
        if wanted is not CaseStatus.OPEN:
            # A closed or archived case is searched no more: its watches end with it, and
            # their probe embeddings are deleted.
            watches = [
                int(row["id"])
                for row in gallery.watch_rows(active_only=True)
                if str(row["case_id"]) == case_id
            ]
            if watches:
                change.end_watches(watches, f"case {wanted.value}")
                change.details["watches_ended"] = watches
    return previous


def close_case(
    gallery: Gallery, case_id: str, reason: str | None, retain_until: str | None = None
) -> str:
    """Close an open case (audited): no new work on it until it is reopened. Returns its
    retention date (given, or DEFAULT_RETENTION_DAYS from today)."""
    until = retention_date(retain_until)
    _move_case(gallery, case_id, AuditAction.CASE_CLOSE, reason, until)
    return until


def reopen_case(gallery: Gallery, case_id: str, reason: str | None) -> None:
    """Reopen a closed case (audited); its retention date is cleared while it is open."""
    _move_case(gallery, case_id, AuditAction.CASE_REOPEN, reason, None)


def archive_case(
    gallery: Gallery, case_id: str, reason: str | None, retain_until: str | None = None
) -> str:
    """Archive an open or closed case (audited): read-only for good. Returns its retention
    date (given; else the one set when it was closed; else the default from today)."""
    case = gallery.case(case_id)
    kept = (case or {}).get("retain_until")
    until = retention_date(retain_until if retain_until else kept)
    _move_case(gallery, case_id, AuditAction.CASE_ARCHIVE, reason, until)
    return until


def require_case_open_for(gallery: Gallery, case_id: str, action: AuditAction) -> None:
    """Refuse at once (before any work) an act the case's status would refuse at its record."""
    case = gallery.case(case_id)
    if case is None:
        return  # a new case: made open by the act itself
    problem = case_act_refusal(case_id, CaseStatus.of_row(case), action)
    if problem is not None:
        raise CaseStatusError(problem)


# ---------------------------------------------------------------------- the list of cases
@dataclass(frozen=True)
class CaseSummary:
    """One line of the list of cases (`workstation cases`, the Cases tab)."""

    case_id: str
    purpose: str
    status: CaseStatus
    created_at: str
    created_by: str
    examiners: tuple[str, ...]  # everyone who acted on the case, in the order they first did
    searches: int
    leads: int  # candidates whose standing decision is a possible lead
    confirmations: int  # leads confirmed by a second examiner
    last_activity: str  # the time of the case's latest audited act
    authorisation: CaseAuthorisation | None
    retain_until: str | None  # YYYY-MM-DD; None while open
    status_changed_at: str | None
    status_changed_by: str | None
    status_reason: str | None
    past_retention: bool

    @property
    def read_only(self) -> bool:
        return self.status is CaseStatus.ARCHIVED

    def to_dict(self) -> dict[str, object]:
        """A `cases --json` line (keys documented in the README)."""
        return {
            "case_id": self.case_id,
            "purpose": self.purpose,
            "status": self.status.value,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "examiners": list(self.examiners),
            "searches": self.searches,
            "leads": self.leads,
            "confirmations": self.confirmations,
            "last_activity": self.last_activity,
            "authorisation": self.authorisation.to_dict() if self.authorisation else None,
            "retain_until": self.retain_until,
            "past_retention": self.past_retention,
            "status_changed_at": self.status_changed_at,
            "status_changed_by": self.status_changed_by,
            "status_reason": self.status_reason,
        }


def case_summaries(gallery: Gallery, today: date | None = None) -> list[CaseSummary]:
    """Every case of the gallery, latest activity first (one read snapshot)."""
    today_text = (today or datetime.now(UTC).date()).isoformat()
    with gallery.read_snapshot():
        activity = gallery.case_activity()
    summaries = []
    for row in activity:
        retain_until = row.get("retain_until")
        summaries.append(
            CaseSummary(
                case_id=str(row["id"]),
                purpose=str(row["purpose"]),
                status=CaseStatus.of_row(row),
                created_at=str(row["created_at"]),
                created_by=str(row["created_by"]),
                examiners=tuple(row["examiners"]),
                searches=int(row["searches"]),
                leads=int(row["leads"]),
                confirmations=int(row["confirmations"]),
                last_activity=str(row["last_activity"] or row["created_at"]),
                authorisation=CaseAuthorisation.from_case_row(row),
                retain_until=retain_until,
                status_changed_at=row.get("status_changed_at"),
                status_changed_by=row.get("status_changed_by"),
                status_reason=row.get("status_reason"),
                past_retention=bool(retain_until and retain_until < today_text),
            )
        )
    summaries.sort(key=lambda s: s.last_activity, reverse=True)
    return summaries
