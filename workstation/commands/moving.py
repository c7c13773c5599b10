"""`workstation gallery copy SRC DEST`: move a gallery to another folder or kind (embedded <->
agency), keeping every record, photo and the audit chain (workstation.gallery.copy)."""

from __future__ import annotations

from pathlib import Path

from workstation.commands.context import EXIT_OK, CliContext, Subparsers, shown
from workstation.errors import WorkstationError
from workstation.progress import Progress, drain


def cmd_gallery(ctx: CliContext) -> int:
    from workstation.gallery.copy import copy_gallery
    from workstation.gallery.opening import gallery_kind, no_gallery_message
    from workstation.gallery.store import open_gallery

    source_folder = Path(ctx.args.source).expanduser()
    if gallery_kind(source_folder) is None:
        raise WorkstationError(f"no gallery here to copy: {no_gallery_message(source_folder)}")
    shown_messages: set[str] = set()

    def show(step: Progress) -> None:
        # One line per table (the last count of each is printed at the end), not per batch.
        what = step.message.split(" of ")[-1] if step.message.startswith("copied ") else ""
        if step.message and what not in shown_messages:
            shown_messages.add(what)
            ctx.say(step.message)

    with open_gallery(source_folder, examiner=ctx.examiner) as source:
        summary = drain(
            copy_gallery(source, Path(ctx.args.destination), database_role=ctx.args.database_role),
            show,
        )
        for problem in source.witness_problems:
            ctx.warn(f"warning: {problem}")
    if summary is None:  # only a cancel token stops it, and the command line passes none
        raise WorkstationError("the copy was cancelled")
    rows = ", ".join(f"{n:,} {table}" for table, n in summary.rows.items() if n)
    ctx.say(f"copied into {shown(summary.destination)} ({summary.kind}): {rows}")
    ctx.say(f"photos checked against their SHA-256: {summary.photos:,}")
    ctx.say(f"vectors rebuilt from the stored embeddings: {summary.vectors:,}")
    ctx.say(f"audit chain in the copy: intact ({summary.events_verified:,} events)")
    seq, digest = summary.moved_at
    ctx.say(
        f"{shown(summary.source)} was moved to {shown(summary.destination)} at {seq}:{digest}; "
        "it records nothing more (`audit verify` still checks it)"
    )
    return EXIT_OK


# ---------------------------------------------------------------------- arguments
def add_gallery_parser(sub: Subparsers) -> None:
    """The `gallery` command and its arguments."""
    p = sub.add_parser("gallery", help="move a gallery (embedded <-> agency)")
    gallery_sub = p.add_subparsers(dest="gallery_action", metavar="ACTION", required=True)
    g = gallery_sub.add_parser(
        "copy",
        help="move the gallery SRC into DEST (a new folder, or an agency gallery just made by "
        "`agency init`): every record with its id, photos checked, vectors rebuilt, the audit "
        "chain kept; SRC records nothing afterwards (administrator)",
    )
    g.add_argument("source", metavar="SRC", help="the gallery folder to move")
    g.add_argument("destination", metavar="DEST", help="where it goes")
    g.add_argument(
        "--database-role",
        metavar="ROLE",
        help="an agency DEST: the PostgreSQL role that writes the copied rows (its owner; "
        "default: your login's role)",
    )
    p.set_defaults(func=cmd_gallery)
