"""Enrolment's edge cases (issue 12 item 4): names that are not UTF-8, pipes and devices, the
write lock never held while input is read, a busy gallery said in one line, and crash leftovers
under images/ removed when the gallery opens."""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workstation.audit.actions import AuditAction
from workstation.cli import main
from workstation.gallery import opening, store
from workstation.gallery.enroll import EnrollItem, enroll
from workstation.gallery.store import Gallery


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _stored_files(folder: Path) -> set[str]:
    images = folder / "images"
    # Photo copies live in shard folders; images/ itself holds only the check markers.
    return {p.relative_to(folder).as_posix() for p in images.glob("*/*") if p.is_file()}


def _stored_rows(folder: Path) -> set[str]:
    with Gallery(folder, create=False) as gallery:
        return {face.stored_path for face in gallery.all_faces() if face.stored_path}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")
def test_a_file_name_that_is_not_utf8_is_enrolled_and_shown_with_escapes(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    # "café.jpg" as Windows-1252 wrote it: the é is the single byte 0xE9.
    shutil.copyfile(photo_paths["obama"], os.fsdecode(bytes(photos) + b"/caf\xe9.jpg"))
    shutil.copyfile(photo_paths["biden"], photos / "b.jpg")
    gallery = tmp_path / "g"
    code, out, err = run("--gallery", str(gallery), "enroll", "--subject", "S-1", str(photos))
    assert code == 0, err
    assert "Traceback" not in err
    assert "2 enrolled, 0 skipped, 0 failed" in out
    assert "caf\\xe9.jpg" in out  # the name, its bad byte shown as an escape
    with Gallery(gallery, create=False) as opened:
        paths = {face.original_path for face in opened.all_faces()}
        assert any(p.endswith("caf\\xe9.jpg") for p in paths)
        assert opened.verify_audit().intact
    # Every copy under images/ belongs to a row: nothing was left behind.
    assert _stored_files(gallery) == _stored_rows(gallery)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_pipes_and_devices_are_refused_by_name_and_the_rest_is_enrolled(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    fifo = tmp_path / "waiting.jpg"
    os.mkfifo(fifo)  # opening it for reading would wait forever for a writer
    manifest = tmp_path / "people.csv"
    manifest.write_text(
        f"subject_id,image\nS-1,{fifo}\nS-2,/dev/zero\nS-3,{photo_paths['obama']}\n",
        encoding="utf-8",
    )
    gallery = tmp_path / "g"
    # In a child process with a deadline: a regression would block on the pipe, not fail.
    command = [sys.executable, "-m", "workstation", "--gallery", str(gallery), "enroll"]
    done = subprocess.run(
        [*command, "--manifest", str(manifest)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert f"({fifo}): is a named pipe (FIFO), not an image file" in done.stderr
    assert "(/dev/zero): is a device file, not an image file" in done.stderr
    assert "1 enrolled, 0 skipped, 2 failed" in done.stdout
    assert "Traceback" not in done.stderr


def test_the_write_lock_is_free_whenever_enrolment_waits_or_reports(
    gallery: Gallery, engine, photo_paths: dict[str, Path]
) -> None:
    items = [
        EnrollItem(f"S-{key}", path, key) for key, path in sorted(photo_paths.items())
    ] * 2  # the repeats are skipped: same SHA-256
    other = sqlite3.connect(gallery.db_path, timeout=0)
    steps = enroll(gallery, engine, items, batch_size=2)
    reported = 0
    try:
        while True:
            step = next(steps)
            # Another process can take the write lock at once at every step: enrolment holds
            # it only while writing a batch, never while reading photos or being reported.
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            if step.done:
                reported += 1
                if "enrolled" in step.message.split(":")[0]:
                    # Reported only after its commit: the other connection sees the face.
                    face_id = int(step.message.split("face ")[1].split()[0])
                    row = other.execute("SELECT 1 FROM faces WHERE id = ?", (face_id,))
                    assert row.fetchone() is not None
    except StopIteration as stop:
        report = stop.value
    finally:
        other.close()
    assert reported == 6 and report.enrolled == 3 and report.skipped == 3


_HOLD_WRITE_LOCK = textwrap.dedent(
    """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1])
    conn.execute("BEGIN IMMEDIATE")
    print("holding", flush=True)
    time.sleep(120)
    """
)


def test_a_busy_gallery_is_said_in_one_line_naming_it_and_its_holder(
    tmp_path: Path, photo_paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    gallery = tmp_path / "g"
    code, _, err = run(
        "--gallery", str(gallery), "enroll", "--subject", "S-1", str(photo_paths["obama"])
    )
    assert code == 0, err
    monkeypatch.setattr(opening, "BUSY_TIMEOUT_SECONDS", 1.0)
    monkeypatch.setattr(store, "BUSY_TIMEOUT_SECONDS", 1.0)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, str(gallery / "gallery.sqlite")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        code, out, err = run(
            "--gallery", str(gallery), "enroll", "--subject", "S-2", str(photo_paths["biden"])
        )
    finally:
        holder.kill()
        holder.wait()
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err and "OperationalError" not in err
    assert f"{gallery}: the gallery is busy" in lines[0]
    if sys.platform.startswith("linux"):
        assert f"process {holder.pid}" in lines[0]
    # Nothing was half-written: the photo can be enrolled now.
    code, out, err = run(
        "--gallery", str(gallery), "enroll", "--subject", "S-2", str(photo_paths["biden"])
    )
    assert code == 0 and "1 enrolled" in out, err


def test_crash_leftovers_under_images_are_removed_when_the_gallery_opens(
    tmp_path: Path, photo_paths: dict[str, Path]
) -> None:
    gallery = tmp_path / "g"
    code, _, err = run(
        "--gallery", str(gallery), "enroll", "--subject", "S-1", str(photo_paths["obama"])
    )
    assert code == 0, err
    kept = _stored_rows(gallery)
    assert len(kept) == 1 and _stored_files(gallery) == kept
    shard = gallery / "images" / "ee"
    shard.mkdir()
    orphan = shard / ("ee" * 32 + ".jpg")  # placed by a batch whose commit never came
    orphan.write_bytes(photo_paths["biden"].read_bytes())
    legacy = shard / ("ee" * 32 + ".jpg.part")  # an older version's partial copy
    legacy.write_bytes(b"half")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    import socket

    host = socket.gethostname().replace(".", "_")
    stale = shard / f"{'ff' * 32}.jpg.{host}.{dead.stdout.strip()}.pending"
    stale.write_bytes(b"pending copy of a process that is gone")
    live = shard / f"{'dd' * 32}.jpg.{host}.{os.getpid()}.pending"
    live.write_bytes(b"pending copy of a running enrolment")
    # The dead process was enrolling: its marker asks the next opening to look (opening a
    # gallery scans its photos only then, or the first time this version opens it).
    marker = gallery / "images" / f".busy.{host}.{dead.stdout.strip()}.0"
    marker.touch()
    with Gallery(gallery) as opened:
        report = opened.orphans_removed
        assert report.copies == [f"images/ee/{orphan.name}"]
        assert sorted(report.partial) == sorted(
            [f"images/ee/{legacy.name}", f"images/ee/{stale.name}"]
        )
        assert opened.verify_audit().intact
    assert not orphan.exists() and not legacy.exists() and not stale.exists()
    assert not marker.exists() and (gallery / "images" / ".checked").exists()
    assert live.exists()  # its process still runs
    assert kept <= _stored_files(gallery)
    events = []
    with Gallery(gallery, create=False, read_only=True) as opened:
        events = [e.action for e in opened.audit_events()]
    assert events[-1] == AuditAction.ENROL  # the clean-up wrote nothing into the log
