"""Cold-case watch (issue 15 item 3): a searched probe left "unresolved, watch" on its case.

An examiner leaves a search's probe on watch with a reason, a false-match rate (default 1 in
10,000) and an expiry date (default 90 days). The calibration turns the rate into a score
threshold once, when the watch is set (the threshold and the calibration it came from are
audited with it). The probe's embedding is kept with the watch: it is recomputed from the
stored probe photo, whose SHA-256 must still be the search's, at the face the search recorded.

After each enrolment `run_watches` searches every active watch of an open case against the
faces enrolled since its last search only (never the whole gallery again). Each such re-search
is an audited act on the watch's case (`watch_search`, with the watch's purpose); a new face
scoring at or above the threshold is a hit: stored with a search row of the case (the probe,
the face as searched, the hits as candidates with their FMR), so the case's examiners review it
like any search (Search tab, decisions, report), and listed by `workstation watch list` and the
app's notice.

A watch ends when the examiner ends it (with a reason), when its date passes, or when its case
is closed or archived; its embedding is then deleted (the row keeps who set it, why, and how it
ended).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from workstation.audit.actions import AuditAction
from workstation.audit.log import utc_now
from workstation.domain import Candidate, CaseStatus
from workstation.errors import CaseStatusError, WorkstationError
from workstation.gallery.records import FACTS_KEY

if TYPE_CHECKING:
    from workstation.gallery.store import Gallery
    from workstation.vision.engine import FaceEngine

log = logging.getLogger(__name__)

DEFAULT_WATCH_DAYS = 90
DEFAULT_WATCH_FMR = 1e-4  # 1 in 10,000


@dataclass(frozen=True)
class WatchHit:
    """A new face that scored at or above a watch's threshold."""

    watch_id: int
    search_id: int  # the re-search of the case that found it
    subject_id: str
    face_id: int
    score: float
    fmr: float | None
    fmr_text: str | None
    found_at: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Watch:
    """A probe on watch, with what it has found."""

    id: int
    search_id: int
    case_id: str
    purpose: str
    reason: str
    fmr: float
    threshold: float
    model_id: str
    until: str  # YYYY-MM-DD: the last day it is searched
    created_at: str
    created_by: str
    ended_at: str | None
    ended_by: str | None
    end_reason: str | None
    checked_face_id: int
    hits: tuple[WatchHit, ...] = ()

    @property
    def active(self) -> bool:
        return self.ended_at is None

    @property
    def state(self) -> str:
        return "active" if self.active else f"ended ({self.end_reason})"

    def to_dict(self) -> dict[str, Any]:
        """A `watch list --json` line (keys documented in the README)."""
        body = {k: v for k, v in self.__dict__.items() if k not in ("hits", "checked_face_id")}
        body["active"] = self.active
        body["hits"] = [hit.to_dict() for hit in self.hits]
        return body


def _watch(row: dict[str, Any], hits: list[WatchHit]) -> Watch:
    return Watch(
        id=int(row["id"]),
        search_id=int(row["search_id"]),
        case_id=str(row["case_id"]),
        purpose=str(row["purpose"]),
        reason=str(row["reason"]),
        fmr=float(row["fmr"]),
        threshold=float(row["threshold"]),
        model_id=str(row["model_id"]),
        until=str(row["until"]),
        created_at=str(row["created_at"]),
        created_by=str(row["created_by"]),
        ended_at=row["ended_at"],
        ended_by=row["ended_by"],
        end_reason=row["end_reason"],
        checked_face_id=int(row["checked_face_id"]),
        hits=tuple(hits),
    )


def _hit(row: dict[str, Any]) -> WatchHit:
    return WatchHit(
        watch_id=int(row["watch_id"]),
        search_id=int(row["search_id"]),
        subject_id=str(row["subject_id"]),
        face_id=int(row["face_id"]),
        score=float(row["score"]),
        fmr=row["fmr"],
        fmr_text=row["fmr_text"],
        found_at=str(row["created_at"]),
    )


def list_watches(gallery: Gallery, active_only: bool = False) -> list[Watch]:
    """Every watch (or the active ones), oldest first, each with its hits."""
    rows = gallery.watch_rows(active_only=active_only)
    hits: dict[int, list[WatchHit]] = {}
    for row in gallery.watch_hit_rows(int(r["id"]) for r in rows):
        hits.setdefault(int(row["watch_id"]), []).append(_hit(row))
    return [_watch(row, hits.get(int(row["id"]), [])) for row in rows]


def _today() -> date:
    return datetime.now(UTC).date()


def watch_until(text: str | None, today: date | None = None) -> str:
    """The expiry date as YYYY-MM-DD: `text` checked (not in the past), or the default."""
    today = today or _today()
    if text is None or not text.strip():
        return (today + timedelta(days=DEFAULT_WATCH_DAYS)).isoformat()
    try:
        until = date.fromisoformat(text.strip())
    except ValueError:
        raise WorkstationError(
            f"watch date {text!r} is not a date: write it as YYYY-MM-DD"
        ) from None
    if until < today:
        raise WorkstationError(f"watch date {until.isoformat()} is in the past")
    return until.isoformat()


def probe_embedding(gallery: Gallery, engine: FaceEngine, search_id: int) -> np.ndarray:
    """The embedding of the face a search searched, recomputed from its stored probe: the photo,
    or the frame of the video (read again at its index).

    Refused (in words) when the photo or video is gone or no longer the file searched (SHA-256),
    when the probe was a face track (a template of many frames), or when the engine is not the
    search's model.
    """
    from workstation.gallery.probe_source import recorded_probe_image
    from workstation.vision.enhancement import working_copy_of

    record = gallery.search_record(search_id)
    frame = record.probe.frame
    if frame and "track_id" in frame:
        raise WorkstationError(
            f"search {search_id} searched a face track (a template of several frames): search "
            "one frame of the track to leave it on watch"
        )
    if str(engine.model) != record.model_id:
        raise WorkstationError(
            f"search {search_id} was made with {record.model_id}; the loaded model is "
            f"{engine.model}"
        )
    bgr = recorded_probe_image(record).bgr
    face = record.face
    # As searched: aligned on its landmarks, or the box unaligned (a drawn box without them);
    # an enhanced search's face is in its working copy, made again and checked by SHA-256.
    lineage = record.probe.enhancement
    if lineage:
        bgr = working_copy_of(bgr, lineage)
    landmarks = face.landmarks if face.aligned else None
    return engine.embed_faces(bgr, [(face.box, landmarks)])[0]


def add_watch(
    gallery: Gallery,
    engine: FaceEngine,
    search_id: int,
    reason: str | None,
    until: str | None = None,
    fmr: float = DEFAULT_WATCH_FMR,
) -> Watch:
    """Leave a search's probe on watch (audited on its case); the new watch.

    The threshold is the lowest score whose false-match rate (its 95% upper bound) is at most
    `fmr` under the gallery's current calibration (or the model's reference table).
    """
    from workstation.gallery.calibration import calibration_for

    reason = (reason or "").strip()
    if not reason:
        raise WorkstationError("a watch needs a reason (why the probe stays unresolved)")
    if not 0 < fmr < 1:
        raise WorkstationError(f"--fmr must be a rate between 0 and 1 (e.g. 1e-4), not {fmr}")
    row = gallery.search_row(search_id)
    if row is None:
        raise WorkstationError(f"search {search_id} is not in the gallery {gallery.folder}")
    until = watch_until(until)
    embedding = probe_embedding(gallery, engine, search_id)
    calibration = calibration_for(gallery, str(row["model_id"]), auto=False)
    if not calibration.usable:
        raise WorkstationError(
            f"the calibration ({calibration.label}) has too few stranger pairs to turn a "
            "false-match rate into a threshold: run `workstation calibrate` first"
        )
    pairs = calibration.impostor_pairs
    threshold = calibration.histogram.score_at_fmr(fmr)
    basis = f"the score whose 95% upper false-match rate is at most {fmr:g} ({pairs:,} pairs)"
    if threshold is None:
        # Too few stranger pairs to vouch for so low a rate (about 3 / rate are needed): the
        # threshold is then the lowest score no stranger pair reached, and the watch says so.
        threshold = calibration.histogram.score_at_fmr(fmr, use_upper_bound=False)
        basis = (
            f"above every one of the calibration's {pairs:,} stranger pairs: they cannot show "
            f"a rate as low as {fmr:g} (about {3 / fmr:,.0f} pairs are needed)"
        )
    if threshold is None:
        raise WorkstationError(
            f"the calibration ({calibration.label}, {pairs:,} stranger pairs) gives no score "
            f"threshold for a false-match rate of {fmr:g}: pick a larger --fmr"
        )
    highest = gallery.highest_face_id()  # a watch searches only faces enrolled after it
    details = {
        "search_id": search_id,
        "reason": reason,
        "fmr": fmr,
        "threshold": round(float(threshold), 5),
        "threshold_basis": basis,
        "calibration": calibration.label,
        "calibration_sha256": calibration.sha256,
        "until": until,
        "probe_sha256": row["probe_sha256"],
        "faces_before": highest,
    }
    with gallery.change(
        AuditAction.WATCH_ADD, details, case_id=str(row["case_id"]), purpose=str(row["purpose"])
    ) as change:
        watch_id = change.add_watch(
            {
                "search_id": search_id,
                "case_id": str(row["case_id"]),
                "purpose": str(row["purpose"]),
                "reason": reason,
                "fmr": fmr,
                "threshold": float(threshold),
                "model_id": str(row["model_id"]),
                "until": until,
                "checked_face_id": highest,
            },
            embedding,
        )
        change.details["watch_id"] = watch_id
    return list_watches_by_id(gallery, watch_id)


def list_watches_by_id(gallery: Gallery, watch_id: int) -> Watch:
    rows = gallery.watch_rows(watch_id=watch_id)
    if not rows:
        raise WorkstationError(f"watch {watch_id} is not in the gallery {gallery.folder}")
    hits = [_hit(r) for r in gallery.watch_hit_rows([watch_id])]
    return _watch(rows[0], hits)


def end_watch(gallery: Gallery, watch_id: int, reason: str | None) -> Watch:
    """End a watch (audited on its case); its probe embedding is deleted."""
    reason = (reason or "").strip()
    if not reason:
        raise WorkstationError("ending a watch needs a reason")
    watch = list_watches_by_id(gallery, watch_id)
    if not watch.active:
        raise WorkstationError(f"watch {watch_id} has already ended ({watch.end_reason})")
    with gallery.change(
        AuditAction.WATCH_END,
        {"watch_id": watch_id, "reason": reason, "expired": False},
        case_id=watch.case_id,
        purpose=watch.purpose,
    ) as change:
        change.end_watches([watch_id], reason)
    return list_watches_by_id(gallery, watch_id)


def expire_watches(gallery: Gallery, today: date | None = None) -> list[int]:
    """End the watches whose date has passed (one audited act per case); their ids."""
    today_text = (today or _today()).isoformat()
    expired: dict[tuple[str, str], list[int]] = {}
    for row in gallery.watch_rows(active_only=True):
        if str(row["until"]) < today_text:
            expired.setdefault((str(row["case_id"]), str(row["purpose"])), []).append(
                int(row["id"])
            )
    ended: list[int] = []
    for (case_id, purpose), ids in expired.items():
        reason = f"expired (its date passed before {today_text})"
        with gallery.change(
            AuditAction.WATCH_END,
            {"watch_ids": ids, "reason": reason, "expired": True},
            case_id=case_id,
            purpose=purpose,
        ) as change:
            change.end_watches(ids, "expired")
        ended += ids
    return ended


def run_watches(gallery: Gallery, today: date | None = None) -> list[WatchHit]:
    """Search every active watch of an open case against the faces enrolled since its last
    search; returns the new hits. Expired watches end first. Called after each enrolment."""
    from workstation.calibration.groups import group_of
    from workstation.calibration.record import fmr_fields
    from workstation.gallery.calibration import calibration_for

    expire_watches(gallery, today)
    found: list[WatchHit] = []
    for row in gallery.watch_rows(active_only=True):
        case = gallery.case(str(row["case_id"]))
        if CaseStatus.of_row(case) is not CaseStatus.OPEN or row["embedding"] is None:
            continue  # a closed case's watches ended with it; kept for safety
        if gallery.model_id not in (None, row["model_id"]):
            log.warning("watch %s: the gallery's model changed; not searched", row["id"])
            continue
        ids, vectors = gallery.faces_after(int(row["checked_face_id"]))
        if len(ids) == 0:
            continue
        probe = np.frombuffer(row["embedding"], dtype=np.float32)
        scores = vectors @ probe
        order = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= row["threshold"]]
        subjects = gallery.face_subjects(int(ids[i]) for i in order)
        calibration = calibration_for(gallery, str(row["model_id"]), auto=False)
        attributes = gallery.subject_attributes(subjects.values())
        faces_now = gallery.face_count()
        candidates = []
        for rank, i in enumerate(order, start=1):
            face_id = int(ids[i])
            subject_id = subjects[face_id]
            fields = fmr_fields(
                calibration, float(scores[i]), faces_now, group_of(attributes.get(subject_id))
            )
            candidate = Candidate(rank, subject_id, face_id, float(scores[i]))
            candidates.append(replace(candidate, **fields))
        try:
            found += _record_watch_search(gallery, row, ids, candidates, calibration.label)
        except CaseStatusError as exc:  # the case was closed meanwhile
            log.info("watch %s not searched: %s", row["id"], exc)
    return found


def _record_watch_search(
    gallery: Gallery,
    watch: dict[str, Any],
    ids: np.ndarray,
    candidates: list[Candidate],
    calibration_label: str,
) -> list[WatchHit]:
    """One watch's re-search as one audited act: the search row (when something was found),
    its hits, and the highest face id now searched."""
    watch_id = int(watch["id"])
    original = gallery.search_row(int(watch["search_id"]))
    assert original is not None
    details: dict[str, Any] = {
        "watch_id": watch_id,
        "watched_search_id": int(watch["search_id"]),
        "faces_searched": len(ids),
        "face_ids_from": int(ids.min()),
        "face_ids_to": int(ids.max()),
        "threshold": round(float(watch["threshold"]), 5),
        "fmr": float(watch["fmr"]),
        "calibration": calibration_label,
        "hits": [
            {"subject_id": c.subject_id, "face_id": c.face_id, "score": round(c.score, 5)}
            for c in candidates
        ],
    }
    hits: list[WatchHit] = []
    with gallery.change(
        AuditAction.WATCH_SEARCH,
        details,
        case_id=str(watch["case_id"]),
        purpose=str(watch["purpose"]),
    ) as change:
        if candidates:
            params = dict(json.loads(original["params"]))
            facts = dict(params.pop(FACTS_KEY, None) or {})
            facts["started_at"] = utc_now()
            facts["gallery_subjects"] = gallery.subject_count()
            params = {
                "watch": {
                    "watch_id": watch_id,
                    "watched_search_id": int(watch["search_id"]),
                    "new_faces_only": True,
                    "face_ids_from": int(ids.min()),
                    "face_ids_to": int(ids.max()),
                    "threshold": round(float(watch["threshold"]), 5),
                    "fmr": float(watch["fmr"]),
                },
                "quality_gate": params.get("quality_gate"),
                FACTS_KEY: facts,
            }
            search_id = change.add_search(
                case_id=str(watch["case_id"]),
                purpose=str(watch["purpose"]),
                created_at=utc_now(),
                probe_path=str(original["probe_path"] or ""),
                probe_sha256=str(original["probe_sha256"]),
                face=json.loads(original["face"]),
                model_id=str(watch["model_id"]),
                params=params,
                gallery_faces=len(ids),
                candidates=[c.stored_dict() for c in candidates],
                note=f"watch {watch_id}: {watch['reason']}",
            )
            change.details["search_id"] = search_id
            for c in candidates:
                change.add_watch_hit(
                    watch_id, search_id, c.subject_id, c.face_id, c.score, c.fmr, c.fmr_text
                )
                hits.append(
                    WatchHit(
                        watch_id, search_id, c.subject_id, c.face_id, round(c.score, 5), c.fmr,
                        c.fmr_text, utc_now(),
                    )
                )  # fmt: skip
        change.watch_searched(watch_id, int(ids.max()))
    return hits


def notices_for(gallery: Gallery, examiner: str, since: str | None = None) -> list[WatchHit]:
    """The hits of watches on the cases `examiner` acted on (found after `since`, if given):
    what the app tells them at start and after an enrolment."""
    from workstation.domain import same_examiner

    mine = {
        str(row["id"])
        for row in gallery.case_activity()
        if any(same_examiner(examiner, name) for name in row["examiners"])
    }
    hits = []
    for watch in list_watches(gallery):
        if watch.case_id not in mine:
            continue
        hits += [h for h in watch.hits if since is None or h.found_at > since]
    return hits
