"""Commands that only read: a mistyped --gallery creates nothing, and `audit verify` never
writes the database (no migration, read-only folders)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlite_file import append_unsigned_event

from workstation.cli import main
from workstation.errors import GalleryError
from workstation.gallery.database import SqliteDatabase
from workstation.gallery.schema import MIGRATIONS, SCHEMA_VERSION
from workstation.gallery.store import Gallery

REPO = Path(__file__).resolve().parents[2]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


COMMANDS_THAT_NEVER_CREATE = [
    ["search", "--case", "C", "--purpose", "p", "probe.jpg"],
    ["footage", "--case", "C", "--purpose", "p", "video.mp4"],
    ["compare", "--case", "C-1", "--purpose", "test", "a.jpg", "b.jpg"],
    ["subjects", "--case", "C", "--purpose", "p"],
    ["subjects", "delete", "P-1", "--reason", "r"],
    ["audit", "verify"],
    ["audit", "show", "--case", "C", "--purpose", "p"],
    ["decide", "--search", "1", "--subject", "P-1", "--decision", "excluded"],
    ["export", "--case", "C", "--out", "x.json"],
    ["index", "info"],
    ["index", "rebuild"],
    ["calibrate"],
    ["duplicates", "--case", "C", "--purpose", "p"],
    ["merge", "P-1", "P-2", "--reason", "r"],
    ["reembed"],
]


@pytest.mark.parametrize("argv", COMMANDS_THAT_NEVER_CREATE, ids=lambda a: " ".join(a[:2]))
@pytest.mark.parametrize("folder_exists", [False, True], ids=["no-folder", "empty-folder"])
def test_a_mistyped_gallery_is_reported_and_nothing_is_created(
    tmp_path: Path, argv: list[str], folder_exists: bool
) -> None:
    typo = tmp_path / "galery"
    if folder_exists:
        typo.mkdir()
    os.chdir(tmp_path)  # relative file arguments (x.json) land here if anything is written
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run("--gallery", str(typo), *argv)
    assert code == 1
    assert err == (
        f"error: {typo}: no gallery here (no gallery.sqlite, no gallery.toml); check the folder "
        "given with --gallery or in the settings. Only enrolment creates a new gallery\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not folder_exists or list(typo.iterdir()) == []


def test_enrolment_still_creates_a_gallery(tmp_path: Path, photo_paths: dict[str, Path]) -> None:
    new = tmp_path / "new" / "gallery"
    code, _, err = run(
        "--gallery", str(new), "enroll", "--subject", "P-1", str(photo_paths["obama"])
    )
    assert code == 0, err
    assert (new / "gallery.sqlite").is_file()


# ---------------------------------------------------------------------- audit verify
def _old_gallery(folder: Path, events: int) -> Path:
    """A gallery as the first program version wrote it (schema 1), with audit events."""
    folder.mkdir(parents=True)
    conn = sqlite3.connect(folder / "gallery.sqlite")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    MIGRATIONS[0](SqliteDatabase(conn, "test", 30_000))
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    for number in range(events):
        conn.execute("BEGIN IMMEDIATE")
        append_unsigned_event(conn, "examiner1", "enrol", {"n": number})
        conn.execute("COMMIT")
    conn.close()
    return folder


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_verify_reads_an_older_schema_without_migrating_it(tmp_path: Path) -> None:
    assert SCHEMA_VERSION > 1
    folder = _old_gallery(tmp_path / "old", events=3)
    before = _digest(folder)
    code, out, err = run("--gallery", str(folder), "audit", "verify")
    assert code == 0, err
    assert "audit log intact: 3 events" in out
    # The database is byte for byte as it was; SQLite's read-only connection leaves an empty
    # -wal and its shared-memory index beside it (it may not delete them).
    after = _digest(folder)
    assert after["gallery.sqlite"] == before["gallery.sqlite"]
    assert after.get("gallery.sqlite-wal", hashlib.sha256(b"").hexdigest()) == (
        hashlib.sha256(b"").hexdigest()
    )
    conn = sqlite3.connect(folder / "gallery.sqlite")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()


def test_read_only_opening_cannot_write(tmp_path: Path) -> None:
    folder = _old_gallery(tmp_path / "old", events=1)
    with Gallery(folder, read_only=True) as gallery:
        with pytest.raises(GalleryError, match="opened read-only"), gallery.transaction():
            pass
        # Nor can anything below the gallery's methods: the connection itself is read-only.
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            gallery.conn.execute("DELETE FROM audit")


def _verify_on_read_only(folder: Path) -> subprocess.CompletedProcess[str]:
    """`workstation audit verify` where the folder cannot be written, even by root."""
    command = [sys.executable, "-m", "workstation", "--gallery", str(folder), "audit", "verify"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if os.geteuid() != 0:
        for path in [folder, *folder.iterdir()]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    # root ignores file modes: a read-only bind mount in a private mount namespace instead.
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare to make a read-only folder as root")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare -m is not allowed here")
    script = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(folder), *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_verify_a_read_only_copy_of_a_cleanly_closed_gallery(tmp_path: Path) -> None:
    source = _old_gallery(tmp_path / "live", events=4)
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    assert sorted(p.name for p in copy.iterdir()) == ["gallery.sqlite"]  # no -wal, no -shm
    result = _verify_on_read_only(copy)
    assert result.returncode == 0, result.stderr
    assert "audit log intact: 4 events" in result.stdout
    assert sorted(p.name for p in copy.iterdir()) == ["gallery.sqlite"]


def test_verify_a_read_only_copy_taken_while_the_gallery_was_open(tmp_path: Path) -> None:
    source = _old_gallery(tmp_path / "live", events=2)
    copy_with_shm, copy_without_shm = tmp_path / "with-shm", tmp_path / "without-shm"
    keeper = sqlite3.connect(source / "gallery.sqlite")  # keeps the WAL from being folded in
    keeper.execute("BEGIN IMMEDIATE")
    append_unsigned_event(keeper, "examiner2", "search", {})
    keeper.execute("COMMIT")
    assert (source / "gallery.sqlite-wal").stat().st_size > 0
    shutil.copytree(source, copy_with_shm)
    shutil.copytree(source, copy_without_shm)
    keeper.close()
    (copy_without_shm / "gallery.sqlite-shm").unlink()

    result = _verify_on_read_only(copy_with_shm)
    assert result.returncode == 0, result.stderr
    assert "audit log intact: 3 events" in result.stdout  # the event still in the WAL counts

    result = _verify_on_read_only(copy_without_shm)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "gallery.sqlite-wal: holds changes not yet written" in result.stderr
    assert "copy the whole gallery folder to a writable place" in result.stderr
