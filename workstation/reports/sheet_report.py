"""The ACE-V comparison sheets in the case report (issue 15 item 1): for each candidate with
sheets, each examiner's analysis, findings, conclusion (with the scale and its source) side by
side with the differences marked, what blind verification withheld from the examiner exporting,
and the aligned crops with each sheet's annotations drawn where the examiner drew them.

Qt-free: the crops are redone from the photos (checked by SHA-256) exactly as Compare shows them
(`ANNOTATION_SIDE` pixels, sheets.ANNOTATION_SPACE), the annotations drawn with OpenCV, and the
PNG handed to the renderer by name like every face image. The sheets are those the search record
carries (the gallery's read applies the blind rule).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from workstation.errors import WorkstationError
from workstation.gallery.records import SearchRecord
from workstation.gallery.sheets import (
    ANNOTATION_SIDE,
    ANNOTATION_SPACE,
    CONCLUSION_SCALE,
    CONCLUSION_SCALE_SOURCE,
    FEATURE_SOURCE,
    FEATURES,
    LIMITATION_WORDS,
    Annotation,
    ComparisonSheet,
    differences,
)
from workstation.gallery.store import Gallery

ANNOTATION_BGR = (0, 200, 255)  # the app's annotation colour (amber), in OpenCV's order


def sheet_image_key(sheet: ComparisonSheet, image: str) -> str:
    return f"sheet-{sheet.id}-{image}"


def annotation_crop(bgr: np.ndarray, box: list[float], landmarks: Any) -> np.ndarray:
    """The aligned crop Compare shows (ANNOTATION_SIDE square): the annotations' pixels."""
    from workstation.vision.alignment import face_view

    return face_view(bgr, box, landmarks, size=ANNOTATION_SIDE).bgr


def draw_annotations(crop: np.ndarray, annotations: list[Annotation]) -> np.ndarray:
    """A copy of the crop with arrows, circles and labels drawn on it."""
    from workstation.vision.cvcompat import cv2_module

    cv2 = cv2_module()
    out = np.ascontiguousarray(crop.copy())
    for a in annotations:
        start = (round(a.x1), round(a.y1))
        if a.kind == "arrow":
            cv2.arrowedLine(
                out, start, (round(a.x2), round(a.y2)), ANNOTATION_BGR, 2, tipLength=0.2
            )
        elif a.kind == "circle":
            cv2.circle(out, start, max(1, round(a.x2)), ANNOTATION_BGR, 2)
        else:
            # Hershey fonts draw ASCII only: the label's exact words are printed in the table.
            text = a.text.encode("ascii", "replace").decode("ascii")
            cv2.putText(out, text, start, cv2.FONT_HERSHEY_SIMPLEX, 0.45, ANNOTATION_BGR, 1)
    return out


def sheet_images(
    gallery: Gallery,
    record: SearchRecord,
    probe_bgr: np.ndarray | None,
    encode: Any,
) -> dict[str, bytes]:
    """PNG of each shown sheet's annotated crops, by `sheet_image_key` (only sheets with
    annotations; a photo that cannot be shown is left out: the table lists the annotations)."""
    images: dict[str, bytes] = {}
    probe_crop = (
        annotation_crop(probe_bgr, record.face.box.as_list(), record.face.landmarks)
        if probe_bgr is not None
        else None
    )
    for view in record.sheets:
        shown = ([view.own] if view.own else []) + list(view.others)
        if not any(s.annotations for s in shown):
            continue
        candidate = next((c for c in record.candidates if c.subject_id == view.subject_id), None)
        candidate_crop = None
        face = gallery.face(candidate.face_id) if candidate is not None else None
        if face is not None:
            try:
                candidate_crop = annotation_crop(
                    gallery.load_photo(face).bgr, face.box, face.landmarks
                )
            except WorkstationError:
                candidate_crop = None
        for sheet in shown:
            for image, crop in (("probe", probe_crop), ("candidate", candidate_crop)):
                marks = [a for a in sheet.annotations if a.image == image]
                if marks and crop is not None:
                    images[sheet_image_key(sheet, image)] = encode(draw_annotations(crop, marks))
    return images


def sheet_views(record: SearchRecord, images: Mapping[str, bytes]) -> list[dict[str, Any]]:
    """What the template prints for each candidate with sheets."""
    views = []
    for view in record.sheets:
        shown = ([view.own] if view.own else []) + list(view.others)
        base = shown[0] if shown else None
        differing: set[str] = set()
        conclusion_differs = limits_differ = False
        for other in shown[1:]:
            assert base is not None
            found = differences(base, other)
            differing.update(found["features"])
            conclusion_differs |= found["conclusion"]
            limits_differ |= bool(found["limitations"])
        headers = [f"{s.examiner} ({s.role}, sheet {s.id}, {s.created_at[:16]})" for s in shown]
        rows = []
        for key, words in FEATURES:
            cells = []
            for sheet in shown:
                mark = next(m for m in sheet.body["features"] if m["feature"] == key)
                note = f": {mark['note']}" if mark["note"] else ""
                cells.append(mark["finding"].replace("_", " ") + note)
            rows.append({"label": words, "cells": cells, "differs": key in differing})
        rows.append(
            {
                "label": "What is visible",
                "cells": [s.body["analysis"]["visible"] or "not stated" for s in shown],
                "differs": False,
            }
        )
        rows.append(
            {
                "label": "Limits of the comparison",
                "cells": [_limits(s) for s in shown],
                "differs": limits_differ,
            }
        )
        rows.append(
            {
                "label": "Conclusion",
                "cells": [s.conclusion.words for s in shown],
                "differs": conclusion_differs,
            }
        )
        rows.append(
            {
                "label": "Reasons",
                "cells": [s.body["conclusion_note"] or "none given" for s in shown],
                "differs": False,
            }
        )
        rows.append(
            {
                "label": "Annotations",
                "cells": [_annotation_words(s) for s in shown],
                "differs": False,
            }
        )
        # Reports and bundles carry only sheets whose rows matched their audit hashes at
        # export (reports/bundle.py leaves out a search with an altered sheet, and says why).
        rows.append({"label": "Record", "cells": [SHEET_VERIFIED for _ in shown], "differs": False})
        pictures = [
            {"key": sheet_image_key(s, image), "caption": f"{image}, {s.examiner}"}
            for s in shown
            for image in ("probe", "candidate")
            if sheet_image_key(s, image) in images
        ]
        views.append(
            {
                "subject_id": view.subject_id,
                "headers": headers,
                "rows": rows,
                "withheld": view.why,
                "pictures": pictures,
            }
        )
    return views


def _limits(sheet: ComparisonSheet) -> str:
    analysis = sheet.body["analysis"]
    words = [LIMITATION_WORDS[k] for k in analysis["limitations"]]
    if analysis["limitations_note"]:
        words.append(analysis["limitations_note"])
    return "; ".join(words) or "none noted"


def _annotation_words(sheet: ComparisonSheet) -> str:
    parts = []
    for a in sheet.annotations:
        where = f"({a.x1:.0f}, {a.y1:.0f})"
        if a.kind == "arrow":
            parts.append(f"arrow on the {a.image} from {where} to ({a.x2:.0f}, {a.y2:.0f})")
        elif a.kind == "circle":
            parts.append(f"circle on the {a.image} at {where}, radius {a.x2:.0f}")
        else:
            parts.append(f"label “{a.text}” on the {a.image} at {where}")
    return "; ".join(parts) or "none"


SHEET_VERIFIED = "verified: matches the hash its audit event recorded"

SCALE_WORDS = (
    f"Conclusion scale: {'; '.join(CONCLUSION_SCALE)}. Source: {CONCLUSION_SCALE_SOURCE}. "
    f"Features: {FEATURE_SOURCE}. Annotation coordinates: {ANNOTATION_SPACE}."
)
