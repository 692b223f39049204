"""Frame sources through OpenCV: a webcam index, a video file or a stream URL; timestamped RGB frames."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from gate.config import CameraSettings
from gate.errors import FaceGateError

log = logging.getLogger(__name__)

DEFAULT_FPS = 15.0  # used when a source does not report its frame rate
CLOSE_TIMEOUT_S = 5.0  # how long close() waits for a read in progress (a stalled stream blocks longer)

# what a source is doing now, as the heartbeat and the Gates page report it: "waiting" (no frame yet: a camera not
# reachable so far), "streaming", "lost" (a camera that gave frames and stopped: being reconnected), "ended"
CameraState = Literal["waiting", "streaming", "lost", "ended"]


@dataclass(frozen=True)
class Frame:
    """One camera frame: its running index, its time in seconds and the RGB uint8 (H, W, 3) image."""

    index: int
    time: float
    image: np.ndarray


class FrameSource(Protocol):
    fps: float
    description: str
    live: bool  # a camera (the newest frame matters, old ones may be dropped) rather than a recording

    @property
    def state(self) -> CameraState: ...

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

    live = False

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
        self._ended = False

    @property
    def state(self) -> CameraState:
        return "ended" if self._ended else "streaming"

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
        self._ended = True

    def close(self) -> None:
        self._ended = True
        self._capture.release()


class _NewestFrame:
    """A one-slot mailbox between the reader thread and frames(): a new frame replaces one never taken."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._newest: tuple[np.ndarray, float] | None = None  # (BGR image, monotonic capture time)
        self._ended = False
        self.replaced = 0  # frames replaced (or discarded at close) before anyone took them

    def put(self, image: np.ndarray, captured: float) -> None:
        with self._ready:
            if self._newest is not None or self._ended:
                self.replaced += 1
            if self._ended:  # close() came during the read: the frame is never handed out
                return
            self._newest = (image, captured)
            self._ready.notify_all()

    def end(self, discard: bool) -> None:
        """No more frames will come; `discard`: drop the one waiting too (else it can still be taken)."""
        with self._ready:
            if discard and self._newest is not None:
                self.replaced += 1
                self._newest = None
            self._ended = True
            self._ready.notify_all()

    def take(self) -> tuple[np.ndarray, float] | None:
        """The newest frame not yet taken, waiting for one; None once the frames have ended."""
        with self._ready:
            self._ready.wait_for(lambda: self._newest is not None or self._ended)
            newest, self._newest = self._newest, None
            return newest


class LiveSource:
    """A webcam (int index) or a stream URL, read by a thread that keeps only the newest frame.

    The reader thread reads the capture as fast as the camera delivers; `frames()` yields the newest frame not
    yet yielded (waiting when there is none), so a gate slower than the camera decides on who stands at the door
    now instead of falling behind. Frames read but never yielded are counted in `dropped`. `Frame.time` is the
    monotonic time the frame was read; `Frame.index` counts the frames yielded (0, 1, 2, ... with no gaps, so
    `process_every` means every n-th frame the gate is handed). Opening fails with a FaceGateError at
    construction. A failed read is retried after reconnect_initial_s, doubling up to reconnect_max_s; after
    max_reconnects failed attempts in a row (0: never give up) the frames end. `sleep` waits between attempts
    (default: a wait that close() interrupts).
    """

    live = True

    def __init__(
        self,
        target: int | str,
        camera: CameraSettings,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        self.target = target
        self.camera = camera
        self.description = f"camera {target}" if isinstance(target, int) else str(target)
        capture = self._open()
        if capture is None:
            raise FaceGateError(f"cannot open {self.description}: check camera.source (index, URL, permissions)")
        self.fps = _fps(capture)
        self.reconnects = 0  # successful reopenings so far
        self._state: CameraState = "streaming"
        self._yielded = 0
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._newest = _NewestFrame()
        self._reader = threading.Thread(
            target=self._read_until_stopped, args=(capture,), name=f"LiveSource {self.description}", daemon=True
        )
        self._reader.start()

    @property
    def dropped(self) -> int:
        """Frames read from the camera and never yielded (replaced by a newer one, or left at close)."""
        return self._newest.replaced

    @property
    def state(self) -> CameraState:
        return self._state

    @property
    def reading(self) -> bool:
        """Whether the reader thread is still running."""
        return self._reader.is_alive()

    def _open(self) -> cv2.VideoCapture | None:
        # OpenCV's backends print their own warnings for a camera that is not there; ours are logged instead
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        capture = cv2.VideoCapture(self.target)
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def frames(self) -> Iterator[Frame]:
        while (newest := self._newest.take()) is not None:
            image, captured = newest
            index, self._yielded = self._yielded, self._yielded + 1
            yield Frame(index, captured, _rgb(image))

    def _read_until_stopped(self, capture: cv2.VideoCapture | None) -> None:
        """The reader thread: every frame into the one-slot mailbox; a lost stream reconnected or given up."""
        try:
            while capture is not None and not self._stop.is_set():
                ok, image = capture.read()
                if ok:
                    self._newest.put(image, time.monotonic())
                    continue
                capture.release()
                self._state = "lost"
                capture = self._reconnect()
                if capture is not None:
                    self._state = "streaming"
        finally:
            if capture is not None:
                capture.release()
            self._state = "ended"
            self._newest.end(discard=self._stop.is_set())

    def _reconnect(self) -> cv2.VideoCapture | None:
        delay = self.camera.reconnect_initial_s
        attempt = 0
        while self.camera.max_reconnects == 0 or attempt < self.camera.max_reconnects:
            attempt += 1
            log.warning("%s lost; reconnecting in %.1f s (attempt %d)", self.description, delay, attempt)
            self._sleep(delay)
            if self._stop.is_set():
                return None
            capture = self._open()
            if capture is not None:
                ok, image = capture.read()
                if ok:
                    self._newest.put(image, time.monotonic())  # the probe is a frame like any other
                    self.reconnects += 1
                    log.info("%s reconnected", self.description)
                    return capture
                capture.release()
            delay = min(delay * 2, self.camera.reconnect_max_s)
        log.error("%s lost for good after %d reconnect attempts", self.description, attempt)
        return None

    def close(self) -> None:
        """Stop the reader thread, wait for it and release the camera; safe to call twice."""
        self._stop.set()
        self._newest.end(discard=True)
        if self._reader is threading.current_thread():
            return
        self._reader.join(CLOSE_TIMEOUT_S)
        if self._reader.is_alive():
            log.warning("%s: a read is still blocked; the camera is released when it returns", self.description)


def open_source(spec: str, camera: CameraSettings) -> FrameSource:
    """Digits ("0") -> webcam index; "rtsp://..." or another URL -> stream; anything else -> video file."""
    spec = spec.strip()
    if spec.isdigit():
        return LiveSource(int(spec), camera)
    if "://" in spec:
        return LiveSource(spec, camera)
    return VideoFileSource(spec)
