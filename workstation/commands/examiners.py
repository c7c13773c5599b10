"""`workstation examiners`: one's own key, and (administrators) who may act in the gallery."""

from __future__ import annotations

import argparse
from pathlib import Path

from workstation.commands.context import (
    EXIT_OK,
    CliContext,
    Subparsers,
    authorisation_arguments,
    shown,
)
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


# ---------------------------------------------------------------------- arguments
def add_cases_parser(sub: Subparsers) -> None:
    """The `cases` command and its arguments."""
    p = sub.add_parser(
        "cases",
        help="the list of cases (status, examiners, searches, leads, retention); close, reopen, "
        "archive a case; record who authorised its searches",
    )

    def list_options(parser: argparse.ArgumentParser, default: object) -> None:
        # The list's options are read before or after `list`; a subcommand's own default
        # would otherwise overwrite a value given before it.
        parser.add_argument("--json", action="store_true", default=default, help="JSON lines")
        parser.add_argument(
            "--past-retention",
            action="store_true",
            default=default,
            help="only the cases past their retention date",
        )
        # Listing cases is a supervisory consultation, recorded against a case (a standing
        # reference such as SUPERVISION-2026); dest differs from the acts' positional CASE.
        parser.add_argument(
            "--case",
            dest="read_case",
            metavar="ID",
            default=None if default is False else default,
            help="case number the listing serves (required: it is recorded in the audit log; "
            "e.g. the agency's standing supervision reference)",
        )
        parser.add_argument(
            "--purpose",
            dest="read_purpose",
            metavar="TEXT",
            default=None if default is False else default,
            help="purpose of the listing (required)",
        )

    list_options(p, False)
    csub = p.add_subparsers(dest="cases_action", metavar="ACTION")
    c = csub.add_parser("list", help="every case (the default)")
    list_options(c, argparse.SUPPRESS)
    for action, words in (
        ("close", "close a case: no new work on it until it is reopened (audited)"),
        ("reopen", "reopen a closed case (audited)"),
        ("archive", "archive a case: read-only for good; it can still be exported (audited)"),
    ):
        c = csub.add_parser(action, help=words)
        c.add_argument("case", metavar="CASE")
        c.add_argument("--reason", required=True, metavar="TEXT", help="why (audited)")
        if action != "reopen":
            c.add_argument(
                "--retain-until",
                metavar="YYYY-MM-DD",
                help="keep the case's records until this date (default: 2 years from today"
                + ("" if action == "close" else ", or the date set when it was closed")
                + ")",
            )
    c = csub.add_parser(
        "authorise", help="record who approved the case's searches, when, and the reference"
    )
    c.add_argument("case", metavar="CASE")
    authorisation_arguments(c)
    p.set_defaults(func=cmd_cases)


def add_examiners_parser(sub: Subparsers) -> None:
    """The `examiners` command and its arguments."""
    p = sub.add_parser(
        "examiners",
        help="your examiner key; who may act in the gallery (administrators register, revoke)",
    )
    esub = p.add_subparsers(dest="examiners_action", metavar="ACTION", required=True)
    e = esub.add_parser(
        "key", help="print your public key and fingerprint (made on first use) for an administrator"
    )
    e.add_argument("--out", metavar="FILE", help="also write the public key to FILE")
    e = esub.add_parser("list", help="the registered examiners, their roles and keys")
    e.add_argument("--json", action="store_true")
    e = esub.add_parser("add", help="register an examiner's public key with roles (administrator)")
    e.add_argument("name", metavar="NAME", help="their login on their workstation")
    e.add_argument("--key", required=True, metavar="FILE", help="their public key file")
    e.add_argument(
        "--role",
        action="append",
        required=True,
        metavar="ROLE",
        help="administrator, enroller, analyst or reviewer (repeat, or separate with commas)",
    )
    e = esub.add_parser("revoke", help="revoke an examiner's key (administrator; needs a reason)")
    e.add_argument("name", metavar="NAME_OR_FINGERPRINT")
    e.add_argument("--reason", required=True, metavar="TEXT")
    e = esub.add_parser("roles", help="change an examiner's roles (administrator)")
    e.add_argument("name", metavar="NAME_OR_FINGERPRINT")
    e.add_argument("--role", action="append", required=True, metavar="ROLE")
    esub.add_parser(
        "adopt",
        help="make a gallery from an older version accountable: you become its first "
        "administrator (once)",
    )
    p.set_defaults(func=cmd_examiners)
