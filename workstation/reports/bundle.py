"""The evidence bundle: everything a reviewer needs to check how a lead was produced.

Case, purpose and examiners; for each search the probe file's hash and how the face was chosen
(detected or drawn, its box), the model id and weights hash, gallery size, parameters, every
candidate with its score, the decisions and notes; the case's audit events and the chain head
hash; and the caveat. The export itself is audited (its event is written before the head hash is
read, so the bundle's head hash covers its own export).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workstation import CAVEAT, __version__
from workstation.audit.actions import AuditAction
from workstation.audit.log import canonical_json, utc_now
from workstation.domain import CaseAuthorisation
from workstation.errors import WorkstationError
from workstation.gallery.records import SearchRecord
from workstation.gallery.store import Gallery
from workstation.permissions import make_export_private

# What the bundle and the report say of the records they were built from (docs/ACCOUNTABILITY.md
# and README use the same words; tests/unit/test_readme.py compares them).
RECORDS_VERIFIED = "Every record in this report matched its audit hash at export."
RECORDS_LEFT_OUT = (
    "Records that did not match their audit hash at export are left out of this report:"
)


def _left_out(
    gallery: Gallery, case: Mapping[str, Any], records: tuple[SearchRecord, ...]
) -> tuple[tuple[SearchRecord, ...], list[dict[str, Any]]]:
    """The case's searches whose rows (the search, its decisions) or whose case row do not
    match their audit hashes: [(search id, problems)], and the records that do."""
    case_problems = list(gallery.row_problems("cases", [case["id"]]).values())
    search_problems = gallery.row_problems("searches", [r.search_id for r in records])
    decision_problems = gallery.row_problems(
        "decisions", [d.id for r in records for d in r.decisions]
    )
    kept: list[SearchRecord] = []
    left_out: list[dict[str, Any]] = []
    for record in records:
        problems = list(case_problems)
        if str(record.search_id) in search_problems:
            problems.append(search_problems[str(record.search_id)])
        problems += [
            decision_problems[str(d.id)] for d in record.decisions if str(d.id) in decision_problems
        ]
        if problems:
            left_out.append({"search_id": record.search_id, "problems": problems})
        else:
            kept.append(record)
    return tuple(kept), left_out


@dataclass(frozen=True)
class CaseBundle(Mapping[str, Any]):
    """The evidence bundle of a case: the JSON written (`data`, also readable as the mapping
    itself) and the search records it was built from, so the PDF drawn beside the JSON renders
    exactly those records."""

    data: dict[str, Any]
    records: tuple[SearchRecord, ...]

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def case_id(self) -> str:
        return str(self.data["case"]["id"])

    @property
    def head_hash(self) -> str | None:
        return self.data["audit"]["head_hash"]


def build_case_bundle(gallery: Gallery, case_id: str) -> CaseBundle:
    case = gallery.case(case_id)
    if case is None:
        raise WorkstationError(f"case {case_id!r} has no searches in the gallery {gallery.folder}")
    chain = gallery.verify_audit()
    # Built only from rows that verify: a search whose row, decisions or case row were changed
    # outside the program is left out, and the bundle says which and why.
    records, left_out = _left_out(gallery, case, tuple(gallery.case_search_records(case_id)))
    if left_out:
        statement = (
            RECORDS_LEFT_OUT
            + " "
            + "; ".join(
                f"search {item['search_id']} ({', '.join(item['problems'])})" for item in left_out
            )
        )
    elif chain.intact:
        statement = RECORDS_VERIFIED
    else:
        statement = f"The audit chain did not verify at export: {chain.problem}"
    examiners: set[str] = set()
    for record in records:
        examiners |= record.examiners
    events = [e.to_dict() for e in gallery.audit_events(case_id=case_id)]
    authorisation = CaseAuthorisation.from_case_row(case)
    data = {
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
            "authorisation": authorisation.to_dict() if authorisation else None,
        },
        "gallery": {
            "id": gallery.gallery_id,
            "folder": str(gallery.folder),
            "model_id": gallery.model_id,
            "faces": gallery.face_count(),
            "subjects": gallery.subject_count(),
        },
        "searches": [record.to_bundle_dict() for record in records],
        "audit": {
            "events": events,
            "chain_intact": chain.intact,
            "chain_events": chain.events,
            "head_seq": chain.head_seq,
            "head_hash": chain.head_hash,
            # For `workstation audit verify --head SEQ:HASH` (a later rollback or fork fails it).
            "head": f"{chain.head_seq}:{chain.head_hash}",
            "chain_problem": chain.problem,
            "records_verified": chain.intact and not left_out,
            "records_statement": statement,
            "records_left_out": left_out,
            "witness_entries": chain.witness_entries,
        },
    }
    return CaseBundle(data, records)


def export_case_bundle(
    gallery: Gallery, case_id: str, out_path: Path, extra_files: list[Path] | None = None
) -> CaseBundle:
    """Audit the export, then write the bundle JSON (with the head hash covering that event)."""
    out_path = Path(out_path)
    case = gallery.case(case_id)
    if case is None:
        raise WorkstationError(f"case {case_id!r} has no searches in the gallery {gallery.folder}")
    with gallery.transaction():
        gallery.audit(
            AuditAction.EXPORT,
            {
                "format": "evidence-bundle-json",
                "path": str(out_path.resolve()),
                "extra_files": [str(p) for p in extra_files or []],
            },
            case_id=case_id,
            purpose=str(case["purpose"]),
        )
    bundle = build_case_bundle(gallery, case_id)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(bundle.data, indent=2, ensure_ascii=False), encoding="utf-8")
    make_export_private(out_path)
    return bundle


def bundle_digest(bundle: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(canonical_json(bundle).encode()).hexdigest()


__all__ = [
    "CaseBundle",
    "build_case_bundle",
    "bundle_digest",
    "export_case_bundle",
]
