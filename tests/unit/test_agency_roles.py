"""The agency gallery's roles, grants and witness table (gallery/agency_roles.py) on a real
PostgreSQL server (pgserver): every table of the schema is granted for every app role, nobody
but the owner may change or delete an audit event, its row hashes, a decision or a witness, and
the chain is held to the database's own witness of every event. (Examiners connecting as their
own roles and raw-SQL attacks as each: tests/integration/test_agency_role_attacks.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from workstation.audit.actions import AuditAction
from workstation.gallery.agency import read_config
from workstation.gallery.agency_roles import (
    APP_ROLES,
    TABLE_GRANTS,
    TABLES,
    group_role,
    witness_problem,
)
from workstation.gallery.store import open_gallery


@pytest.fixture
def agency_folder(agency_servers, tmp_path: Path):
    folder = agency_servers.new_gallery(tmp_path / "agency")
    yield folder
    agency_servers.drop_gallery(folder)


def _superuser(agency_servers, folder: Path):
    dbname = read_config(folder).database_url.split("?", 1)[0].rsplit("/", 1)[-1]
    return agency_servers.admin(dbname)


def _record(gallery, n: int) -> None:
    for number in range(n):
        details = {"scope": "examiner", "setting": "candidates", "value": number}
        with gallery.change(AuditAction.SETTINGS_CHANGE, details):
            pass


def test_every_table_is_granted_to_every_role_and_the_record_is_append_only(
    agency_servers, agency_folder
) -> None:
    with _superuser(agency_servers, agency_folder) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
        assert tables == set(TABLES)  # a new migration's table needs its grants
        config = read_config(agency_folder)
        for app_role in APP_ROLES:
            assert set(TABLE_GRANTS[app_role]) == set(TABLES)
            role = group_role(config, app_role)
            for table in TABLES:
                assert conn.execute(
                    "SELECT has_table_privilege(%s, %s, 'SELECT')", (role, table)
                ).fetchone()[0]
                assert not conn.execute(
                    "SELECT has_table_privilege(%s, %s, 'TRUNCATE')", (role, table)
                ).fetchone()[0]
            for table in ("audit", "audit_rows", "decisions", "comparison_sheets", "audit_witness"):
                changes = conn.execute(
                    "SELECT has_table_privilege(%s, %s, 'UPDATE') OR "
                    "has_any_column_privilege(%s, %s, 'UPDATE') OR "
                    "has_table_privilege(%s, %s, 'DELETE')",
                    (role, table) * 3,
                ).fetchone()[0]
                assert not changes, (app_role, table)
            writes_witness = conn.execute(
                "SELECT has_table_privilege(%s, 'audit_witness', 'INSERT')", (role,)
            ).fetchone()[0]
            assert not writes_witness
        # Only the administrator deletes subjects or changes the gallery's settings.
        deleters = [
            r
            for r in APP_ROLES
            if conn.execute(
                "SELECT has_table_privilege(%s, 'subjects', 'DELETE')", (group_role(config, r),)
            ).fetchone()[0]
        ]
        assert deleters == ["administrator"]
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_witness'"
        ).fetchone()[0]
        assert owner == f"{config.role_prefix}audit"


def test_the_chain_is_held_to_the_databases_witness(agency_servers, agency_folder) -> None:
    with open_gallery(agency_folder, user="examiner1") as gallery:
        _record(gallery, 3)
        report = gallery.verify_audit()
        assert report.intact, report.problem
        head = report.head_seq
        assert witness_problem(gallery.conn, head) is None
    with _superuser(agency_servers, agency_folder) as conn:
        assert conn.execute("SELECT count(*) FROM audit_witness").fetchone()[0] == head
        # The witness refuses changes even from its readers' side; its owner is the audit role.
        with pytest.raises(Exception, match="append-only"):
            conn.execute("UPDATE audit_witness SET hash = 'x' WHERE seq = 1")
        # The DBA rolls the log back one event, guards switched off: the witness still holds
        # the event that is gone.
        conn.execute("ALTER TABLE audit DISABLE TRIGGER USER")
        conn.execute("ALTER TABLE audit_rows DISABLE TRIGGER USER")
        conn.execute("DELETE FROM audit_rows WHERE seq = %s", (head,))
        conn.execute("DELETE FROM audit WHERE seq = %s", (head,))
    with open_gallery(agency_folder, user="examiner1", read_only=True) as gallery:
        found = witness_problem(gallery.conn, head - 1)
        assert found is not None and found[0] == head and "rolled back" in found[1]
    with _superuser(agency_servers, agency_folder) as conn:
        # ... and an event written with the witness switched off is never witnessed.
        conn.execute("ALTER TABLE audit_witness DISABLE TRIGGER USER")
        conn.execute("DELETE FROM audit_witness WHERE seq >= %s", (head - 1,))
        conn.execute("ALTER TABLE audit_witness ENABLE TRIGGER USER")
    with open_gallery(agency_folder, user="examiner1", read_only=True) as gallery:
        found = witness_problem(gallery.conn, head - 1)
        assert found is not None and found[0] == head - 1 and "never witnessed" in found[1]
        report = gallery.verify_audit(witnesses=True)
        assert not report.intact


def test_an_agency_gallery_from_before_the_witness_is_witnessed_when_upgraded(
    agency_servers, agency_folder, tmp_path: Path
) -> None:
    from workstation.gallery.agency import init_agency

    with open_gallery(agency_folder, user="examiner1") as gallery:
        _record(gallery, 2)
    config = read_config(agency_folder)
    dbname = config.database_url.split("?", 1)[0].rsplit("/", 1)[-1]
    with _superuser(agency_servers, agency_folder) as conn:
        conn.execute("DROP TABLE audit_witness")  # as a gallery made before it existed
        events = conn.execute("SELECT count(*) FROM audit").fetchone()[0]
    # The owner upgrades it: the chain as it stands is witnessed once, then every new event.
    init_agency(tmp_path / "upgrade", agency_servers.url(dbname), config.vectors.uri,
                collection=config.vectors.collection)  # fmt: skip
    with open_gallery(agency_folder, user="examiner1") as gallery:
        _record(gallery, 1)
        report = gallery.verify_audit()
        assert report.intact, report.problem
    with _superuser(agency_servers, agency_folder) as conn:
        assert conn.execute("SELECT count(*) FROM audit_witness").fetchone()[0] == events + 1


def test_an_administrator_grants_the_roles_it_does_not_hold(agency_servers, agency_folder) -> None:
    """An administrator added with the administrator role only may give others any role, but
    holds (for the guards) only its own."""
    import psycopg

    from workstation.gallery.agency_roles import database_roles, grant_app_roles
    from workstation.gallery.postgres import PostgresDatabase

    config = read_config(agency_folder)
    dbname = config.database_url.split("?", 1)[0].rsplit("/", 1)[-1]
    admin, other = "adm_only_r", "granted_r"
    with agency_servers.admin() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {other}, {admin}")
    db = PostgresDatabase.connect(agency_servers.url(dbname))
    try:
        grant_app_roles(db, config, admin, ["administrator"])
        assert database_roles(db, config, admin) == ["administrator"]
        with psycopg.connect(
            f"postgresql:///{dbname}?host={agency_servers.socket_dir}", user=admin, autocommit=True
        ) as conn:
            conn.execute(f"CREATE ROLE {other} LOGIN")
            conn.execute(f"GRANT {group_role(config, 'analyst')} TO {other}")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SET ROLE {group_role(config, 'analyst')}")
        assert database_roles(db, config, other) == ["analyst"]
    finally:
        db.close()
        with agency_servers.admin() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {other}")
            conn.execute(f"DROP ROLE IF EXISTS {admin}")
