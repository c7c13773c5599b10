"""An agency gallery set up by a DBA who is not a superuser (docs/DEPLOYMENT.md, "What IT
runs"): the database's owner, with CREATEROLE and nothing more, runs `agency init` (schema,
roles, grants, guards, the witness table handed to the audit role), upgrades it by running it
again; the administrator it named adds an examiner, who enrols and searches, and the chain
verifies. PostgreSQL leaves such a DBA the ADMIN option on the roles it created, the audit role
among them: `init` names the statement a superuser must run, after which the DBA can neither
rewrite the witness nor grant themselves the role that could."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agency_servers import MilvusServer
from examiners import examiner, run_as

from workstation.errors import GalleryError

PID = os.getpid()
DBA, CHIEF, ANALYST = f"dba_{PID}", f"chief_{PID}", f"ana_{PID}"
PREFIX = f"nsu{PID}_"
GROUPS = [f"{PREFIX}{role}" for role in ("administrator", "enroller", "analyst", "reviewer")]
ROLES = [ANALYST, CHIEF, *GROUPS, f"{PREFIX}owner", f"{PREFIX}audit", DBA]  # drop order


@pytest.fixture(scope="module")
def milvus_server(tmp_path_factory):
    server = MilvusServer(tmp_path_factory.mktemp("milvus-dba"))
    yield server
    server.stop()


def _drop(servers: Any, dbname: str) -> None:
    with servers.admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        for role in ROLES:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


@pytest.fixture
def dba_database(agency_servers) -> Iterator[str]:
    """A database owned by a login role that may create roles and is no superuser."""
    dbname = f"dba_{PID}"
    _drop(agency_servers, dbname)
    with agency_servers.admin() as conn:
        conn.execute(f'CREATE ROLE "{DBA}" LOGIN CREATEROLE')
        conn.execute(f'CREATE DATABASE {dbname} OWNER "{DBA}"')
    yield dbname
    _drop(agency_servers, dbname)


def _init(servers: Any, folder: Path, dbname: str, vectors: str) -> list[str]:
    from workstation.gallery.agency import init_agency

    return init_agency(
        folder,
        f"postgresql://{DBA}@/{dbname}?host={servers.socket_dir}",
        vectors,
        collection=f"dba_{PID}",
        role_prefix=PREFIX,
        administrator=CHIEF,
    ).superuser_must_run


def test_a_dba_who_is_not_a_superuser_sets_up_upgrades_and_cannot_rewrite_the_witness(
    agency_servers,
    milvus_server,
    dba_database: str,
    photo_paths: dict[str, Path],
    tmp_path,
    capsys,
) -> None:
    import psycopg

    folder = tmp_path / "agency"
    with agency_servers.admin() as conn:
        (superuser,) = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (DBA,))
    assert superuser == (False,)
    first = _init(agency_servers, folder, dba_database, milvus_server.uri)
    assert len(first) == 1
    # The command line says it, with the statement (run as the DBA, on the gallery just made).
    from workstation.cli import main

    code = main(
        [
            "agency", "init", str(folder),
            "--database", f"postgresql://{DBA}@/{dba_database}?host={agency_servers.socket_dir}",
            "--vectors", milvus_server.uri, "--collection", f"dba_{PID}",
            "--role-prefix", PREFIX,
        ]
    )  # fmt: skip
    assert code == 0
    assert f"a superuser must run: {first[0]}" in capsys.readouterr().err

    key_file = tmp_path / "analyst.pub"
    key_file.write_text(examiner(ANALYST).public_key_text())
    code, out, err = run_as(
        folder, CHIEF, "agency", "add-examiner", str(folder), ANALYST,
        "--role", "enroller", "--role", "analyst", "--key", str(key_file),
    )  # fmt: skip
    assert code == 0, err
    assert "recorded in the audit log" in out
    code, _, err = run_as(folder, ANALYST, "enroll", "--subject", "P-1", str(photo_paths["obama"]))
    assert code == 0, err
    code, out, err = run_as(
        folder, ANALYST, "search", "--case", "C-1", "--purpose", "burglary", "--json",
        str(photo_paths["obama2"]),
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["candidates"][0]["subject_id"] == "P-1"

    # The upgrade path: the same DBA runs init again on the gallery in use.
    must_run = _init(agency_servers, folder, dba_database, milvus_server.uri)
    code, out, err = run_as(folder, CHIEF, "audit", "verify")
    assert code == 0, out + err

    # The DBA keeps the owner role (migrations, copies), not the audit role: the witness is
    # not theirs to rewrite. PostgreSQL's own ADMIN grant to a role's creator remains, so init
    # names what a superuser must run; before it, the DBA could take the role back.
    def as_dba() -> Any:
        return psycopg.connect(
            f"postgresql:///{dba_database}?host={agency_servers.socket_dir}",
            user=DBA,
            autocommit=True,
        )

    with as_dba() as conn, pytest.raises(psycopg.Error, match="permission denied"):
        conn.execute("DELETE FROM audit_witness")
    assert must_run == [f'REVOKE "{PREFIX}audit" FROM "{DBA}" GRANTED BY "postgres";']
    with agency_servers.admin(dba_database) as conn:
        for statement in must_run:
            conn.execute(statement)
    with as_dba() as conn, pytest.raises(psycopg.Error, match="permission denied"):
        conn.execute(f'GRANT "{PREFIX}audit" TO "{DBA}"')
    # From then on an upgrade, which sets up the witness again, takes a superuser.
    with pytest.raises(GalleryError, match="a superuser runs `workstation agency init`"):
        _init(agency_servers, folder, dba_database, milvus_server.uri)
    from workstation.gallery.agency import init_agency

    made = init_agency(
        folder,
        agency_servers.url(dba_database),
        milvus_server.uri,
        collection=f"dba_{PID}",
        role_prefix=PREFIX,
    )
    assert made.superuser_must_run == []
    code, out, err = run_as(folder, ANALYST, "audit", "verify")
    assert code == 0, out + err
    with agency_servers.admin(dba_database) as conn:
        events = conn.execute("SELECT seq, hash FROM audit ORDER BY seq").fetchall()
        witnessed = conn.execute("SELECT seq, hash FROM audit_witness ORDER BY seq").fetchall()
        members = conn.execute(
            "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
            "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
            (DBA,),
        ).fetchall()
    assert events == witnessed and len(events) >= 4
    assert (f"{PREFIX}audit",) not in members and (f"{PREFIX}owner",) in members
