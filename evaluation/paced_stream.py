"""A live camera stand-in: MJPEG over HTTP from a thread at a camera's pace, each frame numbered in its pixels."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

SEQUENCE_BITS = 16  # frame numbers up to 65535 (over an hour at 15 fps)
BOUNDARY = "frame"
JPEG_QUALITY = 80
POLL_S = 0.05  # how often the server looks for close()
NOISE_STD = 12.0  # texture so a 640x480 frame weighs about what a camera's does as JPEG


def video_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video file, BGR (what `PacedStream(images=...)` plays)."""
    capture, frames = cv2.VideoCapture(str(path)), []
    try:
        while (read := capture.read())[0]:
            frames.append(read[1])
    finally:
        capture.release()
    return frames


def draw_frame(sequence: int, size: tuple[int, int] = (640, 480), texture: np.ndarray | None = None) -> np.ndarray:
    """A BGR uint8 (H, W, 3) frame for `size` (W, H): a grey ramp (plus `texture`, int16 (H, W)) below a strip of
    SEQUENCE_BITS black or white bars that spell `sequence`, most significant bit first."""
    width, height = size
    ramp = np.linspace(60, 190, width, dtype=np.float32)[None, :].repeat(height, 0)
    if texture is not None:
        ramp = ramp + texture
    image = np.clip(ramp, 0, 255).astype(np.uint8)
    strip, bar = height // 8, width // SEQUENCE_BITS
    for bit in range(SEQUENCE_BITS):
        on = (sequence >> (SEQUENCE_BITS - 1 - bit)) & 1
        image[:strip, bit * bar : (bit + 1) * bar] = 255 if on else 0
    return np.repeat(image[:, :, None], 3, axis=2)


def read_sequence(image: np.ndarray) -> int:
    """The number draw_frame wrote into a frame, read back after JPEG and decoding (RGB or BGR alike)."""
    height, width = image.shape[:2]
    strip, bar = height // 8, width // SEQUENCE_BITS
    middles = image[strip // 4 : 3 * strip // 4, :, 0].astype(np.float32)
    sequence = 0
    for bit in range(SEQUENCE_BITS):
        centre = middles[:, bit * bar + bar // 4 : (bit + 1) * bar - bar // 4]
        sequence = (sequence << 1) | int(centre.mean() > 127)
    return sequence


class _Handler(BaseHTTPRequestHandler):
    server: _StreamServer

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        stream = self.server.stream
        if not stream.admit():
            self.send_error(503, "stream gone")
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        stream.serve(self.wfile)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's signature)
        log.debug("paced stream: " + format, *args)


class _StreamServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, stream: PacedStream, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.stream = stream


class PacedStream:
    """MJPEG (multipart/x-mixed-replace) on `url` at `fps`, run by a camera's clock.

    Frame n is captured at `captured_at(n)` = start + n / fps whether anyone reads or not; a client whose socket
    is full is sent the newest frame once it can take one, as a camera does (those passed over are counted in
    `skipped`). `frames_per_connection`: each connection ends after that many frames, a lost stream;
    `connections`: requests after that many are answered 503, a stream gone for good. None: no limit.
    `images`: BGR frames (e.g. a walk-up video's) played in a loop instead of the numbered test pattern.
    `port`: the loopback port to serve on (0: a free one), e.g. a camera coming back where it was.
    """

    def __init__(
        self,
        fps: float = 15.0,
        size: tuple[int, int] = (640, 480),
        frames_per_connection: int | None = None,
        connections: int | None = None,
        images: Sequence[np.ndarray] | None = None,
        port: int = 0,
    ) -> None:
        self.fps, self.size = fps, size
        self.images = list(images) if images is not None else None  # BGR frames played in a loop instead
        self.frames_per_connection, self.connections = frames_per_connection, connections
        self.accepted = self.sent = self.skipped = 0
        self._texture = np.random.default_rng(0).normal(0.0, NOISE_STD, size[::-1]).astype(np.int16)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._flowing = threading.Event()  # cleared by stall(): connections stay open, no frame is sent
        self._flowing.set()
        self.started = time.monotonic()
        self._server = _StreamServer(self, port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_S,), name="paced stream", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/stream.mjpg"

    def captured_at(self, sequence: int) -> float:
        """The monotonic time at which frame `sequence` was captured."""
        return self.started + sequence / self.fps

    def newest(self) -> int:
        """The number of the newest frame captured so far."""
        return int((time.monotonic() - self.started) * self.fps)

    def admit(self) -> bool:
        """Count a new connection; False once `connections` have been served."""
        with self._lock:
            if self.connections is not None and self.accepted >= self.connections:
                return False
            self.accepted += 1
            return True

    def serve(self, out: BufferedIOBase) -> None:
        """Write frames to one client at the camera's pace until the limit, close() or the client leaves."""
        sequence, sent = self.newest() + 1, 0
        while self.frames_per_connection is None or sent < self.frames_per_connection:
            if self._stopped.wait(max(0.0, self.captured_at(sequence) - time.monotonic())):
                return
            while not self._flowing.is_set():
                if self._stopped.wait(POLL_S):
                    return
                sequence = self.newest()
            if not self._write(out, sequence):
                return
            sent += 1
            newest = self.newest()  # frames that came due while the write was blocked are passed over
            with self._lock:
                self.sent += 1
                self.skipped += max(0, newest - sequence - 1)
            sequence = max(sequence + 1, newest)

    def _write(self, out: BufferedIOBase, sequence: int) -> bool:
        if self.images is not None:
            image = self.images[sequence % len(self.images)]
        else:
            image = draw_frame(sequence, self.size, self._texture)
        _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {jpeg.size}\r\n\r\n".encode()
        try:
            out.write(head + jpeg.tobytes() + b"\r\n")
            out.flush()
        except OSError:  # the client went away
            return False
        return True

    def stall(self) -> None:
        """Keep every connection open but send nothing: a camera hung in the middle of a stream."""
        self._flowing.clear()

    def close(self) -> None:
        """Stop every connection and the server; safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> PacedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
