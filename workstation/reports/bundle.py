"""The evidence bundle: everything a reviewer needs to check how a lead was produced.

Case, purpose and examiners; for each search the probe file's hash and how the face was chosen
(detected or drawn, its box), the model id and weights hash, gallery size, parameters, every
candidate with its score, the decisions and notes; the case's audit events and the chain head
hash; and the caveat.

The export itself is audited *after* the files are written, by an event that names each file
with its SHA-256 (workstation.reports.export_files): a file cannot hold its own hash, and an
event written first would stay in the log for an export that then failed. So the bundle carries
the audit head as it was just before its export (`audit.head_seq`, `audit.head_hash`, repeated
under `export`), and the export event, appended after that head, carries the bundle's SHA-256
and the head it was built at (`bundle_head_seq`, `bundle_head_hash`). A reviewer checks a
bundle by hashing the file and finding the export event with that hash; the chain from that
event back covers everything the bundle shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workstation import CAVEAT, __version__
from workstation.audit.actions import AuditAction
from workstation.audit.log import AuditEvent, canonical_json, utc_now
from workstation.domain import CaseAuthorisation, same_examiner
from workstation.errors import WorkstationError
from workstation.gallery.records import SearchRecord
from workstation.gallery.redactions import redaction_marks
from workstation.gallery.sheets import ComparisonSheet
from workstation.gallery.store import Gallery
from workstation.reports.export_files import (
    StagedFile,
    check_targets,
    discard,
    publish,
    stage,
)
from workstation.reports.redaction import (
    REDACTION_POLICY,
    ProbeRedaction,
    plan_case_redactions,
)
from workstation.reports.sheet_report import SHEET_VERIFIED

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
    # The ACE-V sheets the record carries (those its reader may see), checked like decisions.
    sheet_problems = gallery.row_problems(
        "comparison_sheets", [sheet.id for r in records for sheet in _shown_sheets(r)]
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
        problems += [
            sheet_problems[str(sheet.id)]
            for sheet in _shown_sheets(record)
            if str(sheet.id) in sheet_problems
        ]
        if problems:
            left_out.append({"search_id": record.search_id, "problems": problems})
        else:
            kept.append(record)
    return tuple(kept), left_out


def _withhold_blind_events(
    events: list[dict[str, Any]], records: tuple[SearchRecord, ...], reader: str
) -> tuple[list[dict[str, Any]], int]:
    """The case's events without other examiners' decisions (with their notes) on candidates
    withheld from `reader` by blind verification; and how many were left out."""
    blind = {(r.search_id, subject) for r in records for subject in r.decisions_withheld}
    kept = []
    for event in events:
        details = event.get("details") or {}
        if (
            event.get("action") == AuditAction.DECISION.value
            and (details.get("search_id"), details.get("subject_id")) in blind
            and not same_examiner(str(event.get("user")), reader)
        ):
            continue
        kept.append(event)
    return kept, len(events) - len(kept)


def _shown_sheets(record: SearchRecord) -> list[ComparisonSheet]:
    return [
        sheet
        for view in record.sheets
        for sheet in ([view.own] if view.own is not None else []) + list(view.others)
    ]


def _mark_sheets_verified(search: dict[str, Any]) -> dict[str, Any]:
    """Each comparison sheet of a search the bundle carries says it was checked: a search
    whose sheet did not match its audit hash is left out (`_left_out`), with the reason."""
    for view in search.get("comparison_sheets", []):
        for sheet in view.get("sheets", []):
            sheet["record_check"] = SHEET_VERIFIED
    return search


@dataclass(frozen=True)
class CaseBundle(Mapping[str, Any]):
    """The evidence bundle of a case: the JSON written (`data`, also readable as the mapping
    itself) and the search records it was built from, so the PDF drawn beside the JSON renders
    exactly those records."""

    data: dict[str, Any]
    records: tuple[SearchRecord, ...]
    # What the report redacts in each search's probe image, by search id (reports/redaction.py).
    redactions: Mapping[int, ProbeRedaction] = field(default_factory=dict)

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
    with gallery.read_snapshot():  # the events shown and the head are one state of the log
        chain = gallery.verify_audit()
        events = [e.to_dict() for e in gallery.audit_events(case_id=case_id)]
        # Built only from rows that verify: a search whose row, decisions or case row were
        # changed outside the program is left out, and the bundle says which and why.
        records, left_out = _left_out(gallery, case, tuple(gallery.case_search_records(case_id)))
        marks = redaction_marks(gallery, [r.search_id for r in records])
    events, blind_events = _withhold_blind_events(events, records, gallery.user)
    # Bystanders' faces in every probe image, found and listed here so that the report blurs
    # exactly the boxes this bundle lists (reports/redaction.py); no export goes without it.
    redactions = plan_case_redactions(records, marks)
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
        "searches": [
            _mark_sheets_verified(
                {
                    **record.to_bundle_dict(),
                    "redaction": redactions[record.search_id].to_bundle_dict(),
                }
            )
            for record in records
        ],
        "redaction": {
            "policy": REDACTION_POLICY,
            "bystander_faces_redacted": sum(
                r.bystander_faces_redacted for r in redactions.values()
            ),
            "boxes_unredacted": sum(r.unredacted_count for r in redactions.values()),
        },
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
            # Other examiners' decision events on candidates the exporting examiner has not yet
            # compared (blind verification), left out of `events` like the decisions themselves.
            "events_withheld_blind_verification": blind_events,
        },
        "export": {
            "audit_head_before_export": {"seq": chain.head_seq, "hash": chain.head_hash},
            "recorded_by": (
                "the 'export' audit event appended after this head, which names this file "
                "with its SHA-256 (a file cannot hold its own hash)"
            ),
        },
    }
    return CaseBundle(data, records, redactions)


def export_case_bundle(
    gallery: Gallery, case_id: str, out_path: Path, overwrite: bool = False
) -> CaseBundle:
    """Write the case's bundle JSON, then audit the export with the file's SHA-256.

    Refuses an existing file unless `overwrite`; a failed export leaves no file and no event.
    """
    out_path = Path(out_path)
    check_targets([out_path], overwrite)
    bundle = build_case_bundle(gallery, case_id)
    staged = stage(out_path, lambda temp: write_bundle_json(bundle, temp))
    record_export(gallery, bundle, [(BUNDLE_KIND, staged)], "evidence-bundle-json", overwrite)
    return bundle


BUNDLE_KIND, REPORT_KIND = "evidence-bundle-json", "case-report-pdf"


def write_bundle_json(bundle: CaseBundle, path: Path) -> None:
    path.write_text(json.dumps(bundle.data, indent=2, ensure_ascii=False), encoding="utf-8")


def record_export(
    gallery: Gallery,
    bundle: CaseBundle,
    files: list[tuple[str, StagedFile]],
    export_format: str,
    overwrite: bool,
) -> AuditEvent:
    """Audit an export of staged files and move them into place, in one write transaction; on
    any failure neither the event nor the files remain (see export_files)."""
    staged = [item for _, item in files]
    case = gallery.case(bundle.case_id)
    purpose = str(case["purpose"]) if case else None
    bundle_file = next((item for kind, item in files if kind == BUNDLE_KIND), None)
    try:
        with gallery.transaction():
            for item in staged:
                item.replaced = item.target.exists()
            event = gallery.audit(
                AuditAction.EXPORT,
                {
                    "format": export_format,
                    # "path" and "extra_files" as events before file hashes named them.
                    "path": str(bundle_file.target.resolve()) if bundle_file else None,
                    "extra_files": [
                        str(item.target) for kind, item in files if kind != BUNDLE_KIND
                    ],
                    "files": [item.to_dict(kind) for kind, item in files],
                    # What the exported report blurred and showed (reports/redaction.py).
                    "redaction": bundle.data.get("redaction"),
                    "bundle_head_seq": bundle.data["audit"]["head_seq"],
                    "bundle_head_hash": bundle.head_hash,
                },
                case_id=bundle.case_id,
                purpose=purpose,
            )
            publish(staged, overwrite)
    except BaseException:
        discard(staged)
        raise
    return event


def bundle_digest(bundle: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(canonical_json(bundle).encode()).hexdigest()


__all__ = [
    "BUNDLE_KIND",
    "REPORT_KIND",
    "CaseBundle",
    "build_case_bundle",
    "bundle_digest",
    "export_case_bundle",
    "record_export",
    "write_bundle_json",
]
