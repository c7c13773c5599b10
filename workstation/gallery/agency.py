"""The agency gallery (issue 13): one gallery shared by every workstation of an agency, kept by
engines that scale: its records, cases, decisions and audit chain in PostgreSQL, its vectors in
Milvus.

A gallery folder holding `gallery.toml` (and no gallery.sqlite) is an agency gallery; the file
names the servers and nothing secret::

    # workstation agency gallery: records in PostgreSQL, vectors in Milvus
    [database]
    url = "postgresql://db.agency.example/gallery"
    [vectors]
    uri = "http://milvus.agency.example:19530"
    collection = "faces"
    index = "HNSW"
    [roles]
    prefix = "workstation_"

`workstation agency init DIR --database URL --vectors URI` (run by the database's owner) creates
the schema (the same numbered migrations as the embedded gallery: workstation.gallery.schema) and
writes the file; the Milvus collection is made for the model's dimension at the first enrolment
(or at once with --dim).

**Photos** stay files, byte-exact copies named by their SHA-256 under the gallery folder's
`images/`, exactly as in the embedded gallery: the folder holding gallery.toml is the agency's
share that every workstation mounts. Photos are large (a mugshot is 100-500 KB: 300,000 of them
are 30-150 GB) and never change once written; in PostgreSQL they would pass through its WAL,
every backup and every replica, for nothing the hash in each `images` row does not already
guarantee (a photo is verified against it whenever it is read: gallery.photos). The records,
which change and must be shared transactionally, are what needs the database server.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workstation.errors import GalleryError, WorkstationError
from workstation.gallery.agency_roles import audit_role_holders
from workstation.gallery.agency_setup import setup_database
from workstation.gallery.milvus import DEFAULT_INDEX, MilvusSettings, MilvusVectors
from workstation.gallery.postgres import PostgresDatabase, psycopg_module
from workstation.gallery.schema import SCHEMA_VERSION, check_schema_version, migrate

CONFIG_NAME = "gallery.toml"
DEFAULT_PREFIX = "workstation_"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


# ---------------------------------------------------------------------- gallery.toml
@dataclass(frozen=True)
class AgencyConfig:
    """What gallery.toml says: where the records and the vectors are, and the roles' prefix."""

    database_url: str
    vectors: MilvusSettings
    role_prefix: str = DEFAULT_PREFIX

    def role(self, app_role: str) -> str:
        return f"{self.role_prefix}{app_role}"


def read_config(folder: Path) -> AgencyConfig:
    path = Path(folder) / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise GalleryError(f"{path}: cannot read the agency gallery's settings ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise GalleryError(f"{path}: not a valid gallery.toml ({exc})") from exc
    try:
        database, vectors = data["database"], data["vectors"]
        prefix = str(data.get("roles", {}).get("prefix", DEFAULT_PREFIX))
        settings = MilvusSettings(
            uri=str(vectors["uri"]),
            collection=str(vectors.get("collection", "faces")),
            index_type=str(vectors.get("index", DEFAULT_INDEX)).upper(),
            index_params=dict(vectors.get("index_params", {})),
            search_params=dict(vectors.get("search_params", {})),
        )
        config = AgencyConfig(str(database["url"]), settings, prefix)
    except (KeyError, TypeError, ValueError) as exc:
        raise GalleryError(
            f"{path}: gallery.toml needs [database] url and [vectors] uri (missing {exc})"
        ) from exc
    _check_identifier(config.role_prefix + "x", f"{path}: [roles] prefix")
    _check_identifier(settings.collection, f"{path}: [vectors] collection")
    return config


def _toml_string(value: str) -> str:
    # A TOML basic string: JSON's escapes are TOML's for these characters.
    import json

    return json.dumps(value, ensure_ascii=False)


def _toml_table(values: dict[str, Any]) -> str:
    return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in values.items()) + " }"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return _toml_string(str(value))


def write_config(folder: Path, config: AgencyConfig) -> Path:
    """Write gallery.toml (servers only: credentials stay with each examiner)."""
    from workstation.permissions import make_private_dir

    make_private_dir(folder)
    settings = config.vectors
    text = (
        "# workstation agency gallery: records in PostgreSQL, vectors in Milvus.\n"
        "# Written by `workstation agency init`; every workstation opens it with --gallery.\n"
        "# No credentials here: each examiner connects as their own PostgreSQL role.\n"
        "[database]\n"
        f"url = {_toml_string(config.database_url)}\n\n"
        "[vectors]\n"
        f"uri = {_toml_string(settings.uri)}\n"
        f"collection = {_toml_string(settings.collection)}\n"
        f"index = {_toml_string(settings.index_type)}\n"
        f"index_params = {_toml_table(settings.build_params())}\n"
        f"search_params = {_toml_table(settings.query_params())}\n\n"
        "[roles]\n"
        f"prefix = {_toml_string(config.role_prefix)}\n"
    )
    path = Path(folder) / CONFIG_NAME
    partial = path.with_suffix(".toml.part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


def shareable_url(url: str) -> str:
    """The connection URL without its user and password: gallery.toml is read by every
    examiner, and each connects as themselves."""
    from urllib.parse import quote, urlencode

    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception as exc:
        raise WorkstationError(f"{url!r} is not a PostgreSQL connection URL ({exc})") from exc
    params.pop("user", None)
    params.pop("password", None)
    host = str(params.pop("host", "") or "")
    port = params.pop("port", None)
    dbname = str(params.pop("dbname", "") or "")
    netloc = ""
    if host and not host.startswith("/") and "," not in host:
        netloc = quote(host, safe="") + (f":{port}" if port else "")
    else:
        if host:
            params["host"] = host
        if port:
            params["port"] = port
    query = urlencode({k: str(v) for k, v in params.items()})
    return f"postgresql://{netloc}/{quote(dbname, safe='')}" + (f"?{query}" if query else "")


# ---------------------------------------------------------------------- opening
def open_agency(
    folder: Path, read_only: bool, login: str
) -> tuple[PostgresDatabase, MilvusVectors]:
    """Connect to the agency gallery named by `folder`/gallery.toml: (records, vectors).

    The examiner connects as the PostgreSQL role named as their login (`login`), unless the URL
    names a user; the server authenticates it as it is configured (~/.pgpass, Kerberos, a
    client certificate). The schema is migrated by `agency init` (the database's owner), never
    by a workstation: a gallery at an older version is refused with what to run.
    """
    config = read_config(folder)
    try:
        named = bool(psycopg_module().conninfo.conninfo_to_dict(config.database_url).get("user"))
    except Exception as exc:
        raise GalleryError(f"{folder / CONFIG_NAME}: [database] url is not valid ({exc})") from exc
    overrides = {} if named else {"user": login}
    db = PostgresDatabase.connect(config.database_url, read_only=read_only, **overrides)
    try:
        version = check_schema_version(db)
        if version < SCHEMA_VERSION:
            raise GalleryError(
                f"{folder / CONFIG_NAME}: the agency gallery at {db.source} is at schema version "
                f"{version}, this program needs {SCHEMA_VERSION}; its owner runs `workstation "
                f"agency init {folder} --database ... --vectors ...` again to upgrade it"
            )
    except BaseException:
        db.close()
        raise
    return db, MilvusVectors(config.vectors)


def _check_identifier(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name) or len(name) > 60:
        raise WorkstationError(
            f"{what}: {name!r} must be lower-case letters, digits and underscores "
            "(a PostgreSQL and Milvus name)"
        )
    return name


@dataclass(frozen=True)
class AgencyInit:
    """What `init_agency` made: the configuration written to gallery.toml, and the statements a
    superuser must still run so that nobody holds the audit role (see
    `agency_roles.audit_role_holders`; none when a superuser ran `init`)."""

    config: AgencyConfig
    superuser_must_run: list[str]


def init_agency(
    folder: Path,
    database_url: str,
    vectors_uri: str,
    collection: str = "faces",
    index_type: str = DEFAULT_INDEX,
    role_prefix: str = DEFAULT_PREFIX,
    dim: int | None = None,
    administrator: str | None = None,
) -> AgencyInit:
    """Create (or upgrade) an agency gallery and write its gallery.toml; see the module docstring.

    Run by the database's owner: the connection is whoever libpq resolves from `database_url`
    (its user, PGUSER, or the OS login). Idempotent: on an existing agency gallery it migrates
    the schema and applies the roles, grants and guards again (gallery.agency_roles); the
    collection is kept when it fits.

    Args:
        dim: the vector dimension to create the collection with now (the model's); without it
            the collection is made at the first enrolment.
        administrator: the login role of the gallery's first administrator (created if new,
            member of every app role); the first examiner to open the gallery is registered as
            its first administrator, so this should be who opens it first.
    """
    folder = Path(folder).expanduser()
    if (folder / "gallery.sqlite").exists():
        raise WorkstationError(
            f"{folder}: holds an embedded gallery; choose an empty folder for the agency "
            "gallery's gallery.toml"
        )
    _check_identifier(collection, "--collection")
    _check_identifier(role_prefix + "x", "--role-prefix")
    config = AgencyConfig(
        shareable_url(database_url),
        MilvusSettings(uri=vectors_uri, collection=collection, index_type=index_type.upper()),
        role_prefix,
    )
    db = PostgresDatabase.connect(database_url)
    try:
        migrate(db)
        db.begin_write()
        try:
            setup_database(db, config, administrator)
            db.commit()
        except BaseException:
            db.rollback()
            raise
        holders = audit_role_holders(db, config)
    finally:
        db.close()
    if dim:
        MilvusVectors(config.vectors).ensure_collection(dim)
    write_config(folder, config)
    return AgencyInit(config, holders)
