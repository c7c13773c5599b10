"""The evidence bundle: everything a reviewer needs to check how a lead was produced.

Case, purpose and examiners; for each search the probe file's hash and how the face was chosen
(detected or drawn, its box), the model id and weights hash, gallery size, parameters, every
candidate with its score, the decisions and notes; the case's audit events and the chain head
hash; and the caveat. The export itself is audited (its event is written before the head hash is
read, so the bundle's head hash covers its own export).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workstation import CAVEAT, __version__
from workstation.audit.actions import AuditAction
from workstation.audit.log import canonical_json, chain_head, utc_now
from workstation.errors import WorkstationError
from workstation.gallery.decisions import decisions_for
from workstation.gallery.store import Gallery
from workstation.permissions import make_export_private


def build_case_bundle(gallery: Gallery, case_id: str) -> dict[str, Any]:
    case = gallery.case(case_id)
    if case is None:
        raise WorkstationError(f"case {case_id!r} has no searches in the gallery {gallery.folder}")
    searches = []
    examiners: set[str] = set()
    for row in gallery.searches_of_case(case_id):
        decisions = [d.to_dict() for d in decisions_for(gallery, int(row["id"]))]
        params = json.loads(row["params"])
        examiners.add(row["user"])
        examiners.update(d["user"] for d in decisions)
        searches.append(
            {
                "search_id": row["id"],
                "time": row["created_at"],
                "examiner": row["user"],
                "purpose": row["purpose"],
                "probe": {"path": row["probe_path"], "sha256": row["probe_sha256"]},
                "face": json.loads(row["face"]),
                "model_id": row["model_id"],
                "params": params,
                "gallery_faces": row["gallery_size"],
                "note": row["note"],
                # "passed", or searched despite poor quality with the examiner's note above
                "quality_gate": params.get("quality_gate"),
                # what the candidates' false-match rates came from (id, sha256, sources, pairs)
                "calibration": params.get("calibration"),
                "candidates": json.loads(row["candidates"]),
                "decisions": decisions,
            }
        )
    events = [e.to_dict() for e in gallery.audit_events(case_id=case_id)]
    chain = gallery.verify_audit()
    return {
        "bundle_version": 1,
        "generated_at": utc_now(),
        "generated_by": gallery.user,
        "software": f"workstation {__version__}",
        "caveat": CAVEAT,
        "case": {
            "id": case["id"],
            "purpose": case["purpose"],
            "opened_at": case["created_at"],
            "opened_by": case["created_by"],
            "examiners": sorted(examiners),
        },
        "gallery": {
            "folder": str(gallery.folder),
            "model_id": gallery.model_id,
            "faces": gallery.face_count(),
            "subjects": gallery.subject_count(),
        },
        "searches": searches,
        "audit": {
            "events": events,
            "chain_intact": chain.intact,
            "chain_events": chain.events,
            "head_seq": chain.head_seq,
            "head_hash": chain.head_hash,
        },
    }


def export_case_bundle(
    gallery: Gallery, case_id: str, out_path: Path, extra_files: list[Path] | None = None
) -> dict[str, Any]:
    """Audit the export, then write the bundle JSON (with the head hash covering that event)."""
    out_path = Path(out_path)
    with gallery.transaction():
        gallery.audit(
            AuditAction.EXPORT,
            {
                "format": "evidence-bundle-json",
                "path": str(out_path.resolve()),
                "extra_files": [str(p) for p in extra_files or []],
            },
            case_id=case_id,
            purpose=_case_purpose(gallery, case_id),
        )
    bundle = build_case_bundle(gallery, case_id)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(bundle, indent=2, ensure_ascii=False), encoding="utf-8")
    make_export_private(out_path)
    return bundle


def _case_purpose(gallery: Gallery, case_id: str) -> str | None:
    case = gallery.case(case_id)
    if case is None:
        raise WorkstationError(f"case {case_id!r} has no searches in the gallery {gallery.folder}")
    return str(case["purpose"])


def bundle_digest(bundle: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(canonical_json(bundle).encode()).hexdigest()


__all__ = ["build_case_bundle", "bundle_digest", "chain_head", "export_case_bundle"]
