"""The probe of a recorded search read again from the very file searched (gallery.probe_source):
a photo or a frame of a video, held to its recorded SHA-256; another frame of the same video is
not the probe (it shares the video's hash), and a changed or missing file is said in words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from footage_clips import Appearance, make_clip

from workstation.errors import WorkstationError
from workstation.footage import search_frame
from workstation.gallery.enroll import enroll, items_for_subject
from workstation.gallery.probe_source import is_recorded_probe, recorded_probe_image
from workstation.gallery.search import search_image
from workstation.progress import drain
from workstation.vision.images import load_image
from workstation.vision.video import frame_image, probe_video, read_frame


@pytest.fixture
def enrolled(gallery, engine, photo_paths):
    drain(enroll(gallery, engine, items_for_subject("P-OBAMA", [photo_paths["obama"]])))
    return gallery


def test_a_photo_probe_is_read_again_and_held_to_its_hash(
    enrolled, engine, photo_paths, tmp_path: Path
) -> None:
    probe = tmp_path / "probe.jpg"
    probe.write_bytes(photo_paths["obama2"].read_bytes())
    image = load_image(probe)
    search = search_image(enrolled, engine, image, "C-1", "robbery")
    record = enrolled.search_record(search.search_id)
    again = recorded_probe_image(record)
    assert again.sha256 == image.sha256 and np.array_equal(again.bgr, image.bgr)
    assert is_recorded_probe(record, image)
    assert not is_recorded_probe(record, load_image(photo_paths["obama"]))

    probe.write_bytes(photo_paths["biden"].read_bytes())  # another photo under the same name
    with pytest.raises(WorkstationError, match=r"probe\.jpg.*SHA-256 differs"):
        recorded_probe_image(record)
    probe.unlink()
    with pytest.raises(WorkstationError, match=r"probe\.jpg"):
        recorded_probe_image(record)


def test_a_frame_probe_is_its_own_frame_of_the_very_video(
    enrolled, engine, photo_paths, tmp_path: Path
) -> None:
    clip = tmp_path / "lobby.mp4"
    make_clip(engine, clip, [Appearance(photo_paths["obama2"], 0.0, 2.0, 100, 60)], 2.0)
    video = probe_video(clip)
    searched = read_frame(video, 5)
    search = search_frame(enrolled, engine, video, 5, searched, "C-1", "robbery")
    record = enrolled.search_record(search.search_id)

    again = recorded_probe_image(record)
    assert np.array_equal(again.bgr, searched)
    assert str(again.path) == record.probe.path == f"{clip}#frame=5"
    assert again.sha256 == video.sha256
    assert is_recorded_probe(record, frame_image(video, 5, searched))
    # Another frame of the same video carries the same (video) hash: it is not the probe.
    assert not is_recorded_probe(record, frame_image(video, 12, read_frame(video, 12)))

    make_clip(engine, clip, [Appearance(photo_paths["obama2"], 0.0, 2.0, 120, 60)], 2.0)
    with pytest.raises(WorkstationError, match=r"lobby\.mp4.*SHA-256 differs"):
        recorded_probe_image(record)
    clip.unlink()
    with pytest.raises(WorkstationError, match=r"lobby\.mp4"):
        recorded_probe_image(record)
