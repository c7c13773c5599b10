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
