"""A running gate's heartbeat: every HEARTBEAT_S it writes how it is doing (frames, pace, last decision) to the
database, where `facegate gates` and the admin page read it. A database that cannot take it is skipped, never
fatal: decisions have their own journal."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from gate.store.database import Database, database_error
from gate.store.gate_status import HEARTBEAT_S, Heartbeat

log = logging.getLogger(__name__)


class HeartbeatWriter:
    """Call `tick(frames)` every frame and `decided(decision)` on each decision; it writes when a beat is due."""

    def __init__(self, database: Database, gate_id: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.database, self.gate_id, self._clock = database, gate_id, clock
        self.host = socket.gethostname()
        self.started_at = datetime.now(UTC)
        self.written = 0  # heartbeats written so far
        self._last_beat: float | None = None
        self._last_frames = 0
        self._last_decision: tuple[str, datetime] | None = None
        self._failing = False

    def decided(self, decision: str) -> None:
        self._last_decision = (decision, datetime.now(UTC))

    def tick(self, frames: int, force: bool = False) -> None:
        """Write a heartbeat if one is due (or `force`): frames so far and the pace since the last one."""
        now = self._clock()
        if not force and self._last_beat is not None and now - self._last_beat < HEARTBEAT_S:
            return
        elapsed = now - self._last_beat if self._last_beat is not None else 0.0
        fps = (frames - self._last_frames) / elapsed if elapsed > 0 else 0.0
        decision, decided_at = self._last_decision or (None, None)
        beat = Heartbeat(self.gate_id, self.host, self.started_at, datetime.now(UTC), frames, fps, decision, decided_at)
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
