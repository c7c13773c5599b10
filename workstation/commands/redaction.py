"""`workstation redaction`: what an export redacts in a search's probe image (show), a box
added by hand (add), one box shown unredacted with a note (unredact). Each change is audited
on the search's case (workstation.gallery.redactions).

There is deliberately no `export --no-redaction`: an unredacted export would disclose every
bystander at once with no reason recorded per face. An examiner who must show a face (a witness,
a second suspect) un-redacts that one box with a note, which the report prints and the audit
log keeps (docs/ACCOUNTABILITY.md, "Redaction on export").
"""

from __future__ import annotations

from workstation.commands.context import EXIT_OK, CliContext, Subparsers, shown
from workstation.domain import BBox
from workstation.errors import WorkstationError


def _box(text: str) -> BBox:
    try:
        return BBox.parse(text)
    except (ValueError, WorkstationError) as exc:
        raise WorkstationError(f"--box {text!r}: give x,y,width,height in pixels ({exc})") from exc


def cmd_redaction(ctx: CliContext) -> int:
    from workstation.gallery.redactions import add_redaction_box, unredact
    from workstation.reports.redaction import search_redaction

    args = ctx.args
    gallery = ctx.gallery()
    if args.redaction_action == "add":
        mark = add_redaction_box(gallery, args.search, _box(args.box), args.note)
        ctx.say(
            f"redaction box {mark.id} added to the probe of search {mark.search_id} (case "
            f"{shown(mark.case_id)}): {mark.box.as_list()}; recorded in the audit log"
        )
        return EXIT_OK
    if args.redaction_action == "unredact":
        if args.number is not None:
            plan = search_redaction(gallery, args.search)
            if not 1 <= args.number <= len(plan.boxes):
                raise WorkstationError(
                    f"search {args.search} has {len(plan.boxes)} redaction box(es); "
                    f"--number {args.number} is not one of them (see `redaction show`)"
                )
            box = plan.boxes[args.number - 1].box
        else:
            box = _box(args.box)
        mark = unredact(gallery, args.search, box, args.note)
        ctx.say(
            f"box {[round(v, 1) for v in mark.box.as_list()]} of search {mark.search_id} will "
            f"be shown unredacted in exports of case {shown(mark.case_id)}, with your note; "
            "recorded in the audit log"
        )
        return EXIT_OK
    plan = search_redaction(gallery, args.search)
    if args.json:
        ctx.json_line(plan.to_bundle_dict())
        return EXIT_OK
    for number, box in enumerate(plan.boxes, start=1):
        score = "drawn by examiner" if box.score is None else f"detector score {box.score:.2f}"
        state = (
            "redacted"
            if box.redacted
            else f"UNREDACTED ({shown(box.unredacted.note if box.unredacted else '')})"
        )
        ctx.say(
            f"{number}\t{[round(v, 1) for v in box.box.as_list()]}\t{box.source}\t{score}\t{state}"
        )
    ctx.say(plan.statement())
    return EXIT_OK


# ---------------------------------------------------------------------- arguments
def add_redaction_parser(sub: Subparsers) -> None:
    """The `redaction` command and its arguments."""
    p = sub.add_parser(
        "redaction",
        help="what exports redact in a search's probe image (bystanders' faces, by default; "
        "there is no switch to export unredacted): list it, add a box, un-redact one box",
    )
    rsub = p.add_subparsers(dest="redaction_action", metavar="ACTION", required=True)
    r = rsub.add_parser("show", help="the boxes an export of this search's probe redacts")
    r.add_argument("--search", type=int, required=True, metavar="ID")
    r.add_argument("--json", action="store_true", help="the bundle's redaction record as JSON")
    r = rsub.add_parser("add", help="add a box to the redaction (a missed face, a tattoo, a badge)")
    r.add_argument("--search", type=int, required=True, metavar="ID")
    r.add_argument("--box", required=True, metavar="X,Y,W,H", help="in the probe image's pixels")
    r.add_argument("--note", metavar="TEXT", help="what it hides (audited)")
    r = rsub.add_parser("unredact", help="show one redaction box unredacted in exports (audited)")
    r.add_argument("--search", type=int, required=True, metavar="ID")
    where = r.add_mutually_exclusive_group(required=True)
    where.add_argument("--box", metavar="X,Y,W,H", help="the box, as `redaction show` lists it")
    where.add_argument("--number", type=int, metavar="N", help="box N of `redaction show`")
    r.add_argument("--note", required=True, metavar="TEXT", help="why it may be shown (audited)")
    p.set_defaults(func=cmd_redaction)
