"""Commands on what the gallery records: subjects, the audit log, decisions, exports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workstation.commands.context import (
    EXIT_FAILED,
    EXIT_OK,
    CliContext,
    Subparsers,
    read_case_options,
    shown,
)
from workstation.domain import Decision
from workstation.errors import WorkstationError


def cmd_subjects(ctx: CliContext) -> int:
    args = ctx.args
    if args.subjects_action != "delete":
        return _list_subjects(ctx)
    from workstation.gallery.admin import delete_subject

    details = delete_subject(ctx.gallery(), args.subject_id, args.reason)
    ctx.say(
        f"deleted subject {shown(args.subject_id)}: {len(details['face_ids'])} face(s); reason "
        "recorded in the audit log"
    )
    return EXIT_OK


def _list_subjects(ctx: CliContext) -> int:
    """List subjects: the listing is a consultation, recorded with its case before it shows."""
    from workstation.gallery.reads import Read, id_list, record_read, require_read_case

    args = ctx.args
    case_id, purpose = require_read_case(args.case, args.purpose, Read.SUBJECT_LIST)
    gallery = ctx.gallery()
    subjects = gallery.subjects(args.query)
    # The query is not recorded (it may be a name: the audit log keeps no personal data); the
    # ids it listed are.
    consulted = {"filtered": bool(args.query), "subjects": id_list(s.id for s in subjects)}
    record_read(gallery, Read.SUBJECT_LIST, consulted, case_id, purpose)
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
    if args.audit_action == "witness-folder":
        return _witness_folder(ctx)
    if args.audit_action == "verify":
        # Read-only: verifying must never change the evidence (nor migrate an older gallery).
        return _verify(ctx, ctx.gallery(read_only=True))
    return _show(ctx)


def _show(ctx: CliContext) -> int:
    """Show audit events; reading the log is itself recorded (the case filter, the range)."""
    from workstation.gallery.reads import Read, record_read, require_read_case

    args = ctx.args
    case_id, purpose = require_read_case(args.case, args.purpose, Read.AUDIT_LOG)
    case_filter = None if args.all else (args.of_case or case_id)
    gallery = ctx.gallery()
    events = gallery.audit_events(case_id=case_filter)
    consulted = {
        "case_filter": case_filter,
        "events": len(events),
        "first_seq": events[0].seq if events else None,
        "last_seq": events[-1].seq if events else None,
    }
    record_read(gallery, Read.AUDIT_LOG, consulted, case_id, purpose)
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


def _witness_folder(ctx: CliContext) -> int:
    from workstation.gallery.examiners import set_witness_folder

    args = ctx.args
    if bool(args.folder) == bool(args.clear):
        raise WorkstationError("give the witness folder, or --clear to remove it")
    value = set_witness_folder(ctx.gallery(), None if args.clear else args.folder)
    if value is None:
        ctx.say("the agency witness folder was removed; recorded in the audit log")
    else:
        ctx.say(
            f"agency witness folder: {shown(value)}; every act's head is appended there from "
            "now on; recorded in the audit log"
        )
    return EXIT_OK


def _verify(ctx: CliContext, gallery: Any) -> int:
    head = None
    if ctx.args.head:
        from workstation.audit.witness import parse_head

        try:
            head = parse_head(ctx.args.head)
        except ValueError as exc:
            raise WorkstationError(str(exc)) from None
    report = gallery.verify_audit(head=head)
    if not report.intact:
        where = f" at event {report.first_bad_seq}" if report.first_bad_seq is not None else ""
        ctx.say(f"AUDIT LOG BROKEN{where}: {shown(report.problem)}")
        ctx.say(f"last good: event {report.head_seq} hash {report.head_hash}")
        return EXIT_FAILED
    signed = report.events - report.unsigned_events
    ctx.say(f"audit log intact: {report.events} events")
    if report.genesis_seq is None:
        ctx.say(
            "  no event is signed: this gallery was made by an older version; an administrator "
            "adopts it with `workstation examiners adopt`"
        )
    else:
        older = (
            f", {report.unsigned_events} older unsigned event(s) before the genesis event"
            if report.unsigned_events
            else ""
        )
        active = sum(k.active for k in report.examiners.values())
        ctx.say(f"  {signed} signed by registered examiners' keys ({active} active key(s)){older}")
        ctx.say(f"  {report.rows_checked} record(s) match the hashes their audit events carry")
        ctx.say(
            f"  {report.witness_entries} witnessed head(s) in {report.witness_files} witness "
            "file(s) agree with the chain"
        )
        if report.witnessed_elsewhere:
            ctx.say(
                f"  this is a copy: the gallery it was copied from reached event "
                f"{report.witnessed_elsewhere} at another folder"
            )
        for problem in report.witness_unreadable:
            ctx.warn(f"warning: a witness could not be read: {problem}")
        if head is not None:
            ctx.say(f"  the chain holds the given head: event {head[0]} hash {head[1]}")
        ctx.say(f"  gallery id {report.gallery_id}")
    ctx.say(f"head: event {report.head_seq} hash {report.head_hash}")
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

        bundle = export_case_bundle(gallery, args.case, Path(args.out), overwrite=args.overwrite)
        ctx.say(
            f"evidence bundle written to {shown(args.out)}: {len(bundle['searches'])} "
            f"search(es); audit head before the export {bundle['audit']['head_hash']} (the "
            "export event records the file's SHA-256)"
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
        overwrite=args.overwrite,
    )
    ctx.say(
        f"case report written to {shown(report.pdf_path)} ({report.pages} page(s)); evidence "
        f"bundle written to {shown(report.json_path)}: {len(report.bundle['searches'])} "
        f"search(es); audit head before the export {report.bundle.head_hash}"
    )
    return EXIT_OK


# ---------------------------------------------------------------------- arguments
def add_subjects_parser(sub: Subparsers) -> None:
    """The `subjects` command and its arguments."""
    p = sub.add_parser("subjects", help="list subjects, or delete one")
    read_case_options(p, "the listing")
    p.add_argument("--json", action="store_true")
    p.add_argument("--query", metavar="TEXT", help="only ids or names containing TEXT")
    ssub = p.add_subparsers(dest="subjects_action", metavar="ACTION")
    d = ssub.add_parser("delete", help="delete a subject (needs a reason; audited)")
    d.add_argument("subject_id", metavar="ID")
    d.add_argument("--reason", required=True, metavar="TEXT")
    p.set_defaults(func=cmd_subjects)


def add_audit_parser(sub: Subparsers) -> None:
    """The `audit` command and its arguments."""
    p = sub.add_parser("audit", help="verify or show the audit log")
    asub = p.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    v = asub.add_parser(
        "verify",
        help="walk the signed chain, re-hash every record and hold the chain to every witness "
        "of its head; exit 0 when intact, 1 when not",
    )
    v.add_argument(
        "--head",
        metavar="SEQ:HASH",
        help="also check the chain still holds this head (as a report prints it)",
    )
    w = asub.add_parser(
        "witness-folder",
        help="set (or, with --clear, remove) the agency witness folder, a network share or "
        "write-once store every examiner's program appends the head to (administrator)",
    )
    w.add_argument("folder", nargs="?", metavar="FOLDER")
    w.add_argument("--clear", action="store_true")
    s = asub.add_parser(
        "show",
        help="list the audit events of the case given with --case (the reading is recorded "
        "against it), of another case (--of-case) or all of them (--all)",
    )
    read_case_options(s, "reading the log")
    shown_events = s.add_mutually_exclusive_group()
    shown_events.add_argument("--of-case", metavar="ID", help="show this case's events instead")
    shown_events.add_argument("--all", action="store_true", help="show every event")
    s.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)


def add_decide_parser(sub: Subparsers) -> None:
    """The `decide` command and its arguments."""
    p = sub.add_parser(
        "decide", help="record a decision on a candidate, or confirm another examiner's lead"
    )
    p.add_argument("--search", type=int, metavar="ID")
    p.add_argument("--subject", metavar="ID")
    p.add_argument("--decision", choices=[d.value.replace("_", "-") for d in Decision.recordable()])
    p.add_argument(
        "--confirm",
        type=int,
        metavar="DECISION_ID",
        help="confirm a possible lead (second examiner)",
    )
    p.add_argument("--note", metavar="TEXT")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_decide)


def add_export_parser(sub: Subparsers) -> None:
    """The `export` command and its arguments."""
    p = sub.add_parser(
        "export", help="write a case's JSON evidence bundle and, with --pdf, its report (audited)"
    )
    p.add_argument("--case", required=True, metavar="ID")
    p.add_argument(
        "--out", metavar="FILE.json", help="the JSON evidence bundle (default: beside the PDF)"
    )
    p.add_argument(
        "--pdf", metavar="FILE.pdf", help="also write the case report as a PDF (from the bundle)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files that already exist (without it, an existing file is refused)",
    )
    p.set_defaults(func=cmd_export)
