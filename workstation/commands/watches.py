"""`workstation watch`: cold-case watches (add, list with their hits, end)."""

from __future__ import annotations

from workstation.commands.context import EXIT_OK, CliContext, Subparsers, read_case_options, shown


def cmd_watch(ctx: CliContext) -> int:
    from workstation.gallery.watches import add_watch, end_watch, expire_watches, list_watches

    args = ctx.args
    if args.watch_action == "add":
        gallery = ctx.gallery()
        watch = add_watch(
            gallery, ctx.engine(), args.search, args.reason, until=args.until, fmr=args.fmr
        )
        ctx.say(
            f"watch {watch.id}: the probe of search {watch.search_id} (case "
            f"{shown(watch.case_id)}) is searched against each new enrolment until {watch.until}; "
            f"a new face is a hit at score >= {watch.threshold:.4f} (FMR {watch.fmr:g}); "
            "recorded in the audit log"
        )
        added = gallery.audit_events(case_id=watch.case_id)[-1].details
        ctx.say(f"threshold: {added.get('threshold_basis')}")
        return EXIT_OK
    if args.watch_action == "end":
        watch = end_watch(ctx.gallery(), args.watch, args.reason)
        ctx.say(
            f"watch {watch.id} ended; its probe embedding is deleted; recorded in the audit log"
        )
        return EXIT_OK
    from workstation.gallery.reads import Read, record_read, require_read_case, watches_consulted

    case_id, purpose = require_read_case(args.case, args.purpose, Read.WATCHES)
    gallery = ctx.gallery()
    expire_watches(gallery)  # a watch past its date ends (audited) before it is listed
    watches = list_watches(gallery, active_only=not args.all)
    # The hits name subjects and faces: recorded (ids only) before anything shows.
    record_read(gallery, Read.WATCHES, watches_consulted(watches), case_id, purpose)
    if args.json:
        for watch in watches:
            ctx.json_line(watch.to_dict())
        return EXIT_OK
    for watch in watches:
        ctx.say(
            f"watch {watch.id}\t{watch.state}\tcase {shown(watch.case_id)}\tsearch "
            f"{watch.search_id}\tuntil {watch.until}\tFMR {watch.fmr:g} (score >= "
            f"{watch.threshold:.4f})\t{shown(watch.reason)}\t{len(watch.hits)} hit(s)"
        )
        for hit in watch.hits:
            ctx.say(
                f"  hit: subject {shown(hit.subject_id)} face {hit.face_id} score "
                f"{hit.score:.4f} FMR {shown(hit.fmr_text or '-')} found {hit.found_at} "
                f"(search {hit.search_id})"
            )
    ctx.say(f"{len(watches)} watch(es)")
    return EXIT_OK


# ---------------------------------------------------------------------- arguments
def add_watch_parser(sub: Subparsers) -> None:
    """The `watch` command and its arguments."""
    p = sub.add_parser(
        "watch",
        help="cold-case watch: leave a searched probe on watch; each enrolment searches it "
        "against the new faces",
    )
    wsub = p.add_subparsers(dest="watch_action", metavar="ACTION", required=True)
    w = wsub.add_parser("add", help="leave a search's probe on watch (audited on its case)")
    w.add_argument("--search", type=int, required=True, metavar="ID", help="the search")
    w.add_argument("--reason", required=True, metavar="TEXT", help="why it stays unresolved")
    w.add_argument(
        "--until", metavar="YYYY-MM-DD", help="the last day it is searched (default: 90 days)"
    )
    w.add_argument(
        "--fmr",
        type=float,
        default=1e-4,
        metavar="RATE",
        help="false-match rate of the threshold a new face must reach (default 1e-4: 1 in 10,000)",
    )
    w = wsub.add_parser("list", help="the watches with their hits (active ones; --all: every one)")
    w.add_argument("--all", action="store_true", help="ended and expired watches too")
    w.add_argument("--json", action="store_true", help="one JSON object per watch per line")
    read_case_options(w, "the listing")
    w = wsub.add_parser("end", help="end a watch (its probe embedding is deleted)")
    w.add_argument("watch", type=int, metavar="ID")
    w.add_argument("--reason", required=True, metavar="TEXT", help="why (audited)")
    p.set_defaults(func=cmd_watch)
