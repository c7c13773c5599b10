"""Setting up an agency gallery's database (issue 13 item 2): its group roles, the grants of
`agency_roles.TABLE_GRANTS`, the audit witness and the guard triggers that check what grants
cannot (the list, and who passes them: `gallery/agency_roles.py`). Run by the database's owner
after the migrations (`workstation agency init`), idempotent, inside the caller's transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workstation.errors import GalleryError
from workstation.gallery.agency_roles import (
    APP_ROLES,
    EXAMINER_COLUMNS,
    TABLE_GRANTS,
    TABLES,
    WITNESS_TABLE,
    audit_role,
    grant_app_roles,
    group_role,
    is_superuser,
    owner_role,
    quote_ident,
)
from workstation.gallery.database import Database, append_only_guard

if TYPE_CHECKING:
    from workstation.gallery.agency import AgencyConfig


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


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
    install_guards(db, config)
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


def install_guards(db: Database, config: AgencyConfig) -> None:
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
