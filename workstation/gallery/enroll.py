"""Enrolment: photos into the gallery, from paths, folders or a CSV manifest.

Enrolment is a generator that yields `Progress` after each photo, checks the cancel token
between photos and returns an `EnrollReport`. Photos are read, decoded, analysed and copied
into the gallery (as pending files) by a small thread pool ahead of the writer, holding no
lock; they are then written several per transaction, each photo (subject, image, face) with its
own audit event in that transaction, inside its own savepoint, and reported only once that
transaction has committed (a photo reported "enrolled" survives kill -9). A bad photo or CSV
row, a pipe or device file, a file name that is not UTF-8, is reported by name and the rest
goes on. The same photo (by SHA-256) is never enrolled twice. When a photo holds several faces
the largest is enrolled and the others are reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstation.audit.actions import AuditAction
from workstation.domain import BBox, Face
from workstation.errors import GalleryError, ImageError, NoFaceError, WorkstationError
from workstation.gallery.change import GalleryChange
from workstation.gallery.index_build import rebuild_index
from workstation.gallery.photo_copies import (
    clear_busy,
    fsync_folders,
    mark_busy,
    place_copy,
    stored_relative,
    unlink_durably,
    write_pending_copy,
)
from workstation.gallery.store import Gallery
from workstation.gallery.watches import run_watches
from workstation.hashing import sha256_bytes
from workstation.paths import path_text, text_of
from workstation.progress import CancelToken, Progress, Work
from workstation.tabular import DELIMITERS, read_table
from workstation.vision.cvcompat import serial_inference
from workstation.vision.engine import FaceEngine, MainFace
from workstation.vision.images import decode_image, iter_image_files, read_input_file

ENROLLED, SKIPPED, FAILED = "enrolled", "skipped", "failed"
log = logging.getLogger(__name__)

# Two threads prepare photos (one decodes while the other holds the engine) on 2 cores.
PIPELINE_WORKERS = 2
# Photos per transaction, and the longest a prepared photo waits to be written.
BATCH_PHOTOS = 16
BATCH_SECONDS = 1.0
# A long enrolment saves the vector index this often (between batches).
INDEX_SAVE_SECONDS = 30.0
# Below this many photos, loading a second engine instance costs more than it saves.
REPLICA_MIN_PHOTOS = 12


@dataclass(frozen=True)
class EnrollItem:
    """One photo to enrol for one subject; `source` says where the request came from."""

    subject_id: str
    image: Path
    source: str
    name: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    # The face to enrol in a photo of several people (a manifest's `box` column, "X,Y,W,H"):
    # its landmarks are looked for inside the box, as for a box drawn in the app.
    box: BBox | None = None


@dataclass(frozen=True)
class EnrollOutcome:
    source: str
    path: str
    subject_id: str | None
    status: str
    message: str
    face_id: int | None = None
    other_faces: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        where = self.source if self.source == self.path else f"{self.source} ({self.path})"
        return f"{self.status}: {where}: {self.message}"


@dataclass
class EnrollReport:
    outcomes: list[EnrollOutcome] = field(default_factory=list)
    cancelled: bool = False
    # Seconds spent per stage, summed over photos (decode, analyze, copy on worker threads;
    # wait and write on the enrolling thread).
    timings: dict[str, float] = field(default_factory=dict)
    # Cold-case watches searched against the new faces after the enrolment (gallery.watches):
    # the hits found, and the problem in words when the watches could not be searched.
    watch_hits: list[Any] = field(default_factory=list)
    watch_problem: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def enrolled(self) -> int:
        return self.count(ENROLLED)

    @property
    def skipped(self) -> int:
        return self.count(SKIPPED)

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    def summary(self) -> str:
        text = f"{self.enrolled} enrolled, {self.skipped} skipped, {self.failed} failed"
        text += " (cancelled before the end)" if self.cancelled else ""
        if self.watch_hits:
            watches = sorted({h.watch_id for h in self.watch_hits})
            text += f"; {len(self.watch_hits)} new face(s) matched watch(es) " + ", ".join(
                str(w) for w in watches
            )
        if self.watch_problem:
            text += f"; watches not searched: {self.watch_problem}"
        return text


def read_manifest(csv_path: Path) -> tuple[list[EnrollItem], list[EnrollOutcome]]:
    """Parse a manifest (columns subject_id,image; optional name and box, "X,Y,W,H", for the
    face to enrol in a photo of several people; other columns become attributes).

    The file is read by `workstation.tabular.read_table`: UTF-8 or UTF-16, comma-, tab- or
    semicolon-separated. Relative image paths are relative to the manifest's folder. Returns
    the good rows as items and each bad row as a failed outcome naming its line.
    """
    table = read_table(csv_path, "manifest")
    missing = {"subject_id", "image"} - set(table.columns)
    if missing:
        raise WorkstationError(
            f"{csv_path}: the manifest needs the columns subject_id and image "
            f"(missing: {', '.join(sorted(missing))}; found: "
            f"{', '.join(table.columns) or 'none'}; read as {table.encoding}, separated by "
            f"{DELIMITERS[table.delimiter]}s)"
        )
    items: list[EnrollItem] = []
    bad: list[EnrollOutcome] = []
    for row in table.rows:
        source, clean = table.where(row), row.values
        if row.too_many_fields:
            bad.append(_bad_row(source, clean, "the row has more fields than the header"))
            continue
        subject_id, image = clean.get("subject_id", ""), clean.get("image", "")
        if not subject_id:
            bad.append(_bad_row(source, clean, "subject_id is empty"))
            continue
        if not image:
            bad.append(_bad_row(source, clean, "image is empty"))
            continue
        path = Path(image).expanduser()
        if not path.is_absolute():
            path = csv_path.parent / path
        box = None
        if clean.get("box"):
            try:
                box = BBox.parse(clean["box"])
            except ValueError as exc:
                bad.append(_bad_row(source, clean, f"box: {exc}"))
                continue
        attributes = {
            k: v for k, v in clean.items() if k not in ("subject_id", "image", "name", "box") and v
        }
        items.append(
            EnrollItem(subject_id, path, source, clean.get("name") or None, attributes, box)
        )
    return items, bad


def _bad_row(source: str, row: dict[str, str], reason: str) -> EnrollOutcome:
    return EnrollOutcome(
        source, row.get("image", ""), row.get("subject_id") or None, FAILED, reason
    )


def items_for_subject(
    subject_id: str, paths: list[Path], name: str | None = None
) -> list[EnrollItem]:
    """Photos (files, or folders searched recursively) for one subject."""
    return [EnrollItem(subject_id, p, path_text(p), name) for p in iter_image_files(paths)]


def enroll(
    gallery: Gallery,
    engine: FaceEngine,
    items: list[EnrollItem],
    cancel: CancelToken | None = None,
    already_failed: list[EnrollOutcome] | None = None,
    workers: int = PIPELINE_WORKERS,
    batch_size: int = BATCH_PHOTOS,
) -> Work[EnrollReport]:
    """Enrol items; yields progress after each photo and returns an EnrollReport.

    Pipelined: `workers` threads read, hash, decode and analyse photos ahead, each with its own
    instance of the engine's models (see `FaceEngine.replicas`), and copy each new photo into
    the gallery as a pending file. This thread collects up to `batch_size` prepared photos (or
    BATCH_SECONDS' worth) without holding any lock, then writes them in one transaction, each
    photo with its own audit event and savepoint, commits, and only then reports them. A crash
    loses at most the batch being written, which was never reported; a re-run skips every
    committed photo by its SHA-256. Cancelling (checked between photos) stops there: the photos
    collected but not yet written are dropped (a re-run enrols them).

    The write lock is held only while a batch is written (milliseconds per photo), never while
    input is read: a slow network file blocks no other process.
    """
    gallery.check_model(engine.model)
    report = EnrollReport(outcomes=list(already_failed or []))
    if gallery.face_count():
        # Bring the index in step first (catch up or rebuild), so that every batch's faces are
        # added to it in place; an empty gallery's index is made by the first batch.
        gallery.index()
    known = gallery.enrolled_sha256s()
    total = len(items)
    timings = report.timings
    yield Progress(0, total, "starting")
    done = 0
    # One engine per worker so that inference runs on both cores at once (an engine serialises
    # its own); the extra instances are loaded once and kept by the engine. Measured on 2 cores:
    # 23.5 photos/s with two engines against 17.8 with one shared.
    # A large enrolment runs on instances of its own, never on the caller's engine: an analyst
    # searching meanwhile (the GUI shares that engine) then waits for a core, not for the
    # enrolment's inference lock.
    engines = (
        engine.replicas(max(1, workers) + 1)[1:] or [engine]
        if len(items) >= REPLICA_MIN_PHOTOS
        else [engine]
    )
    assigned = threading.local()
    handed_out = iter(range(1 << 30))
    hand_lock = threading.Lock()

    def engine_for_thread() -> FaceEngine:
        if not hasattr(assigned, "engine"):
            with hand_lock:
                assigned.engine = engines[next(handed_out) % len(engines)]
        return assigned.engine

    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="enrol")
    pending: deque[Future[_Prepared]] = deque()
    queue = iter(items)
    window = 2 * max(1, workers) + 2  # bounds the decoded photos held in memory
    writer = _BatchWriter(gallery, engine)
    batch: list[_Prepared] = []
    batch_started = 0.0
    finished = False
    last_save = time.perf_counter()
    folder = gallery.folder
    # Until the end, a crash may leave pending or placed copies without rows: the marker makes
    # the next opening of the gallery look for them (gallery.photo_copies).
    busy = mark_busy(folder)
    inference = ExitStack()
    try:
        # Each worker runs its own engine on one core (see serial_inference); a lone worker
        # keeps OpenCV's threads.
        inference.enter_context(serial_inference(len(engines) > 1 and workers > 1))
        while True:
            while len(pending) < window:
                item = next(queue, None)
                if item is None:
                    break
                pending.append(pool.submit(_prepare, engine_for_thread, item, known, folder))
            if cancel is not None and cancel.cancelled:
                report.cancelled = bool(pending or batch)
                break
            if pending:
                waited = time.perf_counter()
                prepared = pending.popleft().result()  # no lock is held while waiting
                timings["wait"] = timings.get("wait", 0.0) + time.perf_counter() - waited
                for stage, seconds in prepared.times.items():
                    timings[stage] = timings.get(stage, 0.0) + seconds
                if not batch:
                    batch_started = time.perf_counter()
                batch.append(prepared)
                while len(pending) < window and (item := next(queue, None)) is not None:
                    pending.append(pool.submit(_prepare, engine_for_thread, item, known, folder))
                if (
                    len(batch) < batch_size
                    and pending
                    and time.perf_counter() - batch_started < BATCH_SECONDS
                ):
                    continue
            if not batch:
                break
            if cancel is not None and cancel.cancelled:
                report.cancelled = True
                break
            written = time.perf_counter()
            outcomes = writer.write_batch(batch)  # commits before anything is reported
            batch = []
            if time.perf_counter() - last_save > INDEX_SAVE_SECONDS:
                # Keeps other connections' catch-up short, and crash recovery.
                gallery.save_index()
                last_save = time.perf_counter()
            timings["write"] = timings.get("write", 0.0) + time.perf_counter() - written
            for outcome in outcomes:
                report.outcomes.append(outcome)
                done += 1
                yield Progress(done, total, outcome.line())
        finished = True
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        # Photos prepared but never written: their pending copies go.
        unwritten = list(batch)
        unwritten += [f.result() for f in pending if f.done() and not f.cancelled()]
        unlink_durably(p.pending for p in unwritten if p.pending is not None)
        inference.close()
        clear_busy(busy)
        gallery.save_index()
    advice = gallery.index().rebuild_advice() if finished else None
    if advice is not None:
        yield from rebuild_index(gallery, reason=f"after enrolment: {advice}")
    if report.enrolled:
        # The watched probes, against the new faces only: a dot product per watch and face.
        try:
            report.watch_hits = run_watches(gallery)
        except WorkstationError as exc:  # the photos are enrolled: say so, never undo them
            report.watch_problem = str(exc)
            log.warning("%s: watches not searched after enrolment: %s", gallery.folder, exc)
    return report


@dataclass
class _Prepared:
    """A photo read, decoded, analysed and copied off the writing thread (or the reason it
    failed)."""

    item: EnrollItem
    outcome: EnrollOutcome | None = None
    sha256: str = ""
    duplicate: bool = False
    image: dict[str, Any] = field(default_factory=dict)
    face: Face | None = None
    others: int = 0
    pending: Path | None = None  # the photo's bytes, written durably beside their final place
    stored: str | None = None
    times: dict[str, float] = field(default_factory=dict)

    @property
    def path_text(self) -> str:
        return path_text(self.item.image)


def _prepare(
    engine_for_thread: Callable[[], FaceEngine],
    item: EnrollItem,
    known: frozenset[str],
    folder: Path,
) -> _Prepared:
    """Worker thread: read, hash, decode and analyse one photo, and write its bytes into the
    gallery folder as a pending copy. Touches no SQLite connection and holds no lock."""
    engine = engine_for_thread()
    prepared = _Prepared(item)

    def failed(message: str) -> _Prepared:
        prepared.outcome = EnrollOutcome(
            item.source, prepared.path_text, item.subject_id, FAILED, text_of(message)
        )
        return prepared

    start = time.perf_counter()
    try:
        # Regular files only (a FIFO or device is refused by name, never opened blocking); the
        # bytes hashed are the bytes decoded and the bytes copied.
        data = read_input_file(item.image)
    except ImageError as exc:
        return failed(str(exc).removeprefix(f"{item.image}: "))
    digest = sha256_bytes(data)
    if digest in known:  # on a resumed enrolment, photos already in the gallery are not decoded
        prepared.sha256, prepared.duplicate = digest, True
        prepared.times["decode"] = time.perf_counter() - start
        return prepared
    # Faces are looked for on a copy of the configuration's enrolment side: a large JPEG is
    # decoded at a reduced size no smaller than that (a manifest's box is in the photo's own
    # pixels, so that photo is decoded in full).
    at_least = engine.enrol_detection_side if item.box is None else None
    try:
        image = decode_image(data, item.image, at_least=at_least, sha256=digest)
    except ImageError as exc:
        return failed(str(exc).removeprefix(f"{item.image}: "))
    decoded = time.perf_counter()
    prepared.times["decode"] = decoded - start
    prepared.sha256 = image.sha256
    width, height = image.photo_size
    prepared.image = {
        "width": width,
        "height": height,
        "format": image.format,
        "file_bytes": image.file_bytes,
        "frames": image.frames,
    }
    main: MainFace | None
    try:
        if item.box is not None:
            # The manifest names the face: only it is analysed (the rest is not looked at).
            main = MainFace(engine.analyze_box(image.bgr, item.box), others=0)
        else:
            # Only the main face is embedded: the others are counted (the photo is then listed
            # for review), never enrolled.
            main = engine.analyze_main_face(
                image.bgr,
                max_side=engine.enrol_detection_side,
                scale=image.scale,
                full_pixels=lambda: decode_image(data, item.image, sha256=digest).bgr,
            )
    except NoFaceError as exc:
        return failed(str(exc))
    except Exception as exc:  # a model failure on one photo must not stop the batch
        return failed(f"face analysis failed ({exc})")
    finally:
        prepared.times["analyze"] = time.perf_counter() - decoded
    if main is None:
        return failed("no face found in the photo" + _frames_note(image.frames, image.format))
    prepared.face, prepared.others = main.face, main.others
    copied = time.perf_counter()
    prepared.stored = stored_relative(prepared.sha256, item.image.suffix)
    try:
        prepared.pending = write_pending_copy(folder, prepared.stored, data)
    except OSError as exc:
        return failed(f"cannot copy the photo into the gallery ({exc.strerror or exc})")
    prepared.times["copy"] = time.perf_counter() - copied
    return prepared


def _frames_note(frames: int, image_format: str) -> str:
    """Said with the outcome of a file of several frames (TIFF pages, animated GIF or WebP)."""
    if frames <= 1:
        return ""
    return f"; WARNING: the file holds {frames} frames ({image_format}), only the first was used"


class _BatchWriter:
    """Writes a batch of prepared photos in one unit of work (`GalleryChange`), each photo in
    its own step with its audit event, and commits; the unit of work then adds the faces to
    the vector index (saved to disk by the enrolment every INDEX_SAVE_SECONDS and at the
    end). Pending copies are moved to their final names inside the transaction (a rename reads
    no input), and removed again for a photo whose row does not commit."""

    def __init__(self, gallery: Gallery, engine: FaceEngine) -> None:
        self.gallery, self.engine = gallery, engine

    def write_batch(self, batch: list[_Prepared]) -> list[EnrollOutcome]:
        """Write and commit `batch`; returns one outcome per photo, in order."""
        if all(prepared.outcome is not None for prepared in batch):
            return [prepared.outcome for prepared in batch if prepared.outcome is not None]
        change = self.gallery.open_change(save_index=False)
        placed: list[Path] = []
        try:
            outcomes = [self._write(change, prepared, placed) for prepared in batch]
            fsync_folders(placed)  # the copies' names are durable before their rows commit
            change.commit()
        except BaseException:
            change.rollback()
            unlink_durably(placed)
            raise
        finally:
            # Copies not placed (duplicates, refused photos) are not needed.
            unlink_durably(p.pending for p in batch if p.pending is not None)
        return outcomes

    def _write(
        self, change: GalleryChange, prepared: _Prepared, placed: list[Path]
    ) -> EnrollOutcome:
        if prepared.outcome is not None:  # failed before reaching the database
            return prepared.outcome
        item = prepared.item

        def failed(message: str) -> EnrollOutcome:
            return EnrollOutcome(
                item.source, prepared.path_text, item.subject_id, FAILED, text_of(message)
            )

        target: Path | None = None
        if (
            prepared.pending is not None
            and prepared.stored is not None
            and self.gallery.image_id_for_sha256(prepared.sha256) is None
        ):
            try:
                target = place_copy(self.gallery.folder, prepared.pending, prepared.stored)
            except OSError as exc:
                return failed(f"cannot copy the photo into the gallery ({exc.strerror or exc})")
            prepared.pending = None
        else:
            prepared.stored = None
        try:
            with change.step("the photo"):
                outcome = _insert_one(change, self.engine, prepared)
        except (GalleryError, UnicodeError) as exc:
            if target is not None:
                unlink_durably([target])
            return failed(str(exc))
        if target is not None:
            if outcome.status == ENROLLED:
                placed.append(target)
            else:
                unlink_durably([target])
        return outcome


def _insert_one(change: GalleryChange, engine: FaceEngine, prepared: _Prepared) -> EnrollOutcome:
    item = prepared.item
    shown_path = prepared.path_text
    gallery = change.gallery

    def outcome(status: str, message: str, **extra: Any) -> EnrollOutcome:
        return EnrollOutcome(item.source, shown_path, item.subject_id, status, message, **extra)

    existing = gallery.image_id_for_sha256(prepared.sha256)
    if existing is not None:
        owner = gallery.subject_of_image(existing) or "unknown"
        return outcome(SKIPPED, f"already enrolled (same SHA-256, subject {owner})")
    face = prepared.face
    if face is None:  # known when queued, but its image row has gone since: enrol next time
        return outcome(FAILED, "the photo changed state during enrolment; enrol it again")
    others = prepared.others
    change.bind_model(engine.model)
    new_subject = change.ensure_subject(item.subject_id, item.name, item.attributes)
    image = prepared.image
    original_path = path_text(item.image.resolve())
    image_id = change.add_image(
        prepared.sha256,
        original_path,
        image["width"],
        image["height"],
        stored_path=prepared.stored,
        format=image["format"],
        file_bytes=image["file_bytes"],
    )
    face_id = change.add_face(item.subject_id, image_id, face, str(engine.model))
    # Ids only (issue 12 item 1): the name, the photo's hash and its path are in the rows,
    # which a deletion removes; an append-only log keeps what it is given for ever.
    change.record(
        AuditAction.ENROL,
        {
            "subject_id": item.subject_id,
            "new_subject": new_subject,
            "image_id": image_id,
            "face_id": face_id,
            "box": face.box.as_list(),
            "box_given": item.box.as_list() if item.box is not None else None,
            "face_source": face.source.value,
            "aligned": face.aligned,
            "quality": face.quality.verdict.value,
            "other_faces_not_enrolled": others,
            "frames_in_file": image.get("frames", 1),
            "model_id": str(engine.model),
        },
    )
    verdict = face.quality.verdict.value
    message = f"face {face_id} enrolled for subject {item.subject_id} (quality {verdict})"
    if item.box is not None:
        message += (
            "; the face inside the manifest's box"
            if face.aligned
            else "; no landmarks inside the manifest's box: enrolled unaligned, check it"
        )
    if others:
        message += f"; {others} other face(s) in the photo were not enrolled (the largest was used)"
    message += _frames_note(image.get("frames", 1), image["format"])
    return outcome(ENROLLED, message, face_id=face_id, other_faces=others)
