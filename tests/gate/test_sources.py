"""Tests of the frame sources: real video files written with OpenCV, a missing file and camera, and a live
MJPEG stream over HTTP at a camera's pace (evaluation.paced_stream) read through OpenCV by a slower consumer."""

from __future__ import annotations

import ast
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation.paced_stream import PacedStream, read_sequence
from gate.config import CameraSettings, settings_from_dict
from gate.errors import FaceGateError
from gate.vision.sources import (
    DEFAULT_FPS,
    CameraMode,
    LiveSource,
    RetryLog,
    SourceSpec,
    VideoFileSource,
    asked_mode,
    configured_source,
    describe_target,
    fourcc_text,
    hide_credentials,
    mode_differences,
    open_source,
    parse_source,
)
from gate.vision.v4l2 import fourcc_code

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


@pytest.mark.parametrize(
    ("spec", "kind", "target"),
    [
        ("0", "device", 0),
        (" 2 ", "device", 2),
        ("/dev/video0", "device", "/dev/video0"),  # not there on this machine: a camera to wait for, not a file
        ("/dev/v4l/by-id/usb-Logitech_C920-video-index0", "device", "/dev/v4l/by-id/usb-Logitech_C920-video-index0"),
        ("/dev/null", "device", "/dev/null"),  # a character device that exists
        ("v4l2:///dev/video3", "device", "/dev/video3"),
        ("V4L2://1", "device", 1),
        ("rtsp://admin:pw@10.0.0.5:554/stream1", "stream", "rtsp://admin:pw@10.0.0.5:554/stream1"),
        ("http://cam.local/video.mjpg", "stream", "http://cam.local/video.mjpg"),
        ("clips/door.mp4", "file", "clips/door.mp4"),
        ("video0", "file", "video0"),
        ("/devices/door.mp4", "file", "/devices/door.mp4"),  # beside /dev, not under it
    ],
)
def test_parse_source_names_devices_streams_and_files(spec: str, kind: str, target: int | str) -> None:
    assert parse_source(spec) == SourceSpec(kind, target)  # type: ignore[arg-type]


def test_configured_source_a_relative_file_is_in_the_configs_folder(tmp_path: Path) -> None:
    def source(spec: str) -> str:
        return configured_source(settings_from_dict({"camera": {"source": spec}}, base_dir=tmp_path))

    assert source("clips/door.mp4") == str(tmp_path / "clips" / "door.mp4")
    assert (source("/srv/door.mp4"), source("/dev/video0"), source("0")) == ("/srv/door.mp4", "/dev/video0", "0")
    assert source("rtsp://admin:pw@10.0.0.5/s") == "rtsp://admin:pw@10.0.0.5/s"


def test_parse_source_v4l2_without_a_device_error() -> None:
    with pytest.raises(FaceGateError, match=r"v4l2:///dev/video0"):
        parse_source("v4l2://webcam")


def test_camera_state_is_named_without_loading_opencv_or_numpy() -> None:
    """The service and the store name a camera's state; the type alone must not load the vision stack."""
    loaded = "import sys, gate.vision.camera_state; print(sorted({'cv2', 'numpy'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", loaded], capture_output=True, text=True, check=True).stdout == "[]\n"
    responses = Path(__file__).parents[2] / "service" / "responses.py"
    imported = [node.module for node in ast.walk(ast.parse(responses.read_text())) if isinstance(node, ast.ImportFrom)]
    assert "gate.vision.camera_state" in imported and "gate.vision.sources" not in imported


def test_describe_target_hides_a_stream_password() -> None:
    assert describe_target("rtsp://admin:s3cret@10.0.0.5:554/stream1") == "rtsp://admin:***@10.0.0.5:554/stream1"
    assert describe_target("http://cam.local/video.mjpg") == "http://cam.local/video.mjpg"
    assert (describe_target(0), describe_target("/dev/video2")) == ("camera 0", "camera /dev/video2")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("rtsp://s3cret@10.0.0.5/live", "rtsp://***@10.0.0.5/live"),  # a bare token before the host
        ("rtsp://:s3cret@10.0.0.5/live", "rtsp://:***@10.0.0.5/live"),
        ("rtsp://admin:pa/s3cret@10.0.0.5/live", "rtsp://admin:***@10.0.0.5/live"),  # a raw / in the password
        ("http://cam/video.cgi?user=admin&pwd=s3cret&res=32", "http://cam/video.cgi?user=***&pwd=***&res=32"),
        ("http://cam?Token=s3cret", "http://cam?Token=***"),
        ("http://cam/snap.jpg?api_key=s3cret;auth=s3cret#x", "http://cam/snap.jpg?api_key=***;auth=***#x"),
        (
            "rtsp://10.0.0.5:554/user=admin&password=s3cret&channel=1.sdp",
            "rtsp://10.0.0.5:554/user=***&password=***&channel=1.sdp",
        ),
        ("http://cam/video.mjpg?fps=15", "http://cam/video.mjpg?fps=15"),
        ("clips/door.mp4", "clips/door.mp4"),
    ],
)
def test_hide_credentials_masks_tokens_and_credential_parameters(url: str, shown: str) -> None:
    assert hide_credentials(url) == shown
    assert describe_target(url) == shown or "://" not in url


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"width": 640}, "camera: .*width and height go together"),
        ({"height": 480}, "camera: .*width and height go together"),
        ({"pixel_format": "MJPEG"}, "camera.pixel_format: .*FOURCC"),
        ({"pixel_format": "MJ-G"}, "camera.pixel_format: .*FOURCC"),
        ({"fps": -1}, "camera.fps"),
        ({"width": 100000, "height": 480}, "camera.width"),
    ],
)
def test_camera_mode_settings_bad_values_error(values: dict[str, object], message: str) -> None:
    with pytest.raises(FaceGateError, match=message):
        settings_from_dict({"camera": values})


def test_camera_mode_settings_pixel_format_padded_to_a_fourcc() -> None:
    camera = settings_from_dict({"camera": {"width": 1280, "height": 720, "fps": 30, "pixel_format": "Y16"}}).camera
    assert (camera.width, camera.height, camera.fps, camera.pixel_format) == (1280, 720, 30.0, "Y16 ")
    assert CameraSettings().pixel_format == "" and asked_mode(CameraSettings()) == CameraMode(0, 0, 0.0, "")


def test_fourcc_text_reads_opencvs_codes() -> None:
    assert fourcc_text(cv2.VideoWriter_fourcc(*"MJPG")) == "MJPG"
    assert fourcc_text(cv2.VideoWriter_fourcc(*"YUYV")) == "YUYV"
    assert fourcc_text(0) == "" and fourcc_text(0x01020304) == ""
    assert fourcc_code("MJPG") == cv2.VideoWriter.fourcc(*"MJPG")  # the code a camera is asked with: OpenCV's
    assert fourcc_code("Y16 ") == cv2.VideoWriter.fourcc(*"Y16 ")


def test_mode_differences_name_what_the_camera_did_not_deliver() -> None:
    asked = CameraMode(1920, 1080, 30.0, "MJPG")
    assert mode_differences(asked, CameraMode(1920, 1080, 30.0, "MJPG")) == []
    assert mode_differences(asked, CameraMode(1280, 720, 30.2, "MJPG")) == ["1920x1080 asked, 1280x720 delivered"]
    assert mode_differences(asked, CameraMode(1920, 1080, 5.0, "YUYV")) == [
        "30 fps asked, 5 delivered",
        "MJPG asked, YUYV delivered",
    ]
    assert mode_differences(CameraMode(0, 0, 0.0, ""), CameraMode(640, 480, 15.0, "YUYV")) == []  # defaults
    assert CameraMode(640, 480, 30.0, "YUYV").describe() == "640x480 YUYV at 30 fps"
    assert CameraMode(320, 240, 0.0, "").describe() == "320x240"
    assert CameraMode(640, 480, 25.0, "MJPG").describe(stream=True) == "640x480 MJPG (the stream says 25 fps)"


def test_retry_log_a_camera_away_for_an_hour_gives_a_line_a_minute() -> None:
    lines, now, delay, logged = RetryLog(every_s=60.0), 0.0, 1.0, []
    while now < 3600:
        if lines.due(delay, now):
            logged.append((now, delay))
        now += delay
        delay = min(delay * 2, 30.0)
    assert [d for _, d in logged[:6]] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]  # the first try and each new delay
    gaps = [later - earlier for (earlier, _), (later, _) in zip(logged[5:], logged[6:], strict=False)]
    assert gaps and all(60 <= gap <= 90 for gap in gaps)  # then about once a minute, not once a try
    assert len(logged) < 70


def test_live_source_a_camera_not_there_waits_instead_of_failing(caplog: pytest.LogCaptureFixture) -> None:
    camera = CameraSettings(reconnect_initial_s=0.1, reconnect_max_s=0.2, max_reconnects=3)
    with caplog.at_level(logging.WARNING, logger="gate.vision.sources"):
        source = open_source("/dev/video99", camera)  # no error: a camera unplugged is plugged in again
        assert isinstance(source, LiveSource) and source.description == "camera /dev/video99"
        assert source.state == "waiting"
        frames = list(source.frames())  # ends: max_reconnects failed tries in a row (0.5 s)
        source.close()
    assert frames == [] and source.gave_up and source.state == "waiting"  # given up: still away, not "ended"
    assert "camera /dev/video99 not reachable (/dev/video99: no such device): trying again in 0.1 s" in caplog.text
    assert "still not reachable (/dev/video99: no such device) after 0 s (1 try): next in 0.2 s" in caplog.text
    assert "given up after 3 tries" in caplog.text


def test_live_source_states_of_a_camera_index_that_is_not_there() -> None:
    sleeps: list[float] = []
    source = LiveSource(99, CameraSettings(reconnect_initial_s=0.5, max_reconnects=2), sleep=sleeps.append)
    assert source.description == "camera 99" and source.fps == DEFAULT_FPS
    assert list(source.frames()) == []
    source.close()
    assert sleeps == [0.5, 1.0] and source.state == "waiting" and source.gave_up and source.reconnects == 0


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
    assert source.gave_up and source.state == "lost"  # the heartbeat's last beat says so, and the run ends


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
    assert not source.gave_up and source.state == "off"  # closed: a stop, not a camera given up


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StateLog:
    """Every state a source passes through, in order (sampled every 2 ms; the test holds each until it is seen)."""

    def __init__(self, source: LiveSource) -> None:
        self.source, self.states = source, [source.state]
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.002):
            if self.source.state != self.states[-1]:
                self.states.append(self.source.state)

    def wait_for(self, state: str, timeout_s: float = 10.0) -> None:
        """Until the sampler has seen the source in `state` (so the test changes nothing before)."""
        deadline = time.monotonic() + timeout_s
        while self.states[-1] != state:
            assert time.monotonic() < deadline, f"still {self.source.state}, not {state}"
            time.sleep(0.01)

    def stop(self) -> list[str]:
        self._done.set()
        self._thread.join()
        if self.source.state != self.states[-1]:
            self.states.append(self.source.state)
        return self.states


def test_live_source_a_stream_that_starts_late_dies_and_comes_back(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/stream.mjpg"
    camera = CameraSettings(reconnect_initial_s=0.05, reconnect_max_s=0.2)  # for ever: 0 max_reconnects
    with caplog.at_level(logging.INFO, logger="gate.vision.sources"):
        source = LiveSource(url, camera)  # nothing listens on the port yet
        log = StateLog(source)
        time.sleep(0.5)  # several tries, none of them an error
        assert source.state == "waiting" and source.reading
        frames = source.frames()
        with PacedStream(fps=20, size=SIZE, port=port):  # the camera comes
            first = next(frames)
            log.wait_for("streaming")
        log.wait_for("lost")  # it dies
        time.sleep(0.3)
        with PacedStream(fps=20, size=SIZE, port=port):  # and comes back where it was
            log.wait_for("streaming")
            after = next(frames)
            source.close()
    assert log.stop() == ["waiting", "streaming", "lost", "streaming", "off"]
    assert (first.index, after.index) == (0, 1) or after.index > first.index
    assert after.image.shape == (SIZE[1], SIZE[0], 3) and source.reconnects == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("not reachable" in line for line in warnings) <= 3  # the first try and each new delay (0.05 .. 0.2)
    assert sum("lost" in line for line in warnings) <= 3
    streaming = [r.getMessage() for r in caplog.records if " streaming" in r.getMessage()]
    assert [line.split(" (")[0] for line in streaming] == [f"{url} streaming", f"{url} streaming again"]
    assert "(0.05 s)" not in caplog.text
