"""Score calibration: the counting maths on constructed score sets where the answer is known,
the shipped reference table, and gallery calibrations with real photos, SQLite and audit."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from examiners import open_as
from PIL import Image
from scipy.stats import binom
from sqlite_file import edit_database

from workstation.audit.actions import AuditAction
from workstation.calibration.histogram import (
    BIN_WIDTH,
    ImpostorHistogram,
    one_in,
    upper_bound,
)
from workstation.calibration.record import (
    MIN_IMPOSTOR_PAIRS,
    Calibration,
    fmr_fields,
    reference_only,
)
from workstation.calibration.reference import load_reference
from workstation.cli import main
from workstation.errors import CalibrationError
from workstation.gallery.calibration import (
    calibrate,
    calibration_for,
    latest_calibration,
    stored_calibration,
)
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.search import search_image
from workstation.gallery.store import Gallery
from workstation.progress import CancelToken, drain
from workstation.vision.images import load_image
from workstation.vision.registry import ReferenceTableSpec, configuration

SFACE = "sface-2021dec-int8bq@fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"


# ---------------------------------------------------------------------- maths
def test_fmr_is_the_share_of_impostors_at_or_above_the_score() -> None:
    histogram = ImpostorHistogram.from_scores([0.1] * 90 + [0.5] * 10)
    assert histogram.pairs == 100
    at_half = histogram.fmr(0.5)
    assert at_half is not None
    assert (at_half.exceed, at_half.fmr, at_half.below_floor) == (10, 0.1, False)
    assert at_half.text == "1 in 10"
    assert histogram.fmr(0.3).fmr == 0.1
    assert histogram.fmr(0.05).fmr == 1.0
    assert histogram.fmr(-1.0).exceed == 100


def test_a_score_no_impostor_reached_gets_a_floor_never_zero() -> None:
    histogram = ImpostorHistogram.from_scores([0.1] * 90 + [0.5] * 10)
    above = histogram.fmr(0.6)
    assert above is not None
    assert above.exceed == 0 and above.below_floor
    assert above.fmr == pytest.approx(1 / 100) and above.fmr > 0
    assert above.text == "< 1 in 100"
    # one-sided 95% upper bound with none seen: 1 - 0.05^(1/n), about 3/n
    assert above.upper95 == pytest.approx(1 - 0.05 ** (1 / 100))
    assert 0.029 < above.upper95 < 0.031
    assert above.expected_strangers(1000) == pytest.approx(10.0)


def test_uniform_scores_give_the_known_tail() -> None:
    rng = np.random.default_rng(7)
    scores = rng.uniform(-1.0, 1.0, size=400_000)
    histogram = ImpostorHistogram.from_scores(scores)
    for s in (-0.5, 0.0, 0.3, 0.8):
        estimate = histogram.fmr(s)
        assert estimate is not None
        assert estimate.fmr == pytest.approx((1 - s) / 2, abs=0.003)


def test_binning_never_understates_the_fmr_and_errs_by_at_most_one_bin() -> None:
    rng = np.random.default_rng(3)
    scores = np.clip(rng.normal(0.1, 0.1, size=20_000), -1, 1)
    histogram = ImpostorHistogram.from_scores(scores)
    for s in rng.uniform(-0.2, 0.5, size=200):
        exact = int((scores >= s).sum())
        within_a_bin_below = int((scores >= s - BIN_WIDTH).sum())
        assert exact <= histogram.exceeding(float(s)) <= within_a_bin_below


def test_clopper_pearson_upper_bound_is_exact() -> None:
    for k, n in ((0, 1000), (1, 1000), (5, 1000), (40, 200)):
        bound = upper_bound(k, n)
        # The bound is the rate p at which seeing k or fewer in n has probability 5%.
        assert binom.cdf(k, n, bound) == pytest.approx(0.05, abs=1e-6)
        assert bound > k / n
    assert upper_bound(0, 0) == 1.0 and upper_bound(10, 10) == 1.0


def test_score_at_fmr_finds_the_lowest_score_meeting_the_target() -> None:
    histogram = ImpostorHistogram.from_scores([0.1] * 990 + [0.5] * 10)
    # 1% of impostors sit at 0.5; above the 0.1 bin only they remain
    assert histogram.score_at_fmr(0.01, use_upper_bound=False) == pytest.approx(0.1 + BIN_WIDTH)
    assert histogram.score_at_fmr(0.001, use_upper_bound=False) == pytest.approx(0.5 + BIN_WIDTH)
    # 1,000 pairs cannot show an FMR of 1e-4 with 95% confidence
    assert histogram.score_at_fmr(1e-4) is None
    assert ImpostorHistogram().score_at_fmr(0.01) is None


def test_pooling_adds_counts_and_storage_round_trips() -> None:
    a = ImpostorHistogram.from_scores([0.2, 0.3, 0.4])
    b = ImpostorHistogram.from_scores([0.35, 0.9])
    pooled = a + b
    assert pooled.pairs == 5 and pooled.exceeding(0.35) == 3
    again = ImpostorHistogram.from_json(json.loads(json.dumps(pooled.to_json())))
    assert np.array_equal(again.counts, pooled.counts)
    assert again.sha256() == pooled.sha256() != a.sha256()
    with pytest.raises(ValueError, match="different binning"):
        ImpostorHistogram.from_json({**pooled.to_json(), "bin_width": 0.01})
    with pytest.raises(ValueError, match="pair count"):
        ImpostorHistogram.from_json({**pooled.to_json(), "pairs": 6})
    with pytest.raises(ValueError, match="finite"):
        ImpostorHistogram.from_scores([0.1, float("nan")])


def test_rates_in_words() -> None:
    assert one_in(1 / 2345) == "1 in 2,300"
    assert one_in(0.01) == "1 in 100"
    assert one_in(0.6) == "60%"


def test_too_few_impostor_pairs_means_fmr_unknown() -> None:
    small = Calibration(SFACE, ImpostorHistogram.from_scores([0.1] * 10), 10, None)
    assert not small.usable and small.estimate(0.5) is None
    fields = fmr_fields(small, 0.5, 100)
    assert fields["fmr"] is None and fields["expected_strangers"] is None
    assert "unknown" in fields["fmr_text"] and f"{MIN_IMPOSTOR_PAIRS:,}" in fields["fmr_text"]
    enough = Calibration(
        SFACE, ImpostorHistogram.from_scores([0.1] * 1990 + [0.5] * 10), 2000, None
    )
    fields = fmr_fields(enough, 0.5, 300)
    assert fields["fmr"] == pytest.approx(0.005)
    assert fields["expected_strangers"] == pytest.approx(1.5)
    assert fields["fmr_text"] == "1 in 200"


# ---------------------------------------------------------------------- shipped reference
def test_shipped_reference_table_loads_for_its_model_only() -> None:
    table = load_reference(SFACE)
    assert table is not None
    assert table.histogram.pairs >= 3000 and table.photos > 100 and table.identities > 20
    assert table.sha256 == configuration("fast").reference.sha256
    assert load_reference("some-other-model@" + "0" * 64) is None
    only = reference_only("some-other-model@" + "0" * 64)
    assert only.impostor_pairs == 0 and not only.usable


def test_a_reference_table_not_matching_its_pinned_hash_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workstation.vision import registry

    altered = [
        dataclasses.replace(c, reference=ReferenceTableSpec(c.reference.resource, "0" * 64))
        if c.key == "fast" and c.reference is not None
        else c
        for c in registry.CONFIGURATIONS
    ]
    monkeypatch.setattr(registry, "CONFIGURATIONS", tuple(altered))
    with pytest.raises(CalibrationError, match="does not match its pinned checksum"):
        load_reference(SFACE)


# ---------------------------------------------------------------------- gallery calibration
def _enrol(gallery: Gallery, engine, photo_paths: dict[str, Path]):
    items = items_for_subject("P-OBAMA", [photo_paths["obama"]], "Barack Obama")
    items += items_for_subject("P-BIDEN", [photo_paths["biden"]], "Joe Biden")
    return drain(enroll(gallery, engine, items))


def test_calibrate_counts_different_subject_pairs_stores_and_audits(
    gallery, engine, photo_paths
) -> None:
    _enrol(gallery, engine, photo_paths)
    drain(enroll(gallery, engine, items_for_subject("P-OBAMA", [photo_paths["obama2"]])))
    stored = drain(calibrate(gallery, reason="monthly check"))
    # 3 faces: obama-obama2 is the same subject; obama-biden and obama2-biden are impostors
    assert stored.gallery_pairs == 2
    reference = load_reference(str(engine.model))
    assert reference is not None
    assert stored.impostor_pairs == 2 + reference.histogram.pairs
    assert stored.sources == ["gallery", "reference:" + reference.name]
    assert stored.calibration_id is not None and not stored.stale
    event = gallery.audit_events()[-1]
    assert event.action == "calibrate" and event.user == "examiner1"
    assert event.details["reason"] == "monthly check"
    assert event.details["sha256"] == stored.sha256
    assert event.details["gallery_pairs"] == 2
    assert event.details["impostor_pairs"] == stored.impostor_pairs
    assert gallery.verify_audit().intact
    # The stored histogram reproduces the calibration exactly (so old FMRs can be redone).
    again = stored_calibration(gallery, stored.calibration_id)
    assert again.sha256 == stored.sha256
    assert again.estimate(0.3) == stored.estimate(0.3)
    # Enrolling more makes it stale.
    mirrored = gallery.folder.parent / "biden-mirrored.png"
    Image.open(photo_paths["biden"]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    assert drain(enroll(gallery, engine, items_for_subject("P-X", [mirrored]))).enrolled == 1
    latest = latest_calibration(gallery, str(engine.model))
    assert latest is not None and latest.stale


def test_a_tampered_stored_calibration_is_refused(gallery, engine, photo_paths) -> None:
    _enrol(gallery, engine, photo_paths)
    stored = drain(calibrate(gallery))
    row = gallery.calibration_row(stored.calibration_id)
    assert row is not None
    histogram = json.loads(row["histogram"])
    last_bin = max(histogram["bins"], key=int)
    histogram["bins"][last_bin] -= 1
    histogram["pairs"] -= 1
    edit_database(
        gallery.folder,
        "UPDATE calibrations SET histogram = ? WHERE id = ?",
        (json.dumps(histogram), stored.calibration_id),
    )
    with pytest.raises(CalibrationError, match="does not match its checksum"):
        stored_calibration(gallery, stored.calibration_id)


def test_calibration_samples_big_galleries_and_can_be_cancelled(
    gallery, engine, photo_paths
) -> None:
    _enrol(gallery, engine, photo_paths)
    drain(enroll(gallery, engine, items_for_subject("P-OBAMA", [photo_paths["obama2"]])))
    sampled = drain(calibrate(gallery, max_faces=2))
    assert sampled.details["sampled"] is True and sampled.details["sample_faces"] == 2
    assert sampled.gallery_pairs <= 1
    token = CancelToken()
    token.cancel()
    before = gallery.counts()["calibrations"]
    assert drain(calibrate(gallery, cancel=token)) is None
    assert gallery.counts()["calibrations"] == before


def test_search_reports_fmr_and_records_the_calibration(gallery, engine, photo_paths) -> None:
    _enrol(gallery, engine, photo_paths)
    result = search_image(gallery, engine, load_image(photo_paths["obama2"]), "C-1", "lead")
    obama, biden = result.candidates
    assert obama.subject_id == "P-OBAMA"
    # No impostor pair of the calibration scored as high as the true match: a floor, not 0.
    assert obama.fmr is not None and obama.fmr > 0 and obama.fmr_text.startswith("< 1 in ")
    calibration = result.calibration
    assert calibration is not None and calibration["id"] is not None
    assert calibration["sources"][0] == "gallery" and calibration["gallery_pairs"] == 1
    used = stored_calibration(gallery, calibration["id"])
    expected = used.estimate(biden.score)
    assert expected is not None
    assert biden.fmr == pytest.approx(expected.fmr, rel=1e-2)
    assert biden.expected_strangers == pytest.approx(2 * expected.fmr, rel=1e-2)
    assert biden.fmr_text == expected.text
    # The search row's params and the audit event name the calibration used.
    (row,) = gallery.searches_of_case("C-1")
    assert json.loads(row["params"])["calibration"]["sha256"] == used.sha256
    assert json.loads(row["candidates"])[1]["fmr"] == biden.fmr
    events = gallery.audit_events()
    assert events[-1].action == "search"
    assert events[-1].details["params"]["calibration"]["id"] == calibration["id"]
    assert events[-1].details["candidates"][1]["fmr"] == biden.fmr
    # A second search with no change reuses the stored calibration.
    second = search_image(gallery, engine, load_image(photo_paths["biden"]), "C-1", "lead")
    assert second.calibration["id"] == calibration["id"]
    assert gallery.counts()["calibrations"] == 1


def test_calibration_for_uses_the_reference_alone_for_an_empty_gallery(gallery) -> None:
    calibration = calibration_for(gallery, SFACE)
    assert calibration.gallery_pairs == 0 and calibration.calibration_id is None
    assert calibration.usable and calibration.label == "reference table only"


def test_cli_calibrate_and_compare_fmr(tmp_path: Path, photo_paths) -> None:
    folder = str(tmp_path / "g")

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        return main(["--gallery", folder, *argv], out=out, err=err), out.getvalue(), err.getvalue()

    code, _, err = run("calibrate")
    assert code == 1 and "no gallery here" in err
    for subject, photo in (("A", "obama"), ("B", "biden")):
        assert run("enroll", "--subject", subject, str(photo_paths[photo]))[0] == 0
    code, out, _ = run("calibrate", "--json", "--reason", "after enrolment")
    summary = json.loads(out)
    assert code == 0 and summary["gallery_pairs"] == 1 and summary["usable"]
    code, out, _ = run(
        "compare",
        "--case",
        "C-1",
        "--purpose",
        "test",
        "--json",
        str(photo_paths["obama"]),
        str(photo_paths["biden"]),
    )
    line = json.loads(out)
    assert code == 0 and 0 < line["fmr"] < 1 and line["calibration"]["id"] == summary["id"]
    code, out, _ = run(
        "compare",
        "--case",
        "C-1",
        "--purpose",
        "test",
        str(photo_paths["obama"]),
        str(photo_paths["obama2"]),
    )
    assert code == 0 and "strangers score this high: < 1 in" in out


def test_gallery_changing_during_calibration_does_not_fail_the_search(
    tmp_path, engine, photo_paths
) -> None:
    """An enrolment on another connection between calibrating and storing (as when an analyst
    searches while a colleague enrols) must not make the search fail."""
    from workstation.gallery.calibration import compute_calibration, store_calibration
    from workstation.gallery.enroll import enroll, items_for_subject
    from workstation.progress import drain

    folder = tmp_path / "g"
    with open_as(folder, "a") as first:
        drain(enroll(first, engine, items_for_subject("A", [photo_paths["obama"]])))
        drain(enroll(first, engine, items_for_subject("B", [photo_paths["biden"]])))
        computed = drain(compute_calibration(first, str(engine.model)))
        assert not first.in_transaction  # the snapshot was released
        with open_as(folder, "b") as second:
            drain(enroll(second, engine, items_for_subject("C", [photo_paths["obama2"]])))
        with first.transaction():
            stored = store_calibration(first, computed)
            # Every write is audited (a search records its calibration in its own event).
            first.audit(AuditAction.CALIBRATE, stored.summary())
        assert stored.calibration_id and stored.generation < first.generation
