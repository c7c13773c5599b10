"""Commands on what the gallery records: subjects, the audit log, decisions, exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workstation.commands.context import (
    EXIT_FAILED,
    EXIT_OK,
    CliContext,
    shown,
)
from workstation.errors import WorkstationError


def cmd_subjects(ctx: CliContext) -> int:
    args = ctx.args
    gallery = ctx.gallery(read_only=args.subjects_action != "delete")
    if args.subjects_action == "delete":
        from workstation.gallery.admin import delete_subject

        details = delete_subject(gallery, args.subject_id, args.reason)
        ctx.say(
            f"deleted subject {shown(args.subject_id)}: {len(details['face_ids'])} face(s); reason "
            "recorded in the audit log"
        )
        return EXIT_OK
    subjects = gallery.subjects(args.query)
    if args.json:
        for subject in subjects:
            ctx.json_line(subject.to_dict())
    else:
        for subject in subjects:
            ctx.say(f"{shown(subject.id)}\t{shown(subject.name)}\t{subject.face_count} face(s)")
        ctx.say(f"{len(subjects)} subject(s)")
    return EXIT_OK


# ---------------------------------------------------------------------- audit
def cmd_audit(ctx: CliContext) -> int:
    args = ctx.args
    # Read-only: verifying must never change the evidence (nor migrate an older gallery).
    gallery = ctx.gallery(read_only=True)
    if args.audit_action == "verify":
        report = gallery.verify_audit()
        if report.intact:
            ctx.say(f"audit log intact: {report.events} events")
            ctx.say(f"head: event {report.head_seq} hash {report.head_hash}")
            return EXIT_OK
        ctx.say(f"AUDIT LOG BROKEN at event {report.first_bad_seq}: {report.problem}")
        ctx.say(f"last good: event {report.head_seq} hash {report.head_hash}")
        return EXIT_FAILED
    events = gallery.audit_events(case_id=args.case)
    for event in events:
        if args.json:
            ctx.json_line(event.to_dict())
        else:
            summary = ", ".join(
                f"{k}={_brief(v)}" for k, v in sorted(event.details.items()) if k != "candidates"
            )
            ctx.say(
                f"{event.seq:>6} {event.time} {shown(event.user)} {shown(event.action)} "
                f"case={shown(event.case_id or '-')} {shown(summary)}"
            )
    return EXIT_OK


def _brief(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------- index, models, reembed


def cmd_decide(ctx: CliContext) -> int:
    from workstation.gallery.decisions import confirm_lead, record_decision

    args = ctx.args
    gallery = ctx.gallery()
    if args.confirm is not None:
        decision = confirm_lead(gallery, args.confirm, args.note)
    else:
        if args.search is None or not args.subject or not args.decision:
            raise WorkstationError(
                "decide needs --search ID --subject ID --decision, or --confirm DECISION_ID"
            )
        decision = record_decision(
            gallery, args.search, args.subject, args.decision.replace("-", "_"), args.note
        )
    ctx.json_line(decision.to_dict()) if args.json else ctx.say(
        f"decision {decision.id}: {decision.decision.value} for subject "
        f"{shown(decision.subject_id)} (search {decision.search_id}) by {shown(decision.user)}"
    )
    return EXIT_OK


def cmd_export(ctx: CliContext) -> int:
    args = ctx.args
    if not args.out and not args.pdf:
        raise WorkstationError("export needs --out FILE.json, --pdf FILE.pdf, or both")
    gallery = ctx.gallery()
    if not args.pdf:
        from workstation.reports.bundle import export_case_bundle

        bundle = export_case_bundle(gallery, args.case, Path(args.out))
        ctx.say(
            f"evidence bundle written to {shown(args.out)}: {len(bundle['searches'])} "
            f"search(es); audit head {bundle['audit']['head_hash']}"
        )
        return EXIT_OK
    from workstation.reports.case_report import export_case_report

    if ctx.hooks.render_pdf is None:
        raise WorkstationError(
            "--pdf needs the PDF writer the `workstation` program provides; run that program "
            "(or `python -m workstation`)"
        )
    report = export_case_report(
        gallery,
        args.case,
        Path(args.pdf),
        ctx.hooks.render_pdf,
        json_path=Path(args.out) if args.out else None,
    )
    ctx.say(
        f"case report written to {shown(report.pdf_path)} ({report.pages} page(s)); evidence "
        f"bundle written to {shown(report.json_path)}: {len(report.bundle['searches'])} "
        f"search(es); audit head {report.bundle.head_hash}"
    )
    return EXIT_OK
