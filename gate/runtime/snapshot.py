"""The gate's snapshot for the admin page ([snapshot] enabled): every every_s the latest processed frame, scaled to
max_side with its faces' boxes, names and scores drawn, as a JPEG that replaces the gate's one row in the database;
the row deleted on a clean stop. Off, nothing is taken. A database that refuses it is skipped, never fatal."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import cv2
import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from gate.config import SnapshotSettings
from gate.runtime.annotate import Overlay, draw_overlays
from gate.store.database import Database, database_error
from gate.store.snapshots import MAX_SNAPSHOT_BYTES, Snapshot

log = logging.getLogger(__name__)


def snapshot_jpeg(image: np.ndarray, overlays: list[Overlay], max_side: int, quality: int) -> bytes:
    """The RGB frame scaled down to `max_side` (never up) with the overlays drawn, as JPEG bytes."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    canvas = draw_overlays(image, overlays, scale)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {canvas.shape} frame as JPEG")
    return data.tobytes()


class SnapshotTaker:
    """Offered every processed frame with its overlays; with [snapshot] enabled, takes one every `every_s` (by
    `clock`)."""

    def __init__(
        self,
        database: Database,
        gate_id: str,
        settings: SnapshotSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database, self.gate_id, self.settings, self._clock = database, gate_id, settings, clock
        self._last: float | None = None
        self.written = 0  # snapshots written so far
        self._failing = False

    def offer(self, image: np.ndarray, overlays: list[Overlay]) -> None:
        """Take a snapshot of this frame when one is due (nothing is encoded otherwise; never when off)."""
        if not self.settings.enabled:
            return
        now = self._clock()
        if self._last is not None and now - self._last < self.settings.every_s:
            return
        self._last = now
        jpeg = snapshot_jpeg(image, overlays, self.settings.max_side, self.settings.quality)
        if len(jpeg) > MAX_SNAPSHOT_BYTES:
            log.warning("snapshot of %d bytes not stored: lower [snapshot] max_side or quality", len(jpeg))
            return
        if self._write(lambda: self.database.put_snapshot(Snapshot(self.gate_id, datetime.now(UTC), jpeg))):
            self.written += 1

    def forget(self) -> None:
        """Delete the gate's snapshot: on a clean stop, and at start (a run that crashed, or one with snapshots on
        before they were turned off, leaves no old picture behind)."""
        self._write(lambda: self.database.forget_snapshot(self.gate_id))

    def _write(self, write: Callable[[], object]) -> bool:
        try:
            write()
        except SQLAlchemyError as error:
            if not self._failing:  # once per outage
                log.warning("snapshot not written, the database refused: %s", database_error(error))
            self._failing = True
            return False
        self._failing = False
        return True
