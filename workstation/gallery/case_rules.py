"""What a case's status allows (the one place the rule lives).

- An **open** case takes every act.
- A **closed** case takes no new work (no search, comparison, footage, decision, watch or
  change of its authorisation) until it is reopened; it may be read and exported, reopened or
  archived.
- An **archived** case is read-only for good: it may be read (a recorded read, `view`) and
  exported (an export is a read, logged like any act) and nothing else; it is never reopened.

`GalleryChange.record` applies `case_act_refusal` to every audited act that names a case, inside
the act's transaction, so no surface (command line, app, a script calling the core) can change a
case its status closes; `GalleryChange.set_case_status` applies `case_move_refusal` to the
stored status under the write lock.
"""

from __future__ import annotations

from workstation.audit.actions import AuditAction
from workstation.domain import CaseStatus

# Acts that only read a case: allowed whatever its status, and logged like any act (a record
# consulted for the case, issue 11; an export).
READS_OF_A_CASE = frozenset({AuditAction.VIEW, AuditAction.EXPORT})
# The acts that move a case from one status to another, and the status each leads to.
STATUS_MOVES: dict[AuditAction, CaseStatus] = {
    AuditAction.CASE_CLOSE: CaseStatus.CLOSED,
    AuditAction.CASE_REOPEN: CaseStatus.OPEN,
    AuditAction.CASE_ARCHIVE: CaseStatus.ARCHIVED,
}
# From each status, the statuses a case may move to.
_MOVES: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.OPEN: frozenset({CaseStatus.CLOSED, CaseStatus.ARCHIVED}),
    CaseStatus.CLOSED: frozenset({CaseStatus.OPEN, CaseStatus.ARCHIVED}),
    CaseStatus.ARCHIVED: frozenset(),
}


def case_act_refusal(case_id: str, status: CaseStatus, action: AuditAction) -> str | None:
    """Why `action` may not be recorded on case `case_id` in `status`, or None when it may.

    A status move is checked by `case_move_refusal` (its event is recorded after the row moved).
    """
    if status is CaseStatus.OPEN or action in READS_OF_A_CASE or action in STATUS_MOVES:
        return None
    if status is CaseStatus.ARCHIVED:
        return (
            f"case {case_id!r} is archived: it is read-only (it can be read and exported, "
            f"never changed); {action.value} refused"
        )
    return (
        f"case {case_id!r} is closed: reopen it first (`workstation cases reopen ID --reason "
        f"TEXT`, an audited act); {action.value} refused"
    )


def case_move_refusal(case_id: str, current: CaseStatus, wanted: CaseStatus) -> str | None:
    """Why case `case_id` may not move from `current` to `wanted`, or None when it may."""
    if wanted in _MOVES[current]:
        return None
    if current is CaseStatus.ARCHIVED:
        return f"case {case_id!r} is archived: it is read-only and cannot be {wanted.value} again"
    return f"case {case_id!r} is already {current.value}"
