"""`workstation agency ...`: set up an agency gallery (records in PostgreSQL, vectors in Milvus)
and see what a workstation connects to."""

from __future__ import annotations

import json
from pathlib import Path

from workstation.commands.context import EXIT_OK, CliContext, Subparsers, shown
from workstation.errors import WorkstationError


def cmd_agency(ctx: CliContext) -> int:
    if ctx.args.agency_action == "init":
        return _init(ctx)
    if ctx.args.agency_action == "add-examiner":
        return _add_examiner(ctx)
    if ctx.args.agency_action == "clients":
        return _clients(ctx)
    return _info(ctx)


def _clients(ctx: CliContext) -> int:
    """The agency client libraries this installation has, loaded as an agency gallery loads
    them (psycopg with its libpq, pymilvus with grpc): IT's check that a workstation (the
    installed app included) can open an agency gallery, without any server."""
    found: list[str] = []
    missing: list[str] = []
    try:
        import psycopg

        libpq = psycopg.pq.version()  # loads libpq (the binary wheel's own copy when bundled)
        found.append(
            f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__}, "
            f"libpq {libpq // 10000}.{libpq % 10000})"
        )
    except ImportError as exc:
        missing.append(f"psycopg ({exc})")
    try:
        import grpc
        import pymilvus
        from pymilvus import MilvusClient  # noqa: F401  (the client an agency gallery uses)

        found.append(f"pymilvus {pymilvus.__version__} (grpc {grpc.__version__})")
    except ImportError as exc:
        missing.append(f"pymilvus ({exc})")
    for line in found:
        ctx.say(line)
    if missing:
        raise WorkstationError(
            "this installation cannot open an agency gallery: missing "
            + "; ".join(missing)
            + " (pip install 'workstation[agency]')"
        )
    return EXIT_OK


def _init(ctx: CliContext) -> int:
    from workstation.gallery.agency import DEFAULT_PREFIX, init_agency
    from workstation.gallery.agency_roles import APP_ROLES

    args = ctx.args
    folder = Path(args.folder)
    made = init_agency(
        folder,
        args.database,
        args.vectors,
        collection=args.collection,
        index_type=args.index,
        role_prefix=args.role_prefix or DEFAULT_PREFIX,
        dim=args.dim,
        administrator=args.administrator,
    )
    config = made.config
    ctx.say(f"agency gallery ready: {shown(folder / 'gallery.toml')}")
    ctx.say(f"records: {shown(config.database_url)}")
    ctx.say(f"vectors: {shown(config.vectors.where)} ({config.vectors.index_type})")
    ctx.say(
        "roles: "
        + ", ".join(f"{config.role_prefix}{r}" for r in APP_ROLES)
        + f" (grants and guards applied; witness table owned by {config.role_prefix}audit)"
    )
    if made.superuser_must_run:
        ctx.warn(
            f"warning: {config.role_prefix}audit (the witness's owner) is still held by whoever "
            "created it, who could grant it to themselves and rewrite the witness; a superuser "
            "must run: " + " ".join(made.superuser_must_run)
        )
    first = shown(args.administrator) if args.administrator else "the first examiner"
    ctx.say(
        f"next: {first} adds each examiner (`workstation agency add-examiner {shown(folder)} "
        "LOGIN --role ROLE --key FILE`); whoever opens the gallery first becomes its first "
        "registered administrator"
    )
    return EXIT_OK


def _add_examiner(ctx: CliContext) -> int:
    from workstation.audit.roles import Role
    from workstation.commands.examiners import read_key
    from workstation.gallery.agency_roles import add_examiner

    args = ctx.args
    ctx.gallery_dir = Path(args.folder)
    try:
        roles = Role.parse(args.role)
    except ValueError as exc:
        raise WorkstationError(f"--role: {exc}") from None
    key_text = read_key(Path(args.key)) if args.key else None
    added = add_examiner(ctx.gallery(), args.login, roles, key_text)
    login = shown(added.login)
    made = "created PostgreSQL login role" if added.created else "PostgreSQL role"
    ctx.say(f"{made} {login}: member of {', '.join(shown(g) for g in added.granted)}")
    if added.registered is not None:
        ctx.say(
            f"registered {shown(added.registered.name)} ({added.registered.roles_text}); "
            "recorded in the audit log"
        )
    else:
        ctx.say(
            f"no key registered yet: {login} runs `workstation examiners key --out FILE` and an "
            f"administrator runs `workstation examiners add {login} --key FILE --role ...`"
        )
    if added.created:
        ctx.say(
            f"the DBA must still let {login} log in: set a password (ALTER ROLE ... PASSWORD, "
            "kept by the examiner in ~/.pgpass) or map their Kerberos/AD principal or "
            "certificate to this role in pg_hba.conf / pg_ident.conf"
        )
    return EXIT_OK


def _info(ctx: CliContext) -> int:
    from workstation.gallery.agency import read_config

    gallery = ctx.gallery(read_only=True)
    if gallery.kind != "agency":
        raise WorkstationError(f"{gallery.folder}: an embedded gallery, not an agency gallery")
    config = read_config(gallery.folder)
    info = {
        "gallery": str(gallery.folder),
        "database": gallery.database_source,
        "vectors": config.vectors.where,
        "index": config.vectors.index_type,
        "faces": gallery.face_count(),
        "subjects": gallery.subject_count(),
    }
    if ctx.args.json:
        ctx.say(json.dumps(info, indent=2))
        return EXIT_OK
    for key, value in info.items():
        ctx.say(f"{key}: {shown(str(value))}")
    return EXIT_OK


# ---------------------------------------------------------------------- arguments
def add_agency_parser(sub: Subparsers) -> None:
    """The `agency` command and its arguments."""
    p = sub.add_parser(
        "agency",
        help="an agency gallery shared by many workstations (records in PostgreSQL, vectors in "
        "Milvus): set it up, see what this workstation connects to",
    )
    gsub = p.add_subparsers(dest="agency_action", metavar="ACTION", required=True)
    g = gsub.add_parser(
        "init",
        help="create (or upgrade) an agency gallery and write DIR/gallery.toml (run by the "
        "database's owner)",
    )
    g.add_argument("folder", metavar="DIR", help="the gallery folder examiners open")
    g.add_argument(
        "--database",
        required=True,
        metavar="URL",
        help="PostgreSQL connection URL, e.g. postgresql://dbhost/gallery or "
        "postgresql:///gallery?host=/socket/dir (its user, if any, runs the setup)",
    )
    g.add_argument(
        "--vectors",
        required=True,
        metavar="URI",
        help="Milvus: http://host:19530, or a local path ending in .db for Milvus Lite",
    )
    g.add_argument("--collection", default="faces", help="Milvus collection (default faces)")
    g.add_argument(
        "--index",
        default="HNSW",
        choices=("HNSW", "IVF_FLAT", "IVF_SQ8", "DISKANN", "FLAT"),
        help="Milvus index type (default HNSW)",
    )
    g.add_argument(
        "--dim",
        type=int,
        help="create the collection now for this vector size (else at first enrolment)",
    )
    g.add_argument(
        "--role-prefix",
        metavar="PREFIX",
        help="the start of the gallery's PostgreSQL role names (default workstation_; another "
        "for a second gallery on the same server)",
    )
    g.add_argument(
        "--administrator",
        metavar="LOGIN",
        help="the login role of the first administrator (created if new, member of every "
        "role); they should be the first to open the gallery",
    )
    gsub.add_parser(
        "clients",
        help="the agency client libraries this installation has (PostgreSQL: psycopg, Milvus: "
        "pymilvus): whether it can open an agency gallery",
    )
    g = gsub.add_parser("info", help="the --gallery's servers and counts")
    g.add_argument("--json", action="store_true")
    g = gsub.add_parser(
        "add-examiner",
        help="give an examiner's PostgreSQL login role the gallery's roles and, with --key, "
        "register their key in the same audited act (administrator)",
    )
    g.add_argument("folder", metavar="DIR", help="the agency gallery folder (gallery.toml)")
    g.add_argument("login", metavar="LOGIN", help="their login: the PostgreSQL role they use")
    g.add_argument(
        "--role",
        action="append",
        required=True,
        metavar="ROLE",
        help="administrator, enroller, analyst or reviewer (repeat, or separate with commas)",
    )
    g.add_argument(
        "--key",
        metavar="FILE",
        help="their public key file (`workstation examiners key --out FILE`), registered in "
        "the same act",
    )
    p.set_defaults(func=cmd_agency)
