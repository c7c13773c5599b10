"""ACE-V comparison sheets (issue 15 item 1) in the core: a sheet saves and reads back with its
annotations; blind verification withholds the first examiner's sheet from a verifier until they
have recorded theirs (in every read: the candidate's view, the search record, the bundle);
roles, audit events and refusals in words."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from examiners import open_as
from lobby_search import enrol_and_search

from workstation.audit.actions import AuditAction
from workstation.audit.log import canonical_json
from workstation.errors import WorkstationError
from workstation.gallery.comparisons import record_sheet, sheets_for
from workstation.gallery.sheets import (
    CONCLUSION_SCALE,
    EXAMINATION,
    FEATURES,
    VERIFICATION,
    Annotation,
    Conclusion,
    Finding,
    SheetInput,
    differences,
)
from workstation.reports.bundle import build_case_bundle

CASE = "2026-0777"


@pytest.fixture
def searched(tmp_path: Path, engine, photo_paths):
    folder = tmp_path / "gallery"
    with open_as(folder, "examiner1") as gallery:
        record = enrol_and_search(gallery, engine, photo_paths, CASE, "lobby photo")
    return folder, record.search_id


def sheet(finding: Finding = Finding.SIMILAR, **changes) -> SheetInput:
    features = {key: finding for key, _ in FEATURES}
    features.update(changes.pop("features", {}))
    values = dict(
        features=features,
        conclusion=Conclusion.SAME,
        visible="frontal, full face, both ears",
        limitations=["compression"],
        feature_notes={"ears": "lobes attached on both"},
        conclusion_note="ears and nose weigh most",
        annotations=(
            Annotation("probe", "arrow", 40, 60, 90, 120),
            Annotation("candidate", "circle", 128, 140, 22),
            Annotation("probe", "label", 30, 200, text="left ear lobe"),
        ),
    )
    values.update(changes)
    return SheetInput(**values)


def test_sheet_saves_and_reloads_with_annotations_and_is_audited(searched) -> None:
    folder, search_id = searched
    with open_as(folder, "examiner1") as gallery:
        stored = record_sheet(gallery, search_id, "obama", sheet())
    with open_as(folder, "examiner1") as gallery:
        view = sheets_for(gallery, search_id, "obama")
        events = [e for e in gallery.audit_events(case_id=CASE) if e.action == "comparison_sheet"]
        assert gallery.verify_audit().intact
    assert view.own == stored and not view.blind and view.others == ()
    assert stored.role == EXAMINATION and stored.verifies is None
    assert stored.conclusion is Conclusion.SAME
    assert stored.annotations == list(sheet().annotations)
    assert stored.body["analysis"]["limitations"] == ["compression"]
    assert {m["feature"]: m["note"] for m in stored.body["features"]}["ears"].startswith("lobes")
    assert stored.body["conclusion_scale"] == list(CONCLUSION_SCALE)
    assert "ENFSI" in stored.body["conclusion_scale_source"]
    assert "aligned crop" in stored.body["annotation_space"]
    (event,) = events
    assert event.user == "examiner1" and event.details["sheet_id"] == stored.id
    # The event names the sheet by its hash; its findings stay out of the log everyone reads.
    assert (
        event.details["sheet_sha256"]
        == hashlib.sha256(canonical_json(stored.body).encode()).hexdigest()
    )
    assert "ears and nose" not in json.dumps(event.details)


def test_blind_verification_is_enforced_by_the_core(searched) -> None:
    folder, search_id = searched
    with open_as(folder, "examiner1") as gallery:
        first = record_sheet(gallery, search_id, "obama", sheet())
    with open_as(folder, "examiner2", roles=["reviewer", "analyst"]) as gallery:
        view = sheets_for(gallery, search_id, "obama")
        assert view.blind and view.own is None and view.others == () and view.withheld == 1
        assert "blind verification" in (view.why or "")
        # Every other read gives the verifier nothing of the first sheet either.
        record = gallery.search_record(search_id)
        assert record.sheets_of("obama").others == () and record.sheets_of("obama").withheld == 1
        bundle = build_case_bundle(gallery, CASE)
        (carried,) = bundle.data["searches"][0]["comparison_sheets"]
        assert carried["sheets"] == [] and carried["withheld"] == 1
        # Nothing of it in the bundle either: not in the searches, not in the audit events.
        assert "ears and nose" not in json.dumps(bundle.data)
        assert Conclusion.SAME.value not in json.dumps(bundle.data["audit"])
        second = record_sheet(
            gallery,
            search_id,
            "obama",
            sheet(features={"ears": Finding.DISSIMILAR}, conclusion=Conclusion.LIMITED_SAME),
        )
        after = sheets_for(gallery, search_id, "obama")
        events = [e.action for e in gallery.audit_events(case_id=CASE)]
    assert second.role == VERIFICATION and second.verifies == first.id
    assert after.own == second and after.others == (first,) and not after.blind
    found = differences(first, second)
    assert found["features"] == ["ears"] and found["conclusion"] is True
    assert AuditAction.VERIFICATION_SHEET.value in events


def test_a_verifier_needs_the_reviewer_role_and_a_sheet_needs_every_feature(searched) -> None:
    folder, search_id = searched
    with open_as(folder, "examiner1") as gallery:
        incomplete = sheet()
        features = dict(incomplete.features)
        del features["nose"]
        with pytest.raises(WorkstationError, match="the conclusion is one of: strong support"):
            record_sheet(gallery, search_id, "obama", sheet(conclusion="match"))
        with pytest.raises(WorkstationError, match="no finding for: Nose"):
            record_sheet(
                gallery,
                search_id,
                "obama",
                SheetInput(features=features, conclusion=Conclusion.SAME),
            )
        with pytest.raises(WorkstationError, match="label needs its words"):
            record_sheet(
                gallery,
                search_id,
                "obama",
                sheet(annotations=(Annotation("probe", "label", 10, 10),)),
            )
        with pytest.raises(WorkstationError, match="not a candidate"):
            record_sheet(gallery, search_id, "nobody", sheet())
        record_sheet(gallery, search_id, "obama", sheet())
    with open_as(folder, "analyst2", roles=["analyst"]) as gallery:
        with pytest.raises(WorkstationError, match="reviewer"):
            record_sheet(gallery, search_id, "obama", sheet())
        assert sheets_for(gallery, search_id, "obama").blind


def test_report_carries_the_sheets_scale_and_annotated_crops(searched) -> None:
    import html as html_module

    import numpy as np

    from workstation.reports.case_report import report_html, report_images

    folder, search_id = searched
    with open_as(folder, "examiner1") as gallery:
        first = record_sheet(gallery, search_id, "obama", sheet())
    with open_as(folder, "examiner2", roles=["reviewer"]) as gallery:
        record_sheet(gallery, search_id, "obama", sheet(conclusion=Conclusion.LIMITED_SAME))
        bundle = build_case_bundle(gallery, CASE)
        images = report_images(gallery, bundle)
    page = html_module.unescape(report_html(bundle, "case.json", "0" * 64, images))
    assert "ACE-V comparison of obama" in page
    for words in CONCLUSION_SCALE:
        assert words in page  # the scale is printed with its source
    assert "ENFSI" in page and "FISWG" in page
    assert "support for same source" in page and "limited support for same source" in page
    assert "≠ Conclusion" in page and "≠ Ears" not in page
    (carried,) = bundle.data["searches"][0]["comparison_sheets"]
    assert [s["conclusion_words"] for s in carried["sheets"]] == [
        "limited support for same source",  # the exporter's own first
        "support for same source",
    ]
    assert carried["differences"][0]["conclusion"] is True
    # The annotated probe crop: amber pixels along the drawn arrow, none elsewhere than marks.
    from workstation.vision.cvcompat import cv2_module

    png = images[f"sheet-{first.id}-probe"]
    drawn = cv2_module().imdecode(np.frombuffer(png, np.uint8), 1)
    assert drawn.shape[:2] == (256, 256)
    b, g, r = (int(v) for v in drawn[90, 65])  # on the arrow from (40, 60) to (90, 120)
    assert r > 200 and g > 150 and b < 80, (b, g, r)
