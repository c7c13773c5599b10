"""What every `workstation` subcommand receives: the parsed options, output streams, and the
gallery and face engine, each opened once and only when the command needs it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, TextIO

from workstation.errors import WorkstationError
from workstation.paths import current_user, default_gallery_dir

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliContext:
    """What every subcommand needs: the gallery folder, the examiner, the engine (loaded once)."""

    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err
        self.gallery_dir = (
            Path(args.gallery) if args.gallery else settings_gallery() or default_gallery_dir()
        )
        self.user = args.user or current_user()
        self._engine = None
        self._gallery = None

    def engine(self):  # type: ignore[no-untyped-def]
        if self._engine is None:
            from workstation.vision.engine import create_engine

            # Command-line options win; otherwise the saved settings (the same the app uses).
            saved = saved_settings()
            model_dir = self.args.model_dir or saved.model_dir
            self._engine = create_engine(
                self.args.backend or saved.backend,
                model_dir=Path(model_dir) if model_dir else None,
                insightface_pack=self.args.insightface_pack or saved.insightface_pack,
            )
        return self._engine

    def gallery(self, create: bool = False, read_only: bool = False):  # type: ignore[no-untyped-def]
        """The gallery, opened once.

        Args:
            create: make a new gallery when the folder holds none. Only enrolment passes True:
                any other command on a mistyped --gallery says there is no gallery there and
                creates nothing.
            read_only: open the database without writing (no migration) for commands that
                only read (listing subjects, showing and verifying the audit log).
        """
        if self._gallery is None:
            from workstation.gallery.store import Gallery

            self._gallery = Gallery(
                self.gallery_dir, user=self.user, create=create, read_only=read_only
            )
        return self._gallery

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def json_line(self, value: Any) -> None:
        print(json.dumps(value, ensure_ascii=False), file=self.out, flush=True)

    def close(self) -> None:
        if self._gallery is not None:
            self._gallery.close()


def saved_settings():  # type: ignore[no-untyped-def]
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
