"""Commands that maintain the gallery and the program: index, models, re-embedding,
settings, calibration, duplicates, merging, and starting the desktop app."""

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
from workstation.errors import WorkstationError


def cmd_index(ctx: CliContext) -> int:
    from workstation.gallery.index_build import rebuild_index
    from workstation.progress import drain

    gallery = ctx.gallery()
    if ctx.args.index_action == "rebuild":
        index = drain(rebuild_index(gallery, reason="requested by user"))
        if index is None:  # only a cancel token stops a rebuild, and the CLI passes none
            raise WorkstationError(f"{gallery.folder}: the index rebuild was cancelled")
        checksum = f", sha256 {index.file_sha256}" if index.file_sha256 else ""
        ctx.say(f"index rebuilt: {index.count} faces, {shown(index.kind)}{checksum}")
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
            ctx.say(f"{key}: {shown(value)}")
    return EXIT_OK


def cmd_models(ctx: CliContext) -> int:
    from workstation.vision.insightface_backend import INSIGHTFACE_LICENCE_NOTE, list_packs
    from workstation.vision.models import load_manifest, load_verified
    from workstation.vision.registry import CONFIGURATIONS, DEFAULT_CONFIGURATION

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
    usable = {row["key"] for row in rows if row["status"].startswith("ok")}
    configurations = []
    for config in CONFIGURATIONS:
        if not config.offered:
            continue
        expected = config.expected_model_id()
        configurations.append(
            {
                "key": config.key,
                "label": config.label,
                "default": config.key == DEFAULT_CONFIGURATION,
                "summary": config.summary,
                "model_files": list(config.model_files),
                "model_id": str(expected) if expected else None,
                "usable": set(config.model_files) <= usable,
                "licence": config.licence,
            }
        )
    packs = [str(p) for p in list_packs()]
    if ctx.args.json:
        ctx.json_line(
            {"models": rows, "configurations": configurations, "insightface_packs": packs}
        )
    else:
        for row in rows:
            ctx.say(
                f"{row['key']} ({row['role']}, {row['licence']}): {shown(row['status'])}\n  "
                f"{shown(row['path'])}\n  sha256 {row['sha256']}"
            )
        ctx.say("configurations (--backend, or Settings > Face model):")
        for item in configurations:
            mark = " [default]" if item["default"] else ""
            state = "" if item["usable"] else " (UNUSABLE: a model file above is not)"
            ctx.say(f"  {item['key']}{mark}{state}: {item['summary']}")
        ctx.say(
            "insightface packs on this PC: "
            + (", ".join(packs) if packs else "none")
            + f" ({INSIGHTFACE_LICENCE_NOTE})"
        )
    return EXIT_OK if all(r["status"].startswith("ok") for r in rows) else EXIT_FAILED


def cmd_reembed(ctx: CliContext) -> int:
    from workstation.gallery.admin import reembed
    from workstation.progress import drain

    gallery = ctx.gallery()
    summary = drain(
        reembed(gallery, ctx.engine(follow_gallery=False)),
        lambda p: ctx.warn(f"[{p.done}/{p.total}] {p.message}") if p.done % 50 == 0 else None,
    )
    if summary is None:  # only a cancel token stops it, and the CLI passes none
        raise WorkstationError(f"{gallery.folder}: re-embedding was cancelled")
    ctx.say(
        f"re-embedded {summary['faces']} faces: {summary['old_model_id']} -> "
        f"{summary['new_model_id']}"
    )
    return EXIT_OK


def cmd_settings(ctx: CliContext) -> int:
    from workstation.gallery.settings_change import apply_settings_change
    from workstation.settings import (
        SETTINGS_SCHEMA,
        changes_between,
        load_settings,
        settings_path,
        with_setting,
    )

    args = ctx.args
    settings = load_settings()
    if args.settings_action != "set":
        ctx.say(f"# {settings_path()}")
        for key, value in {"schema": SETTINGS_SCHEMA, **settings.values()}.items():
            ctx.say(f"{key}: {json.dumps(value)}")
        return EXIT_OK
    new = with_setting(settings, args.key, args.value)
    new.validate()
    changes: dict[str, Any] = {}
    if changes_between(settings, new):
        # Audited in the current gallery, in the same act as the file is put in place.
        changes = apply_settings_change(ctx.gallery(create=True), new)
    value = getattr(new, args.key)
    ctx.say(f"{args.key} = {json.dumps(value)}" + ("" if changes else " (unchanged)"))
    return EXIT_OK


# ---------------------------------------------------------------------- calibration, hygiene
def cmd_calibrate(ctx: CliContext) -> int:
    from workstation.gallery.calibration import calibrate
    from workstation.progress import drain

    gallery = ctx.gallery()
    if gallery.model_id is None:
        raise WorkstationError(f"{gallery.folder}: the gallery is empty; enrol photos first")
    stored = drain(
        calibrate(gallery, reason=ctx.args.reason or "requested by user"),
        lambda p: ctx.warn(f"[{p.done}/{p.total}] {p.message}") if not ctx.args.json else None,
    )
    if stored is None:  # only a cancel token stops it, and the CLI passes none
        raise WorkstationError(f"{gallery.folder}: the calibration was cancelled")
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
    # Scores on the model's own scale (a fused ensemble's strangers score about 0.6): read at
    # fixed false-match rates rather than at fixed scores.
    for target in (1e-2, 1e-3, 1e-4, 1e-5):
        score = stored.histogram.score_at_fmr(target)
        if score is None:
            ctx.say(f"  FMR 1 in {1 / target:,.0f}: too few impostor pairs to show a rate this low")
            continue
        estimate = stored.estimate(score)
        assert estimate is not None
        ctx.say(
            f"  score {score:.4f}: strangers score this high {estimate.text} (95% upper bound "
            f"at most 1 in {1 / target:,.0f})"
        )
    spread = summary.get("groups")
    if spread:
        ctx.say(f"by group (sex and race of the subjects): {spread['text']}")
    else:
        from workstation.calibration.groups import pooled_words

        ctx.say(f"every search's false-match rate is {pooled_words(gallery.model_id)}")
    return EXIT_OK


def cmd_duplicates(ctx: CliContext) -> int:
    from workstation.gallery.hygiene import duplicate_threshold, find_duplicate_subjects
    from workstation.gallery.reads import (
        Read,
        duplicates_consulted,
        record_read,
        require_read_case,
    )

    case_id, purpose = require_read_case(ctx.args.case, ctx.args.purpose, Read.DUPLICATES)
    gallery = ctx.gallery()
    if ctx.args.threshold is not None:
        threshold, why = ctx.args.threshold, "given with --threshold"
    else:
        threshold, why = duplicate_threshold(gallery)
    pairs = find_duplicate_subjects(gallery, threshold)
    record_read(gallery, Read.DUPLICATES, duplicates_consulted(pairs, threshold), case_id, purpose)
    if ctx.args.json:
        for pair in pairs:
            ctx.json_line({**pair.to_dict(), "threshold": threshold})
        return EXIT_OK
    ctx.say(f"threshold {threshold:.4f} ({why})")
    for pair in pairs:
        ctx.say(
            f"  {pair.score:.4f}  {shown(pair.subject_a)} ({shown(pair.name_a)}, face "
            f"{pair.face_a})  {shown(pair.subject_b)} ({shown(pair.name_b)}, face {pair.face_b})"
        )
    ctx.say(
        f"{len(pairs)} possible duplicate pair(s); review the photos before merging "
        "(`workstation merge KEEP_ID MERGE_ID --reason TEXT`)"
    )
    return EXIT_OK


def cmd_merge(ctx: CliContext) -> int:
    from workstation.gallery.hygiene import merge_subjects

    args = ctx.args
    details = merge_subjects(ctx.gallery(), args.keep_id, args.merge_id, args.reason)
    ctx.say(
        f"merged subject {shown(args.merge_id)} into {shown(args.keep_id)}: "
        f"{len(details['face_ids_moved'])} face(s) moved; reason recorded in the audit log"
    )
    return EXIT_OK


def cmd_retention(ctx: CliContext) -> int:
    from workstation.gallery.admin import apply_retention

    args = ctx.args
    if args.dry_run:
        from workstation.gallery.admin import retention_list
        from workstation.gallery.reads import Read, require_read_case

        # The list names subjects: recorded (ids only) before it shows; refused without a
        # case before the gallery is opened. A purge lists them in its own RETENTION event.
        require_read_case(args.case, args.purpose, Read.RETENTION_LIST)
        if not (args.reason or "").strip():
            raise WorkstationError("a retention purge needs a reason (it is kept in the audit log)")
        going = retention_list(ctx.gallery(), args.older_than, args.case, args.purpose)
        details = None
    else:
        going, details = apply_retention(ctx.gallery(), args.older_than, args.reason)
    verb = "would delete" if args.dry_run else "deleted"
    for subject in going:
        if args.json:
            ctx.json_line({"subject_id": subject.id, "enrolled_at": subject.created_at})
        else:
            ctx.say(f"{verb} {shown(subject.id)} (enrolled {subject.created_at})")
    faces = sum(subject.face_count for subject in going)
    tail = (
        "; nothing was changed (dry run)"
        if args.dry_run
        else "; one audit event lists their ids and the reason"
        if details
        else ""
    )
    ctx.say(
        f"{len(going)} subject(s) ({faces} face(s)) enrolled more than {args.older_than} day(s) "
        f"ago: {verb}{tail}"
    )
    return EXIT_OK


# ---------------------------------------------------------------------- parser


# ---------------------------------------------------------------------- arguments
def add_index_parser(sub: Subparsers) -> None:
    """The `index` command and its arguments."""
    p = sub.add_parser("index", help="the FAISS index (derived from the database)")
    isub = p.add_subparsers(dest="index_action", metavar="ACTION", required=True)
    isub.add_parser("rebuild", help="rebuild the index from the database")
    i = isub.add_parser("info", help="what the index holds")
    i.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_index)


def add_models_parser(sub: Subparsers) -> None:
    """The `models` command and its arguments."""
    p = sub.add_parser(
        "models", help="list model files, verify their hashes, list insightface packs"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)


def add_reembed_parser(sub: Subparsers) -> None:
    """The `reembed` command and its arguments."""
    p = sub.add_parser("reembed", help="re-compute every embedding with the selected model")
    p.set_defaults(func=cmd_reembed)


def add_settings_parser(sub: Subparsers) -> None:
    """The `settings` command and its arguments."""
    p = sub.add_parser("settings", help="show or change settings (changes are audited)")
    tsub = p.add_subparsers(dest="settings_action", metavar="ACTION")
    t = tsub.add_parser(
        "set", help="set one setting: gallery, backend, insightface_pack, model_dir, top_k"
    )
    t.add_argument("key")
    t.add_argument("value")
    p.set_defaults(func=cmd_settings)


def add_calibrate_parser(sub: Subparsers) -> None:
    """The `calibrate` command and its arguments."""
    p = sub.add_parser(
        "calibrate",
        help="recompute the false-match-rate calibration from the gallery (audited)",
    )
    p.add_argument("--reason", metavar="TEXT", help="why (kept in the audit log)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_calibrate)


def add_duplicates_parser(sub: Subparsers) -> None:
    """The `duplicates` command and its arguments."""
    p = sub.add_parser(
        "duplicates", help="list subject pairs that are probably one person enrolled twice"
    )
    p.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="similarity threshold (default: strict, from a false-match rate of 1e-5)",
    )
    read_case_options(p, "the listing")
    p.add_argument("--json", action="store_true", help="one JSON line per pair")
    p.set_defaults(func=cmd_duplicates)


def add_merge_parser(sub: Subparsers) -> None:
    """The `merge` command and its arguments."""
    p = sub.add_parser(
        "merge", help="merge subject MERGE_ID into KEEP_ID (needs a reason; audited)"
    )
    p.add_argument("keep_id", metavar="KEEP_ID")
    p.add_argument("merge_id", metavar="MERGE_ID")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.set_defaults(func=cmd_merge)


def add_retention_parser(sub: Subparsers) -> None:
    """The `retention` command and its arguments."""
    p = sub.add_parser(
        "retention",
        help="delete every subject enrolled more than DAYS days ago (one audited act listing "
        "their ids); --dry-run lists them",
    )
    p.add_argument("--older-than", required=True, type=int, metavar="DAYS")
    p.add_argument("--reason", required=True, metavar="TEXT", help="e.g. the rule that applies")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would go; change nothing (the listing is recorded: --case, --purpose)",
    )
    read_case_options(p, "the --dry-run listing")
    p.add_argument("--json", action="store_true", help="one JSON line per subject")
    p.set_defaults(func=cmd_retention)
