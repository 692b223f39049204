"""Frame sources through OpenCV: a local camera (an index or a V4L2 device), a stream URL or a video file;
timestamped RGB frames. A camera is waited for while it is away (at start too) and reconnected when it is lost."""

from __future__ import annotations

import logging
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from gate.config import CameraSettings, Settings, camera_settings
from gate.errors import FaceGateError, NotFound
from gate.vision.camera_state import CameraState
from gate.vision.v4l2 import DEVICES, fourcc, fourcc_code

log = logging.getLogger(__name__)

DEFAULT_FPS = 15.0  # used when a source does not report its frame rate
CLOSE_TIMEOUT_S = 5.0  # how long close() waits for a read in progress (a stalled stream blocks longer)
OPEN_WAIT_S = 3.0  # how long a LiveSource's construction waits for the camera's first frame (its fps, its state)
RETRY_LOG_EVERY_S = 60.0  # a camera away: a line at the first failed try, at each new backoff delay, then this often
V4L2_SCHEME = "v4l2://"
FFMPEG_QUIET = "-8"  # AV_LOG_QUIET: ffmpeg prints nothing of its own about a stream that is not there

# a parameter that may carry a credential, in a stream URL's path or query: its value is hidden in logs
CREDENTIAL_PARAMETER = re.compile(
    r"((?:^|[/?&;])[^/?&;=#]*(?:user|usr|pass|pas|pwd|token|key|auth|secret|sig|cred|session)[^/?&;=#]*=)[^/?&;#]*",
    re.IGNORECASE,
)

SourceKind = Literal["device", "stream", "file"]


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
    gave_up: bool  # its frames ended because a camera stayed away for [camera] max_reconnects tries, not by design

    @property
    def state(self) -> CameraState: ...

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SourceSpec:
    """What a camera source names: a local camera ("device": an index or a device path such as /dev/video0), a
    "stream" (an rtsp:// or http:// URL) or a video "file"."""

    kind: SourceKind
    target: int | str


def parse_source(spec: str) -> SourceSpec:
    """What `spec` names. Digits ("0") -> that camera index; "/dev/video0" (any path under /dev/, or another
    character device) or "v4l2:///dev/video0" -> that device; "rtsp://...", "http://..." (any URL) -> a stream;
    anything else -> a video file."""
    spec = spec.strip()
    if spec.lower().startswith(V4L2_SCHEME):
        device = spec[len(V4L2_SCHEME) :]
        if not (device.isdigit() or _under_devices(device)):
            raise FaceGateError(f"camera source {spec!r}: v4l2:// names a device, as in v4l2:///dev/video0")
        return SourceSpec("device", int(device) if device.isdigit() else device)
    if spec.isdigit():
        return SourceSpec("device", int(spec))
    if "://" in spec:
        return SourceSpec("stream", spec)
    if _under_devices(spec) or _is_character_device(spec):
        return SourceSpec("device", spec)
    return SourceSpec("file", spec)


def _under_devices(path: str) -> bool:
    """A path under /dev is a camera (one unplugged is waited for), never a video file."""
    return Path(path).is_relative_to(DEVICES)


def _is_character_device(path: str) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def describe_target(target: int | str) -> str:
    """How logs and status name a camera: "camera 0", "camera /dev/video0", or its URL without its credentials."""
    if isinstance(target, int) or "://" not in target:
        return f"camera {target}"
    return hide_credentials(target)


def hide_credentials(spec: str) -> str:
    """A source as logs may show it: a URL's password (user:***@) or bare token (***@) before its host, and the
    values of credential-like parameters in its path or query (password=***, token=***), hidden; a source that is
    not a URL, as written. Everything before the last @ ahead of the query counts as credentials (a password
    holding a raw / is hidden too)."""
    if "://" not in spec:
        return spec
    scheme, _, rest = spec.partition("://")
    head, question, query = rest.partition("?")
    userinfo, at, place = head.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        shown = f"{user}:***@" if colon and "/" not in user else "***@"
    else:
        shown = ""
    return f"{scheme}://{shown}" + CREDENTIAL_PARAMETER.sub(r"\1***", place + question + query)


def quiet_capture_logs() -> None:
    """OpenCV's and ffmpeg's own lines about a camera that is not there are kept out of the log (ours say it once).
    ffmpeg reads OPENCV_FFMPEG_LOGLEVEL at its first use in the process; a level the user set is kept."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", FFMPEG_QUIET)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


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
    gave_up = False  # a recording ends at its end

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = str(self.path)
        if not self.path.is_file():
            raise FaceGateError(f"video file not found: {self.path}")
        quiet_capture_logs()
        self._capture = cv2.VideoCapture(str(self.path))
        ok, first = self._capture.read() if self._capture.isOpened() else (False, None)
        if not ok:
            self._capture.release()
            raise FaceGateError(f"{self.path}: not a video OpenCV can read (try converting it to .mp4)")
        self._first: np.ndarray | None = first
        self.fps = _fps(self._capture)
        self._ended = self._closed = False

    @property
    def state(self) -> CameraState:
        return "off" if self._closed and not self._ended else "ended" if self._ended else "streaming"

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
        self._closed = True
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


@dataclass(frozen=True)
class CameraMode:
    """What a camera delivers: frame size, frames per second (0: not said) and pixel format (a FOURCC, "" unknown)."""

    width: int
    height: int
    fps: float
    pixel_format: str

    def describe(self, stream: bool = False) -> str:
        """As a line says it, e.g. "640x480 MJPG at 30 fps". `stream`: the rate is only what the stream's header says
        (an MJPEG stream over HTTP says 25 whatever the camera sends), so it is given as such."""
        pixels = f" {self.pixel_format.strip()}" if self.pixel_format.strip() else ""
        rate = "" if self.fps <= 0 else f" (the stream says {self.fps:g} fps)" if stream else f" at {self.fps:g} fps"
        return f"{self.width}x{self.height}{pixels}{rate}"


def fourcc_text(code: int) -> str:
    """A FOURCC number (as CAP_PROP_FOURCC gives it) as its four characters; "" for 0 or one that is not text."""
    text = fourcc(code)
    return text if code and text.isprintable() else ""


def asked_mode(camera: CameraSettings) -> CameraMode:
    """The mode [camera] asks a local camera for (0 and "": its default)."""
    return CameraMode(camera.width, camera.height, camera.fps, camera.pixel_format)


def mode_differences(asked: CameraMode, got: CameraMode) -> list[str]:
    """What a camera delivers differently from what was asked ("1920x1080 asked, 1280x720 delivered", ...);
    a setting left at its default (0, "") asks for nothing."""
    differences = []
    if asked.width and (asked.width, asked.height) != (got.width, got.height):
        differences.append(f"{asked.width}x{asked.height} asked, {got.width}x{got.height} delivered")
    if asked.fps and abs(asked.fps - got.fps) > 0.5:
        differences.append(f"{asked.fps:g} fps asked, {got.fps:g} delivered")
    if asked.pixel_format and asked.pixel_format.strip() != got.pixel_format.strip():
        differences.append(f"{asked.pixel_format.strip()} asked, {got.pixel_format.strip() or 'another'} delivered")
    return differences


def _ask_mode(capture: cv2.VideoCapture, camera: CameraSettings) -> None:
    """Ask a local camera for [camera]'s mode: the pixel format first (it decides the sizes offered), then size
    and rate. V4L2 takes the nearest it has; what it delivers is compared afterwards."""
    if camera.pixel_format:
        capture.set(cv2.CAP_PROP_FOURCC, fourcc_code(camera.pixel_format))
    if camera.width:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, camera.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, camera.height)
    if camera.fps:
        capture.set(cv2.CAP_PROP_FPS, camera.fps)


def _delivered(capture: cv2.VideoCapture, image: np.ndarray) -> CameraMode:
    fps = capture.get(cv2.CAP_PROP_FPS)
    rate = float(fps) if fps and 0 < fps < 1000 else 0.0
    return CameraMode(image.shape[1], image.shape[0], rate, fourcc_text(int(capture.get(cv2.CAP_PROP_FOURCC))))


def _tries(count: int) -> str:
    return "try" if count == 1 else "tries"


class RetryLog:
    """When a camera being retried is worth a log line: the first failed try, each new backoff delay, then once
    every `every_s` (a camera away for a night gives a line a minute, not one a second)."""

    def __init__(self, every_s: float = RETRY_LOG_EVERY_S) -> None:
        self.every_s = every_s
        self._last: tuple[float, float] | None = None  # (delay, time) of the last line

    def due(self, delay: float, now: float) -> bool:
        if self._last is not None and self._last[0] == delay and now - self._last[1] < self.every_s:
            return False
        self._last = (delay, now)
        return True


class LiveSource:
    """A camera: a local one (an index or a device path, through V4L2 on Linux) or a stream URL, read by a thread
    that keeps only the newest frame.

    The reader thread reads the capture as fast as the camera delivers; `frames()` yields the newest frame not
    yet yielded (waiting when there is none), so a gate slower than the camera decides on who stands at the door
    now instead of falling behind. Frames read but never yielded are counted in `dropped`. `Frame.time` is the
    monotonic time the frame was read; `Frame.index` counts the frames yielded (0, 1, 2, ... with no gaps, so
    `process_every` means every n-th frame the gate is handed).

    A camera not reachable at construction is no error: `state` is "waiting" and the reader thread tries again
    after reconnect_initial_s, doubling up to reconnect_max_s, until it gives a frame ("streaming"); a camera
    lost later ("lost") is retried the same way. After max_reconnects failed tries in a row (0: never give up)
    the frames end and `gave_up` is set; the state stays "waiting" or "lost" (the camera is still away; "ended"
    is for a source closed). A local camera is asked for [camera]'s width, height, fps and pixel_format at
    every open. `sleep` waits between tries (default: a wait that close() interrupts).
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
        self.local = isinstance(target, int) or "://" not in target  # a camera on this machine, not a stream
        self.description = describe_target(target)
        self.fps = DEFAULT_FPS  # until the camera says its own
        self.reconnects = 0  # successful reopenings after a loss
        self.gave_up = False  # max_reconnects failed tries in a row: the frames ended with the camera away
        self._state: CameraState = "waiting"
        self._yielded = 0
        self._stop = threading.Event()
        self._first_try = threading.Event()
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._newest = _NewestFrame()
        if not self.local and asked_mode(camera) != CameraMode(0, 0, 0.0, ""):
            log.info("%s: width, height, fps and pixel_format are for local cameras; set a stream's in the camera",
                     self.description)  # fmt: skip
        self._reader = threading.Thread(
            target=self._read_until_stopped, name=f"LiveSource {self.description}", daemon=True
        )
        self._reader.start()
        self._first_try.wait(OPEN_WAIT_S)

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

    def frames(self) -> Iterator[Frame]:
        while (newest := self._newest.take()) is not None:
            image, captured = newest
            index, self._yielded = self._yielded, self._yielded + 1
            yield Frame(index, captured, _rgb(image))

    def _capture(self) -> cv2.VideoCapture | None:
        quiet_capture_logs()
        if self.local and sys.platform.startswith("linux"):
            capture = cv2.VideoCapture(self.target, cv2.CAP_V4L2)
        else:
            capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            return None
        if self.local:
            _ask_mode(capture, self.camera)
        return capture

    def _connect_once(self, away: str = "") -> cv2.VideoCapture | None:
        """Open the camera and read its first frame (into the mailbox: a frame like any other); None if either
        fails. The state turns "streaming", logged with what the camera delivers and `away` (how long it was)."""
        capture = self._capture()
        if capture is None:
            return None
        ok, image = capture.read()
        if not ok:
            capture.release()
            return None
        self.fps = _fps(capture)
        self._newest.put(image, time.monotonic())
        mode = _delivered(capture, image)
        log.info("%s streaming%s: %s", self.description, away, mode.describe(stream=not self.local))
        differences = mode_differences(asked_mode(self.camera), mode) if self.local else []
        if differences:
            log.warning("%s does not deliver the [camera] mode asked for: %s", self.description, "; ".join(differences))
        self._state = "streaming"
        return capture

    def _read_until_stopped(self) -> None:
        """The reader thread: the camera opened (or waited for), every frame into the one-slot mailbox; a lost
        camera reconnected or given up."""
        capture = None
        try:
            capture = self._connect_once()
            self._first_try.set()
            if capture is None:
                capture = self._connect()
            while capture is not None and not self._stop.is_set():
                ok, image = capture.read()
                if ok:
                    self._newest.put(image, time.monotonic())
                    continue
                capture.release()
                capture = None
                self._state = "lost"
                capture = self._connect()
                if capture is not None:
                    self.reconnects += 1
        finally:
            self._first_try.set()
            if capture is not None:
                capture.release()
            if not self.gave_up:
                self._state = "off" if self._stop.is_set() else "ended"
            self._newest.end(discard=self._stop.is_set())

    def _connect(self) -> cv2.VideoCapture | None:
        """Retry a camera that is away ("waiting" or "lost") with backoff until it gives a frame; None when closed
        or after max_reconnects failed tries in a row."""
        delay, attempt, lines, since = self.camera.reconnect_initial_s, 0, RetryLog(), time.monotonic()
        while self.camera.max_reconnects == 0 or attempt < self.camera.max_reconnects:
            attempt += 1
            self._log_retry(lines, attempt, delay, time.monotonic() - since)
            self._sleep(delay)
            if self._stop.is_set():
                return None
            away_s = time.monotonic() - since
            if self._state == "waiting":
                capture = self._connect_once(f" (after {away_s:.0f} s, {attempt + 1} tries)")
            else:
                capture = self._connect_once(f" again (lost {away_s:.0f} s, {attempt} {_tries(attempt)} to reconnect)")
            if capture is not None:
                return capture
            delay = min(delay * 2, self.camera.reconnect_max_s)
        log.error("%s given up after %d tries in a row (camera.max_reconnects)", self.description, attempt)
        self.gave_up = True
        return None

    def _log_retry(self, lines: RetryLog, attempt: int, delay: float, away_s: float) -> None:
        if not lines.due(delay, time.monotonic()):
            log.debug("%s: try %d, next in %.1f s", self.description, attempt, delay)
            return
        what = "lost" if self._state == "lost" else "not reachable"
        why = self._why_away()
        if attempt == 1:
            log.warning("%s %s%s: trying again in %g s", self.description, what, why, delay)
        else:
            log.warning("%s still %s%s after %.0f s (%d %s): next in %g s", self.description, what, why,
                        away_s, attempt - 1, _tries(attempt - 1), delay)  # fmt: skip

    def _why_away(self) -> str:
        """A local camera's likely reason to be away, as " (no such device)"; "" for a stream (OpenCV says none)."""
        if not self.local or not sys.platform.startswith("linux"):
            return ""
        path = f"/dev/video{self.target}" if isinstance(self.target, int) else self.target
        if not os.path.exists(path):
            return f" ({path}: no such device)"
        if not os.access(path, os.R_OK | os.W_OK):
            return f" ({path}: permission denied; is the user in the video group?)"
        return f" ({path}: not a camera OpenCV can read, or busy in another program)"

    def close(self) -> None:
        """Stop the reader thread, wait for it and release the camera; safe to call twice."""
        self._stop.set()
        self._newest.end(discard=True)
        if self._reader is threading.current_thread():
            return
        self._reader.join(CLOSE_TIMEOUT_S)
        if self._reader.is_alive():
            log.warning("%s: a read is still blocked; the camera is released when it returns", self.description)


def configured_source(settings: Settings) -> str:
    """[camera] source as the gate opens it (`facegate run`, `facegate doctor`): a video file named relative to the
    config's folder made absolute; a camera index or a URL as written."""
    spec = settings.camera.source
    return str(settings.resolve(spec.strip())) if parse_source(spec).kind == "file" else spec


def configured_gates(settings: Settings) -> list[str]:
    """The gate ids the config gives cameras: [camera] gate_id, or each [[cameras]] entry's."""
    return [camera.camera.gate_id for camera in camera_settings(settings)]


@dataclass(frozen=True)
class GateCamera:
    """The camera the config gives a gate: its source (as configured_source makes it) and its [camera] settings."""

    gate_id: str
    source: str
    settings: CameraSettings


def gate_camera(settings: Settings, gate_id: str) -> GateCamera:
    """The camera the config gives gate `gate_id`; a NotFound naming the configured gates for any other id. Only
    the config names a gate's source."""
    for camera in camera_settings(settings):
        if camera.camera.gate_id == gate_id:
            return GateCamera(gate_id, configured_source(camera), camera.camera)
    known = ", ".join(configured_gates(settings))
    raise NotFound(f"no gate {gate_id!r} in the config; its gates: {known}")


def open_source(spec: str, camera: CameraSettings) -> FrameSource:
    """A camera ("0", "/dev/video0", "v4l2:///dev/video0") or a stream ("rtsp://...", "http://...") -> a LiveSource,
    waited for while it is away; anything else -> a video file, refused at once (FaceGateError) when missing."""
    parsed = parse_source(spec)
    if parsed.kind == "file":
        return VideoFileSource(str(parsed.target))
    return LiveSource(parsed.target, camera)
