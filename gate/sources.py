"""Frame sources through OpenCV: a webcam index, a video file or a stream URL; timestamped RGB frames."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from gate.config import CameraSettings
from gate.errors import FaceGateError

log = logging.getLogger(__name__)

DEFAULT_FPS = 15.0  # used when a source does not report its frame rate


@dataclass(frozen=True)
class Frame:
    """One camera frame: its running index, its time in seconds and the RGB uint8 (H, W, 3) image."""

    index: int
    time: float
    image: np.ndarray


class FrameSource(Protocol):
    fps: float
    description: str

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


def _rgb(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _fps(capture: cv2.VideoCapture) -> float:
    fps = capture.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps and 0 < fps < 1000 else DEFAULT_FPS


class VideoFileSource:
    """Every frame of a video file once; `time` is the position in the video (frame index / fps).

    A missing or unreadable file fails at construction with a FaceGateError.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = str(self.path)
        if not self.path.is_file():
            raise FaceGateError(f"video file not found: {self.path}")
        self._capture = cv2.VideoCapture(str(self.path))
        ok, first = self._capture.read() if self._capture.isOpened() else (False, None)
        if not ok:
            self._capture.release()
            raise FaceGateError(f"{self.path}: not a video OpenCV can read (try converting it to .mp4)")
        self._first: np.ndarray | None = first
        self.fps = _fps(self._capture)

    def frames(self) -> Iterator[Frame]:
        index = 0
        image = self._first
        self._first = None
        while image is not None:
            yield Frame(index, index / self.fps, _rgb(image))
            index += 1
            ok, image = self._capture.read()
            if not ok:
                image = None

    def close(self) -> None:
        self._capture.release()


class LiveSource:
    """A webcam (int index) or a stream URL; a lost stream is reopened with exponential backoff.

    Opening fails with a FaceGateError at construction. Once running, a failed read is retried after
    reconnect_initial_s, doubling up to reconnect_max_s; after max_reconnects failed attempts in a row
    (0: never give up) the frames end. `time` is the monotonic clock.
    """

    def __init__(
        self,
        target: int | str,
        camera: CameraSettings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.target = target
        self.camera = camera
        self.description = f"camera {target}" if isinstance(target, int) else str(target)
        self._sleep = sleep
        self._capture = self._open()
        if self._capture is None:
            raise FaceGateError(f"cannot open {self.description}: check camera.source (index, URL, permissions)")
        self.fps = _fps(self._capture)
        self.reconnects = 0  # successful reopenings so far

    def _open(self) -> cv2.VideoCapture | None:
        # OpenCV's backends print their own warnings for a camera that is not there; ours are logged instead
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        capture = cv2.VideoCapture(self.target)
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def frames(self) -> Iterator[Frame]:
        index = 0
        while self._capture is not None:
            ok, image = self._capture.read()
            if ok:
                yield Frame(index, time.monotonic(), _rgb(image))
                index += 1
            else:
                self._capture.release()
                self._capture = self._reconnect()

    def _reconnect(self) -> cv2.VideoCapture | None:
        delay = self.camera.reconnect_initial_s
        attempt = 0
        while self.camera.max_reconnects == 0 or attempt < self.camera.max_reconnects:
            attempt += 1
            log.warning("%s lost; reconnecting in %.1f s (attempt %d)", self.description, delay, attempt)
            self._sleep(delay)
            capture = self._open()
            if capture is not None:
                ok, _ = capture.read()
                if ok:
                    self.reconnects += 1
                    log.info("%s reconnected", self.description)
                    return capture
                capture.release()
            delay = min(delay * 2, self.camera.reconnect_max_s)
        log.error("%s lost for good after %d reconnect attempts", self.description, attempt)
        return None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def open_source(spec: str, camera: CameraSettings) -> FrameSource:
    """Digits ("0") -> webcam index; "rtsp://..." or another URL -> stream; anything else -> video file."""
    spec = spec.strip()
    if spec.isdigit():
        return LiveSource(int(spec), camera)
    if "://" in spec:
        return LiveSource(spec, camera)
    return VideoFileSource(spec)
