"""The `footage` command: scan a video for faces, follow each as a track, search every track
(or mark where one gallery subject may appear)."""

from __future__ import annotations

from typing import Any

from workstation import CAVEAT
from workstation.commands.context import EXIT_FAILED, EXIT_OK, CliContext, Subparsers, shown
from workstation.commands.probes import print_legend
from workstation.errors import WorkstationError
from workstation.footage import DEFAULT_MIN_FACE_PX, SMALLEST_MIN_FACE_PX


def cmd_footage(ctx: CliContext) -> int:
    from workstation.audit.actions import AuditAction
    from workstation.footage import (
        ScanOptions,
        check_scan_options,
        probe_video,
        record_scan,
        scan_video,
        search_track,
        timecode,
    )
    from workstation.gallery.cases import require_case_open_for
    from workstation.gallery.search import require_case
    from workstation.progress import drain
    from workstation.reports.columns import Surface, text_table

    args = ctx.args
    case_id, purpose = require_case(args.case, args.purpose)
    options = ScanOptions(every_s=args.every, min_face_px=args.min_face)
    check_scan_options(options)  # before hashing the video
    gallery = ctx.gallery()
    require_case_open_for(gallery, case_id, AuditAction.FOOTAGE_SCAN)  # before the scan's work
    engine = ctx.engine()
    gallery.check_model(engine.model)
    info = probe_video(args.video)
    if not args.json:
        ctx.say(f"NOTE: {CAVEAT}")
        ctx.say(
            f"{shown(args.video)} (sha256 {info.sha256[:16]}…): {info.width}x{info.height}, "
            f"{info.fps:.2f} fps, {timecode(info.duration_s)}; sampling every {args.every} s"
        )
    tenths_shown = [0]

    def show(step: Any) -> None:
        # Long CCTV files: a line about every 10% (stderr, so --json output stays clean).
        if not args.json and step.total and step.done * 10 // step.total > tenths_shown[0]:
            tenths_shown[0] = step.done * 10 // step.total
            ctx.warn(f"[{step.done}/{step.total} frames] {step.message}")

    scan = drain(
        scan_video(
            engine,
            info.path,
            options,
            info=info,
        ),
        show,
    )
    record_scan(gallery, scan, case_id, purpose)
    if not args.json:
        ctx.say(
            f"{scan.samples} frames searched at {scan.options.detect_side} px: faces narrower than "
            f"{scan.smallest_face_px} px in the frame were not looked for (--min-face)"
        )
    if args.find_subject:
        return _print_subject_segments(ctx, scan, case_id, purpose)
    failures = 0
    if not args.json:
        print_legend(ctx)
    for track in scan.tracks:
        row: dict[str, Any] = {
            **track.summary(),
            "start_tc": timecode(track.start_s),
            "end_tc": timecode(track.end_s),
            "best_tc": timecode(info.time_of(track.best_frame)),
            "quality": track.best_observation.quality.verdict.value,
            "search_id": None,
            "candidates": [],
            "error": None,
        }
        record = None
        try:
            record = search_track(gallery, scan, track, case_id, purpose, args.top, args.note)
            row["search_id"] = record.search_id
            row["candidates"] = [c.to_dict() for c in record.candidates]
        except WorkstationError as exc:
            failures += 1
            row["error"] = str(exc)
        if args.json:
            ctx.json_line(row)
            continue
        ctx.say(
            f"\ntrack {track.track_id}: {row['start_tc']} to {row['end_tc']}, "
            f"{track.frame_count} sampled frames, best frame {track.best_frame} "
            f"({row['best_tc']}), quality {row['quality']}"
            + (f", search {row['search_id']}" if row["search_id"] else "")
        )
        if record is None:
            ctx.warn(f"  error: {row['error']}")
        elif not record.candidates:
            ctx.say("  no candidates (the gallery is empty)")
        else:
            for line in text_table(record, Surface.CLI, escape=shown):
                ctx.say(f"  {line}")
    if not args.json:
        ctx.say(
            f"\n{len(scan.tracks)} track(s) in {scan.scanned_s:.1f} s of video "
            f"({scan.samples} frames sampled, {scan.speed_x_realtime:.1f}x real time)"
        )
    if scan.damage:
        ctx.warn(f"error: {scan.damage}")
        return EXIT_FAILED
    return EXIT_FAILED if failures and failures == len(scan.tracks) else EXIT_OK


def _print_subject_segments(ctx: CliContext, scan: Any, case_id: str, purpose: str) -> int:
    """Where a gallery subject appears in the scanned video: one line (or JSON object) each."""
    from workstation.footage import timecode
    from workstation.footage.search import find_subject, find_threshold

    args = ctx.args
    gallery = ctx.gallery()
    segments = find_subject(gallery, scan, args.find_subject, case_id, purpose)
    threshold, _ = find_threshold(scan.tracks[0].model if scan.tracks else gallery.model_id)
    for segment in segments:
        row = {
            "subject_id": args.find_subject,
            **segment.to_dict(),
            "start_tc": timecode(segment.start_s),
            "end_tc": timecode(segment.end_s),
        }
        if args.json:
            ctx.json_line(row)
        else:
            ctx.say(
                f"{row['start_tc']} to {row['end_tc']} (frames {row['start_frame']}-"
                f"{row['end_frame']}, tracks {row['tracks']}, best similarity {row['score']:.4f})"
            )
    if not args.json:
        ctx.say(
            f"{len(segments)} segment(s) where subject {shown(args.find_subject)} may appear "
            f"(tracks scoring at least {threshold:.4f}): leads to review, not identifications"
        )
    if scan.damage:
        ctx.warn(f"error: {scan.damage}")
        return EXIT_FAILED
    return EXIT_OK


# ---------------------------------------------------------------------- arguments
def add_footage_parser(sub: Subparsers) -> None:
    """The `footage` command and its arguments."""
    p = sub.add_parser(
        "footage",
        help="scan a video for faces, follow each as a track and search every track (needs a "
        "case and a purpose)",
    )
    p.add_argument("--case", metavar="ID", help="case number (required)")
    p.add_argument("--purpose", metavar="TEXT", help="purpose of the search (required)")
    p.add_argument(
        "--every",
        type=float,
        default=0.2,
        metavar="SECONDS",
        help="sample a frame this often (default 0.2)",
    )
    p.add_argument(
        "--min-face",
        type=int,
        default=DEFAULT_MIN_FACE_PX,
        metavar="PX",
        help=f"smallest face to look for, px wide in the video's own frame (default "
        f"{DEFAULT_MIN_FACE_PX}, at least {SMALLEST_MIN_FACE_PX}; smaller is slower: the detector "
        "sees a larger copy of every sampled frame)",
    )
    p.add_argument(
        "--top", type=int, default=20, metavar="K", help="candidates per track (default 20)"
    )
    p.add_argument("--note", metavar="TEXT", help="examiner's note kept with each search")
    p.add_argument(
        "--find-subject",
        metavar="ID",
        help="instead of searching each track, mark where this gallery subject appears "
        "(time segments; audited)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per track per line")
    p.add_argument("video", metavar="VIDEO")
    p.set_defaults(func=cmd_footage)
