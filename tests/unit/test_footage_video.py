"""Opening videos: facts, hashes, frame-accurate access, and clear errors for bad files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from workstation.vision.cvcompat import cv2_module
from workstation.vision.video import FrameReader, VideoError, VideoInfo, probe_video, timecode


def _numbered_clip(path: Path, frames: int = 30, fps: float = 10.0, fourcc: str = "MJPG") -> None:
    """Frame i shows a white block in column i (so a decoded frame tells its own index)."""
    cv2 = cv2_module()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (320, 96))
    for index in range(frames):
        frame = np.zeros((96, 320, 3), dtype=np.uint8)
        frame[:, index * 10 : index * 10 + 10] = 255
        writer.write(frame)
    writer.release()


def _index_shown(frame: np.ndarray) -> int:
    return int(np.argmax(frame[48, :, 0].reshape(32, 10).mean(axis=1)))


@pytest.fixture(scope="module")
def numbered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "numbered.avi"
    _numbered_clip(path)
    return path


def test_probe_reports_facts_and_streamed_sha256(numbered: Path) -> None:
    info = probe_video(numbered)
    assert (info.width, info.height) == (320, 96)
    assert info.fps == pytest.approx(10.0)
    assert info.frame_count == 30
    assert info.duration_s == pytest.approx(3.0)
    assert info.sha256 == hashlib.sha256(numbered.read_bytes()).hexdigest()
    lineage = info.lineage(25)
    assert lineage["frame_index"] == 25
    assert lineage["timecode"] == "00:00:02.500"
    assert lineage["video_sha256"] == info.sha256


def test_timecode_and_frame_at() -> None:
    assert timecode(0) == "00:00:00.000"
    assert timecode(3725.04) == "01:02:05.040"
    info = VideoInfo(Path("x.mp4"), "", 25.0, 100, 10, 10, "mp4v", 1)
    assert info.frame_at(1.0) == 25
    assert info.frame_at(0.999) == 24
    assert info.frame_at(99.0) == 99  # clamped to the last frame


def test_frame_reader_is_frame_accurate_forward_backward_and_seeking(numbered: Path) -> None:
    info = probe_video(numbered)
    with FrameReader(info) as reader:
        for index in [0, 1, 2, 17, 16, 29, 3, 3, 28, 0]:
            assert _index_shown(reader.read(index)) == index
        with pytest.raises(VideoError, match="frame 30"):
            reader.read(30)


def test_not_a_video_names_the_file_and_reason(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match=r"notes\.mp4: not a video"):
        probe_video(text)


def test_empty_missing_and_photo_files_are_refused_clearly(tmp_path: Path, photo_paths) -> None:
    empty = tmp_path / "empty.avi"
    empty.touch()
    with pytest.raises(VideoError, match=r"empty\.avi: file is empty"):
        probe_video(empty)
    with pytest.raises(VideoError, match=r"missing\.mkv: file not found"):
        probe_video(tmp_path / "missing.mkv")
    with pytest.raises(VideoError, match=r"obama\.jpg: is a photo, not a video"):
        probe_video(photo_paths["obama"])


def test_mp4_cut_before_its_index_is_refused_clearly(tmp_path: Path) -> None:
    whole = tmp_path / "whole.mp4"
    _numbered_clip(whole, fourcc="mp4v")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert probe_video(whole).frame_count == 30
    with pytest.raises(VideoError, match=r"cut\.mp4: not a video this program can read"):
        probe_video(cut)


def test_video_with_no_frames_is_refused_clearly(tmp_path: Path) -> None:
    cv2 = cv2_module()
    path = tmp_path / "no_frames.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 64))
    writer.release()
    assert path.stat().st_size > 0  # a header, but no frames
    with pytest.raises(VideoError, match=r"no_frames\.avi: no frame could be decoded"):
        probe_video(path)
