"""Decisions on candidates, and the rule for confirming a possible lead (the one place it lives).

An examiner records a decision on one candidate of a search: possible lead, excluded or
inconclusive, with a note. A possible lead counts as confirmed only when a second examiner
confirms it, and then:

- by someone else: not the examiner who recorded it, whatever the spelling of their name
  ("ALICE", "alice " and "Alice" are one examiner; see `workstation.domain.examiner_key`);
- once: a lead already confirmed is not confirmed again;
- not after it was superseded: a later decision by anyone on the same search and subject
  replaces it, and only the latest decision can be confirmed.

`confirmation_refusal` states the rule over a list of decisions; `confirm_lead` applies it to the
stored decisions inside the transaction that writes the confirmation (so two examiners
confirming at the same moment cannot both succeed), and the GUI asks `lead_to_confirm` which
lead, if any, the current examiner may confirm.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from workstation.audit.actions import AuditAction
from workstation.domain import Decision, DecisionRecord, same_examiner
from workstation.errors import WorkstationError
from workstation.gallery.store import Gallery

DECISIONS = tuple(d.value for d in Decision.recordable())


def confirmation_refusal(
    decisions: Sequence[DecisionRecord],
    lead: DecisionRecord,
    user: str,
    key_fingerprint: str | None = None,
) -> str | None:
    """Why `user` may not confirm `lead`, in words naming the decision; None when they may.

    Args:
        decisions: every decision on the lead's search (any order; others are ignored).
        lead: the decision to confirm.
        user: the examiner who would confirm it.
        key_fingerprint: the key they would sign with (it must not be the lead's key).
    """
    if lead.decision is not Decision.POSSIBLE_LEAD:
        return (
            f"decision {lead.id} is {lead.decision.value!r}; only a possible lead can be confirmed"
        )
    if same_examiner(lead.user, user):
        return (
            f"decision {lead.id} was recorded by {lead.user}; a second examiner must confirm it "
            f"(you are recording as {user})"
        )
    if key_fingerprint is not None and lead.key_fingerprint == key_fingerprint:
        return (
            f"decision {lead.id} was recorded with the same examiner key you sign with; a second "
            "examiner must confirm it with their own registered key"
        )
    on_candidate = [
        d
        for d in decisions
        if d.search_id == lead.search_id and d.subject_id == lead.subject_id and d.id != lead.id
    ]
    confirmation = next((d for d in on_candidate if d.confirms == lead.id), None)
    if confirmation is not None:
        return (
            f"decision {lead.id} was already confirmed by {confirmation.user} (decision "
            f"{confirmation.id}); a lead is confirmed once"
        )
    later = [d for d in on_candidate if d.id > lead.id]
    if later:
        newest = max(later, key=lambda d: d.id)
        return (
            f"decision {lead.id} was superseded by decision {newest.id} ({newest.decision.value} "
            f"by {newest.user}); only the latest decision on a candidate can be confirmed"
        )
    return None


def lead_to_confirm(decisions: Sequence[DecisionRecord], user: str) -> DecisionRecord | None:
    """The possible lead on a candidate that `user` may confirm now, or None.

    `decisions` are those on one candidate (search and subject); only the latest can qualify.
    """
    if not decisions:
        return None
    latest = max(decisions, key=lambda d: d.id)
    return latest if confirmation_refusal(decisions, latest, user) is None else None


def why_no_lead_to_confirm(decisions: Sequence[DecisionRecord], user: str) -> str | None:
    """Why `user` has no lead to confirm on this candidate (None when they have one)."""
    if not decisions:
        return "no decision has been recorded on this candidate yet"
    latest = max(decisions, key=lambda d: d.id)
    if latest.decision is Decision.CONFIRMED and latest.confirms is not None:
        lead = next((d for d in decisions if d.id == latest.confirms), None)
        if lead is not None:
            return confirmation_refusal(decisions, lead, user)
    return confirmation_refusal(decisions, latest, user)


def record_decision(
    gallery: Gallery,
    search_id: int,
    subject_id: str,
    decision: Decision | str,
    note: str | None = None,
) -> DecisionRecord:
    """Record an examiner's decision on one candidate of a search (audited)."""
    try:
        chosen = Decision(decision)
    except ValueError:
        chosen = None
    if chosen is None or chosen not in Decision.recordable():
        raise WorkstationError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    search = _search_row(gallery, search_id)
    candidates = {c["subject_id"] for c in json.loads(search["candidates"])}
    if subject_id not in candidates:
        raise WorkstationError(f"subject {subject_id!r} is not a candidate of search {search_id}")
    return _store(gallery, search, subject_id, chosen, note, confirms=None)


def confirm_lead(gallery: Gallery, decision_id: int, note: str | None = None) -> DecisionRecord:
    """A second examiner confirms a possible lead (see the module docstring for the rule)."""
    lead = gallery.decision(decision_id)
    if lead is None:
        raise WorkstationError(f"decision {decision_id} does not exist")
    search = _search_row(gallery, lead.search_id)
    return _store(gallery, search, lead.subject_id, Decision.CONFIRMED, note, confirms=lead.id)


def decisions_for(gallery: Gallery, search_id: int) -> list[DecisionRecord]:
    """The decisions on a search's candidates its reader may see, oldest first: blind
    verification withholds other examiners' decisions on a candidate until the reader has
    recorded their own comparison sheet on it (`Gallery.visible_decisions`)."""
    return gallery.visible_decisions(search_id)[0]


def _blind_refusal(gallery: Gallery, lead: DecisionRecord, user: str) -> str | None:
    """A lead withheld from `user` by blind verification cannot be confirmed by them: they would
    confirm what they have not seen. They record their own comparison sheet first."""
    if gallery.comparison_sheets(lead.search_id, lead.subject_id).blind:
        return (
            f"decision {lead.id} is withheld from {user} by blind verification: record your own "
            f"comparison sheet on {lead.subject_id} first, then confirm"
        )
    return None


def _search_row(gallery: Gallery, search_id: int) -> dict[str, Any]:
    row = gallery.search_row(search_id)
    if row is None:
        raise WorkstationError(f"search {search_id} does not exist in {gallery.folder}")
    return row


def _store(
    gallery: Gallery,
    search: dict[str, Any],
    subject_id: str,
    decision: Decision,
    note: str | None,
    confirms: int | None,
) -> DecisionRecord:
    details = {
        "search_id": search["id"],
        "subject_id": subject_id,
        "decision": decision.value,
        "note": note,
        "confirms": confirms,
    }
    with gallery.change(
        AuditAction.DECISION, details, case_id=search["case_id"], purpose=search["purpose"]
    ) as change:
        if confirms is not None:
            # Checked inside the write transaction: what another examiner wrote a moment ago
            # counts, and nobody can write in between.
            on_candidate = gallery.decisions_for(search["id"], subject_id)
            lead = next((d for d in on_candidate if d.id == confirms), None)
            if lead is None:
                raise WorkstationError(f"decision {confirms} does not exist")
            refusal = confirmation_refusal(
                on_candidate, lead, change.acting.name, change.acting.fingerprint
            ) or _blind_refusal(gallery, lead, change.acting.name)
            if refusal is not None:
                raise WorkstationError(refusal)
        decision_id, created_at = change.add_decision(
            search["id"], subject_id, decision, note, confirms
        )
        change.details["decision_id"] = decision_id
    return DecisionRecord(
        decision_id,
        search["id"],
        subject_id,
        decision,
        note,
        change.acting.name,
        created_at,
        confirms,
        change.acting.fingerprint,
    )
