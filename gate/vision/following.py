"""Following the faces of one camera stream: between full MTCNN detections, each face is found again by MTCNN's
later stages only (Detector.refine), in the region its last box and movement predict."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from gate.vision.boxes import Box, iou
from gate.vision.detection import Detector, Face

log = logging.getLogger(__name__)

FOLLOW_MARGIN = 1.3  # the predicted region's side over the last box's: room for the face to move and grow
VELOCITY_KEPT = 0.5  # the share of the previous velocity kept when a new movement is seen (smoothing)
SAME_FACE_IOU = 0.5  # a full detection's face overlapping a followed one this much continues it; two followed
# faces overlapping this much have met on one face, which is kept once


@dataclass(frozen=True)
class Followed:
    """A face being followed: where it was last found and how far its box centre moves per processed frame."""

    face: Face
    velocity: tuple[float, float] = (0.0, 0.0)

    def predicted_region(self) -> Box:
        """Where to look in the next frame: the last box moved by its velocity, square, FOLLOW_MARGIN larger."""
        x1, y1, x2, y2 = self.face.box
        cx, cy = (x1 + x2) / 2 + self.velocity[0], (y1 + y2) / 2 + self.velocity[1]
        half = max(x2 - x1, y2 - y1) * FOLLOW_MARGIN / 2
        return (cx - half, cy - half, cx + half, cy + half)

    def moved_to(self, face: Face) -> Followed:
        """The same face, found again at `face` one processed frame later."""
        old, new = _centre(self.face.box), _centre(face.box)
        step = (new[0] - old[0], new[1] - old[1])
        vx, vy = self.velocity
        kept = VELOCITY_KEPT
        return Followed(face, (kept * vx + (1 - kept) * step[0], kept * vy + (1 - kept) * step[1]))


class FaceFollower:
    """One camera stream's detection: `detect(frame) -> list[Face]`, the same Faces as `Detector.detect` (full-frame
    pixels, largest first), most of them found by following.

    A full detection runs on the first frame, every `full_every`-th processed frame after it (so a face that comes
    into view is found within `full_every` frames), and at once on a frame where a followed face is lost (ONet's
    probability below its threshold: the face left, turned away or moved too far); in between, each followed face
    is found again by `Detector.refine` in its predicted region. The detector and its networks may serve several
    streams; this object holds only this stream's faces, so keep one per stream.
    """

    def __init__(self, detector: Detector, full_every: int) -> None:
        if full_every < 1:
            raise ValueError(f"full_every must be at least 1, got {full_every}")
        self.detector = detector
        self.full_every = full_every
        self.followed: list[Followed] = []
        self.full_detections = 0  # frames searched whole (for benchmarks and logs)
        self.refined = 0  # frames whose faces were all found by following
        self._since_full: int | None = None  # processed frames since the last full detection; None: none yet

    def reset(self) -> None:
        """Forget the followed faces (the stream restarted or jumped): the next frame is searched whole."""
        self.followed, self._since_full = [], None

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Every face in an RGB uint8 (H, W, 3) frame of this stream, largest first."""
        if self._since_full is None or self._since_full + 1 >= self.full_every:
            return self._full(frame)
        found = self.detector.refine(frame, [followed.predicted_region() for followed in self.followed])
        if any(face is None for face in found):
            log.debug("a followed face was lost: searching the whole frame")
            return self._full(frame)
        self._since_full += 1
        self.refined += 1
        moved = [followed.moved_to(face) for followed, face in zip(self.followed, found, strict=True) if face]
        self.followed = _distinct(moved)
        return _largest_first(self.followed)

    def _full(self, frame: np.ndarray) -> list[Face]:
        """A full detection; faces overlapping a followed one continue it (keeping its velocity)."""
        faces = self.detector.detect(frame)
        self._since_full = 0
        self.full_detections += 1
        previous = dict(enumerate(self.followed))  # each continued once at most
        self.followed = []
        for face in faces:
            overlaps = {key: iou(followed.face.box, face.box) for key, followed in previous.items()}
            best = max(overlaps, key=overlaps.__getitem__, default=None)
            if best is not None and overlaps[best] >= SAME_FACE_IOU:
                self.followed.append(previous.pop(best).moved_to(face))
            else:
                self.followed.append(Followed(face))
        return _largest_first(self.followed)


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def _distinct(followed: list[Followed]) -> list[Followed]:
    """Followed faces less those that have met another, more probable one on the same face."""
    kept: list[Followed] = []
    for candidate in sorted(followed, key=lambda f: f.face.prob, reverse=True):
        if all(iou(candidate.face.box, other.face.box) < SAME_FACE_IOU for other in kept):
            kept.append(candidate)
    return kept


def _largest_first(followed: list[Followed]) -> list[Face]:
    return sorted((f.face for f in followed), key=lambda face: face.area, reverse=True)
