"""`workstation permissions`: who may read what workstation keeps on this PC, and the fix."""

from __future__ import annotations

from pathlib import Path

from workstation.audit.actions import AuditAction
from workstation.commands.context import EXIT_FAILED, EXIT_OK, CliContext, Subparsers, shown


def cmd_permissions(ctx: CliContext) -> int:
    from workstation.gallery.opening import gallery_kind
    from workstation.paths import config_dir, data_dir
    from workstation.permissions import access_policy, exposure, fix_tree

    policy = access_policy()
    ctx.say(f"policy: {policy.describe()}")
    folders = {
        Path(ctx.gallery_dir): "gallery",
        data_dir(): "data folder (default gallery, error log)",
        config_dir(): "settings folder (recent cases and probe photos)",
    }
    changed: dict[str, int] = {}
    for folder, what in folders.items():
        if not folder.exists():
            ctx.say(f"{what}: {shown(folder)} (not created yet)")
            continue
        if ctx.args.fix:
            changed[str(folder)] = fix_tree(folder, policy)
        problem = exposure(folder, policy)
        ctx.say(f"{what}: {shown(folder)}: " + (shown(problem) if problem else "private"))
    if ctx.args.fix and gallery_kind(ctx.gallery_dir) is not None:
        gallery = ctx.gallery()
        with gallery.change() as change:
            details = {"policy": policy.describe(), "changed": changed}
            change.record(AuditAction.PERMISSIONS_FIX, details)
        ctx.say(
            f"restricted {sum(changed.values())} folder and file mode(s); recorded in the audit log"
        )
    exposed = [f for f in folders if exposure(f, policy)]
    return EXIT_FAILED if exposed else EXIT_OK


# ---------------------------------------------------------------------- arguments
def add_permissions_parser(sub: Subparsers) -> None:
    """The `permissions` command and its arguments."""
    p = sub.add_parser(
        "permissions",
        help="show who may read the gallery, data and settings folders; --fix restricts them",
    )
    p.add_argument(
        "--fix",
        action="store_true",
        help="give every folder and file the private modes (owner, or owner and "
        "WORKSTATION_GROUP); audited",
    )
    p.set_defaults(func=cmd_permissions)
