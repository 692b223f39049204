"""A running gate's heartbeat: every HEARTBEAT_S it writes how it is doing (frames, pace, last decision, what its
camera is doing) to the database, where `facegate gates` and the admin page read it. The loop's frames write it
when one is due, and a pulse thread while no frame comes (a camera away, being reconnected); a clean stop writes
a last one that says "stopped". A database that cannot take it is skipped, never fatal: decisions have their own
journal."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import SQLAlchemyError

from gate.store.database import Database, database_error
from gate.store.gate_status import HEARTBEAT_S, Heartbeat, StoredState

if TYPE_CHECKING:
    from gate.vision.camera_state import CameraState

log = logging.getLogger(__name__)

PULSE_S = HEARTBEAT_S / 5  # how often the pulse thread looks whether a beat is due
STOP_WAIT_S = HEARTBEAT_S  # how long a clean stop waits for a beat in progress


class Camera(Protocol):
    """A frame source, as far as the heartbeat reads it (gate.vision.sources.FrameSource)."""

    @property
    def state(self) -> CameraState: ...


class HeartbeatWriter:
    """Call `tick(frames)` every frame and `decided(decision)` on each decision; it writes when a beat is due.
    `start()` writes the first beat and starts the pulse thread, `stopped(frames)` writes the last beat
    ("stopped"), `halt()` only ends the pulse (a crash: the last beat, "running", goes stale and reads lost).
    `camera`: the frame source whose state each beat reports; `pulse_s`: how often the pulse looks whether a beat is
    due (by `clock`)."""

    def __init__(
        self,
        database: Database,
        gate_id: str,
        clock: Callable[[], float] = time.monotonic,
        camera: Camera | None = None,
        pulse_s: float = PULSE_S,
    ) -> None:
        self.database, self.gate_id, self._clock, self.camera = database, gate_id, clock, camera
        self.pulse_s = pulse_s
        self.host = socket.gethostname()
        self.started_at = datetime.now(UTC)
        self.written = 0  # heartbeats written so far
        self._last_beat: float | None = None
        self._frames = self._last_frames = 0
        self._last_decision: tuple[str, datetime] | None = None
        self._failing = False
        self._writing = threading.Lock()  # one beat at a time: the loop's or the pulse thread's
        self._halt = threading.Event()
        self._pulse: threading.Thread | None = None

    def decided(self, decision: str) -> None:
        self._last_decision = (decision, datetime.now(UTC))

    def tick(self, frames: int, force: bool = False) -> None:
        """Write a heartbeat if one is due (or `force`): frames so far and the pace since the last one. The loop's
        tick never waits: while the pulse thread writes, it returns (the next frame's tick will do)."""
        self._frames = frames
        if not self._writing.acquire(blocking=force):
            return
        try:
            now = self._clock()
            if force or self._last_beat is None or now - self._last_beat >= HEARTBEAT_S:
                self._beat(now, frames, "running")
        finally:
            self._writing.release()

    def start(self) -> None:
        """The first beat now, then a beat every HEARTBEAT_S even while no frame comes."""
        self.tick(self._frames, force=True)
        self._halt.clear()
        self._pulse = threading.Thread(target=self._pulsing, name=f"heartbeat {self.gate_id}", daemon=True)
        self._pulse.start()

    def halt(self) -> None:
        """End the pulse thread, writing nothing (idempotent); a pulse stuck in a database call is left to end by
        itself after STOP_WAIT_S (a daemon thread: it does not keep the process alive)."""
        self._halt.set()
        if self._pulse is not None and self._pulse is not threading.current_thread():
            self._pulse.join(STOP_WAIT_S)
        self._pulse = None

    def stopped(self, frames: int) -> None:
        """A clean stop: the pulse ended and a last beat that says "stopped" (skipped, with a warning, when a beat
        in progress holds the database for over STOP_WAIT_S: the gate then reads lost)."""
        self.halt()
        if not self._writing.acquire(timeout=STOP_WAIT_S):
            log.warning("gate %s: the last heartbeat (stopped) not written, the database does not answer", self.gate_id)
            return
        try:
            self._beat(self._clock(), frames, "stopped")
        finally:
            self._writing.release()

    def _pulsing(self) -> None:
        while not self._halt.wait(self.pulse_s):
            self.tick(self._frames)

    def _beat(self, now: float, frames: int, state: StoredState) -> None:
        elapsed = now - self._last_beat if self._last_beat is not None else 0.0
        fps = (frames - self._last_frames) / elapsed if elapsed > 0 else 0.0
        decision, decided_at = self._last_decision or (None, None)
        camera = self.camera.state if self.camera is not None else None
        seen = datetime.now(UTC)
        beat = Heartbeat(
            self.gate_id, self.host, self.started_at, seen, frames, fps, decision, decided_at, state, camera
        )
        self._last_beat, self._last_frames = now, frames
        try:
            self.database.beat(beat)
        except SQLAlchemyError as error:
            if not self._failing:  # once per outage
                log.warning("heartbeat not written, the database refused: %s", database_error(error))
            self._failing = True
            return
        self._failing = False
        self.written += 1
