"""Writing exported files so that what the audit log says was written is what is on disk.

An export is written in three steps:

1. each file is written under a temporary name in its target folder (``.NAME.PID.partial``),
   flushed and fsynced, and its SHA-256 taken from the bytes written;
2. the export's audit event, naming every file with its SHA-256 and size, is appended inside a
   write transaction, and, still inside it, each temporary file is moved to its name (refusing
   to replace an existing file unless the examiner chose to: a hard link fails on an existing
   name) and the folder fsynced;
3. the transaction commits.

A failure before the commit (a full disk, a renderer error, a name taken meanwhile) rolls the
event back and removes every temporary and moved file: a failed export leaves neither a file
nor an event. Replacing an existing file is always an explicit choice (`--overwrite`; the app
asks), and a bundle and a report that would be the same file are refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from workstation.errors import WorkstationError
from workstation.permissions import make_export_private

PARTIAL_SUFFIX = ".partial"


@dataclass
class StagedFile:
    """A file written under a temporary name beside its target, not yet in place."""

    target: Path
    temp: Path
    sha256: str
    size: int
    replaced: bool = False  # an existing file was (or will be) replaced
    placed: bool = False

    def to_dict(self, kind: str) -> dict[str, object]:
        return {
            "kind": kind,
            "path": str(self.target.resolve()),
            "sha256": self.sha256,
            "bytes": self.size,
            "replaced_existing": self.replaced,
        }


def check_targets(targets: Sequence[Path], overwrite: bool) -> None:
    """Refuse targets that are folders, that name one file twice, or that exist (unless
    `overwrite`). Raises WorkstationError naming the file."""
    seen: list[Path] = []
    for target in targets:
        if target.is_dir():
            raise WorkstationError(f"{target}: is a folder; give a file name to export to")
        for earlier in seen:
            if _same_file(earlier, target):
                raise WorkstationError(
                    f"{target}: the report and the evidence bundle would be the same file "
                    f"({earlier}); give them different names (the bundle is .json, the report "
                    ".pdf)"
                )
        seen.append(target)
        if (target.exists() or target.is_symlink()) and not overwrite:
            raise WorkstationError(
                f"{target}: already exists; nothing was written. Choose another name, or "
                "replace it explicitly (--overwrite)"
            )


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def stage(target: Path, write: Callable[[Path], None]) -> StagedFile:
    """Write a file under a temporary name beside `target` with `write(temp_path)`, make it
    private, fsync it and hash it. Raises WorkstationError naming `target` on failure."""
    target = Path(target)
    temp = target.with_name(f".{target.name}.{os.getpid()}{PARTIAL_SUFFIX}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write(temp)
        if not temp.is_file() or temp.stat().st_size == 0:
            raise OSError("nothing was written (check the folder is writable)")
        make_export_private(temp)
        digest = hashlib.sha256()
        size = 0
        with open(temp, "rb+") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
            os.fsync(handle.fileno())
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise WorkstationError(f"{target}: could not be written ({exc.strerror or exc})") from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return StagedFile(target, temp, digest.hexdigest(), size, replaced=target.exists())


def publish(staged: Sequence[StagedFile], overwrite: bool) -> None:
    """Move staged files to their names (call inside the export's write transaction)."""
    for item in staged:
        try:
            if overwrite:
                item.replaced = item.target.exists()
                os.replace(item.temp, item.target)
            else:
                _link_no_clobber(item.temp, item.target)
        except FileExistsError as exc:
            raise WorkstationError(
                f"{item.target}: appeared while the export was being written; nothing was "
                "replaced. Choose another name, or replace it explicitly (--overwrite)"
            ) from exc
        except OSError as exc:
            raise WorkstationError(
                f"{item.target}: could not be put in place ({exc.strerror or exc})"
            ) from exc
        item.placed = True
    _fsync_folders(item.target for item in staged)


def _link_no_clobber(temp: Path, target: Path) -> None:
    """Give `temp` the name `target` only if no file has it (atomic where hard links exist)."""
    try:
        os.link(temp, target)
    except FileExistsError:
        raise
    except OSError:
        # No hard links here (FAT, some network shares): check, then rename.
        if target.exists():
            raise FileExistsError(str(target)) from None
        os.replace(temp, target)
        return
    temp.unlink()


def discard(staged: Sequence[StagedFile]) -> None:
    """Remove the temporary files, and the placed ones of an export that did not commit."""
    for item in staged:
        item.temp.unlink(missing_ok=True)
        if item.placed and not item.replaced:
            item.target.unlink(missing_ok=True)


def _fsync_folders(paths: Iterable[Path]) -> None:
    if os.name == "nt":
        return
    for folder in sorted({path.parent for path in paths}):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
