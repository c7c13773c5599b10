"""`workstation enhance`: the enhancement steps there are, and replaying a search's steps."""

from __future__ import annotations

from pathlib import Path

from workstation.commands.context import EXIT_FAILED, EXIT_OK, CliContext, Subparsers, shown
from workstation.errors import WorkstationError


def cmd_enhance(ctx: CliContext) -> int:
    if ctx.args.enhance_action == "steps":
        return _print_steps(ctx)
    return _replay(ctx)


def _print_steps(ctx: CliContext) -> int:
    from workstation.vision.enhancement_steps import STEP_SPECS

    for spec in STEP_SPECS.values():
        ctx.say(f"{spec.name}: {spec.does}")
        for param in spec.params:
            ctx.say(
                f"  {param.name}: {param.bounds_text()}, default {param.default!r}"
                + (f" ({param.help})" if param.help else "")
            )
    return EXIT_OK


def _replay(ctx: CliContext) -> int:
    """Recompute a search's working copy from the original and its recorded steps.

    Only the lineage is read (SHA-256s, step parameters, OpenCV version): no candidate, subject
    or photo of the gallery, so no consultation is recorded.
    """
    from workstation.vision.enhancement import pixels_sha256, replay

    args = ctx.args
    record = ctx.gallery().search_record(args.search)
    lineage = record.probe.enhancement
    if lineage is None:
        ctx.say(f"search {record.search_id}: no enhancement (the probe was searched as it was)")
        return EXIT_OK
    original = Path(args.original)
    if lineage.original_kind == "video frame":
        from workstation.vision.video import probe_video, read_frame

        frame = record.probe.frame or {}
        video = probe_video(original)
        if video.sha256 != frame.get("video_sha256"):
            raise WorkstationError(
                f"{original}: SHA-256 {video.sha256} is not the video of search "
                f"{record.search_id} ({frame.get('video_sha256')})"
            )
        bgr = read_frame(video, int(frame["frame_index"]))
        result = replay(bgr, pixels_sha256(bgr), lineage)
    else:
        from workstation.vision.images import load_image

        image = load_image(original)
        result = replay(image.bgr, image.sha256, lineage)
    if args.json:
        ctx.json_line(
            {
                "search_id": record.search_id,
                "original": str(original),
                "original_sha256": result.original_sha256,
                "working_sha256": result.working_sha256,
                "recorded": lineage.to_dict(),
                "opencv": result.opencv,
                "matches": result.original_matches and result.matches,
                "verdict": result.verdict,
            }
        )
    else:
        ctx.say(f"search {record.search_id}: original {shown(str(original))}")
        for line in lineage.step_lines:
            ctx.say(f"  {line}")
        ctx.say(result.verdict)
    return EXIT_OK if result.original_matches and result.matches else EXIT_FAILED


# ---------------------------------------------------------------------- arguments
def add_enhance_parser(sub: Subparsers) -> None:
    """The `enhance` command and its arguments."""
    p = sub.add_parser(
        "enhance",
        help="probe enhancement: list the steps, or replay a search's recorded steps on its "
        "original and check the working copy's SHA-256",
    )
    esub = p.add_subparsers(dest="enhance_action", metavar="ACTION", required=True)
    esub.add_parser("steps", help="the enhancement steps, their parameters and bounds")
    e = esub.add_parser(
        "replay",
        help="recompute a search's working copy from the original (photo, or the video for a "
        "frame) and say whether its SHA-256 is the recorded one",
    )
    e.add_argument("--search", type=int, required=True, metavar="ID", help="the search")
    e.add_argument("--json", action="store_true")
    e.add_argument("original", metavar="ORIGINAL_FILE")
    p.set_defaults(func=cmd_enhance)
