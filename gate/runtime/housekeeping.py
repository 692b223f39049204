"""The gate's chores between frames, each at its own pace, apart from the per-frame work: enrolment changes taken up
and the journal replayed every GALLERY_REFRESH_S of the gate's time; old event faces deleted every
FORGET_FACES_EVERY_S of the machine's, as [events] keep_days says."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from gate.matching.gallery import Gallery
from gate.store.database import database_error
from gate.store.event_log import EventLog

log = logging.getLogger(__name__)

GALLERY_REFRESH_S = 2.0  # how often the running gate looks for people enrolled or removed meanwhile
FORGET_FACES_EVERY_S = 3600.0  # how often event faces older than [events] keep_days are deleted


class Housekeeping:
    """`due(now)` on every processed frame (`now`: the frame's time) does what is due, and nothing else."""

    def __init__(self, gallery: Gallery, events: EventLog, keep_days: int) -> None:
        self.gallery, self.events, self.keep_days = gallery, events, keep_days
        self._last_refresh = 0.0  # the gate's time (video time for files, monotonic for cameras)
        self._last_forget = -FORGET_FACES_EVERY_S  # the machine's monotonic time

    def due(self, now: float) -> None:
        if now - self._last_refresh < GALLERY_REFRESH_S:
            return
        self._last_refresh = now
        self.gallery.refresh()
        if self.events.journal.pending():
            self.events.replay()
        if time.monotonic() - self._last_forget >= FORGET_FACES_EVERY_S:
            self._last_forget = time.monotonic()
            self.forget_old_faces()

    def forget_old_faces(self) -> None:
        """Delete the faces kept with access events older than keep_days (0: keep them for ever)."""
        if self.keep_days == 0:
            return
        before = datetime.now(UTC) - timedelta(days=self.keep_days)
        try:
            forgotten = self.events.database.forget_event_faces(before=before)
        except SQLAlchemyError as error:
            log.warning("old event faces not deleted this time: %s", database_error(error))
            return
        if forgotten:
            log.info("%d event faces older than %d days deleted ([events] keep_days)", forgotten, self.keep_days)
