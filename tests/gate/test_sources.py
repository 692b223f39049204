"""Tests of the frame sources: real video files written with OpenCV, a missing file and camera, and a live
MJPEG stream over HTTP at a camera's pace (evaluation.paced_stream) read through OpenCV by a slower consumer."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation.paced_stream import PacedStream, read_sequence
from gate.config import CameraSettings
from gate.errors import FaceGateError
from gate.vision.sources import LiveSource, VideoFileSource, open_source

FPS = 10.0
SIZE = (160, 120)  # the paced stream's frames (W, H): small, the tests are about timing


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


def test_live_source_lost_stream_backs_off_then_gives_up() -> None:
    sleeps: list[float] = []
    camera = CameraSettings(reconnect_initial_s=0.5, reconnect_max_s=1.5, max_reconnects=4)
    with PacedStream(fps=20, size=SIZE, frames_per_connection=4, connections=1) as stream:
        source = LiveSource(stream.url, camera, sleep=sleeps.append)
        frames = list(source.frames())  # ends: the stream stops after 4 frames and refuses to come back
        source.close()
    assert frames and len(frames) + source.dropped == 4
    assert sleeps == [0.5, 1.0, 1.5, 1.5]
    assert source.reconnects == 0 and not source.reading


def test_live_source_stream_back_after_loss_reconnects() -> None:
    sleeps: list[float] = []
    camera = CameraSettings(reconnect_initial_s=0.01, max_reconnects=3)
    with PacedStream(fps=20, size=SIZE, frames_per_connection=3, connections=2) as stream:
        source = LiveSource(stream.url, camera, sleep=sleeps.append)
        frames = list(source.frames())
        source.close()
    # lost after 3 frames, reopened once (its probe frame counts), lost again after 3 more, then gone
    assert source.reconnects == 1
    assert sleeps == [0.01, 0.01, 0.02, 0.04]
    assert len(frames) + source.dropped == 6
    assert [f.index for f in frames] == list(range(len(frames)))
    sequences = [read_sequence(f.image) for f in frames]
    assert sequences == sorted(set(sequences))


def test_live_source_slow_consumer_gets_the_newest_frames_and_drops_the_rest() -> None:
    interval, delay, wanted = 0.05, 0.1, 15  # a gate twice as slow as a 20 fps camera
    with PacedStream(fps=1 / interval, size=SIZE) as stream:
        source = LiveSource(stream.url, CameraSettings())
        ages, sequences, frames = [], [], []
        for frame in source.frames():
            yielded = time.monotonic()
            sequence = read_sequence(frame.image)
            assert stream.captured_at(sequence) <= frame.time <= yielded  # read after capture, before yield
            ages.append(yielded - stream.captured_at(sequence))
            sequences.append(sequence)
            frames.append(frame)
            if len(frames) == wanted:
                break
            time.sleep(delay)  # the slow pipeline
        source.close()
    assert source.dropped >= wanted // 2  # about one frame in two is read and never yielded
    assert [f.index for f in frames] == list(range(wanted))
    assert all(later > earlier for earlier, later in zip(sequences, sequences[1:], strict=False))
    assert max(ages) < interval + delay  # each yielded frame is the newest: no backlog builds up
    third = wanted // 3
    assert sum(ages[-third:]) / third < sum(ages[:third]) / third + interval  # and the age does not grow


def test_live_source_close_stops_the_reader_and_is_safe_twice() -> None:
    with PacedStream(fps=20, size=SIZE) as stream:
        source = LiveSource(stream.url, CameraSettings())
        first = next(source.frames())
        assert source.reading
        source.close()
        assert not source.reading
        source.close()
        assert list(source.frames()) == []  # a closed source yields nothing more
    assert first.index == 0 and first.image.shape == (SIZE[1], SIZE[0], 3)


def test_live_source_close_interrupts_a_reconnect_backoff() -> None:
    camera = CameraSettings(reconnect_initial_s=30.0, max_reconnects=2)
    with PacedStream(fps=20, size=SIZE, frames_per_connection=2, connections=1) as stream:
        source = LiveSource(stream.url, camera)  # the default sleep: a wait that close() ends
        while stream.sent < 2:
            time.sleep(0.05)
        time.sleep(0.5)  # the stream is lost: the reader waits 30 s before reconnecting
        assert source.reading
        started = time.monotonic()
        source.close()
    assert time.monotonic() - started < 2.0
    assert not source.reading and source.reconnects == 0
