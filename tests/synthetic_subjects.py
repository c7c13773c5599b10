"""Many synthetic subjects in a real gallery, added through its bulk API (for paging tests).

Subject `i` is `SYN-<i, 5 digits>`; every third is named "Ana Moreno <i>", the others
"Person <i>". Faces per subject vary: none when i % 7 == 3, two when i % 5 == 0, else one. Each
face has its own image row and its own small copy of `photo` (a real photo, so thumbnails can be
made), made unique by a few bytes after the JPEG's end, so that its recorded SHA-256 is the real
one (a photo is checked against it before it is shown).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from workstation.audit.actions import AuditAction
from workstation.gallery.store import Gallery

MODEL_ID = "synthetic@0"
DIM = 8


def faces_for(i: int) -> int:
    return 0 if i % 7 == 3 else 2 if i % 5 == 0 else 1


def name_for(i: int) -> str:
    return f"Ana Moreno {i}" if i % 3 == 0 else f"Person {i}"


def add_synthetic_subjects(gallery: Gallery, count: int, photo: Path) -> None:
    """Add `count` subjects and their faces in one unit of work, through the gallery's API."""
    scale = 4  # copies a quarter of the size: about 10 KB each
    with Image.open(photo) as image:
        small = image.convert("RGB").resize((image.width // scale, image.height // scale))
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    folder = gallery.folder.parent / f"{gallery.folder.name}-synthetic-photos"
    folder.mkdir(exist_ok=True)
    subjects, faces = [], []
    for i in range(count):
        subject_id = f"SYN-{i:05d}"
        subjects.append((subject_id, name_for(i), {}))
        for k in range(faces_for(i)):
            copy = folder / f"{i}-{k}.jpg"
            data = buffer.getvalue() + f"synthetic-{i}-{k}".encode()
            copy.write_bytes(data)
            faces.append((subject_id, hashlib.sha256(data).hexdigest(), copy))
    box = tuple(v / scale for v in (300, 80, 200, 240))
    with gallery.change(AuditAction.ENROL, {"synthetic_subjects": count}) as change:
        change.add_subjects(subjects)
        for subject_id, sha256, copy in faces:
            change.add_faces_bulk(
                [subject_id],
                np.ones((1, DIM), dtype=np.float32),
                [sha256],
                model_id=MODEL_ID,
                original_path=str(copy),
                width=small.width,
                height=small.height,
                box=box,
            )
