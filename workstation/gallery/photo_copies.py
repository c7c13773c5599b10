"""The gallery's copies of enrolled photos: written durably, placed inside the write lock, and
cleaned up after a crash.

Layout: ``images/ab/<sha256><suffix>``, named by the photo's SHA-256, one file per photo row.

How a copy is made (enrolment):

1. a worker thread writes the very bytes it hashed and decoded into a *pending* file next to
   its final place, ``<sha256><suffix>.<host>.<pid>.pending``, and fsyncs it; no lock is held
   (reading a slow network file blocks nobody);
2. inside the batch's write transaction the pending file is renamed to its final name (a rename
   reads no input), and the folder is fsynced before the commit;
3. a photo whose row is refused or rolled back has its copy removed again.

So a final-named file without a row can only be left by a crash between a rename and its
commit (or between a deletion's commit and its unlink). Work that can leave one (an enrolment,
a change that deletes photos) first drops a marker, ``images/.busy.<host>.<pid>.<n>``, and
removes it when done. When a gallery opens for writing it looks at those markers only (one small
listing): when a marker's process is gone, or when the folder was never checked by this version
(no ``images/.checked``), `remove_orphans` runs, holding the write lock (no other process is then
between a rename and a commit): it removes every final-named file no row names, every pending
file of a process that is gone (same host) or older than a day (another host sharing the
folder), and the ``.part`` files of older versions. Opening a gallery therefore costs no scan of
its photos unless a crash calls for one.

Deleting a copy unlinks it and fsyncs its folder. Overwriting the bytes first is not done: on
SSDs and copy-on-write file systems an overwrite goes to new blocks and does not erase the old
ones, so erasure rests on full-disk encryption (docs/DEPLOYMENT.md).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

IMAGES_DIR = "images"
PENDING_SUFFIX = ".pending"
LEGACY_PARTIAL_SUFFIX = ".part"  # written by versions before the pending files
# A pending file of another host (a gallery on a shared folder) is only known dead by its age:
# the longest a prepared photo waits for its batch is seconds.
PENDING_MAX_AGE_SECONDS = 24 * 3600


def stored_relative(sha256: str, suffix: str) -> str:
    """Where the copy of the photo with this SHA-256 lives, relative to the gallery folder."""
    return f"{IMAGES_DIR}/{sha256[:2]}/{sha256}{suffix.lower() or '.img'}"


def _owner_tag() -> str:
    return f"{_host()}.{os.getpid()}"


def write_pending_copy(folder: Path, relative: str, data: bytes) -> Path:
    """Write a photo's bytes durably to a pending file beside its final place (no lock held)."""
    target = folder / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    pending = target.with_name(f"{target.name}.{_owner_tag()}{PENDING_SUFFIX}")
    with open(pending, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return pending


def place_copy(folder: Path, pending: Path, relative: str) -> Path:
    """Move a pending copy to its final name (inside the write transaction); returns the final
    path. A file already there has no row (a photo row is looked up first by the caller): it is
    an orphan of a crash, and the checked bytes replace it."""
    target = folder / relative
    os.replace(pending, target)
    return target


def fsync_folders(paths: Iterable[Path]) -> None:
    """Make renames and unlinks in these files' folders durable (POSIX; no-op on Windows)."""
    if os.name == "nt":
        return
    for folder in sorted({path.parent for path in paths}):
        try:
            descriptor = os.open(folder, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(descriptor)
        except OSError:
            pass
        finally:
            os.close(descriptor)


def unlink_durably(paths: Iterable[Path]) -> list[Path]:
    """Unlink files (missing ones are fine) and fsync their folders; returns those removed."""
    removed: list[Path] = []
    for path in paths:
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            continue
    fsync_folders(removed)
    return removed


BUSY_PREFIX = ".busy."
CHECKED_NAME = ".checked"
_busy_counter = iter(range(1 << 62))


def mark_busy(folder: Path) -> Path:
    """Drop a marker saying this process may leave photo files without rows if it dies now."""
    images = folder / IMAGES_DIR
    images.mkdir(parents=True, exist_ok=True)
    marker = images / f"{BUSY_PREFIX}{_owner_tag()}.{next(_busy_counter)}"
    marker.touch()
    return marker


def clear_busy(marker: Path | None) -> None:
    if marker is not None:
        marker.unlink(missing_ok=True)


def check_needed(folder: Path) -> list[Path]:
    """The markers of processes that died at work, plus the check marker when this folder was
    never checked; empty when no scan is needed. Lists images/ only (shard folders and
    markers), not the photos."""
    images = folder / IMAGES_DIR
    try:
        entries = list(os.scandir(images))
    except FileNotFoundError:
        return []
    now = time.time()
    me = _host()
    dead = [
        Path(entry.path)
        for entry in entries
        if entry.name.startswith(BUSY_PREFIX) and _marker_is_dead(entry, me, now)
    ]
    if not any(entry.name == CHECKED_NAME for entry in entries):
        dead.append(images / CHECKED_NAME)
    return dead


def finish_check(folder: Path, markers: list[Path]) -> None:
    for marker in markers:
        if marker.name != CHECKED_NAME:
            marker.unlink(missing_ok=True)
    (folder / IMAGES_DIR / CHECKED_NAME).touch()


def _host() -> str:
    return socket.gethostname().replace(".", "_").replace("/", "_") or "host"


def _marker_is_dead(entry: os.DirEntry[str], me: str, now: float) -> bool:
    """A busy marker (BUSY_PREFIX + HOST.PID.N) whose writer is gone."""
    parts = entry.name[len(BUSY_PREFIX) :].rsplit(".", 2)
    host, pid = (parts[0], parts[1]) if len(parts) == 3 else ("", "")
    return _left_by_dead_writer(entry, host, pid, me, now)


def _left_by_dead_writer(entry: os.DirEntry[str], host: str, pid: str, me: str, now: float) -> bool:
    """A file written by process `pid` on `host` is dead when it is older than any enrolment
    batch can be, or when its writer ran on this host and is no longer alive (a file from
    another host is left to age: its process cannot be asked)."""
    try:
        age = now - entry.stat(follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return False
    if age > PENDING_MAX_AGE_SECONDS:
        return True
    if host != me or not pid.isdigit():
        return False
    return not _process_alive(int(pid))


@dataclass
class OrphanReport:
    """Files removed from images/ because no photo row named them."""

    copies: list[str] = field(default_factory=list)  # final-named, no row (crash mid-batch)
    partial: list[str] = field(default_factory=list)  # pending or .part files of dead writers

    def __bool__(self) -> bool:
        return bool(self.copies or self.partial)

    def summary(self) -> str:
        return (
            f"removed {len(self.copies)} photo cop(ies) no photo row names and "
            f"{len(self.partial)} partial file(s) left by an interrupted enrolment"
        )


def remove_orphans(folder: Path, stored: set[str]) -> OrphanReport:
    """Remove files under images/ that no photo row names (call holding the write lock).

    `stored` holds every row's stored path (relative, '/'-separated).
    """
    report = OrphanReport()
    images = folder / IMAGES_DIR
    now = time.time()
    me = _host()
    doomed: list[Path] = []
    try:
        shards = [entry for entry in os.scandir(images) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return report
    for shard in shards:
        for entry in os.scandir(shard.path):
            if not entry.is_file(follow_symlinks=False):
                continue
            relative = f"{IMAGES_DIR}/{shard.name}/{entry.name}"
            if entry.name.endswith(PENDING_SUFFIX):
                if _pending_is_dead(entry, me, now):
                    report.partial.append(relative)
                    doomed.append(Path(entry.path))
            elif entry.name.endswith(LEGACY_PARTIAL_SUFFIX):
                report.partial.append(relative)
                doomed.append(Path(entry.path))
            elif relative not in stored:
                report.copies.append(relative)
                doomed.append(Path(entry.path))
    unlink_durably(doomed)
    return report


def _pending_is_dead(entry: os.DirEntry[str], me: str, now: float) -> bool:
    """A pending copy (NAME.HOST.PID + PENDING_SUFFIX) whose writer is gone."""
    parts = entry.name[: -len(PENDING_SUFFIX)].rsplit(".", 2)
    host, pid = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
    return _left_by_dead_writer(entry, host, pid, me, now)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate it: rely on the age alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
