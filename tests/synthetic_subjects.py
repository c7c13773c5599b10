"""Many synthetic subjects written straight into a real gallery's SQLite (for paging tests).

Subject `i` is `SYN-<i, 5 digits>`; every third is named "Ana Moreno <i>", the others
"Person <i>". Faces per subject vary: none when i % 7 == 3, two when i % 5 == 0, else one. Each
face has its own image row pointing at `photo` (a real photo, so thumbnails can be made).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from workstation.audit.log import utc_now
from workstation.gallery.store import Gallery

MODEL_ID = "synthetic@0"
DIM = 8


def faces_for(i: int) -> int:
    return 0 if i % 7 == 3 else 2 if i % 5 == 0 else 1


def name_for(i: int) -> str:
    return f"Ana Moreno {i}" if i % 3 == 0 else f"Person {i}"


def add_synthetic_subjects(gallery: Gallery, count: int, photo: Path) -> None:
    """Insert `count` subjects and their faces in one transaction."""
    now = utc_now()
    with Image.open(photo) as image:
        width, height = image.size
    embedding = np.ones(DIM, dtype=np.float32).tobytes()
    subjects, images, faces = [], [], []
    for i in range(count):
        subject_id = f"SYN-{i:05d}"
        subjects.append((subject_id, name_for(i), now))
        for k in range(faces_for(i)):
            image_id = len(images) + 1
            images.append((image_id, f"synthetic-{i}-{k}", str(photo), width, height, now))
            faces.append((subject_id, image_id, embedding, now))
    with gallery.transaction() as conn:
        conn.executemany(
            "INSERT INTO subjects (id, name, attributes, created_at, created_by) "
            "VALUES (?, ?, '{}', ?, 'test')",
            subjects,
        )
        conn.executemany(
            "INSERT INTO images (id, sha256, original_path, width, height, imported_at, "
            "imported_by) VALUES (?, ?, ?, ?, ?, ?, 'test')",
            images,
        )
        conn.executemany(
            "INSERT INTO faces (subject_id, image_id, box, source, aligned, quality, verdict, "
            f"model_id, embedding, created_at) VALUES (?, ?, '[300, 80, 200, 240]', 'detected', "
            f"1, '{{}}', 'good', '{MODEL_ID}', ?, ?)",
            faces,
        )
        gallery.bump_generation()
