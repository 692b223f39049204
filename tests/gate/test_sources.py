"""Tests of the frame sources on real video files written with OpenCV, a missing file and a missing camera."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gate.config import CameraSettings
from gate.errors import FaceGateError
from gate.sources import LiveSource, VideoFileSource, open_source

FPS = 10.0


def write_video(path: Path, count: int = 6) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (64, 48))
    for index in range(count):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[..., 2] = 200  # BGR: red
        frame[:, : 8 + 8 * index, 1] = 255  # a growing green band tells the frames apart
        writer.write(frame)
    writer.release()
    return path


def test_video_file_source_yields_rgb_frames_with_times(tmp_path: Path) -> None:
    source = open_source(str(write_video(tmp_path / "v.mp4")), CameraSettings())
    frames = list(source.frames())
    source.close()
    assert isinstance(source, VideoFileSource) and source.fps == pytest.approx(FPS)
    assert [f.index for f in frames] == list(range(6))
    assert [f.time for f in frames] == pytest.approx([i / FPS for i in range(6)])
    first = frames[0].image
    assert first.shape == (48, 64, 3) and first.dtype == np.uint8
    assert first[24, 40, 0] > 150 and first[24, 40, 2] < 60  # red lands in channel 0: RGB order
    assert (frames[-1].image[:, :, 1] > 150).sum() > (first[:, :, 1] > 150).sum()


def test_video_file_source_missing_file_error(tmp_path: Path) -> None:
    with pytest.raises(FaceGateError, match="not found"):
        open_source(str(tmp_path / "nope.mp4"), CameraSettings())


def test_video_file_source_garbage_file_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(FaceGateError, match="not a video"):
        VideoFileSource(bad)


def test_live_source_missing_camera_index_error() -> None:
    with pytest.raises(FaceGateError, match="camera 99"):
        open_source("99", CameraSettings())


def test_live_source_lost_stream_backs_off_then_gives_up(tmp_path: Path) -> None:
    video = write_video(tmp_path / "stream.mp4", count=4)
    sleeps: list[float] = []
    camera = CameraSettings(reconnect_initial_s=0.5, reconnect_max_s=1.5, max_reconnects=4)
    source = LiveSource(str(video), camera, sleep=sleeps.append)
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 4:
            video.unlink()  # the stream goes away for good
    assert len(frames) == 4
    assert sleeps == [0.5, 1.0, 1.5, 1.5]


def test_live_source_stream_back_after_loss_reconnects(tmp_path: Path) -> None:
    video = write_video(tmp_path / "stream.mp4", count=3)
    camera = CameraSettings(reconnect_initial_s=0.01, max_reconnects=3)
    sleeps: list[float] = []
    source = LiveSource(str(video), camera, sleep=sleeps.append)
    frames = []
    for frame in source.frames():
        frames.append(frame)
        if len(frames) == 5:
            video.unlink()
    # the end of the file is a lost stream: reopened once (its first frame is the probe), then gone
    assert source.reconnects == 1
    assert len(frames) == 5
    assert [f.index for f in frames] == list(range(5))
    assert sleeps == [0.01, 0.01, 0.02, 0.04]
