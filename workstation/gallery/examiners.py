"""The examiners registered in a gallery: who may act in it, with which key and which roles.

- **Bootstrap**: whoever creates a gallery is its first administrator: the genesis event (the
  first signed event of the chain) carries the gallery's new random id and that examiner's public
  key and roles, signed by that key. A gallery made by an older version (events, but no genesis)
  is adopted the same way, once, by an administrator (`workstation examiners adopt`); its older
  events stay as they were, unsigned, and verify as such.
- **Registration**: an administrator registers another examiner's public key (which the examiner
  prints with `workstation examiners key`) under their name with their roles, revokes it when
  they leave, or changes their roles; each is an audited act whose event carries the key, so
  `audit verify` rebuilds the registry from the chain.
- **Acting**: the examiner acting is the one whose key signs (workstation.identity). The gallery
  records the name registered for that key; the OS login (or --user, a test hook) must match it
  (names compared by `domain.examiner_key`), or the act is refused.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workstation.audit.actions import AuditAction
from workstation.audit.roles import ALL_ROLES, Role, roles_text
from workstation.audit.signing import decode_public_key, fingerprint, short_fingerprint
from workstation.domain import examiner_key
from workstation.errors import IdentityError, KeyFileError, WorkstationError

if TYPE_CHECKING:
    from workstation.gallery.store import Gallery


@dataclass(frozen=True)
class RegisteredExaminer:
    """An examiner's row: their key's fingerprint and public key, name and roles."""

    fingerprint: str
    name: str
    public_key: str
    roles: frozenset[Role]
    registered_at: str
    registered_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None
    revoked_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def roles_text(self) -> str:
        return roles_text(self.roles)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "public_key": self.public_key,
            "roles": sorted(r.value for r in self.roles),
            "registered_at": self.registered_at,
            "registered_by": self.registered_by,
            "revoked_at": self.revoked_at,
            "revoked_by": self.revoked_by,
            "revoked_reason": self.revoked_reason,
            "active": self.active,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> RegisteredExaminer:
        return cls(
            fingerprint=row["fingerprint"],
            name=row["name"],
            public_key=row["public_key"],
            roles=Role.parse(json.loads(row["roles"])),
            registered_at=row["registered_at"],
            registered_by=row["registered_by"],
            revoked_at=row.get("revoked_at"),
            revoked_by=row.get("revoked_by"),
            revoked_reason=row.get("revoked_reason"),
        )


def normalised_name(name: str) -> str:
    """A name as it is registered: white space collapsed, otherwise as written."""
    return " ".join((name or "").split())


def new_gallery_id() -> str:
    """A gallery's id: 128 random bits in hex, made once, at its genesis."""
    return secrets.token_hex(16)


def key_entry(name: str, public_key: str, roles: frozenset[Role]) -> dict[str, Any]:
    """What a genesis or registration event says of a key (`audit verify` replays it)."""
    return {
        "name": name,
        "public_key": public_key,
        "fingerprint": fingerprint(decode_public_key(public_key)),
        "roles": sorted(r.value for r in roles),
    }


def register_examiner(
    gallery: Gallery,
    name: str,
    public_key: str,
    roles: frozenset[Role],
    also: Callable[[], None] | None = None,
) -> RegisteredExaminer:
    """An administrator registers another examiner's public key with their roles (audited).

    `also` runs inside the same transaction, after the checks (an agency gallery grants the
    examiner's database roles there: gallery.agency_roles), so both happen or neither.
    """
    name = normalised_name(name)
    if not name:
        raise WorkstationError("an examiner needs a name (their login on their workstation)")
    if not roles:
        raise WorkstationError(f"give {name} at least one role ({roles_text(ALL_ROLES)})")
    try:
        entry = key_entry(name, public_key.strip(), roles)
    except KeyFileError as exc:
        raise WorkstationError(f"the key given for {name} is not usable: {exc}") from None
    with gallery.change(AuditAction.EXAMINER_ADD, entry) as change:
        for existing in gallery.examiners():
            if existing.fingerprint == entry["fingerprint"]:
                state = "registered" if existing.active else "revoked"
                raise WorkstationError(
                    f"key {short_fingerprint(existing.fingerprint)} is already {state} for "
                    f"{existing.name}; every examiner has a key of their own, and a revoked key "
                    "is never registered again"
                )
            if existing.active and examiner_key(existing.name) == examiner_key(name):
                raise WorkstationError(
                    f"{existing.name} is already registered (key "
                    f"{short_fingerprint(existing.fingerprint)}); revoke that key first"
                )
        if also is not None:
            also()
        change.add_examiner(entry["fingerprint"], name, entry["public_key"], roles)
    return _require(gallery, entry["fingerprint"])


def revoke_examiner(gallery: Gallery, name_or_key: str, reason: str) -> RegisteredExaminer:
    """Revoke an examiner's key (audited); it signs nothing in this gallery afterwards."""
    reason = (reason or "").strip()
    if not reason:
        raise WorkstationError("revoking an examiner needs a reason (it is kept in the audit log)")
    with gallery.change(AuditAction.EXAMINER_REVOKE) as change:
        target = find_examiner(gallery, name_or_key)
        others = [
            e
            for e in gallery.examiners()
            if e.active and Role.ADMINISTRATOR in e.roles and e.fingerprint != target.fingerprint
        ]
        if Role.ADMINISTRATOR in target.roles and not others:
            raise WorkstationError(
                f"{target.name} is the gallery's only administrator; register another "
                "administrator before revoking this key"
            )
        change.details.update(fingerprint=target.fingerprint, name=target.name, reason=reason)
        change.revoke_examiner(target.fingerprint, reason)
    return _require(gallery, target.fingerprint)


def set_roles(gallery: Gallery, name_or_key: str, roles: frozenset[Role]) -> RegisteredExaminer:
    """Change an examiner's roles (audited)."""
    if not roles:
        raise WorkstationError(f"give at least one role ({roles_text(ALL_ROLES)})")
    with gallery.change(AuditAction.EXAMINER_ROLES) as change:
        target = find_examiner(gallery, name_or_key)
        admins = [e for e in gallery.examiners() if e.active and Role.ADMINISTRATOR in e.roles]
        if Role.ADMINISTRATOR not in roles and [e.fingerprint for e in admins] == [
            target.fingerprint
        ]:
            raise WorkstationError(
                f"{target.name} is the gallery's only administrator; they keep that role"
            )
        change.details.update(
            fingerprint=target.fingerprint,
            name=target.name,
            roles=sorted(r.value for r in roles),
            previous_roles=sorted(r.value for r in target.roles),
        )
        change.set_examiner_roles(target.fingerprint, roles)
    return _require(gallery, target.fingerprint)


def set_witness_folder(gallery: Gallery, folder: str | None) -> str | None:
    """An administrator sets (or, with None, removes) the agency witness folder (audited).

    The folder must exist and be writable now (a mounted share): the head is appended to it
    after every act from then on, by every examiner's program.
    """
    from pathlib import Path

    from workstation.gallery.opening import WITNESS_FOLDER_SETTING

    value = str(Path(folder).expanduser().resolve()) if folder else None
    if value is not None:
        target = Path(value)
        if not target.is_dir():
            raise WorkstationError(
                f"{target}: the witness folder does not exist (or is not mounted)"
            )
        import os

        if not os.access(target, os.W_OK):
            raise WorkstationError(f"{target}: the witness folder cannot be written by you")
    with gallery.change(
        AuditAction.SETTINGS_CHANGE,
        {
            "scope": "gallery",
            "setting": WITNESS_FOLDER_SETTING,
            "value": value,
            "previous": gallery.gallery_setting(WITNESS_FOLDER_SETTING),
        },
    ) as change:
        change.set_gallery_setting(WITNESS_FOLDER_SETTING, value)
    return value


def find_examiner(gallery: Gallery, name_or_key: str) -> RegisteredExaminer:
    """The active examiner with this name (any spelling) or key fingerprint (or its start)."""
    wanted = (name_or_key or "").strip()
    active = [e for e in gallery.examiners() if e.active]
    by_name = [e for e in active if examiner_key(e.name) == examiner_key(wanted)]
    hexed = wanted.replace(":", "").lower()
    by_key = [e for e in active if len(hexed) >= 8 and e.fingerprint.startswith(hexed)]
    found = by_name or by_key
    if len(found) != 1:
        raise WorkstationError(
            f"no registered examiner is named {wanted!r} or has that key"
            if not found
            else f"{wanted!r} matches more than one key; give more of the fingerprint"
        )
    return found[0]


def _require(gallery: Gallery, fp: str) -> RegisteredExaminer:
    found = gallery.examiner_by_fingerprint(fp)
    assert found is not None
    return found


def identity_refusal(
    registered: RegisteredExaminer | None, claimed: str, key_fp: str, folder: str
) -> str | None:
    """Why the examiner holding key `key_fp` and acting as `claimed` may not act (or None)."""
    if registered is None:
        return (
            f"examiner {claimed}'s key {short_fingerprint(key_fp)} is not registered in the "
            f"gallery {folder}; run `workstation examiners key` and give its output to an "
            "administrator of this gallery, who registers it with `workstation examiners add`"
        )
    if not registered.active:
        return (
            f"examiner {registered.name}'s key {short_fingerprint(key_fp)} was revoked in the "
            f"gallery {folder} ({registered.revoked_at}, by {registered.revoked_by}: "
            f"{registered.revoked_reason}); it signs nothing there any more"
        )
    if examiner_key(registered.name) != examiner_key(claimed):
        return (
            f"you are acting as {claimed!r}, but the key in your profile is registered to "
            f"{registered.name!r} in the gallery {folder}; an examiner acts only under the name "
            "registered for their own key"
        )
    return None


__all__ = [
    "IdentityError",
    "RegisteredExaminer",
    "find_examiner",
    "identity_refusal",
    "key_entry",
    "new_gallery_id",
    "register_examiner",
    "revoke_examiner",
    "set_roles",
    "set_witness_folder",
]
