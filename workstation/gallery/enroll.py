"""Enrolment: photos into the gallery, from paths, folders or a CSV manifest.

Enrolment is a generator that yields `Progress` after each photo, checks the cancel token
between photos and returns an `EnrollReport`. Photos are read, decoded and analysed by a small
thread pool ahead of the writer; they are written several per transaction, each photo (subject,
image, face) with its own audit event in that transaction, inside its own savepoint; a bad
photo or CSV row is reported and the rest goes on. The same photo (by
SHA-256) is never enrolled twice. When a photo holds several faces the largest is enrolled and
the others are reported.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstation.audit.actions import AuditAction
from workstation.domain import Face
from workstation.errors import GalleryError, ImageError, WorkstationError
from workstation.gallery.change import GalleryChange
from workstation.gallery.index_build import rebuild_index
from workstation.gallery.store import Gallery
from workstation.hashing import sha256_file
from workstation.progress import CancelToken, Progress
from workstation.tabular import DELIMITERS, read_table
from workstation.vision.engine import FaceEngine
from workstation.vision.images import iter_image_files, load_image

ENROLLED, SKIPPED, FAILED = "enrolled", "skipped", "failed"
# Two threads prepare photos (one decodes while the other holds the engine) on 2 cores.
PIPELINE_WORKERS = 2
# Photos per transaction, and the longest a prepared photo waits to be written.
BATCH_PHOTOS = 16
BATCH_SECONDS = 1.0
# Enrolment keeps the largest face only, so it detects on a smaller copy than search does
# (detection cost grows with pixels: 2.3x less than at 1920 px on large photos); the face is
# still aligned and embedded from the full-resolution pixels. Measured on the 58 photos of
# ../shared/faces larger than this: the embedding moves from the 1920 px one by as much as
# rescaling the photo by 0.9 does (median cosine 0.975 both); at 960 px it moved further (0.965).
ENROL_DETECTION_SIDE = 1280
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
        return text + (" (cancelled before the end)" if self.cancelled else "")


def read_manifest(csv_path: Path) -> tuple[list[EnrollItem], list[EnrollOutcome]]:
    """Parse a manifest (columns subject_id,image; optional name; others become attributes).

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
        attributes = {
            k: v for k, v in clean.items() if k not in ("subject_id", "image", "name") and v
        }
        items.append(EnrollItem(subject_id, path, source, clean.get("name") or None, attributes))
    return items, bad


def _bad_row(source: str, row: dict[str, str], reason: str) -> EnrollOutcome:
    return EnrollOutcome(
        source, row.get("image", ""), row.get("subject_id") or None, FAILED, reason
    )


def items_for_subject(
    subject_id: str, paths: list[Path], name: str | None = None
) -> list[EnrollItem]:
    """Photos (files, or folders searched recursively) for one subject."""
    return [EnrollItem(subject_id, p, str(p), name) for p in iter_image_files(paths)]


def enroll(
    gallery: Gallery,
    engine: FaceEngine,
    items: list[EnrollItem],
    cancel: CancelToken | None = None,
    already_failed: list[EnrollOutcome] | None = None,
    workers: int = PIPELINE_WORKERS,
    batch_size: int = BATCH_PHOTOS,
) -> Iterator[Progress]:
    """Enrol items; yields progress after each photo and returns an EnrollReport.

    Pipelined: `workers` threads read, hash, decode and analyse photos ahead, each with its own
    instance of the engine's models (see `FaceEngine.replicas`), and
    this thread writes them in batches of up to `batch_size` photos per transaction, each
    photo with its own audit event and savepoint. A crash loses at most the batch being
    written, and a re-run skips every committed photo by its SHA-256. Cancelling (checked
    between photos) stops there: every photo already reported is committed, no further photo
    is written (a re-run enrols them).

    A batch's transaction stays open across the progress steps of its photos (at most
    BATCH_PHOTOS photos or BATCH_SECONDS): while iterating, do not write through the same
    `Gallery`; other connections wait for the batch (SQLite busy timeout), readers do not.
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
    finished = False
    last_save = time.perf_counter()
    try:
        while True:
            while len(pending) < window:
                item = next(queue, None)
                if item is None:
                    break
                pending.append(pool.submit(_prepare, engine_for_thread, item, known))
            if not pending or (cancel is not None and cancel.cancelled):
                report.cancelled = bool(pending)
                break
            waited = time.perf_counter()
            prepared = pending.popleft().result()
            timings["wait"] = timings.get("wait", 0.0) + time.perf_counter() - waited
            for stage, seconds in prepared.times.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
            if cancel is not None and cancel.cancelled:
                report.cancelled = True
                break
            written = time.perf_counter()
            outcome = writer.write(prepared)
            if writer.open and (
                writer.photos >= batch_size
                or not pending
                or time.perf_counter() - writer.started > BATCH_SECONDS
            ):
                writer.commit()
                if time.perf_counter() - last_save > INDEX_SAVE_SECONDS:
                    # Keeps other connections' catch-up short, and crash recovery.
                    gallery.save_index()
                    last_save = time.perf_counter()
            timings["write"] = timings.get("write", 0.0) + time.perf_counter() - written
            report.outcomes.append(outcome)
            done += 1
            yield Progress(done, total, outcome.line())
        writer.commit()
        finished = True
    except GeneratorExit:
        writer.commit()  # the caller stopped early: keep what it was told was enrolled
        raise
    except BaseException:
        writer.rollback()
        raise
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        gallery.save_index()
    advice = gallery.index().rebuild_advice() if finished else None
    if advice is not None:
        yield from rebuild_index(gallery, reason=f"after enrolment: {advice}")
    return report


@dataclass
class _Prepared:
    """A photo read, decoded and analysed off the writing thread (or the reason it failed)."""

    item: EnrollItem
    outcome: EnrollOutcome | None = None
    sha256: str = ""
    duplicate: bool = False
    image: dict[str, Any] = field(default_factory=dict)
    face: Face | None = None
    others: int = 0
    stored: str | None = None
    times: dict[str, float] = field(default_factory=dict)


def _prepare(
    engine_for_thread: Callable[[], FaceEngine], item: EnrollItem, known: frozenset[str]
) -> _Prepared:
    """Worker thread: hash, decode and analyse one photo. Touches no SQLite connection."""
    engine = engine_for_thread()
    prepared = _Prepared(item)

    def failed(message: str) -> _Prepared:
        prepared.outcome = EnrollOutcome(
            item.source, str(item.image), item.subject_id, FAILED, message
        )
        return prepared

    start = time.perf_counter()
    try:
        # Hash first: on a resumed enrolment, photos already in the gallery are not decoded.
        digest = sha256_file(item.image)
    except OSError:
        digest = ""  # load_image below names the problem
    if digest and digest in known:
        prepared.sha256, prepared.duplicate = digest, True
        prepared.times["decode"] = time.perf_counter() - start
        return prepared
    try:
        image = load_image(item.image)
    except ImageError as exc:
        return failed(str(exc).removeprefix(f"{item.image}: "))
    decoded = time.perf_counter()
    prepared.times["decode"] = decoded - start
    prepared.sha256 = image.sha256
    prepared.image = {
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "file_bytes": image.file_bytes,
        "frames": image.frames,
    }
    try:
        faces = engine.analyze(image.bgr, max_side=ENROL_DETECTION_SIDE)
    except Exception as exc:  # a model failure on one photo must not stop the batch
        return failed(f"face analysis failed ({exc})")
    finally:
        prepared.times["analyze"] = time.perf_counter() - decoded
    if not faces:
        return failed("no face found in the photo" + _frames_note(image.frames, image.format))
    prepared.face, prepared.others = faces[0], len(faces) - 1
    return prepared


def _frames_note(frames: int, image_format: str) -> str:
    """Said with the outcome of a file of several frames (TIFF pages, animated GIF or WebP)."""
    if frames <= 1:
        return ""
    return f"; WARNING: the file holds {frames} frames ({image_format}), only the first was used"


class _BatchWriter:
    """Writes prepared photos in one unit of work (`GalleryChange`), each photo in its own step
    with its audit event; `commit` ends the batch, and the unit of work then adds the faces to
    the vector index (saved to disk by the enrolment every INDEX_SAVE_SECONDS and at the end)."""

    def __init__(self, gallery: Gallery, engine: FaceEngine) -> None:
        self.gallery, self.engine = gallery, engine
        self.change: GalleryChange | None = None
        self.photos = 0
        self.started = 0.0

    @property
    def open(self) -> bool:
        return self.change is not None

    def write(self, prepared: _Prepared) -> EnrollOutcome:
        if prepared.outcome is not None:  # failed before reaching the database
            return prepared.outcome
        item = prepared.item

        def failed(message: str) -> EnrollOutcome:
            return EnrollOutcome(item.source, str(item.image), item.subject_id, FAILED, message)

        if self.change is None:
            self.change = self.gallery.open_change(save_index=False)
            self.photos, self.started = 0, time.perf_counter()
        if not prepared.duplicate and self.gallery.image_id_for_sha256(prepared.sha256) is None:
            try:
                prepared.stored = self.gallery.store_image_copy(item.image, prepared.sha256)
            except OSError as exc:
                return failed(f"cannot copy the photo into the gallery ({exc})")
        try:
            with self.change.step("the photo"):
                outcome = _insert_one(self.change, self.engine, prepared)
        except GalleryError as exc:
            return failed(str(exc))
        self.photos += 1
        return outcome

    def commit(self) -> None:
        if self.change is not None:
            change, self.change = self.change, None
            change.commit()

    def rollback(self) -> None:
        if self.change is not None:
            change, self.change = self.change, None
            change.rollback()


def _insert_one(change: GalleryChange, engine: FaceEngine, prepared: _Prepared) -> EnrollOutcome:
    item = prepared.item
    path_text = str(item.image)
    gallery = change.gallery

    def outcome(status: str, message: str, **extra: Any) -> EnrollOutcome:
        return EnrollOutcome(item.source, path_text, item.subject_id, status, message, **extra)

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
    original_path = str(item.image.resolve())
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
    change.record(
        AuditAction.ENROL,
        {
            "subject_id": item.subject_id,
            "new_subject": new_subject,
            "name": item.name,
            "image_sha256": prepared.sha256,
            "original_path": original_path,
            "request": item.source,
            "face_id": face_id,
            "box": face.box.as_list(),
            "quality": face.quality.verdict.value,
            "other_faces_not_enrolled": others,
            "frames_in_file": image.get("frames", 1),
            "model_id": str(engine.model),
        },
    )
    verdict = face.quality.verdict.value
    message = f"face {face_id} enrolled for subject {item.subject_id} (quality {verdict})"
    if others:
        message += f"; {others} other face(s) in the photo were not enrolled (the largest was used)"
    message += _frames_note(image.get("frames", 1), image["format"])
    return outcome(ENROLLED, message, face_id=face_id, other_faces=others)
