"""Face tracking: join the faces of consecutive frames into tracks by greedy box overlap (IoU)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import count

from gate.vision.boxes import Box, iou

log = logging.getLogger(__name__)

MIN_IOU = 0.2  # boxes overlapping less than this are different faces (a walking face moves little per frame)


@dataclass
class Track:
    """One face followed over time; `box` is where it was last seen."""

    track_id: int
    box: Box
    first_seen: float
    last_seen: float
    hits: int = 1


@dataclass
class TrackUpdate:
    """What one frame did: the track id of each input box (same order), and the tracks that ended."""

    track_ids: list[int]
    ended: list[Track] = field(default_factory=list)


class Tracker:
    """Greedy IoU tracker: `update(boxes, now)` assigns each box a stable track id.

    A box joins the live track it overlaps most (best pairs first, each track and box used once, IoU at
    least `min_iou`); unmatched boxes start new tracks; a track unseen for more than `timeout_s` ends.
    """

    def __init__(self, timeout_s: float, min_iou: float = MIN_IOU) -> None:
        self.timeout_s = timeout_s
        self.min_iou = min_iou
        self._tracks: dict[int, Track] = {}
        self._ids = count(1)

    @property
    def live(self) -> list[Track]:
        return list(self._tracks.values())

    def update(self, boxes: list[Box], now: float) -> TrackUpdate:
        """Match this frame's boxes to the live tracks; ends the tracks that timed out before `now`."""
        ended = self._expire(now)
        assigned = self._match(boxes)
        track_ids = []
        for index, box in enumerate(boxes):
            track = assigned.get(index)
            if track is None:
                track = Track(next(self._ids), box, first_seen=now, last_seen=now)
                self._tracks[track.track_id] = track
                log.debug("track %d started at %s", track.track_id, box)
            else:
                track.box, track.last_seen, track.hits = box, now, track.hits + 1
            track_ids.append(track.track_id)
        return TrackUpdate(track_ids, ended)

    def end_all(self) -> list[Track]:
        """End every live track (the source has ended)."""
        ended = list(self._tracks.values())
        self._tracks.clear()
        return ended

    def _expire(self, now: float) -> list[Track]:
        ended = [t for t in self._tracks.values() if now - t.last_seen > self.timeout_s]
        for track in ended:
            del self._tracks[track.track_id]
            log.debug("track %d ended after %d sightings", track.track_id, track.hits)
        return ended

    def _match(self, boxes: list[Box]) -> dict[int, Track]:
        pairs = [
            (overlap, index, track)
            for index, box in enumerate(boxes)
            for track in self._tracks.values()
            if (overlap := iou(box, track.box)) >= self.min_iou
        ]
        pairs.sort(key=lambda pair: (-pair[0], pair[1], pair[2].track_id))
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for _, index, track in pairs:
            if index not in assigned and track.track_id not in used:
                assigned[index] = track
                used.add(track.track_id)
        return assigned
