"""Enrolment: photos into the gallery, from paths, folders or a CSV manifest.

Enrolment is a generator that yields `Progress` after each photo, checks the cancel token
between photos and returns an `EnrollReport`. Each photo is one transaction (subject, image,
face, audit event); a bad photo or CSV row is reported and the rest goes on. The same photo (by
SHA-256) is never enrolled twice. When a photo holds several faces the largest is enrolled and
the others are reported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workstation.audit.log import utc_now
from workstation.errors import ImageError, WorkstationError
from workstation.gallery.index import VectorIndex
from workstation.gallery.store import Gallery
from workstation.progress import CancelToken, Progress
from workstation.vision.engine import FaceEngine
from workstation.vision.images import iter_image_files, load_image

ENROLLED, SKIPPED, FAILED = "enrolled", "skipped", "failed"


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
    """Parse a CSV manifest (columns subject_id,image; optional name; others become attributes).

    Relative image paths are relative to the CSV's folder. Returns the good rows as items and
    each bad row as a failed outcome naming its line.
    """
    items: list[EnrollItem] = []
    bad: list[EnrollOutcome] = []
    try:
        handle = open(csv_path, newline="", encoding="utf-8-sig")  # noqa: SIM115 (closed below)
    except OSError as exc:
        raise WorkstationError(f"{csv_path}: cannot open the manifest ({exc.strerror})") from exc
    with handle:
        try:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = {"subject_id", "image"} - set(columns)
            if missing:
                raise WorkstationError(
                    f"{csv_path}: the manifest needs the columns subject_id and image "
                    f"(missing: {', '.join(sorted(missing))}; found: "
                    f"{', '.join(columns) or 'none'})"
                )
            for row in reader:
                line = reader.line_num
                source = f"{csv_path.name} line {line}"
                clean = {
                    (k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None
                }
                if None in row:
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
                items.append(
                    EnrollItem(subject_id, path, source, clean.get("name") or None, attributes)
                )
        except csv.Error as exc:
            raise WorkstationError(
                f"{csv_path} line {reader.line_num}: not a readable CSV file ({exc})"
            ) from exc
        except UnicodeDecodeError as exc:
            raise WorkstationError(
                f"{csv_path}: the manifest is not UTF-8 text ({exc.reason})"
            ) from exc
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
) -> Iterator[Progress]:
    """Enrol items one by one; yields progress and returns an EnrollReport."""
    gallery.check_model(engine.model)
    report = EnrollReport(outcomes=list(already_failed or []))
    if gallery.face_count() == 0:
        index = VectorIndex(gallery.folder, engine.model.dim, gallery.generation, str(engine.model))
        gallery._index = index
    else:
        index = gallery.index()
    total = len(items)
    yield Progress(0, total, "starting")
    try:
        for done, item in enumerate(items, start=1):
            if cancel is not None and cancel.cancelled:
                report.cancelled = True
                break
            outcome = _enroll_one(gallery, engine, index, item)
            report.outcomes.append(outcome)
            yield Progress(done, total, outcome.line())
    finally:
        if index.count or index.path.exists():
            index.save()
    return report


def _enroll_one(
    gallery: Gallery, engine: FaceEngine, index: VectorIndex, item: EnrollItem
) -> EnrollOutcome:
    path_text = str(item.image)

    def outcome(status: str, message: str, **extra: Any) -> EnrollOutcome:
        return EnrollOutcome(item.source, path_text, item.subject_id, status, message, **extra)

    try:
        image = load_image(item.image)
    except ImageError as exc:
        return outcome(FAILED, str(exc).removeprefix(f"{item.image}: "))
    existing = gallery.image_id_for_sha256(image.sha256)
    if existing is not None:
        row = gallery.conn.execute(
            "SELECT subject_id FROM faces WHERE image_id = ? LIMIT 1", (existing,)
        ).fetchone()
        owner = row[0] if row else "unknown"
        return outcome(SKIPPED, f"already enrolled (same SHA-256, subject {owner})")
    try:
        faces = engine.analyze(image.bgr)
    except Exception as exc:  # a model failure on one photo must not stop the batch
        return outcome(FAILED, f"face analysis failed ({exc})")
    if not faces:
        return outcome(FAILED, "no face found in the photo")
    face = faces[0]
    others = len(faces) - 1
    try:
        stored = gallery.store_image_copy(item.image, image.sha256)
    except OSError as exc:
        return outcome(FAILED, f"cannot copy the photo into the gallery ({exc})")
    now = utc_now()
    with gallery.transaction() as conn:
        gallery.bind_model(engine.model)
        new_subject = gallery.subject(item.subject_id) is None
        if new_subject:
            conn.execute(
                "INSERT INTO subjects (id, name, attributes, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    item.subject_id,
                    item.name,
                    json.dumps(item.attributes, sort_keys=True),
                    now,
                    gallery.user,
                ),
            )
        elif item.name:
            conn.execute(
                "UPDATE subjects SET name = ? WHERE id = ? AND name IS NULL",
                (item.name, item.subject_id),
            )
        image_id = conn.execute(
            "INSERT INTO images (sha256, original_path, stored_path, width, height, format, "
            "file_bytes, imported_at, imported_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                image.sha256,
                str(item.image.resolve()),
                stored,
                image.width,
                image.height,
                image.format,
                image.file_bytes,
                now,
                gallery.user,
            ),
        ).lastrowid
        face_dict = face.to_dict()
        face_id = conn.execute(
            "INSERT INTO faces (subject_id, image_id, box, landmarks, source, aligned, quality, "
            "verdict, model_id, embedding, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item.subject_id,
                image_id,
                json.dumps(face_dict["box"]),
                json.dumps(face_dict["landmarks"]),
                face.source.value,
                int(face.aligned),
                json.dumps(face_dict["quality"]),
                face.quality.verdict.value,
                str(engine.model),
                np.asarray(face.embedding, dtype=np.float32).tobytes(),
                now,
            ),
        ).lastrowid
        generation = gallery.bump_generation()
        gallery.audit(
            "enrol",
            {
                "subject_id": item.subject_id,
                "new_subject": new_subject,
                "name": item.name,
                "image_sha256": image.sha256,
                "original_path": str(item.image.resolve()),
                "request": item.source,
                "face_id": face_id,
                "box": face_dict["box"],
                "quality": face.quality.verdict.value,
                "other_faces_not_enrolled": others,
                "model_id": str(engine.model),
            },
        )
    assert face_id is not None
    index.add(np.array([face_id]), face.embedding[None, :])
    index.generation = generation
    index.model_id = str(engine.model)
    verdict = face.quality.verdict.value
    message = f"face {face_id} enrolled for subject {item.subject_id} (quality {verdict})"
    if others:
        message += f"; {others} other face(s) in the photo were not enrolled (the largest was used)"
    return outcome(ENROLLED, message, face_id=face_id, other_faces=others)
