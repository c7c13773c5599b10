"""Many synthetic subjects in a real gallery, added through its bulk API (for paging tests).

Subject `i` is `SYN-<i, 5 digits>`; every third is named "Ana Moreno <i>", the others
"Person <i>". Faces per subject vary: none when i % 7 == 3, two when i % 5 == 0, else one. Each
face has its own image row pointing at `photo` (a real photo, so thumbnails can be made).
"""

from __future__ import annotations

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
    with Image.open(photo) as image:
        width, height = image.size
    subjects, face_subjects, shas = [], [], []
    for i in range(count):
        subject_id = f"SYN-{i:05d}"
        subjects.append((subject_id, name_for(i), {}))
        for k in range(faces_for(i)):
            face_subjects.append(subject_id)
            shas.append(f"synthetic-{i}-{k}")
    embeddings = np.ones((len(face_subjects), DIM), dtype=np.float32)
    with gallery.change(AuditAction.ENROL, {"synthetic_subjects": count}) as change:
        change.add_subjects(subjects)
        change.add_faces_bulk(
            face_subjects,
            embeddings,
            shas,
            model_id=MODEL_ID,
            original_path=str(photo),
            width=width,
            height=height,
            box=(300, 80, 200, 240),
        )
