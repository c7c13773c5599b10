"""False-match rates per group: attribute normalisation, within-group counting on real embeddings
of the shared photos (labelled with synthetic groups), the fallback rules, and a real gallery whose
subjects carry sex and race (calibration stored and reloaded, search record, report words)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from workstation.calibration import groups as group_rules
from workstation.calibration.groups import (
    MIN_GROUP_PAIRS,
    choose_rate,
    group_of,
    group_spread,
    pooled_words,
)
from workstation.calibration.histogram import ImpostorHistogram
from workstation.calibration.impostors import group_histograms, impostor_histogram
from workstation.calibration.record import Calibration
from workstation.gallery.calibration import calibrate, latest_calibration
from workstation.gallery.enroll import enroll, read_manifest
from workstation.gallery.search import search_image
from workstation.progress import drain
from workstation.reports.columns import fmr_tip
from workstation.vision.images import load_image
from workstation.vision.registry import DEFAULT_CONFIGURATION, configuration


# ---------------------------------------------------------------------- which attributes count
@pytest.mark.parametrize(
    ("attributes", "group"),
    [
        ({"sex": "F", "race": "White"}, "white female"),
        ({"Sex ": "female", " RACE": "  White  "}, "white female"),
        ({"gender": "Woman", "race": "Black"}, "black female"),
        ({"gender": "m"}, "male"),
        ({"sex": "MALE", "gender": "female"}, "male"),  # sex is preferred to gender
        ({"ethnicity": "South  Asian"}, "south asian"),  # race labels as given, spaces collapsed
        ({"sex": "X", "race": "Other"}, "other x"),  # an unknown sex value is kept as given
        ({"sex": "unknown", "race": "n/a"}, None),
        ({"sex": "", "eye_colour": "brown"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_group_of_normalises_sex_and_takes_race_as_given(attributes, group) -> None:
    assert group_of(attributes) == group


# ---------------------------------------------------------------------- real embeddings
@pytest.fixture(scope="module")
def shared_embeddings(shared_faces: Path, engine):
    """Largest face of each labelled shared photo: (vectors, identities)."""
    with open(shared_faces / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("identity")]
    vectors, identities = [], []
    for row in rows:
        faces = engine.analyze(load_image(shared_faces / row["path"]).bgr)
        if faces:
            vectors.append(faces[0].embedding)
            identities.append(row["identity"])
    return np.asarray(vectors, dtype=np.float32), identities


def synthetic_groups(identities: list[str]) -> dict[str, str | None]:
    """Identities alternately in groups "a" and "b"; three single-photo ones in the small group
    "c" (too few pairs for a rate of its own); two in no group (not recorded)."""
    small = ["kate_siegel", "paul_rudd", "shea_whigham"]
    unrecorded = ["amy_adams", "steve_carell"]
    assigned: dict[str, str | None] = {i: "c" for i in small}
    assigned.update({i: None for i in unrecorded})
    rest = sorted(set(identities) - set(small) - set(unrecorded))
    assigned.update({identity: "ab"[n % 2] for n, identity in enumerate(rest)})
    return assigned


def brute_force(
    vectors: np.ndarray, identities: list[str], groups: list[str | None], name: str, shift: float
):
    """The group's impostor histogram counted pair by pair, every score moved by `shift`."""
    rows = [i for i, g in enumerate(groups) if g == name]
    scores = [
        float(vectors[i] @ vectors[j]) + shift
        for n, i in enumerate(rows)
        for j in rows[n + 1 :]
        if identities[i] != identities[j]
    ]
    return ImpostorHistogram.from_scores(scores)


def test_within_group_pairs_are_counted_on_real_embeddings(shared_embeddings) -> None:
    vectors, identities = shared_embeddings
    assert len(vectors) >= 130
    assigned = synthetic_groups(identities)
    groups = [assigned[i] for i in identities]
    tables = drain(group_histograms(vectors, identities, groups))
    assert set(tables) == {"a", "b", "c"}  # faces of no group are in none
    for name in ("a", "b", "c"):
        # The product scores pairs in blocks (a matrix product), which rounds the last bit of a
        # float32 score otherwise than one dot product at a time: a score on a bin's edge may
        # fall either side. So every pair must be counted in the bin of its score give or take
        # 1e-6, no more: cumulative counts between those of the scores moved up and down.
        lower = brute_force(vectors, identities, groups, name, -1e-6)
        upper = brute_force(vectors, identities, groups, name, +1e-6)
        counted = np.cumsum(tables[name].counts)
        assert tables[name].pairs == lower.pairs == upper.pairs
        assert (np.cumsum(upper.counts) <= counted).all()
        assert (counted <= np.cumsum(lower.counts)).all()
    # Pairs of one person (same identity) and pairs across groups are not impostor pairs of a group.
    assert tables["c"].pairs == 3
    assert tables["a"].pairs >= MIN_GROUP_PAIRS and tables["b"].pairs >= MIN_GROUP_PAIRS


def test_a_candidate_gets_its_group_rate_else_the_highest(shared_embeddings) -> None:
    vectors, identities = shared_embeddings
    assigned = synthetic_groups(identities)
    groups = [assigned[i] for i in identities]
    tables = drain(group_histograms(vectors, identities, groups))
    pooled, _details = drain(impostor_histogram(vectors, identities))
    # A score where the two big groups' rates differ (the first score where they do).
    score = next(
        s
        for s in np.arange(0.1, 0.6, 0.0005)
        if tables["a"].exceeding(s) / tables["a"].pairs
        != tables["b"].exceeding(s) / tables["b"].pairs
        and tables["a"].exceeding(s)
        and tables["b"].exceeding(s)
    )
    for name in ("a", "b"):  # own group, enough pairs: its own rate
        rate = choose_rate(pooled, tables, score, name)
        assert rate is not None and rate.group == name
        assert rate.estimate == tables[name].fmr(score)
        assert f"among {name} strangers" in rate.basis
    highest = max(("a", "b"), key=lambda g: tables[g].fmr(score).fmr)
    cautious = max(tables[highest].fmr(score).fmr, pooled.fmr(score).fmr)
    unrecorded = choose_rate(pooled, tables, score, None)
    too_few = choose_rate(pooled, tables, score, "c")
    never_seen = choose_rate(pooled, tables, score, "z")
    for rate in (unrecorded, too_few, never_seen):
        assert rate is not None and rate.estimate.fmr == cautious
    assert unrecorded is not None and "not recorded" in unrecorded.basis
    assert too_few is not None and "too few pairs" in too_few.basis and "(3;" in too_few.basis
    # The small group's table is reported, but never used on its own.
    spread = group_spread(pooled, tables)
    assert spread is not None
    by_name = {row["group"]: row for row in spread["groups"]}
    assert by_name["c"]["own_rate_used"] is False and by_name["a"]["own_rate_used"] is True
    assert by_name["a"]["pairs"] == tables["a"].pairs
    # No group attributes at all: the pooled rate, saying so in words.
    plain = choose_rate(pooled, {}, score, None)
    assert plain is not None and plain.group is None and plain.basis == pooled_words(None)
    assert plain.estimate == pooled.fmr(score)
    assert "pooled" in plain.basis and "differ by group" in plain.basis


def test_the_pooled_words_quote_the_spread_measured_for_the_gallerys_model() -> None:
    """Each shipped configuration with a measured spread quotes its own; any other model says
    its spread was not measured and quotes the default's."""
    for key in ("fast", "accurate"):
        config = configuration(key)
        model = config.expected_model_id()
        assert model is not None
        words = pooled_words(str(model))
        assert config.group_spread and words.endswith(config.group_spread)
        assert f"UTKFace, {key} configuration" in words
    other = pooled_words("some-other-model@0123")
    assert "not measured for this model" in other
    assert other.endswith(configuration(DEFAULT_CONFIGURATION).group_spread)


def test_group_tables_are_kept_in_the_stored_calibration(shared_embeddings) -> None:
    vectors, identities = shared_embeddings
    assigned = synthetic_groups(identities)
    tables = drain(group_histograms(vectors, identities, [assigned[i] for i in identities]))
    pooled = ImpostorHistogram.from_scores(np.linspace(-0.2, 0.4, 5000))
    plain = Calibration("m", pooled, 5000, None, generation=1)
    grouped = Calibration("m", pooled, 5000, None, generation=1, groups=tables)
    assert plain.sha256 != grouped.sha256
    row = {**grouped.to_row(), "id": 3}
    back = Calibration.from_row(row, 1, "here")
    assert {n: h.pairs for n, h in back.groups.items()} == {n: h.pairs for n, h in tables.items()}
    assert "group_histograms" not in back.details  # kept apart from the audited details
    details = json.loads(row["details"])
    del details["group_histograms"]["c"]  # a group's table taken out of the stored row
    tampered = dict(row, details=json.dumps(details))
    with pytest.raises(Exception, match="checksum"):
        Calibration.from_row(tampered, 1, "here")


# ---------------------------------------------------------------------- a real gallery
def test_gallery_with_sex_and_race_reports_rates_by_group(
    gallery, engine, shared_faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subjects enrolled from a manifest with sex and race columns (values written as agencies
    write them); the minimum pairs is lowered so a handful of photos make a usable group."""
    monkeypatch.setattr(group_rules, "MIN_GROUP_PAIRS", 4)
    with open(shared_faces / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("identity")]
    first = {}
    for row in rows:
        first.setdefault(row["identity"], row["path"])
    people = sorted(first)[:10]
    manifest = tmp_path / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", "image", "sex", "race"])
        for n, person in enumerate(people):
            sex = ["F", "female", "M", "Male", ""][n % 5]
            writer.writerow([person, str(shared_faces / first[person]), sex, "Group One"])
    items, bad = read_manifest(manifest)
    assert not bad
    assert drain(enroll(gallery, engine, items)).enrolled == len(people)
    stored = drain(calibrate(gallery))
    # Sex left empty: the race alone is the group (two subjects, one pair: too few).
    assert set(stored.groups) == {"group one female", "group one male", "group one"}
    reloaded = latest_calibration(gallery, stored.model_id)
    assert reloaded is not None and reloaded.sha256 == stored.sha256
    assert set(reloaded.groups) == set(stored.groups)
    spread = stored.summary()["groups"]
    assert spread is not None and "group one female" in spread["text"]
    probe = load_image(shared_faces / first[people[0]])
    record = search_image(gallery, engine, probe, case_id="C-1", purpose="test")
    top = record.candidates[0]
    assert top.subject_id == people[0]
    assert top.fmr_group == "group one female"  # "F" and "female" are one group
    assert top.fmr_basis and "among group one female strangers" in top.fmr_basis
    unrecorded = next(c for c in record.candidates if c.subject_id == people[4])  # sex ""
    assert unrecorded.fmr_basis and "too few pairs" in unrecorded.fmr_basis
    # One record, every surface: the reloaded record carries the same words.
    again = gallery.search_record(record.search_id)
    assert again.candidates[0].fmr_basis == top.fmr_basis
    assert again.group_spread == spread["text"]
    assert top.fmr_basis in fmr_tip(again.candidates[0])
    assert top.fmr_basis in again.fmr_bases
