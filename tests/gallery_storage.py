"""A gallery's storage as an insider outside the program sees it, for either kind of gallery.

Embedded: the SQLite file, edited with a SQLite shell (tests/sqlite_file.py) and the FAISS files.
Agency: the PostgreSQL database, edited by its superuser (the DBA, who can switch the audit log's
guard triggers off), and the Milvus collection, changed behind the gallery's back. Tests of those
attacks and of the derived index's repair use these helpers; every other test goes through the
gallery's methods.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import sqlite_file

from workstation.gallery.agency import CONFIG_NAME, read_config

GUARDED = ("audit", "audit_rows")


class RefusedEdit(Exception):
    """The database refused an outside edit (a guard trigger, a constraint)."""


def is_agency(folder: Path) -> bool:
    return (Path(folder) / CONFIG_NAME).is_file() and not (Path(folder) / "gallery.sqlite").exists()


def _superuser(folder: Path) -> Any:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(read_config(folder).database_url)
    params["user"] = "postgres"
    return psycopg.connect(make_conninfo(**params))


def _pyformat(sql: str) -> str:
    from workstation.gallery.database import to_pyformat

    return to_pyformat(sql)


def edit_database(
    gallery_folder: Path, sql: str, params: tuple[Any, ...] = (), drop_guards: bool = True
) -> None:
    """Run one statement on the gallery's database from outside the program and commit it:
    with a SQLite shell on the file, or as the PostgreSQL superuser (the audit log's guard
    triggers switched off first unless `drop_guards` is False). SQL in the common dialect
    (`?` placeholders, "user" quoted)."""
    if not is_agency(gallery_folder):
        try:
            sqlite_file.edit_database(gallery_folder, sql, params, drop_guards)
        except sqlite3.DatabaseError as exc:
            raise RefusedEdit(str(exc)) from exc
        return
    import psycopg

    conn = _superuser(gallery_folder)
    try:
        with conn.transaction():
            if drop_guards:
                for table in GUARDED:
                    conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            conn.execute(_pyformat(sql) if params else sql, params or None)
            if drop_guards:
                for table in GUARDED:
                    conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    except psycopg.Error as exc:
        raise RefusedEdit(" ".join(str(exc).split())) from exc
    finally:
        conn.close()


def read_database(gallery_folder: Path, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Rows of one query on the gallery's database, read from outside the program."""
    if not is_agency(gallery_folder):
        return sqlite_file.read_database(gallery_folder, sql, params)
    conn = _superuser(gallery_folder)
    try:
        return conn.execute(_pyformat(sql) if params else sql, params or None).fetchall()
    finally:
        conn.close()


def decision_check_values(gallery_folder: Path) -> list[str]:
    """The decisions the database's CHECK constraint on decisions.decision allows."""
    if is_agency(gallery_folder):
        (definition,) = read_database(
            gallery_folder,
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'decisions'::regclass AND contype = 'c'",
        )[0]
        return re.findall(r"'([^']*)'", definition)
    (table_sql,) = read_database(
        gallery_folder, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'decisions'"
    )[0]
    checked = table_sql.split("decision IN (", 1)[1].split(")", 1)[0]
    return [v.strip(" '") for v in checked.split(",")]


# ---------------------------------------------------------------------- the derived index
INDEX_DAMAGES = ("missing", "stale", "corrupt", "manifest")


def damage_index(gallery: Any, damage: str) -> None:
    """Damage the gallery's vector index behind its back (it must then be repaired or rebuilt
    from the database on the next open).

    Embedded (FAISS files): the vector file deleted (missing), a face re-embedded so the index
    is behind (stale), a byte of the vector file flipped (corrupt), the manifest overwritten.
    Agency (Milvus): the collection dropped (missing), a face's vector deleted (stale), a vector
    with no face added (corrupt), the collection made for another dimension (manifest).
    """
    from workstation.audit.actions import AuditAction
    from workstation.gallery.index import INDEX_NAME, MANIFEST_NAME

    folder = gallery.folder
    if not is_agency(folder):
        if damage == "missing":
            (folder / INDEX_NAME).unlink()
        elif damage == "stale":
            # A face changed behind the index (as re-embedding does) and the generation moved
            # on. (A generation bump alone, or faces only added, is caught up without a rebuild.)
            face = next(gallery.all_faces())
            changed = gallery.face_vectors([face.id])[face.id] * np.float32(0.999)
            with gallery.change(AuditAction.REEMBED, {"test": "one face changed"}) as change:
                change.set_embeddings([(face.id, changed)], face.model_id)
        elif damage == "corrupt":
            data = bytearray((folder / INDEX_NAME).read_bytes())
            data[-20] ^= 0xFF
            (folder / INDEX_NAME).write_bytes(bytes(data))
        else:
            (folder / MANIFEST_NAME).write_text("{ not json")
        return
    from workstation.gallery.milvus import MilvusSettings, MilvusVectors

    settings: MilvusSettings = read_config(folder).vectors
    vectors = MilvusVectors(settings)
    if damage == "missing":
        vectors.client.drop_collection(settings.collection)
    elif damage == "stale":
        vectors.delete([int(next(gallery.all_faces()).id)])
    elif damage == "corrupt":
        dim = vectors.collection_dim()
        assert dim is not None
        stray = np.zeros((1, dim), dtype=np.float32)
        stray[0, 0] = 1.0
        vectors.upsert(np.asarray([10**9], dtype=np.int64), stray)
    else:
        vectors.create_collection(7)


def delete_index(folder: Path) -> None:
    """Delete the whole vector index: every FAISS file of any index kind, or the collection."""
    if not is_agency(folder):
        for derived in Path(folder).glob("faces.*"):
            derived.unlink()
        return
    from workstation.gallery.milvus import MilvusVectors

    settings = read_config(folder).vectors
    MilvusVectors(settings).client.drop_collection(settings.collection)


def saved_index_state(gallery: Any) -> tuple[int, int]:
    """(faces, generation) the saved index says it holds: the FAISS manifest, or the Milvus
    collection's row count and the gallery's generation (Milvus is written in each change)."""
    import json

    from workstation.gallery.index import MANIFEST_NAME

    if not is_agency(gallery.folder):
        manifest = json.loads((gallery.folder / MANIFEST_NAME).read_text())
        return int(manifest["count"]), int(manifest["generation"])
    from workstation.gallery.milvus import MilvusVectors

    return MilvusVectors(read_config(gallery.folder).vectors).count(), gallery.generation
