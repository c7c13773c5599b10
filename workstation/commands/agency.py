"""`workstation agency ...`: set up an agency gallery (records in PostgreSQL, vectors in Milvus)
and see what a workstation connects to."""

from __future__ import annotations

import json
from pathlib import Path

from workstation.commands.context import EXIT_OK, CliContext, shown
from workstation.errors import WorkstationError


def cmd_agency(ctx: CliContext) -> int:
    if ctx.args.agency_action == "init":
        return _init(ctx)
    return _info(ctx)


def _init(ctx: CliContext) -> int:
    from workstation.gallery.agency import init_agency

    args = ctx.args
    folder = Path(args.folder)
    config = init_agency(
        folder,
        args.database,
        args.vectors,
        collection=args.collection,
        index_type=args.index,
        dim=args.dim,
    )
    ctx.say(f"agency gallery ready: {shown(folder / 'gallery.toml')}")
    ctx.say(f"records: {shown(config.database_url)}")
    ctx.say(f"vectors: {shown(config.vectors.where)} ({config.vectors.index_type})")
    ctx.say(
        "next: the first examiner to open it (`workstation --gallery "
        f"{shown(folder)} examiners whoami`) becomes its first administrator"
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
