"""`workstation examiners`: one's own key, and (administrators) who may act in the gallery."""

from __future__ import annotations

from pathlib import Path

from workstation.commands.context import EXIT_OK, CliContext, shown
from workstation.errors import WorkstationError


def cmd_examiners(ctx: CliContext) -> int:
    action = ctx.args.examiners_action
    if action == "key":
        return _key(ctx)
    if action == "list":
        return _list(ctx)
    from workstation.audit.roles import Role
    from workstation.gallery.examiners import register_examiner, revoke_examiner, set_roles

    args = ctx.args
    if action == "adopt":
        gallery = ctx.gallery()
        event = gallery.adopt()
        ctx.say(
            f"gallery {shown(gallery.folder)} adopted: id {event.details['gallery_id']}, first "
            f"administrator {shown(event.user)}; its {event.details['earlier_events']} older "
            "event(s) stay unsigned (`audit verify` says so)"
        )
        return EXIT_OK
    roles = Role.parse(args.role or []) if action in ("add", "roles") else frozenset()
    gallery = ctx.gallery()
    if action == "add":
        key_text = read_key(Path(args.key))
        registered = register_examiner(gallery, args.name, key_text, roles)
        ctx.say(
            f"registered {shown(registered.name)} ({registered.roles_text}), key "
            f"{_short(registered.fingerprint)}; recorded in the audit log"
        )
    elif action == "revoke":
        revoked = revoke_examiner(gallery, args.name, args.reason)
        ctx.say(
            f"revoked {shown(revoked.name)}'s key {_short(revoked.fingerprint)}; recorded in the "
            "audit log"
        )
    elif action == "roles":
        changed = set_roles(gallery, args.name, roles)
        ctx.say(f"{shown(changed.name)} now holds: {changed.roles_text}; recorded in the audit log")
    return EXIT_OK


def _short(fingerprint: str) -> str:
    from workstation.audit.signing import short_fingerprint

    return short_fingerprint(fingerprint)


def read_key(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkstationError(f"{path}: cannot read the public key ({exc})") from exc


def _key(ctx: CliContext) -> int:
    """Print one's own public key and fingerprint (made on first use) to give an administrator,
    and whether this gallery knows it."""
    key = ctx.examiner.key()
    ctx.say(f"examiner: {shown(ctx.examiner.name)}")
    ctx.say(f"public key: {key.public_text}")
    ctx.say(f"fingerprint: {key.fingerprint}")
    ctx.say(f"(short: {_short(key.fingerprint)}; key file {shown(ctx.examiner.private_key_path)})")
    if ctx.args.out:
        out = Path(ctx.args.out)
        out.write_text(key.public_text + "\n", encoding="ascii")
        ctx.say(f"public key written to {shown(out)}")
    from workstation.gallery.opening import gallery_kind

    if gallery_kind(ctx.gallery_dir) is not None:
        gallery = ctx.gallery(read_only=True)
        registered = gallery.examiner_by_fingerprint(key.fingerprint)
        if registered is None:
            state = "not registered: give the public key above to an administrator"
        elif not registered.active:
            state = f"revoked ({shown(registered.revoked_reason)})"
        else:
            state = f"registered as {shown(registered.name)} ({registered.roles_text})"
        ctx.say(f"in the gallery {shown(ctx.gallery_dir)}: {state}")
    return EXIT_OK


def _list(ctx: CliContext) -> int:
    gallery = ctx.gallery(read_only=True)
    examiners = gallery.examiners()
    if ctx.args.json:
        for examiner in examiners:
            ctx.json_line(examiner.to_dict())
        return EXIT_OK
    for examiner in examiners:
        state = "active" if examiner.active else f"revoked {examiner.revoked_at}"
        ctx.say(
            f"{shown(examiner.name)}\t{examiner.roles_text}\t{_short(examiner.fingerprint)}\t"
            f"registered {examiner.registered_at} by {shown(examiner.registered_by)}\t{state}"
        )
    ctx.say(f"{sum(e.active for e in examiners)} active examiner(s)")
    return EXIT_OK


def cmd_cases(ctx: CliContext) -> int:
    """`cases [list] [--json] [--past-retention]`, `cases close|reopen|archive CASE --reason`,
    `cases authorise CASE --authorised-by NAME --authorised-at DATE --authorisation REF`."""
    from workstation.gallery.cases import (
        archive_case,
        authorise_case,
        case_authorisation,
        close_case,
        reopen_case,
    )

    args = ctx.args
    action = args.cases_action or "list"
    if action == "list":
        return _list_cases(ctx)
    if action == "close":
        until = close_case(ctx.gallery(), args.case, args.reason, args.retain_until)
        ctx.say(
            f"case {shown(args.case)} closed (records kept until {until}); no new work on it "
            "until it is reopened; recorded in the audit log"
        )
        return EXIT_OK
    if action == "reopen":
        reopen_case(ctx.gallery(), args.case, args.reason)
        ctx.say(f"case {shown(args.case)} reopened; recorded in the audit log")
        return EXIT_OK
    if action == "archive":
        until = archive_case(ctx.gallery(), args.case, args.reason, args.retain_until)
        ctx.say(
            f"case {shown(args.case)} archived: read-only from now on (records kept until "
            f"{until}); recorded in the audit log"
        )
        return EXIT_OK
    authorisation = case_authorisation(args.authorised_by, args.authorised_at, args.authorisation)
    if authorisation is None:
        raise WorkstationError("give --authorised-by NAME --authorised-at DATE --authorisation REF")
    authorise_case(ctx.gallery(), args.case, authorisation)
    ctx.say(
        f"case {shown(args.case)}: authorised by {shown(authorisation.by)} on "
        f"{shown(authorisation.at)} ({shown(authorisation.reference)}); recorded in the audit log"
    )
    return EXIT_OK


def _list_cases(ctx: CliContext) -> int:
    """Every case, latest activity first; with --past-retention only those past their date."""
    from workstation.gallery.cases import case_summaries
    from workstation.gallery.reads import Read, cases_consulted, record_read, require_read_case

    args = ctx.args
    case_id, purpose = require_read_case(args.read_case, args.read_purpose, Read.CASE_LIST)
    gallery = ctx.gallery()
    summaries = case_summaries(gallery)
    if args.past_retention:
        summaries = [s for s in summaries if s.past_retention]
    # Recorded before anything shows: the case numbers listed, under the case it serves.
    consulted = cases_consulted((s.case_id for s in summaries), bool(args.past_retention))
    record_read(gallery, Read.CASE_LIST, consulted, case_id, purpose)
    if ctx.args.json:
        for summary in summaries:
            ctx.json_line(summary.to_dict())
        return EXIT_OK
    for s in summaries:
        authorised = (
            f"authorised by {shown(s.authorisation.by)} on {shown(s.authorisation.at)} "
            f"({shown(s.authorisation.reference)})"
            if s.authorisation
            else "no authorisation recorded"
        )
        kept = f"kept until {s.retain_until}" if s.retain_until else "kept while open"
        if s.past_retention:
            kept += " (PAST RETENTION)"
        ctx.say(
            f"{shown(s.case_id)}\t{s.status.value}\t{shown(s.purpose)}\t"
            f"examiners: {shown(', '.join(s.examiners))}\t{s.searches} search(es), {s.leads} "
            f"lead(s), {s.confirmations} confirmed\tlast activity {s.last_activity}\t"
            f"{authorised}\t{kept}"
        )
    past = sum(s.past_retention for s in summaries)
    ctx.say(f"{len(summaries)} case(s)" + (f", {past} past their retention date" if past else ""))
    return EXIT_OK
