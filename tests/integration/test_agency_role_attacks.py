"""Identity from the database server (issue 13 item 2): `workstation` processes connect to one
agency gallery as different PostgreSQL roles (no user in gallery.toml: each connects as its
login), enrol, search, decide and confirm under the grants `agency init` made, and every attack
with raw SQL as each of those roles (psycopg directly, bypassing the program) is refused by the
database itself: grants where they suffice, guard triggers where they do not. The audit chain
verifies after the legitimate acts, and the database witnessed every event."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agency_servers import MilvusServer
from examiners import examiner, run_as

# Login roles live in the whole PostgreSQL cluster: names no other test uses.
CHIEF, ENROLLER, ANALYST, REVIEWER = "chief_r", "ena_r", "ana_r", "rev_r"
LOGINS = (ENROLLER, ANALYST, REVIEWER, CHIEF)  # grantees before their grantor (dropping)


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    server = MilvusServer(tmp_path_factory.mktemp("milvus-roles"))
    yield server
    server.stop()


def _drop_logins(servers: Any) -> None:
    with servers.admin() as conn:
        for login in LOGINS:
            conn.execute(f'DROP ROLE IF EXISTS "{login}"')


@pytest.fixture
def agency(agency_servers, milvus_server, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A new agency gallery made by `agency init --administrator chief_r` (as the DBA), whose
    gallery.toml names no user: every workstation connects as its examiner's own role."""
    from workstation.cli import main
    from workstation.gallery.agency import read_config

    dbname = f"roles_{os.getpid()}"
    _drop_logins(agency_servers)
    with agency_servers.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {dbname}")
    folder = tmp_path / "agency"
    code = main(
        [
            "agency", "init", str(folder),
            "--database", agency_servers.url(dbname),
            "--vectors", milvus_server.uri,
            "--collection", f"roles_{os.getpid()}",
            "--administrator", CHIEF,
        ]
    )  # fmt: skip
    assert code == 0
    assert "postgres@" not in read_config(folder).database_url
    yield folder, dbname
    with agency_servers.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    _drop_logins(agency_servers)


def connect_as(servers: Any, dbname: str, login: str) -> Any:
    """A raw connection as `login` (the attacker's own credentials, no program in between)."""
    import psycopg

    return psycopg.connect(
        f"postgresql:///{dbname}?host={servers.socket_dir}", user=login, autocommit=True
    )


def refused(servers: Any, dbname: str, login: str, sql: str, params: tuple = ()) -> str:
    """Run `sql` as `login`; it must be refused. Returns the database's message."""
    import psycopg

    with connect_as(servers, dbname, login) as conn, pytest.raises(psycopg.Error) as caught:
        conn.execute(sql, params or None)
    return str(caught.value)


def test_examiners_as_database_roles_share_a_gallery_and_raw_sql_is_refused(
    agency, agency_servers, photo_paths: dict[str, Path], tmp_path: Path
) -> None:
    folder, dbname = agency
    # The administrator adds each examiner: database role and key registration in one act.
    examiners = {ENROLLER: ["enroller"], ANALYST: ["analyst", "reviewer"], REVIEWER: ["reviewer"]}
    for login, roles in examiners.items():
        key_file = tmp_path / f"{login}.pub"
        key_file.write_text(examiner(login).public_key_text())
        argv = ["agency", "add-examiner", str(folder), login, "--key", str(key_file)]
        for role in roles:
            argv += ["--role", role]
        code, out, err = run_as(folder, CHIEF, *argv)
        assert code == 0, err
        assert "created PostgreSQL login role" in out and "recorded in the audit log" in out
        assert "the DBA must still let" in out  # no password, no Kerberos mapping yet
    # An enroller may not add examiners: the program says so, and so would the database.
    key_file = tmp_path / "x.pub"
    key_file.write_text(examiner("x_r").public_key_text())
    code, _, err = run_as(folder, ENROLLER, "agency", "add-examiner", str(folder), "x_r",
                       "--role", "administrator", "--key", str(key_file))  # fmt: skip
    assert code != 0 and "may not register examiners" in err
    assert "permission denied" in refused(agency_servers, dbname, ENROLLER, "CREATE ROLE x_r")

    # Enrol as the enroller, search and decide as the analyst, confirm as the reviewer, each
    # from their own process connected as their own role.
    for subject, photo in (("P-OBAMA", "obama"), ("P-BIDEN", "biden")):
        code, _, err = run_as(
            folder, ENROLLER, "enroll", "--subject", subject, str(photo_paths[photo])
        )
        assert code == 0, err
    code, out, err = run_as(
        folder, ANALYST, "search", "--case", "C-9", "--purpose", "robbery", "--json",
        str(photo_paths["obama2"]),
    )  # fmt: skip
    assert code == 0, err
    search_id = int(json.loads(out)["search_id"])
    leads = {}
    for subject in ("P-OBAMA", "P-BIDEN"):
        code, out, err = run_as(
            folder, ANALYST, "decide", "--search", str(search_id), "--subject", subject,
            "--decision", "possible-lead", "--json",
        )  # fmt: skip
        assert code == 0, err
        leads[subject] = int(json.loads(out)["id"])
    code, _, err = run_as(folder, ENROLLER, "search", "--case", "C-9", "--purpose", "robbery",
                       str(photo_paths["obama2"]))  # fmt: skip
    assert code != 0 and "may not search" in err
    code, out, err = run_as(
        folder, REVIEWER, "decide", "--confirm", str(leads["P-OBAMA"]), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["user"] == REVIEWER
    # The analyst adds a redaction box to the probe (their own mark, an audited act); the
    # enroller, who may not export, may not.
    code, out, err = run_as(folder, ANALYST, "redaction", "add", "--search", str(search_id),
                            "--box", "10,10,40,40", "--note", "name badge")  # fmt: skip
    assert code == 0, err
    assert "recorded in the audit log" in out
    code, _, err = run_as(folder, ENROLLER, "redaction", "add", "--search", str(search_id),
                          "--box", "60,60,30,30", "--note", "x")  # fmt: skip
    assert code != 0

    # Raw SQL as each role, bypassing the program.
    now = "2026-11-30T12:00:00Z"
    assert "permission denied" in refused(
        agency_servers, dbname, ANALYST, "DELETE FROM subjects WHERE id = 'P-BIDEN'"
    )
    for login in (ANALYST, CHIEF):  # not even an administrator changes an audit event
        assert "permission denied" in refused(
            agency_servers, dbname, login, "UPDATE audit SET details = '{}' WHERE seq = 2"
        )
        assert "permission denied" in refused(
            agency_servers, dbname, login, "DELETE FROM audit_witness"
        )
    assert "permission denied" in refused(
        agency_servers, dbname, ANALYST,
        "INSERT INTO gallery_settings (key, value, changed_at, changed_by) "
        "VALUES ('witness_folder', '/tmp', %s, %s)", (now, ANALYST),
    )  # fmt: skip
    assert "permission denied" in refused(
        agency_servers, dbname, REVIEWER,
        "INSERT INTO subjects (id, created_at, created_by) VALUES ('P-X', %s, %s)",
        (now, REVIEWER),
    )  # fmt: skip
    assert "permission denied" in refused(
        agency_servers, dbname, ENROLLER,
        'INSERT INTO decisions (search_id, subject_id, decision, "user", created_at) '
        "VALUES (%s, 'P-BIDEN', 'excluded', %s, %s)", (search_id, ENROLLER, now),
    )  # fmt: skip
    # A decision written in another examiner's name.
    message = refused(
        agency_servers, dbname, ANALYST,
        'INSERT INTO decisions (search_id, subject_id, decision, "user", created_at) '
        "VALUES (%s, 'P-BIDEN', 'excluded', %s, %s)", (search_id, REVIEWER, now),
    )  # fmt: skip
    assert f"recorded as {REVIEWER} refused" in message and f"authenticated {ANALYST}" in message
    # Self-confirmation, by an examiner who holds the reviewer role too.
    message = refused(
        agency_servers, dbname, ANALYST,
        'INSERT INTO decisions (search_id, subject_id, decision, "user", created_at, confirms) '
        "VALUES (%s, 'P-BIDEN', 'confirmed', %s, %s, %s)",
        (search_id, ANALYST, now, leads["P-BIDEN"]),
    )  # fmt: skip
    assert "a second examiner must confirm it" in message
    # A lead confirmed once only, and an analyst without the reviewer role confirms nothing.
    message = refused(
        agency_servers, dbname, REVIEWER,
        'INSERT INTO decisions (search_id, subject_id, decision, "user", created_at, confirms) '
        "VALUES (%s, 'P-OBAMA', 'confirmed', %s, %s, %s)",
        (search_id, REVIEWER, now, leads["P-OBAMA"]),
    )  # fmt: skip
    assert "superseded or already confirmed" in message
    # Redaction marks are appended in one's own name and never changed: not the analyst's own
    # mark, not another examiner's, not in another examiner's name.
    with agency_servers.admin(dbname) as conn:
        mark_id, mark_user = conn.execute('SELECT id, "user" FROM redaction_marks').fetchone()
    assert mark_user == ANALYST
    for login in (ANALYST, REVIEWER, CHIEF):
        assert "permission denied" in refused(
            agency_servers, dbname, login,
            "UPDATE redaction_marks SET x = 0 WHERE id = %s", (mark_id,),
        )  # fmt: skip
        assert "permission denied" in refused(
            agency_servers, dbname, login, "DELETE FROM redaction_marks WHERE id = %s", (mark_id,)
        )
    message = refused(
        agency_servers, dbname, REVIEWER,
        "INSERT INTO redaction_marks (search_id, case_id, image_ref, kind, x, y, w, h, note, "
        '"user", created_at) VALUES (%s, %s, %s, %s, 10, 10, 40, 40, %s, %s, %s)',
        (search_id, "C-9", "x", "unredact", "forged", ANALYST, now),
    )  # fmt: skip
    assert f"recorded as {ANALYST} refused" in message
    assert "permission denied" in refused(
        agency_servers, dbname, ENROLLER,
        "INSERT INTO redaction_marks (search_id, case_id, image_ref, kind, x, y, w, h, note, "
        '"user", created_at) VALUES (%s, %s, %s, %s, 1, 1, 9, 9, %s, %s, %s)',
        (search_id, "C-9", "x", "drawn", "x", ENROLLER, now),
    )  # fmt: skip
    # An audit event that does not follow the head (a fork, or one written over the chain).
    message = refused(
        agency_servers, dbname, ANALYST,
        'INSERT INTO audit (seq, time, "user", action, details, prev_hash, hash) '
        "VALUES (1000, %s, %s, 'search', '{}', %s, %s)", (now, ANALYST, "1" * 64, "2" * 64),
    )  # fmt: skip
    assert "does not follow the chain head" in message
    message = refused(
        agency_servers, dbname, ANALYST,
        "INSERT INTO audit_rows (seq, tbl, row_id, sha256) VALUES (2, 'subjects', 'P-X', %s)",
        ("3" * 64,),
    )  # fmt: skip
    assert "written with it, by its examiner" in message
    assert "permission denied" in refused(
        agency_servers, dbname, ANALYST,
        "INSERT INTO audit_witness (seq, hash, witnessed_at, witnessed_by) "
        "VALUES (1000, 'x', now(), 'x')",
    )  # fmt: skip

    # The legitimate acts verify, from the reviewer's workstation; the database witnessed
    # every event, each by the role that wrote it.
    code, out, err = run_as(folder, REVIEWER, "audit", "verify")
    assert code == 0, out + err
    with agency_servers.admin(dbname) as conn:
        events = conn.execute('SELECT seq, hash, "user" FROM audit ORDER BY seq').fetchall()
        witnessed = conn.execute(
            "SELECT seq, hash, witnessed_by FROM audit_witness ORDER BY seq"
        ).fetchall()
    assert [(s, h) for s, h, _ in events] == [(s, h) for s, h, _ in witnessed]
    assert [u for _, _, u in events] == [w for _, _, w in witnessed]
    assert {u for _, _, u in events} == {CHIEF, ENROLLER, ANALYST, REVIEWER}
