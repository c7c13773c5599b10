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

**Guards** (triggers) check what grants cannot:

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
from workstation.errors import GalleryError, WorkstationError
from workstation.gallery.database import Database, append_only_guard
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


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def group_role(config: AgencyConfig, app_role: str) -> str:
    return f"{config.role_prefix}{app_role}"


def owner_role(config: AgencyConfig) -> str:
    return f"{config.role_prefix}owner"


def audit_role(config: AgencyConfig) -> str:
    return f"{config.role_prefix}audit"


def is_superuser(db: Database) -> bool:
    row = db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def _server_version(db: Database) -> int:
    return int(db.execute("SELECT current_setting('server_version_num')").fetchone()[0])


def _current_user(db: Database) -> str:
    return str(db.execute("SELECT current_user").fetchone()[0])


def _may_grant(db: Database, role: str) -> bool:
    """Whether the current user may grant `role` (the ADMIN option on it, or made it just now)."""
    row = db.execute(
        "SELECT pg_has_role(current_user, oid, 'MEMBER WITH ADMIN OPTION') FROM pg_roles "
        "WHERE rolname = ?",
        (role,),
    ).fetchone()
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


# ---------------------------------------------------------------------- agency init
def setup_database(db: Database, config: AgencyConfig, administrator: str | None = None) -> None:
    """Roles, grants, guards and the witness table (idempotent; inside the caller's transaction,
    run by the database's owner after the migrations).

    Args:
        administrator: a login role to make the gallery's first administrator (created if new,
            member of every group role with the right to grant them, CREATEROLE); the first
            examiner to open the gallery becomes its first registered administrator (genesis).
    """
    groups = [group_role(config, r) for r in APP_ROLES]
    owner, auditor = owner_role(config), audit_role(config)
    for role in [*groups, owner, auditor]:
        exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = ?", (role,)).fetchone()
        if exists is None:
            db.execute(f"CREATE ROLE {quote_ident(role)} NOLOGIN")
    superuser = is_superuser(db)
    # Before PostgreSQL 16, CREATEROLE alone may grant any role that is not a superuser's, so
    # there is no such refusal to make (nor a way to keep the DBA from the audit role).
    if not superuser and _server_version(db) >= 160000 and not _may_grant(db, auditor):
        raise GalleryError(
            f"{auditor}, the owner of the audit witness, is not {_current_user(db)}'s to "
            "grant (after a hardened setup nobody holds it; or another DBA made it): setting "
            "up or upgrading the witness needs it, so a superuser runs `workstation agency "
            "init` for this (a second hand, as for rewriting the witness)"
        )
    if not superuser:
        # Handing the witness to the audit role needs membership of it (ALTER ... OWNER TO);
        # the owner role lets the DBA pass the guards (migrations, `gallery copy`).
        db.execute(f"GRANT {quote_ident(owner)}, {quote_ident(auditor)} TO CURRENT_USER")
    new_witness = not db.table_exists(WITNESS_TABLE)
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {WITNESS_TABLE} (seq BIGINT PRIMARY KEY, "
        "hash TEXT NOT NULL, witnessed_at TIMESTAMPTZ NOT NULL, witnessed_by TEXT NOT NULL)"
    )
    if new_witness:
        # A gallery made before the witness existed: its chain as it is now is witnessed
        # now, by whoever upgrades it (the time and role say so); from then on each event as
        # it is written. Only when the table is new: filling gaps later would hide events
        # written with the witness switched off.
        db.execute(
            f"INSERT INTO {WITNESS_TABLE} (seq, hash, witnessed_at, witnessed_by) "
            "SELECT seq, hash, clock_timestamp(), session_user FROM audit ORDER BY seq"
        )
    # Handing a table or function to a new owner needs the owner to be allowed to create in
    # its schema at that moment (PostgreSQL checks it unless a superuser asks): granted for
    # this setup only; the audit role keeps no such right.
    db.execute(f"GRANT CREATE ON SCHEMA public TO {quote_ident(auditor)}")
    db.execute(f"ALTER TABLE {WITNESS_TABLE} OWNER TO {quote_ident(auditor)}")
    _install_guards(db, config)
    _grant(db, config)
    if administrator:
        grant_app_roles(db, config, administrator, APP_ROLES, create=True)
    db.execute(f"REVOKE CREATE ON SCHEMA public FROM {quote_ident(auditor)}")
    if not superuser:
        # The DBA keeps the owner role, not the audit role: rewriting the witness needs a
        # second hand (a superuser, or whoever the audit role is granted to).
        db.execute(f"REVOKE {quote_ident(auditor)} FROM CURRENT_USER")


def _grant(db: Database, config: AgencyConfig) -> None:
    dbname = str(db.execute("SELECT current_database()").fetchone()[0])
    db.execute(f"REVOKE ALL ON DATABASE {quote_ident(dbname)} FROM PUBLIC")
    for table in TABLES:
        db.execute(f"REVOKE ALL ON {table} FROM PUBLIC")
    for app_role, grants in TABLE_GRANTS.items():
        role = quote_ident(group_role(config, app_role))
        db.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {quote_ident(dbname)} TO {role}")
        db.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        # Ids are reserved with nextval (enrolment in bulk) and their high-water mark read.
        db.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        for table in TABLES:
            db.execute(f"REVOKE ALL ON {table} FROM {role}")
            db.execute(f"GRANT {grants[table]} ON {table} TO {role}")


def _install_guards(db: Database, config: AgencyConfig) -> None:
    encoding = str(db.execute("SHOW server_encoding").fetchone()[0]).upper()
    # domain.examiner_key: NFKC, case folded, white space collapsed (normalize() needs UTF8).
    normalised = "normalize(name, NFKC)" if encoding in ("UTF8", "UTF-8") else "name"
    db.execute(
        "CREATE OR REPLACE FUNCTION workstation_name_key(name text) RETURNS text "
        "LANGUAGE sql IMMUTABLE AS $$ SELECT lower(btrim(regexp_replace("
        f"{normalised}, '\\s+', ' ', 'g'))) $$"
    )
    db.execute(
        "CREATE OR REPLACE FUNCTION workstation_is_owner() RETURNS boolean LANGUAGE sql "
        f"STABLE AS $$ SELECT pg_has_role(session_user, {_literal(owner_role(config))}, "
        "'USAGE') $$"
    )
    db.execute(
        "CREATE OR REPLACE FUNCTION workstation_has_role(app_role text) RETURNS boolean "
        "LANGUAGE sql STABLE AS $$ SELECT workstation_is_owner() OR pg_has_role(session_user, "
        f"{_literal(config.role_prefix)} || app_role, 'USAGE') $$"
    )
    _examiner_guard(db)
    _chain_guard(db)
    _witness(db, config)
    _decision_guard(db)
    _sheet_guard(db)
    _status_guards(db)


def _trigger(db: Database, name: str, table: str, when: str, function: str) -> None:
    db.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    db.execute(f"CREATE TRIGGER {name} {when} ON {table} FOR EACH ROW EXECUTE FUNCTION {function}")


def _examiner_guard(db: Database) -> None:
    db.execute(
        """CREATE OR REPLACE FUNCTION workstation_examiner_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            col text;
            recorded text;
            genesis boolean;
        BEGIN
            IF workstation_is_owner() THEN
                RETURN NEW;
            END IF;
            FOREACH col IN ARRAY TG_ARGV LOOP
                recorded := to_jsonb(NEW) ->> col;
                CONTINUE WHEN recorded IS NULL;
                CONTINUE WHEN TG_OP = 'UPDATE'
                    AND recorded IS NOT DISTINCT FROM to_jsonb(OLD) ->> col;
                IF workstation_name_key(recorded) <> workstation_name_key(session_user) THEN
                    RAISE EXCEPTION '%.% recorded as % refused: the database authenticated %, '
                        'and an act is recorded in the name of the examiner who connects',
                        TG_TABLE_NAME, col, recorded, session_user
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                -- The genesis registers its own examiner: the first row of an empty registry.
                genesis := TG_TABLE_NAME = 'examiners' AND TG_OP = 'INSERT'
                    AND NOT EXISTS (SELECT 1 FROM examiners);
                IF NOT genesis AND NOT EXISTS (
                    SELECT 1 FROM examiners e WHERE e.name = recorded
                    AND e.name_key = workstation_name_key(session_user)
                    AND e.revoked_at IS NULL) THEN
                    RAISE EXCEPTION '%.% recorded as % refused: % is not an active registered '
                        'examiner of this gallery', TG_TABLE_NAME, col, recorded, session_user
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
            END LOOP;
            RETURN NEW;
        END $$"""
    )
    for table, columns in EXAMINER_COLUMNS.items():
        arguments = ", ".join(_literal(c) for c in columns)
        _trigger(
            db,
            f"{table}_examiner_guard",
            table,
            "BEFORE INSERT OR UPDATE",
            f"workstation_examiner_guard({arguments})",
        )


def _chain_guard(db: Database) -> None:
    db.execute(
        """CREATE OR REPLACE FUNCTION workstation_audit_chain_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE head_seq bigint; head_hash text;
        BEGIN
            SELECT seq, hash INTO head_seq, head_hash FROM audit ORDER BY seq DESC LIMIT 1;
            IF NEW.seq IS DISTINCT FROM COALESCE(head_seq, 0) + 1
               OR NEW.prev_hash IS DISTINCT FROM COALESCE(head_hash, repeat('0', 64)) THEN
                RAISE EXCEPTION 'audit event % refused: it does not follow the chain head '
                    '(event %); events are appended at the head only', NEW.seq,
                    COALESCE(head_seq, 0) USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$"""
    )
    _trigger(db, "audit_chain_guard", "audit", "BEFORE INSERT", "workstation_audit_chain_guard()")
    # An event's row hashes are written with it, right after it (audit_store.insert_event):
    # none is added later to an older event, whose digest would then no longer match.
    db.execute(
        """CREATE OR REPLACE FUNCTION workstation_audit_rows_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE head audit%ROWTYPE;
        BEGIN
            IF workstation_is_owner() THEN
                RETURN NEW;
            END IF;
            SELECT * INTO head FROM audit ORDER BY seq DESC LIMIT 1;
            IF head.seq IS DISTINCT FROM NEW.seq
               OR workstation_name_key(head."user") <> workstation_name_key(session_user) THEN
                RAISE EXCEPTION 'row hashes for event % refused: an event''s row hashes are '
                    'written with it, by its examiner', NEW.seq
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$"""
    )
    _trigger(
        db, "audit_rows_guard", "audit_rows", "BEFORE INSERT", "workstation_audit_rows_guard()"
    )


def _witness(db: Database, config: AgencyConfig) -> None:
    db.execute(
        f"""CREATE OR REPLACE FUNCTION workstation_audit_witness() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
        BEGIN
            INSERT INTO {WITNESS_TABLE} (seq, hash, witnessed_at, witnessed_by)
            VALUES (NEW.seq, NEW.hash, clock_timestamp(), session_user);
            RETURN NULL;
        END $$"""
    )
    db.execute(
        f"ALTER FUNCTION workstation_audit_witness() OWNER TO {quote_ident(audit_role(config))}"
    )
    db.execute("REVOKE ALL ON FUNCTION workstation_audit_witness() FROM PUBLIC")
    _trigger(db, "audit_witnessed", "audit", "AFTER INSERT", "workstation_audit_witness()")
    names = ("audit_witness_no_update", "audit_witness_no_delete")
    for name in names:
        db.execute(f"DROP TRIGGER IF EXISTS {name} ON {WITNESS_TABLE}")
        db.execute(f"DROP TRIGGER IF EXISTS {name}_truncate ON {WITNESS_TABLE}")
    append_only_guard(db, WITNESS_TABLE, names, "the audit witness is append-only", "witnesses")


def _decision_guard(db: Database) -> None:
    db.execute(
        """CREATE OR REPLACE FUNCTION workstation_decision_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE lead decisions%ROWTYPE;
        BEGIN
            IF workstation_is_owner() THEN
                RETURN NEW;
            END IF;
            IF NEW.confirms IS NULL THEN
                IF NEW.decision = 'confirmed' THEN
                    RAISE EXCEPTION 'decision refused: a confirmation names the possible lead '
                        'it confirms' USING ERRCODE = 'integrity_constraint_violation';
                END IF;
                IF NOT workstation_has_role('analyst') THEN
                    RAISE EXCEPTION 'decision refused: % does not hold the analyst role',
                        session_user USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END IF;
            IF NOT workstation_has_role('reviewer') THEN
                RAISE EXCEPTION 'confirmation refused: % does not hold the reviewer role',
                    session_user USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF NEW.decision <> 'confirmed' THEN
                RAISE EXCEPTION 'confirmation refused: a decision naming a lead is a '
                    'confirmation' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            SELECT * INTO lead FROM decisions WHERE id = NEW.confirms;
            IF lead.id IS NULL OR lead.decision <> 'possible_lead' THEN
                RAISE EXCEPTION 'confirmation refused: decision % is not a possible lead',
                    NEW.confirms USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF NEW.search_id IS DISTINCT FROM lead.search_id
               OR NEW.subject_id IS DISTINCT FROM lead.subject_id THEN
                RAISE EXCEPTION 'confirmation refused: it names another candidate than '
                    'decision %', lead.id USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF workstation_name_key(lead."user") = workstation_name_key(NEW."user")
               OR lead.key_fingerprint = NEW.key_fingerprint THEN
                RAISE EXCEPTION 'confirmation refused: decision % was recorded by %; a second '
                    'examiner must confirm it with their own key', lead.id, lead."user"
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF EXISTS (SELECT 1 FROM decisions d WHERE d.search_id = lead.search_id
                       AND d.subject_id = lead.subject_id AND d.id > lead.id) THEN
                RAISE EXCEPTION 'confirmation refused: decision % was superseded or already '
                    'confirmed', lead.id USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$"""
    )
    _trigger(db, "decisions_guard", "decisions", "BEFORE INSERT", "workstation_decision_guard()")


def _sheet_guard(db: Database) -> None:
    db.execute(
        """CREATE OR REPLACE FUNCTION workstation_sheet_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE examined comparison_sheets%ROWTYPE;
        BEGIN
            IF workstation_is_owner() THEN
                RETURN NEW;
            END IF;
            IF NEW.role = 'examination' AND NOT workstation_has_role('analyst') THEN
                RAISE EXCEPTION 'comparison sheet refused: % does not hold the analyst role',
                    session_user USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF NEW.role = 'verification' THEN
                IF NOT workstation_has_role('reviewer') THEN
                    RAISE EXCEPTION 'verification sheet refused: % does not hold the reviewer '
                        'role', session_user USING ERRCODE = 'insufficient_privilege';
                END IF;
                SELECT * INTO examined FROM comparison_sheets WHERE id = NEW.verifies;
                IF examined.id IS NULL OR examined.role <> 'examination'
                   OR workstation_name_key(examined."user") = workstation_name_key(NEW."user")
                THEN
                    RAISE EXCEPTION 'verification sheet refused: it must verify another '
                        'examiner''s examination sheet'
                        USING ERRCODE = 'integrity_constraint_violation';
                END IF;
            END IF;
            RETURN NEW;
        END $$"""
    )
    _trigger(
        db,
        "comparison_sheets_guard",
        "comparison_sheets",
        "BEFORE INSERT",
        "workstation_sheet_guard()",
    )


def _status_guards(db: Database) -> None:
    db.execute(
        """CREATE OR REPLACE FUNCTION workstation_case_status_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.status IS NOT DISTINCT FROM OLD.status OR workstation_is_owner() THEN
                RETURN NEW;
            END IF;
            IF OLD.status = 'archived' THEN
                RAISE EXCEPTION 'case % is archived: it cannot be changed', OLD.id
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            IF NEW.status = 'archived' AND NOT workstation_has_role('administrator') THEN
                RAISE EXCEPTION 'archiving case % refused: % does not hold the administrator '
                    'role', OLD.id, session_user USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END $$"""
    )
    _trigger(db, "cases_status_guard", "cases", "BEFORE UPDATE", "workstation_case_status_guard()")
    db.execute(
        """CREATE OR REPLACE FUNCTION workstation_watch_end_guard() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF workstation_is_owner() THEN
                RETURN NEW;
            END IF;
            IF OLD.ended_at IS NOT NULL AND (NEW.ended_at IS DISTINCT FROM OLD.ended_at
               OR NEW.embedding IS NOT NULL) THEN
                RAISE EXCEPTION 'watch % has ended: it cannot be changed', OLD.id
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL
               AND OLD.until >= to_char(current_date, 'YYYY-MM-DD')
               AND NOT workstation_has_role('analyst')
               AND NOT workstation_has_role('administrator') THEN
                RAISE EXCEPTION 'ending watch % before its date refused: % holds neither the '
                    'analyst nor the administrator role', OLD.id, session_user
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END $$"""
    )
    _trigger(db, "watches_end_guard", "watches", "BEFORE UPDATE", "workstation_watch_end_guard()")


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
