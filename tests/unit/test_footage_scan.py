"""Scanning clips made from real face photos: tracks, timecodes, damage and cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import same_person_line
from footage_clips import Appearance, make_clip

from workstation.footage import ScanOptions, scan_video
from workstation.footage.tracks import LinkOptions
from workstation.progress import CancelToken, drain


@pytest.fixture(scope="module")
def two_people(engine, photo_paths, tmp_path_factory) -> Path:
    """Obama 0.0-2.0 s walking right on the left; Biden 1.0-3.0 s standing on the right."""
    path = tmp_path_factory.mktemp("clips") / "two_people.mp4"
    make_clip(
        engine,
        path,
        [
            Appearance(photo_paths["obama2"], 0.0, 2.0, 20, 60, dx_per_s=60),
            Appearance(photo_paths["biden"], 1.0, 3.0, 300, 80),
        ],
        seconds=4.0,
    )
    return path


def test_two_people_give_two_tracks_with_correct_timecodes(engine, two_people) -> None:
    steps = []
    result = drain(scan_video(engine, two_people), steps.append)
    assert result.damage is None and not result.cancelled
    assert result.step_frames == 2  # 0.2 s at 10 fps
    assert result.frames_decoded == 40 and result.samples == 20
    assert len(result.tracks) == 2
    first, second = result.tracks
    # Samples are at 0.0, 0.2, ...: Obama is in frames 0-19, Biden in frames 10-29.
    assert (first.start_s, first.end_s, first.frame_count) == (0.0, 1.8, 10)
    assert (second.start_s, second.end_s, second.frame_count) == (1.0, 2.8, 10)
    assert first.first.box.center[0] < second.first.box.center[0]  # Obama on the left
    for track in result.tracks:
        assert track.start_s <= result.video.time_of(track.best_frame) <= track.end_s
        assert track.best_frame % 2 == 0  # a sampled frame
        assert track.template is not None
        assert np.linalg.norm(track.template) == pytest.approx(1.0, abs=1e-5)
        assert track.thumbnail is not None and track.thumbnail.shape == (112, 112, 3)
        # The best frame really is the best by quality weight.
        assert track.best_observation.weight == max(o.weight for o in track.observations)
    # Work skipped: only the templates' best frames were embedded, not all 20 detections.
    assert result.faces_detected == 20
    assert result.embeddings_computed <= 2 * 5
    # Two different people: their templates are far apart.
    assert float(first.template @ second.template) < same_person_line(first.model)
    assert steps[-1].done == 39 and steps[-1].total == 40


def test_gap_longer_than_max_gap_splits_a_track_and_short_gap_does_not(
    engine, photo_paths, tmp_path
) -> None:
    photo = photo_paths["biden"]
    clip = tmp_path / "gaps.avi"
    # Seen 0.0-1.0, hidden 0.4 s, seen 1.4-2.4, hidden 1.6 s, seen 4.0-5.0 (moved elsewhere).
    make_clip(
        engine,
        clip,
        [
            Appearance(photo, 0.0, 1.0, 60, 60),
            Appearance(photo, 1.4, 2.4, 90, 60),
            Appearance(photo, 4.0, 5.0, 300, 150),
        ],
        seconds=5.0,
        fourcc="MJPG",
    )
    result = drain(scan_video(engine, clip, ScanOptions(link=LinkOptions(max_gap_s=1.0))))
    spans = [(t.start_s, t.end_s) for t in result.tracks]
    assert spans == [(0.0, 2.2), (4.0, 4.8)]
    runs = result.tracks[0].appearances(result.sample_interval_s)
    assert runs == [(0.0, 0.8), (1.4, 2.2)]


def test_face_moving_fast_across_the_frame_stays_one_track(engine, photo_paths, tmp_path) -> None:
    clip = tmp_path / "pan.mp4"
    # 400 px/s at 10 fps sampled every 0.2 s: 80 px between samples, more than half a face.
    make_clip(
        engine,
        clip,
        [Appearance(photo_paths["obama"], 0.0, 2.0, 0, 100, dx_per_s=160, width=120)],
        seconds=2.0,
        size=(480, 320),
    )
    result = drain(scan_video(engine, clip))
    assert len(result.tracks) == 1
    assert result.tracks[0].frame_count == 10


def test_sampling_interval_is_configurable(engine, two_people) -> None:
    result = drain(scan_video(engine, two_people, ScanOptions(every_s=0.5)))
    assert result.step_frames == 5
    assert result.samples == 8
    assert [(t.start_s, t.end_s) for t in result.tracks] == [(0.0, 1.5), (1.0, 2.5)]


def test_truncated_clip_keeps_what_was_scanned(engine, photo_paths, tmp_path) -> None:
    whole = tmp_path / "whole.avi"
    make_clip(
        engine,
        whole,
        [Appearance(photo_paths["obama"], 0.0, 4.0, 40, 40)],
        seconds=4.0,
        fourcc="MJPG",
    )
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    result = drain(scan_video(engine, cut))
    assert 0 < result.frames_decoded < 40
    assert result.damage is not None
    assert "cut.avi" in result.damage and "truncated or damaged" in result.damage
    assert len(result.tracks) == 1
    track = result.tracks[0]
    assert track.start_s == 0.0
    assert track.end_s < result.frames_decoded / 10.0
    assert track.template is not None


def test_cancel_returns_the_partial_scan(engine, two_people) -> None:
    token = CancelToken()

    def stop_early(step) -> None:
        if step.done >= 8:
            token.cancel()

    partial = drain(scan_video(engine, two_people, cancel=token), stop_early)
    assert partial.cancelled and partial.damage is None
    assert 8 <= partial.frames_decoded < 40
    # Only Obama (from 0.0 s) had appeared before the cancel; his track is closed and usable.
    assert len(partial.tracks) == 1 and partial.tracks[0].template is not None


# ------------------------------------------------------------------ the smallest face looked for
def test_detection_side_is_just_large_enough_for_the_smallest_face_asked_for() -> None:
    from workstation.footage.scan import (
        DEFAULT_MIN_FACE_PX,
        RELIABLE_FACE_IN_COPY,
        SMALLEST_SCAN_SIDE,
        detection_side,
        smallest_face_seen,
    )

    sizes = [(1920, 1080), (1080, 1920), (1280, 720), (3840, 2160), (704, 576), (480, 360)]
    for width, height in sizes:
        longer = max(width, height)
        for min_face in range(20, 401, 4):
            side = detection_side(width, height, min_face)
            assert side >= min(longer, SMALLEST_SCAN_SIDE)
            # A face smaller than the detector finds at the frame's size: the frame enlarged.
            assert (side > longer) == (min_face < RELIABLE_FACE_IN_COPY)
            # What the scan then says it saw covers what was asked.
            assert smallest_face_seen(width, height, side) <= min_face, (width, height, min_face)
            # and the copy is no larger than it has to be
            if side > SMALLEST_SCAN_SIDE and side != longer:
                assert smallest_face_seen(width, height, side - 8) > min_face
    # The old fixed 640 px copy saw faces from about 84 px in 1080p; now what is asked for.
    assert smallest_face_seen(1920, 1080, 640) > 80
    assert smallest_face_seen(1920, 1080, detection_side(1920, 1080, 40)) <= 40
    # The default keeps 720p at the old 640 px copy (issue 5's speed) and sees 1080p finer.
    assert detection_side(1280, 720, DEFAULT_MIN_FACE_PX) == 640
    assert smallest_face_seen(1920, 1080, detection_side(1920, 1080, DEFAULT_MIN_FACE_PX)) <= 60


def test_scan_refuses_a_smallest_face_below_the_detectors_limit(engine, two_people) -> None:
    with pytest.raises(ValueError, match="at least 20 px"):
        drain(scan_video(engine, two_people, ScanOptions(min_face_px=12)))


def _still_face_1080p(engine, photo: Path, path: Path, corner: tuple[int, int], width: int) -> Path:
    """A 1 s, 5 fps 1080p clip with `photo`'s face standing still at `corner`, pasted `width` px
    wide (the face is about 55% of that)."""
    x, y = corner
    make_clip(
        engine,
        path,
        [Appearance(photo, 0.0, 1.0, x, y, width=width)],
        seconds=1.0,
        fps=5.0,
        size=(1920, 1080),
    )
    return path


def _face_at_own_size(engine, photo: Path) -> np.ndarray:
    from workstation.vision.images import load_image

    return engine.analyze(load_image(photo).bgr)[0].embedding


@pytest.fixture(scope="module")
def small_face_1080p(engine, photo_paths, tmp_path_factory) -> Path:
    """A 1080p clip in which Obama's face is about 44 px wide (a face some metres from a CCTV
    camera), standing still for 1 s."""
    path = tmp_path_factory.mktemp("clips") / "small_face_1080p.mp4"
    return _still_face_1080p(engine, photo_paths["obama"], path, (900, 500), 80)


def test_small_face_in_1080p_footage_is_found_and_the_record_says_what_was_not_looked_for(
    engine, small_face_1080p, photo_paths, gallery
) -> None:
    from workstation.footage import record_scan

    reference = _face_at_own_size(engine, photo_paths["obama"])
    result = drain(scan_video(engine, small_face_1080p, ScanOptions(min_face_px=40)))
    assert result.smallest_face_px <= 40 and result.options.detect_side < 1920
    assert len(result.tracks) == 1, [t.summary() for t in result.tracks]
    track = result.tracks[0]
    assert 30 < track.best_observation.box.w < 60
    assert float(track.template @ reference) >= same_person_line(track.model)

    # Asked only for faces from 120 px, the scan looks at a 640 px copy, where this face is
    # about 15 px: not found, and the record says faces under 84 px were not looked for.
    coarse = drain(scan_video(engine, small_face_1080p, ScanOptions(min_face_px=120)))
    assert coarse.options.detect_side == 640
    assert coarse.smallest_face_px == 84 and coarse.tracks == []

    record_scan(gallery, result, "CASE-1", "robbery footage")
    event = gallery.audit_events(case_id="CASE-1")[-1]
    assert event.action == "footage_scan"
    assert event.details["smallest_face_px"] == result.smallest_face_px
    assert event.details["options"]["min_face_px"] == 40
    assert event.details["options"]["detect_side"] == result.options.detect_side


def test_a_20_px_face_is_looked_for_on_the_frame_enlarged(engine, photo_paths, tmp_path) -> None:
    """Faces under the detector's reliable size (28 px) are looked for on the frame enlarged
    until they reach it: asked for faces from 20 px, a 1080p scan detects on a 2,688 px copy."""
    path = tmp_path / "tiny_face_1080p.mp4"
    _still_face_1080p(engine, photo_paths["obama"], path, (1200, 300), 38)
    result = drain(scan_video(engine, path, ScanOptions(min_face_px=20)))
    assert result.options.detect_side == 2688 and result.smallest_face_px == 20
    assert len(result.tracks) == 1, [t.summary() for t in result.tracks]
    track = result.tracks[0]
    assert 10 < track.best_observation.box.w < 28  # the detector's box: about 16 px
    # Mapped back to the frame's own pixels: the box lies where the face was pasted.
    assert 1200 <= track.best_observation.box.x <= 1200 + 38
    reference = _face_at_own_size(engine, photo_paths["obama"])
    assert float(track.template @ reference) >= same_person_line(track.model)  # measured 0.85
