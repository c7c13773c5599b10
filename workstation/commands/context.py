"""What every `workstation` subcommand receives: the parsed options, output streams, and the
gallery and face engine, each opened once and only when the command needs it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

from workstation.errors import WorkstationError
from workstation.identity import Examiner
from workstation.paths import default_gallery_dir

if TYPE_CHECKING:
    from workstation.gallery.store import Gallery
    from workstation.reports.case_report import PdfRenderer
    from workstation.settings import Settings
    from workstation.vision.engine import FaceEngine

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Characters a terminal may act on instead of showing: C0 and C1 controls (ESC starts the ANSI
# sequences that recolour or hide text, move the cursor, retitle the window; CR overwrites the
# line; 0x9B is a one-byte CSI), DEL, the Unicode line and paragraph separators, and the
# bidirectional embeddings, overrides and isolates (they reorder the rest of the line, so a
# name could make "score 0.31" read as another number). Names, paths, notes and case numbers
# come from people and files: they are printed with these escaped, as \x1b or \u202e.
_TERMINAL_UNSAFE = [
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
]
_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_ESCAPE_ALL = {
    code: _NAMED.get(code, f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    for code in _TERMINAL_UNSAFE
}
# Our own output lays itself out with line breaks and tabs; everything else is escaped.
_ESCAPE_KEEP_LAYOUT = {k: v for k, v in _ESCAPE_ALL.items() if k not in (0x09, 0x0A)}
# json.dumps already escapes C0 controls; the rest become \uXXXX, which JSON reads back the same.
_ESCAPE_IN_JSON = {code: f"\\u{code:04x}" for code in _TERMINAL_UNSAFE if code >= 0x7F}


def shown(value: object) -> str:
    """A stored or outside value (name, id, path, note) for one line of terminal output: every
    control character escaped, line breaks and tabs included (a name cannot start a fake line)."""
    return ("" if value is None else str(value)).translate(_ESCAPE_ALL)


def terminal_text(text: str) -> str:
    """A line (or lines) about to be printed: control characters escaped, our own line breaks
    and tabs kept. Values inside it should already have gone through `shown`."""
    return text.translate(_ESCAPE_KEEP_LAYOUT)


def json_text(value: Any) -> str:
    """One JSON value on one line, safe for a terminal and exact for a program reading it."""
    return json.dumps(value, ensure_ascii=False).translate(_ESCAPE_IN_JSON)


@dataclass(frozen=True)
class AppHooks:
    """What the program entry (workstation.entry, above both the CLI and the GUI) hands the
    commands: the desktop app and the Qt PDF renderer. The commands never import the GUI;
    without these (workstation.cli.main called directly) `gui` and `export --pdf` say so."""

    # gallery, user (--user, a test hook; None: the OS login), backend
    run_gui: Callable[[Path, str | None, str | None], int] | None = None
    render_pdf: PdfRenderer | None = None


class CliContext:
    """What every subcommand needs: the gallery folder, the examiner, the engine (loaded once)."""

    def __init__(
        self,
        args: argparse.Namespace,
        out: TextIO,
        err: TextIO,
        hooks: AppHooks | None = None,
    ) -> None:
        self.args = args
        self.out = out
        self.err = err
        self.hooks = hooks or AppHooks()
        self.gallery_dir = (
            Path(args.gallery) if args.gallery else settings_gallery() or default_gallery_dir()
        )
        # The examiner is the OS login with the key in their profile; --user is a test hook that
        # must match the name registered for that key (it never changes whose key signs).
        self.examiner = Examiner.current(args.user, passphrase=_ask_passphrase)
        self._engine: FaceEngine | None = None
        self._gallery: Gallery | None = None

    def engine(self, follow_gallery: bool = True) -> FaceEngine:
        """The face engine, loaded once.

        Args:
            follow_gallery: use the configuration the gallery was built with, unless --backend
                says otherwise (see `configuration_key_for_gallery`); `reembed` passes False,
                since it moves the gallery to the configuration chosen.
        """
        if self._engine is None:
            from workstation.gallery.store import Gallery
            from workstation.vision.registry import configuration_key_for_gallery, create_engine

            # Command-line options win; otherwise the saved settings (the same the app uses).
            saved = saved_settings()
            model_dir = self.args.model_dir or saved.model_dir
            key = self.args.backend or saved.backend
            if follow_gallery and not self.args.backend:
                bound = (
                    self._gallery.model_id
                    if self._gallery is not None
                    else Gallery.bound_model_of(self.gallery_dir)
                )
                key = configuration_key_for_gallery(bound, key)
                if key != saved.backend:
                    self.warn(
                        f"note: this gallery was built with the '{key}' face model "
                        f"configuration, so it is used here; the setting '{saved.backend}' "
                        "applies to new galleries and to `workstation reembed`"
                    )
            self._engine = create_engine(
                key,
                model_dir=Path(model_dir) if model_dir else None,
                insightface_pack=self.args.insightface_pack or saved.insightface_pack,
            )
        return self._engine

    def gallery(self, create: bool = False, read_only: bool = False) -> Gallery:
        """The gallery, opened once.

        Args:
            create: make a new gallery when the folder holds none. Only enrolment passes True:
                any other command on a mistyped --gallery says there is no gallery there and
                creates nothing.
            read_only: open the database without writing (no migration) for commands that
                only read (listing subjects, showing and verifying the audit log).
        """
        if self._gallery is None:
            from workstation.gallery.store import open_gallery

            self._gallery = open_gallery(
                self.gallery_dir, examiner=self.examiner, create=create, read_only=read_only
            )
            from workstation.permissions import exposure_warnings

            for problem in exposure_warnings(self.gallery_dir):
                self.warn(f"warning: {problem}")
        return self._gallery

    @property
    def user(self) -> str:
        """The name the examiner acts under (the OS login, or --user in tests)."""
        return self.examiner.name

    def say(self, text: str) -> None:
        """Print our output; stored values in it go through `shown` first."""
        print(terminal_text(text), file=self.out, flush=True)

    def warn(self, text: str) -> None:
        """Print one warning or error line (it names files and records: all escaped)."""
        print(shown(text), file=self.err, flush=True)

    def json_line(self, value: Any) -> None:
        print(json_text(value), file=self.out, flush=True)

    def close(self) -> None:
        if self._gallery is not None:
            for problem in self._gallery.witness_problems:
                self.warn(f"warning: {problem}")
            self._gallery.close()


def _ask_passphrase(key_path: str) -> str | None:
    """The passphrase of a protected key, asked at the terminal (None when there is none: the
    WORKSTATION_KEY_PASSPHRASE environment variable is read before this is asked)."""
    import getpass
    import sys

    if not sys.stdin.isatty():
        return None
    return getpass.getpass(f"passphrase of your examiner key ({key_path}): ") or None


def saved_settings() -> Settings:
    """The saved settings, or defaults when the file is damaged (commands must still run)."""
    from workstation.settings import Settings, load_settings

    try:
        return load_settings()
    except WorkstationError:
        return Settings()


def settings_gallery() -> Path | None:
    folder = saved_settings().gallery
    return Path(folder) if folder else None


# ---------------------------------------------------------------------- enroll


# ---------------------------------------------------------------------- arguments
# The subcommands' parser, as each commands module receives it to declare its own commands.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def authorisation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--authorised-by", metavar="NAME", help="who approved the case's searches (optional)"
    )
    parser.add_argument("--authorised-at", metavar="DATE", help="when they approved them")
    parser.add_argument(
        "--authorisation", metavar="REF", help="the approval's reference (e.g. order number)"
    )


def read_case_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--case and --purpose on a command that consults records (the read is recorded)."""
    parser.add_argument(
        "--case",
        metavar="ID",
        help=f"case number {what} serves (required: consultation is recorded in the audit log)",
    )
    parser.add_argument("--purpose", metavar="TEXT", help=f"purpose of {what} (required)")
