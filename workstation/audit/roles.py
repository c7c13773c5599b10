"""Examiners' roles and which acts each allows (the one place the rule lives).

The gallery refuses an act whose examiner holds none of the roles it needs (in the core, before
anything is written), and `audit verify` applies the same rule to every event of the chain, with
the roles its examiner held at that point, so an act the program would have refused fails
verification too.

- administrator: registers and revokes examiners, deletes and merges subjects, re-embeds the
  gallery, changes the gallery's settings (the witness folder) and its permissions;
- enroller: enrols photos;
- analyst: searches (photos and footage), compares, records decisions and comparison sheets
  on candidates, exports a case;
- reviewer: confirms another examiner's possible lead, records the verification sheet of
  another examiner's comparison (and exports the case it belongs to).

An analyst closes and reopens a case; archiving one (read-only for good) is an administrator's
act.

Whoever creates a gallery is its first administrator and holds all four roles, so that a
single examiner's gallery works at once; an agency registers each examiner with only the roles
they need. Recomputing the calibration is an analyst's or an administrator's act; rebuilding the
vector index (derived data, rebuilt automatically when damaged, whoever is searching) needs only a
registered examiner. Changing one's own settings file (backend, number of candidates) is recorded
but needs no particular role: it is the examiner's own file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from workstation.audit.actions import AuditAction


class Role(str, Enum):
    ADMINISTRATOR = "administrator"
    ENROLLER = "enroller"
    ANALYST = "analyst"
    REVIEWER = "reviewer"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, values: Iterable[str]) -> frozenset[Role]:
        """Roles from words ("analyst", "analyst,reviewer"); ValueError naming a wrong one."""
        roles: set[Role] = set()
        for value in values:
            for word in str(value).split(","):
                word = word.strip().lower()
                if not word:
                    continue
                try:
                    roles.add(cls(word))
                except ValueError:
                    known = ", ".join(r.value for r in cls)
                    raise ValueError(f"{word!r} is not a role (roles: {known})") from None
        return frozenset(roles)


ALL_ROLES = frozenset(Role)
ANY_ROLE: frozenset[Role] = frozenset()  # no particular role: any registered examiner

_ADMIN = frozenset({Role.ADMINISTRATOR})
_REQUIRED: dict[AuditAction, frozenset[Role]] = {
    AuditAction.EXAMINER_ADD: _ADMIN,
    AuditAction.EXAMINER_REVOKE: _ADMIN,
    AuditAction.EXAMINER_ROLES: _ADMIN,
    AuditAction.DELETE: _ADMIN,
    AuditAction.MERGE: _ADMIN,
    AuditAction.RETENTION: _ADMIN,
    AuditAction.REEMBED: _ADMIN,
    AuditAction.PERMISSIONS_FIX: _ADMIN,
    AuditAction.GALLERY_COPIED_OUT: _ADMIN,
    AuditAction.GALLERY_COPIED_IN: _ADMIN,
    AuditAction.ENROL: frozenset({Role.ENROLLER}),
    AuditAction.SEARCH: frozenset({Role.ANALYST}),
    AuditAction.COMPARE: frozenset({Role.ANALYST}),
    AuditAction.FOOTAGE_SCAN: frozenset({Role.ANALYST}),
    AuditAction.FOOTAGE_FIND: frozenset({Role.ANALYST}),
    AuditAction.DECISION: frozenset({Role.ANALYST}),
    AuditAction.COMPARISON_SHEET: frozenset({Role.ANALYST}),
    AuditAction.VERIFICATION_SHEET: frozenset({Role.REVIEWER}),
    AuditAction.EXPORT: frozenset({Role.ANALYST, Role.REVIEWER}),
    AuditAction.CALIBRATE: frozenset({Role.ANALYST, Role.ADMINISTRATOR}),
    AuditAction.CASE_AUTHORISE: frozenset({Role.ANALYST, Role.ADMINISTRATOR}),
    AuditAction.CASE_CLOSE: frozenset({Role.ANALYST, Role.ADMINISTRATOR}),
    AuditAction.CASE_REOPEN: frozenset({Role.ANALYST, Role.ADMINISTRATOR}),
    AuditAction.CASE_ARCHIVE: _ADMIN,
    AuditAction.WATCH_ADD: frozenset({Role.ANALYST}),
    AuditAction.WATCH_END: frozenset({Role.ANALYST, Role.ADMINISTRATOR}),
    # Whoever may export a case prepares its redaction.
    AuditAction.REDACTION_BOX: frozenset({Role.ANALYST, Role.REVIEWER}),
    AuditAction.UNREDACT: frozenset({Role.ANALYST, Role.REVIEWER}),
    # The re-search an enrolment runs for each watch (whoever enrols): the watch's own analyst
    # authorised it when they set the watch.
    AuditAction.WATCH_SEARCH: ANY_ROLE,
    AuditAction.INDEX_REBUILD: ANY_ROLE,
    AuditAction.SETTINGS_CHANGE: ANY_ROLE,
    AuditAction.GENESIS: ANY_ROLE,
    AuditAction.ROWS_ADOPTED: ANY_ROLE,
    # Consulting records is open to every registered examiner; what they may do with what they
    # read is held to their roles by the act itself. An unregistered login records nothing, so
    # it reads nothing either.
    AuditAction.VIEW: ANY_ROLE,
}

# What each act is called in a refusal ("bob may not <act>").
_ACT_WORDS: dict[AuditAction, str] = {
    AuditAction.EXAMINER_ADD: "register examiners",
    AuditAction.EXAMINER_REVOKE: "revoke examiners",
    AuditAction.EXAMINER_ROLES: "change examiners' roles",
    AuditAction.DELETE: "delete subjects",
    AuditAction.MERGE: "merge subjects",
    AuditAction.RETENTION: "delete subjects past the retention period",
    AuditAction.REEMBED: "re-embed the gallery",
    AuditAction.PERMISSIONS_FIX: "change the gallery's permissions",
    AuditAction.GALLERY_COPIED_OUT: "move the gallery elsewhere",
    AuditAction.GALLERY_COPIED_IN: "move a gallery here",
    AuditAction.ENROL: "enrol photos",
    AuditAction.SEARCH: "search the gallery",
    AuditAction.COMPARE: "compare photos",
    AuditAction.FOOTAGE_SCAN: "scan footage",
    AuditAction.FOOTAGE_FIND: "look for a subject in footage",
    AuditAction.DECISION: "record decisions on candidates",
    AuditAction.COMPARISON_SHEET: "record a comparison sheet",
    AuditAction.VERIFICATION_SHEET: "verify another examiner's comparison",
    AuditAction.EXPORT: "export a case",
    AuditAction.CALIBRATE: "recompute the calibration",
    AuditAction.CASE_AUTHORISE: "record a case's authorisation",
    AuditAction.CASE_CLOSE: "close a case",
    AuditAction.CASE_REOPEN: "reopen a case",
    AuditAction.CASE_ARCHIVE: "archive a case",
    AuditAction.WATCH_ADD: "leave a probe on watch",
    AuditAction.WATCH_END: "end a watch",
    AuditAction.REDACTION_BOX: "add a redaction box",
    AuditAction.UNREDACT: "un-redact a face in an export",
    AuditAction.SETTINGS_CHANGE: "change the gallery's settings",
    AuditAction.VIEW: "consult the gallery's records",
    AuditAction.ROWS_ADOPTED: "vouch for rows written before they were hashed",
}


def required_roles(action: AuditAction | str, details: Mapping[str, Any]) -> frozenset[Role]:
    """The roles of which an examiner must hold one for this act (empty: any examiner).

    A decision that confirms another examiner's lead needs a reviewer; a settings change of the
    gallery itself (not of the examiner's own settings file) needs an administrator.
    """
    action = AuditAction(action)
    if action is AuditAction.DECISION and details.get("confirms") is not None:
        return frozenset({Role.REVIEWER})
    if action is AuditAction.SETTINGS_CHANGE and details.get("scope") == "gallery":
        return _ADMIN
    if action is AuditAction.WATCH_END and details.get("expired"):
        return ANY_ROLE  # a watch past its date ends by itself, whoever opens the gallery
    return _REQUIRED.get(action, _ADMIN)


def act_words(action: AuditAction | str, details: Mapping[str, Any]) -> str:
    action = AuditAction(action)
    if action is AuditAction.DECISION and details.get("confirms") is not None:
        return "confirm another examiner's lead"
    return _ACT_WORDS.get(action, f"record {action.value}")


def refusal(
    name: str, roles: Iterable[Role], action: AuditAction | str, details: Mapping[str, Any]
) -> str | None:
    """Why examiner `name` holding `roles` may not do this act (None when they may)."""
    needed = required_roles(action, details)
    held = frozenset(roles)
    if not needed or held & needed:
        return None
    needs = " or ".join(sorted(r.value for r in needed))
    has = ", ".join(sorted(r.value for r in held)) or "none"
    return (
        f"examiner {name} may not {act_words(action, details)}: that needs the {needs} role "
        f"(their roles: {has}); an administrator grants roles with `workstation examiners roles`"
    )


def roles_text(roles: Iterable[Role | str]) -> str:
    return ", ".join(sorted(str(r) for r in roles)) or "none"
