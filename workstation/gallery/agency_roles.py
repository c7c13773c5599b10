"""Identity from the database server (issue 13 item 2): an agency gallery's PostgreSQL roles,
grants and guard triggers, so that a workstation cannot do what its examiner may not, even with a
modified client or with psycopg and raw SQL.

**Who connects.** Each examiner connects as their own PostgreSQL login role, named as their login
(the server authenticates it: password in ~/.pgpass, Kerberos/AD, a client certificate). The
name the gallery records for an act must be that role's registered examiner: the guards compare
every examiner column written with `session_user` (names compared as `domain.examiner_key` does)
and require an active row of that name in `examiners`.

**Group roles** match the app's roles (`workstation.audit.roles.Role`): `<prefix>administrator`,
`<prefix>enroller`, `<prefix>analyst`, `<prefix>reviewer`; an examiner's login is a member of the
ones they hold (`add_examiner`). `TABLE_GRANTS` says what each may do, table by table and, for
UPDATE, column by column; everyone reads every table and appends audit events and their row
hashes (reads are recorded). Nobody is granted UPDATE or DELETE on the audit log, its row hashes,
decisions, searches, comparison sheets, redaction marks or the witness; TRUNCATE is granted to no
one.

**Guards** (triggers, installed with the grants by `agency_setup.setup_database`) check what
grants cannot:

- examiner columns = the connected role's registered examiner (`EXAMINER_COLUMNS`);
- an audit event follows the chain head (seq + 1, the head's hash), so the chain cannot fork;
  its row hashes are written with it, by its examiner, never added to an older event;
- a decision is recorded by an analyst; a confirmation by a reviewer who is not the lead's
  examiner (another name and another key), of the latest decision on the candidate, a possible
  lead, once; a 'confirmed' decision always names the lead it confirms;
- a comparison sheet is an analyst's examination or a reviewer's verification of another
  examiner's sheet; archiving a case is an administrator's; ending a watch before its date is an
  analyst's or an administrator's;
- the chain head is witnessed in `audit_witness`, owned by `<prefix>audit`, which nobody is
  granted to write: a SECURITY DEFINER trigger function owned by that role appends each event's
  seq and hash with the server's clock and `session_user`, and the table refuses UPDATE, DELETE
  and TRUNCATE. `witness_problem` holds the chain to it (`Gallery.verify_audit`).

Members of `<prefix>owner` (and superusers) pass the guards: the database's owner, who migrates
the schema and copies galleries in (`gallery copy` writes rows in their original examiners'
names). What the chain proves against them is in docs/DEPLOYMENT.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from workstation.audit.roles import Role
from workstation.errors import WorkstationError
from workstation.gallery.database import Database
from workstation.gallery.schema import TABLES as SCHEMA_TABLES

if TYPE_CHECKING:
    from workstation.gallery.agency import AgencyConfig
    from workstation.gallery.examiners import RegisteredExaminer
    from workstation.gallery.store import Gallery

APP_ROLES: tuple[str, ...] = tuple(r.value for r in Role)
WITNESS_TABLE = "audit_witness"
# Every table of the schema (schema.TABLES, its version table and the witness table among them):
# each is named in every role's grants below (tests/unit/test_agency_roles.py checks none is
# missing).
TABLES = tuple(table.name for table in SCHEMA_TABLES)

_READ = "SELECT"
# Any examiner: read everything; record reads, index rebuilds and one's own settings changes
# (audit events and their row hashes); open a case (every act names one); end a watch past its
# date (the first examiner to open the gallery after it does: the guard checks the date).
_EVERYONE: dict[str, str] = {table: _READ for table in TABLES} | {
    "audit": "SELECT, INSERT",
    "audit_rows": "SELECT, INSERT",
    "cases": "SELECT, INSERT",
    "watches": "SELECT, UPDATE (embedding, ended_at, ended_by, end_reason)",
}
# An enrolment re-searches the active watches of open cases against its new faces (an act of
# whoever enrols, authorised by the watch's analyst): a search of the case, its hits, and the
# watch's high-water mark.
_WATCH_SEARCH: dict[str, str] = {
    "searches": "SELECT, INSERT",
    "watch_hits": "SELECT, INSERT",
    "watches": "SELECT, UPDATE (embedding, ended_at, ended_by, end_reason, checked_face_id)",
}
_ENROL: dict[str, str] = {
    "meta": "SELECT, INSERT, UPDATE (value)",  # the model bound, the faces generation
    "subjects": "SELECT, INSERT, UPDATE (name, attributes)",
    "images": "SELECT, INSERT",
    "faces": "SELECT, INSERT",
}
_CASE_UPDATE = (
    "SELECT, INSERT, UPDATE (authorised_by, authorised_at, authorisation, status, "
    "status_changed_at, status_changed_by, status_reason, retain_until)"
)
# What each app role may do, table by table: the one declaration `agency init` grants from.
TABLE_GRANTS: dict[str, dict[str, str]] = {
    "administrator": _EVERYONE
    | _WATCH_SEARCH
    | {
        "meta": "SELECT, INSERT, UPDATE (value)",
        "subjects": "SELECT, INSERT, UPDATE (name, attributes), DELETE",
        "images": "SELECT, INSERT, DELETE",
        "faces": "SELECT, INSERT, UPDATE (subject_id, embedding, model_id), DELETE",
        "cases": _CASE_UPDATE,
        # deleting a subject scrubs its name from the stored candidate lists
        "searches": "SELECT, INSERT, UPDATE (candidates)",
        "calibrations": "SELECT, INSERT",
        "examiners": "SELECT, INSERT, UPDATE (roles, revoked_at, revoked_by, revoked_reason)",
        "gallery_settings": "SELECT, INSERT, UPDATE (value, changed_at, changed_by), DELETE",
        "watches": "SELECT, UPDATE (embedding, ended_at, ended_by, end_reason, checked_face_id)",
    },
    "enroller": _EVERYONE | _WATCH_SEARCH | _ENROL,
    "analyst": _EVERYONE
    | _WATCH_SEARCH
    | {
        "cases": _CASE_UPDATE,
        "decisions": "SELECT, INSERT",
        "comparison_sheets": "SELECT, INSERT",
        # redaction boxes and un-redactions: appended in one's own name, never changed
        "redaction_marks": "SELECT, INSERT",
        "calibrations": "SELECT, INSERT",
        "watches": "SELECT, INSERT, UPDATE (embedding, ended_at, ended_by, end_reason, "
        "checked_face_id)",
    },
    "reviewer": _EVERYONE
    | {
        "decisions": "SELECT, INSERT",  # confirmations only: the decision guard
        "comparison_sheets": "SELECT, INSERT",  # verification sheets only: the sheet guard
        "redaction_marks": "SELECT, INSERT",  # whoever may export prepares its redaction
    },
}


def roles_inserting(table: str) -> frozenset[Role]:
    """The app roles whose database role may add rows to `table`."""
    return frozenset(
        Role(role) for role, grants in TABLE_GRANTS.items() if "INSERT" in grants[table]
    )


# Each table's examiner columns: written as the connected role's registered examiner. (Not
# cases.authorised_by: the person who authorised the searches is often not an examiner.)
EXAMINER_COLUMNS: dict[str, tuple[str, ...]] = {
    "subjects": ("created_by",),
    "images": ("imported_by",),
    "cases": ("created_by", "status_changed_by"),
    "searches": ("user",),
    "decisions": ("user",),
    "calibrations": ("created_by",),
    "audit": ("user",),
    "comparison_sheets": ("user",),
    "redaction_marks": ("user",),
    "watches": ("created_by", "ended_by"),
    "examiners": ("registered_by", "revoked_by"),
    "gallery_settings": ("changed_by",),
}


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def group_role(config: AgencyConfig, app_role: str) -> str:
    return f"{config.role_prefix}{app_role}"


def owner_role(config: AgencyConfig) -> str:
    return f"{config.role_prefix}owner"


def audit_role(config: AgencyConfig) -> str:
    return f"{config.role_prefix}audit"


def is_superuser(db: Database) -> bool:
    row = db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def audit_role_holders(db: Database, config: AgencyConfig) -> list[str]:
    """The statements a superuser must run so that nobody holds the audit role (none after a
    superuser's `init`).

    A DBA who is not a superuser creates the roles with CREATEROLE, and PostgreSQL (16 and
    later) then gives the creator the ADMIN option on each role it creates, granted in the name
    of the bootstrap superuser: `init` takes back the grant it made itself, but not that one,
    and with it the DBA could grant themselves the audit role and rewrite the witness. Only a
    superuser (or that grantor) can take it away.
    """
    rows = db.execute(
        "SELECT m.rolname, g.rolname FROM pg_auth_members a "
        "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
        "JOIN pg_roles g ON g.oid = a.grantor WHERE r.rolname = ? ORDER BY 1, 2",
        (audit_role(config),),
    ).fetchall()
    auditor = quote_ident(audit_role(config))
    return [
        f"REVOKE {auditor} FROM {quote_ident(str(member))} GRANTED BY {quote_ident(str(by))};"
        for member, by in rows
    ]


# ---------------------------------------------------------------------- examiners' roles
def grant_app_roles(
    db: Database,
    config: AgencyConfig,
    login: str,
    app_roles: Iterable[str],
    create: bool = True,
) -> list[str]:
    """Make login role `login` (created, without a password, when `create` and it is new) a
    member of the group roles of `app_roles`; returns the group roles granted. Inside the
    caller's transaction.

    An administrator may add examiners itself: CREATEROLE and the group roles WITH ADMIN OPTION
    (PostgreSQL 16 lets a CREATEROLE role grant only the roles it holds with ADMIN OPTION).
    """
    roles = list(dict.fromkeys(app_roles))
    unknown = [r for r in roles if r not in APP_ROLES]
    if unknown or not roles:
        raise WorkstationError(
            f"--role must be one or more of {', '.join(APP_ROLES)} (not {', '.join(unknown)})"
        )
    if not login or len(login) > 63 or any(c in login for c in "\x00") or login != login.strip():
        raise WorkstationError(f"{login!r} cannot be a PostgreSQL role name")
    reserved = {group_role(config, r) for r in APP_ROLES} | {
        owner_role(config),
        audit_role(config),
    }
    if login in reserved or login.startswith("pg_"):
        raise WorkstationError(f"{login!r} is one of the gallery's own roles, not an examiner")
    role = quote_ident(login)
    row = db.execute(
        "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = ?", (login,)
    ).fetchone()
    if row is None:
        if not create:
            raise WorkstationError(f"there is no PostgreSQL role {login!r}")
        db.execute(f"CREATE ROLE {role} LOGIN")
    elif not row[0]:
        raise WorkstationError(f"PostgreSQL role {login!r} cannot log in: it is not an examiner")
    granted = [group_role(config, r) for r in roles]
    groups = ", ".join(quote_ident(g) for g in granted)
    if "administrator" not in roles:
        db.execute(f"GRANT {groups} TO {role}")
        return granted
    if not (row is not None and row[1]):
        db.execute(f"ALTER ROLE {role} CREATEROLE")
    db.execute(f"GRANT {groups} TO {role} WITH ADMIN OPTION")
    others = [quote_ident(group_role(config, r)) for r in APP_ROLES if r not in roles]
    if others:
        # An administrator grants every app role to others, but holds only their own: the
        # right to grant without the role's privileges (PostgreSQL 16's INHERIT FALSE, SET
        # FALSE), so the guards, which ask whether the role's privileges are the examiner's
        # (pg_has_role USAGE), do not take them for an analyst or reviewer. Before 16 the
        # right to grant came with membership itself.
        version = int(db.execute("SHOW server_version_num").fetchone()[0])
        options = "ADMIN TRUE, INHERIT FALSE, SET FALSE" if version >= 160000 else "ADMIN OPTION"
        db.execute(f"GRANT {', '.join(others)} TO {role} WITH {options}")
    return granted


def database_roles(db: Database, config: AgencyConfig, login: str) -> list[str]:
    """The app roles login role `login` holds through the gallery's group roles."""
    held = []
    for app_role in APP_ROLES:
        row = db.execute(
            "SELECT pg_has_role(?, rolname, 'USAGE') FROM pg_roles WHERE rolname = ?",
            (login, group_role(config, app_role)),
        ).fetchone()
        if row is not None and row[0]:
            held.append(app_role)
    return held


# ---------------------------------------------------------------------- the witness table
def witness_problem(db: Database, head_seq: int) -> tuple[int, str] | None:
    """The first event where the chain and the database's witness table disagree, and why;
    None when they agree (or the gallery has no witness table: an embedded gallery).

    Every event witnessed must be in the chain with the hash witnessed (else the log was
    rewritten or rolled back), and every event in the chain must have been witnessed (else it
    was written with the witness switched off).
    """
    if not db.table_exists(WITNESS_TABLE):
        return None
    row = db.execute(
        f"SELECT w.seq, w.hash, a.hash FROM {WITNESS_TABLE} w LEFT JOIN audit a ON a.seq = w.seq "
        "WHERE a.hash IS DISTINCT FROM w.hash ORDER BY w.seq LIMIT 1"
    ).fetchone()
    if row is not None:
        seq, witnessed, held = int(row[0]), str(row[1]), row[2]
        if held is None:
            return seq, (
                f"the chain ends at event {head_seq}, but the database witnessed event {seq} "
                "(events were removed: the log was rolled back)"
            )
        return seq, (
            f"event {seq}'s hash differs from the one the database witnessed when it was "
            f"written ({witnessed[:16]}…): the log was rewritten"
        )
    row = db.execute(
        f"SELECT a.seq FROM audit a LEFT JOIN {WITNESS_TABLE} w ON w.seq = a.seq "
        "WHERE w.seq IS NULL ORDER BY a.seq LIMIT 1"
    ).fetchone()
    if row is not None:
        return int(row[0]), (
            f"event {int(row[0])} was never witnessed by the database (written with its "
            "witness switched off)"
        )
    return None


# ---------------------------------------------------------------------- agency add-examiner
@dataclass(frozen=True)
class AddedExaminer:
    """What `add_examiner` did: the group roles granted, whether the login role is new, and the
    registration (None when no key was given)."""

    login: str
    granted: list[str]
    created: bool
    registered: RegisteredExaminer | None


def add_examiner(
    gallery: Gallery, login: str, roles: frozenset[Role], public_key: str | None = None
) -> AddedExaminer:
    """An administrator adds examiner `login` to an agency gallery: their PostgreSQL login role
    (created without a password if new) becomes a member of the group roles of `roles` and, when
    their public key is given, the key is registered with the same roles, in one transaction
    whose audit event is the registration's. Without a key only the database roles are granted
    (the server's own log records it); the key is registered later with `examiners add`.
    """
    from workstation.audit.actions import AuditAction
    from workstation.errors import NotPermittedError
    from workstation.gallery.agency import read_config
    from workstation.gallery.examiners import register_examiner

    if gallery.kind != "agency":
        raise WorkstationError(
            f"{gallery.folder}: an embedded gallery has no database roles; register the "
            "examiner's key with `workstation examiners add`"
        )
    config = read_config(gallery.folder)
    names = [r.value for r in Role if r in roles]
    db = gallery.conn
    existed = db.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", (login,)).fetchone()
    granted: list[str] = []

    def grant() -> None:
        granted.extend(grant_app_roles(db, config, login, names))

    # The program's own refusal first, in its words; the database would refuse as well.
    gallery.require(AuditAction.EXAMINER_ADD)
    try:
        if public_key is not None:
            registered = register_examiner(gallery, login, public_key, roles, also=grant)
            return AddedExaminer(login, granted, existed is None, registered)
        db.begin_write()
        try:
            grant()
            db.commit()
        except BaseException:
            db.rollback()
            raise
    except db.Error as exc:
        reason = " ".join(str(exc).split())
        raise NotPermittedError(
            f"{gallery.database_source}: the database refused to add {login} ({reason}); an "
            "administrator's login needs CREATEROLE and the gallery's roles WITH ADMIN OPTION "
            "(`agency init --administrator`, or `agency add-examiner` by the DBA)"
        ) from exc
    return AddedExaminer(login, granted, existed is None, None)
