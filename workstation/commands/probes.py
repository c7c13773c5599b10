"""Commands that look at faces in photos: enroll, search, compare (footage: commands/footage.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workstation import CAVEAT
from workstation.commands.context import (
    EXIT_FAILED,
    EXIT_OK,
    CliContext,
    Subparsers,
    authorisation_arguments,
    read_case_options,
    saved_settings,
    shown,
)
from workstation.domain import LARGEST_FACE, FaceChoice
from workstation.errors import WorkstationError

if TYPE_CHECKING:
    from workstation.gallery.records import SearchRecord
    from workstation.vision.images import LoadedImage


def cmd_enroll(ctx: CliContext) -> int:
    from workstation.gallery.enroll import enroll, items_for_subject, read_manifest
    from workstation.progress import drain

    args = ctx.args
    if args.manifest:
        if args.subject or args.paths:
            raise WorkstationError(
                "give either --manifest FILE.csv or --subject ID with photos, not both"
            )
        items, bad = read_manifest(Path(args.manifest))
    else:
        if not args.subject or not args.paths:
            raise WorkstationError(
                "enroll needs --manifest FILE.csv, or --subject ID and one or more photos or "
                "folders"
            )
        missing = [p for p in args.paths if not Path(p).exists()]
        items = items_for_subject(
            args.subject, [Path(p) for p in args.paths if Path(p).exists()], args.name
        )
        from workstation.gallery.enroll import FAILED, EnrollOutcome

        bad = [
            EnrollOutcome(p, p, args.subject, FAILED, "file or folder not found") for p in missing
        ]
    for outcome in bad:
        ctx.warn(outcome.line())
    gallery = ctx.gallery(create=True)

    def show(step: Any) -> None:
        if step.done and not args.json:
            stream = ctx.err if step.message.startswith("failed") else ctx.out
            print(f"[{step.done}/{step.total}] {shown(step.message)}", file=stream, flush=True)

    report = drain(enroll(gallery, ctx.engine(), items, already_failed=bad), show)
    if args.json:
        for outcome in report.outcomes:
            ctx.json_line(outcome.to_dict())
    ctx.say(
        f"{report.summary()}; gallery {shown(ctx.gallery_dir)} now holds {gallery.face_count()} "
        f"faces of {gallery.subject_count()} subjects"
    )
    return EXIT_FAILED if report.enrolled == 0 and report.failed else EXIT_OK


# ---------------------------------------------------------------------- search
def cmd_search(ctx: CliContext) -> int:
    from workstation.audit.actions import AuditAction
    from workstation.domain import BBox
    from workstation.gallery.cases import case_authorisation, require_case_open_for
    from workstation.gallery.search import require_case, search_image
    from workstation.vision.enhancement_steps import load_steps

    args = ctx.args
    case_id, purpose = require_case(args.case, args.purpose)
    authorisation = case_authorisation(args.authorised_by, args.authorised_at, args.authorisation)
    box = BBox.parse(args.box) if args.box else None
    steps = load_steps(args.enhance) if args.enhance else ()  # refused before any work
    gallery = ctx.gallery()
    require_case_open_for(gallery, case_id, AuditAction.SEARCH)  # before loading the model
    engine = ctx.engine()
    gallery.check_model(engine.model)
    failures = 0
    if not args.json:
        ctx.say(f"NOTE: {CAVEAT}")
        print_legend(ctx)
    for given in args.images:
        try:
            image = _load_noting_frames(ctx, given)
            result = search_image(
                gallery,
                engine,
                image,
                case_id,
                purpose,
                top_k=args.top or saved_settings().top_k,
                box=box,
                face_index=args.face,
                path_as_given=given,
                note=args.note,
                authorisation=authorisation,
                steps=steps,
            )
        except WorkstationError as exc:
            failures += 1
            if args.json:
                ctx.json_line(
                    {
                        "probe": given,
                        "sha256": None,
                        "face": None,
                        "candidates": [],
                        "error": str(exc),
                    }
                )
            else:
                ctx.warn(f"error: {exc}")
            continue
        if args.json:
            ctx.json_line(result.to_dict())
            continue
        _print_search(ctx, result, engine.model.short)
    return EXIT_FAILED if failures == len(args.images) else EXIT_OK


def _print_search(ctx: CliContext, record: SearchRecord, model: str) -> None:
    """A recorded search as text: the probe, the face, the calibration and the candidates (the
    same columns and words as every other surface: workstation.reports.columns)."""
    from workstation.reports.columns import Surface, text_table

    face = record.face
    ctx.say(
        f"\n{shown(record.probe.path)} (sha256 {record.probe.sha256[:16]}…): search "
        f"{record.search_id}, case {shown(record.case_id)}; {record.faces_found} face(s) found, "
        f"searched face {face.index} ({face.source.value}, box {face.box.as_list()}); quality "
        f"{face.quality.verdict.value}"
        + (f": {'; '.join(face.quality.reasons)}" if face.quality.reasons else "")
    )
    enhancement = record.probe.enhancement
    if enhancement is not None:
        ctx.say(
            f"searched an enhanced working copy ({len(enhancement.steps)} step(s), OpenCV "
            f"{enhancement.opencv}; the box is in its pixels): SHA-256 "
            f"{enhancement.working_sha256[:16]}…, {enhancement.working_width}x"
            f"{enhancement.working_height}"
        )
        for line in enhancement.step_lines:
            ctx.say(f"  {line}")
    ctx.say(f"gallery: {record.gallery_faces} faces; model {model}")
    if record.note:
        ctx.say(f"examiner's note ({record.quality_gate}): {shown(record.note)}")
    _print_calibration(ctx, record)
    if not record.candidates:
        ctx.say("  no candidates (the gallery is empty)")
        return
    for line in text_table(record, Surface.CLI, escape=shown):
        ctx.say(f"  {line}")


def _print_calibration(ctx: CliContext, record: SearchRecord) -> None:
    calibration = record.calibration or {}
    ctx.say(
        f"false-match rates from {calibration.get('label')} "
        f"({calibration.get('impostor_pairs', 0):,} impostor pairs: "
        f"{', '.join(calibration.get('sources') or ['none'])}"
        + ("; STALE: run `workstation calibrate`" if calibration.get("stale") else "")
        + ")"
    )
    unknown = next((c for c in record.candidates if c.fmr is None and c.fmr_text), None)
    if unknown is not None and unknown.fmr_text:
        ctx.say(unknown.fmr_text)
    # Which rate each FMR is (the candidate's group, the highest group's, or pooled), in the
    # calibration's words, each sentence once; then how rates differ by group in this gallery.
    for basis in record.fmr_bases:
        ctx.say(f"FMR: {basis}")
    if record.group_spread:
        ctx.say(f"by group: {record.group_spread}")


def print_legend(ctx: CliContext) -> None:
    from workstation.reports.columns import Surface, legend

    ctx.say(legend(Surface.CLI))


# ---------------------------------------------------------------------- compare
def cmd_compare(ctx: CliContext) -> int:
    from workstation.gallery.reads import Read, require_read_case
    from workstation.gallery.search import compare_images, record_comparison

    args = ctx.args
    # Refused before any photo is read: every comparison is recorded against its case.
    case_id, purpose = require_read_case(args.case, args.purpose, Read.COMPARE)
    chosen_on_line = any(
        value is not None for value in (args.face_a, args.box_a, args.face_b, args.box_b)
    )
    if args.pairs:
        if args.images:
            raise WorkstationError("compare takes two images or --pairs FILE.csv, not both")
        if chosen_on_line:
            raise WorkstationError(
                "with --pairs, say which face of each photo in the file's box_a/box_b "
                "(or face_a/face_b) columns, not with --face-a/--box-a/--face-b/--box-b"
            )
        pairs = _read_pairs(Path(args.pairs))
    elif len(args.images) == 2:
        pairs = [
            _Pair(
                args.images[0],
                args.images[1],
                FaceChoice.parse(args.box_a, args.face_a),
                FaceChoice.parse(args.box_b, args.face_b),
            )
        ]
    else:
        raise WorkstationError("compare needs two images, or --pairs FILE.csv")
    engine = ctx.engine()
    gallery = ctx.gallery()
    from workstation.gallery.calibration import calibration_for, commit_calibration

    # A calibration computed now (the gallery changed) is stored and audited before use.
    calibration = commit_calibration(gallery, calibration_for(gallery, str(engine.model)))
    failures = 0
    bases_said: set[str] = set()
    for pair in pairs:
        image_a, image_b = pair.image_a, pair.image_b
        try:
            if pair.problem:
                raise WorkstationError(pair.problem)
            comparison = compare_images(
                engine,
                _load_noting_frames(ctx, image_a),
                _load_noting_frames(ctx, image_b),
                image_a,
                image_b,
                calibration=calibration,
                choice_a=pair.choice_a,
                choice_b=pair.choice_b,
            )
            record_comparison(gallery, comparison, case_id, purpose)
        except WorkstationError as exc:
            failures += 1
            if args.json:
                ctx.json_line(
                    {
                        "image_a": image_a,
                        "image_b": image_b,
                        "score": None,
                        "fmr": None,
                        "error": str(exc),
                    }
                )
            else:
                ctx.warn(f"error: {exc}")
            continue
        if args.json:
            ctx.json_line(comparison.to_dict())
        else:
            if comparison.fmr_basis and comparison.fmr_basis not in bases_said:
                bases_said.add(comparison.fmr_basis)
                ctx.say(f"FMR: {comparison.fmr_basis}")
            ctx.say(
                f"{shown(image_a)} vs {shown(image_b)}: similarity {comparison.score:.4f}; "
                f"strangers score this high: {comparison.fmr_text} (model "
                f"{engine.model.short}; "
                f"quality {comparison.face_a.quality.verdict.value} / "
                f"{comparison.face_b.quality.verdict.value})"
            )
            for side, image in (("a", image_a), ("b", image_b)):
                face = comparison.face_summary(side)
                if face["box"] is not None or face["face_index"] or face["low_confidence"]:
                    ctx.say(f"  {shown(image)}: {_compared_face_words(face)}")
    return EXIT_FAILED if failures == len(pairs) else EXIT_OK


def _load_noting_frames(ctx: CliContext, path: str) -> LoadedImage:
    """Load a photo; a file of several frames says (on stderr) that only the first is used."""
    from workstation.vision.images import load_image

    image = load_image(path)
    if image.frame_note:
        ctx.warn(f"warning: {image.frame_note}")
    return image


def _compared_face_words(face: dict[str, Any]) -> str:
    """How the compared face was chosen and found, for the terminal."""
    words = f"{face['chosen']}"
    if face["source"] == "manual":
        words += (
            "; landmarks found inside it, aligned"
            if face["aligned"]
            else "; no landmarks inside it: compared unaligned, LOW CONFIDENCE"
        )
    return words


@dataclass(frozen=True)
class _Pair:
    """One comparison asked for: two photos, which face of each, or why the row cannot run."""

    image_a: str
    image_b: str
    choice_a: FaceChoice = LARGEST_FACE
    choice_b: FaceChoice = LARGEST_FACE
    problem: str | None = None


def _read_pairs(path: Path) -> list[_Pair]:
    """One pair per row; relative paths are relative to the pairs file. Optional columns:
    box_a/box_b ("X,Y,W,H", like a box drawn in the app) and face_a/face_b (face numbers)."""
    from workstation.tabular import read_table

    table = read_table(path, "pairs file")
    if not {"image_a", "image_b"} <= set(table.columns):
        raise WorkstationError(f"{path}: the pairs file needs the columns image_a and image_b")
    pairs: list[_Pair] = []
    for row in table.rows:
        values = row.values
        a, b = values.get("image_a", ""), values.get("image_b", "")
        base = path.parent
        a_path = a if not a or Path(a).is_absolute() else str(base / a)
        b_path = b if not b or Path(b).is_absolute() else str(base / b)
        if not (a and b):
            pairs.append(
                _Pair(
                    a_path,
                    b_path,
                    problem=f"{table.where(row)}: image_a and image_b are both needed",
                )
            )
            continue
        try:
            choice_a = FaceChoice.parse(values.get("box_a"), values.get("face_a"))
            choice_b = FaceChoice.parse(values.get("box_b"), values.get("face_b"))
        except ValueError as exc:
            pairs.append(_Pair(a_path, b_path, problem=f"{table.where(row)}: {exc}"))
            continue
        pairs.append(_Pair(a_path, b_path, choice_a, choice_b))
    return pairs


# ---------------------------------------------------------------------- arguments
def add_enroll_parser(sub: Subparsers) -> None:
    """The `enroll` command and its arguments."""
    p = sub.add_parser("enroll", help="enrol photos into the gallery")
    p.add_argument(
        "--manifest",
        metavar="FILE.csv",
        help="CSV with columns subject_id,image (optional name; other columns kept as attributes)",
    )
    p.add_argument("--subject", metavar="ID", help="subject id for the photos given")
    p.add_argument("--name", metavar="N", help="subject name")
    p.add_argument("--json", action="store_true", help="one JSON line per photo")
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help="photos or folders (searched recursively)"
    )
    p.set_defaults(func=cmd_enroll)


def add_search_parser(sub: Subparsers) -> None:
    """The `search` command and its arguments."""
    p = sub.add_parser(
        "search", help="search the gallery with probe photos (needs a case and a purpose)"
    )
    p.add_argument("--case", metavar="ID", help="case number (required)")
    p.add_argument("--purpose", metavar="TEXT", help="purpose of the search (required)")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--box", metavar="X,Y,W,H", help="search the face inside this box (drawn by hand)"
    )
    group.add_argument("--face", type=int, metavar="N", help="search face N (0 = largest)")
    p.add_argument(
        "--top",
        type=int,
        default=None,
        metavar="K",
        help="number of candidates (default: the saved setting, 20 unless changed)",
    )
    p.add_argument(
        "--note",
        metavar="TEXT",
        help="examiner's note kept with the search (required to search a poor-quality face)",
    )
    p.add_argument(
        "--enhance",
        metavar="STEPS",
        help="search a working copy made by these enhancement steps (a JSON list such as "
        '\'[{"step": "gamma", "gamma": 1.5}]\', or a file holding one; `workstation enhance '
        "steps` lists them); the original is never changed and the steps are recorded",
    )
    authorisation_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON object per probe per line")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_search)


def add_compare_parser(sub: Subparsers) -> None:
    """The `compare` command and its arguments."""
    p = sub.add_parser(
        "compare",
        help="1:1 comparison of a face in each of two photos (the largest, unless told which)",
    )
    p.add_argument(
        "--pairs",
        metavar="FILE.csv",
        help='CSV with columns image_a,image_b and optional box_a,box_b ("X,Y,W,H") or '
        "face_a,face_b (face numbers)",
    )
    for side in ("a", "b"):
        which = p.add_mutually_exclusive_group()
        which.add_argument(
            f"--face-{side}",
            type=int,
            metavar="N",
            help=f"use face N of photo {side.upper()} (0 = largest)",
        )
        which.add_argument(
            f"--box-{side}",
            metavar="X,Y,W,H",
            help=f"use the face inside this box of photo {side.upper()} (drawn by hand)",
        )
    read_case_options(p, "the comparison")
    p.add_argument("--json", action="store_true")
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.set_defaults(func=cmd_compare)
