"""Cases: the authorisation of a case's searches (the EU AI Act's log of remote biometric
identification asks who approved the search and when).

A case is made by its first search (case number and purpose); its authorisation (who approved
the searches, when, the reference of the approval) is optional and recorded either with that
first search or later by `authorise_case`, in an audited act either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workstation.audit.actions import AuditAction
from workstation.domain import CaseAuthorisation
from workstation.errors import WorkstationError

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
