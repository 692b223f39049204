"""What a face track matches with: each usable frame's own embedding, or the quality-weighted mean of the track's
usable frames so far (noise of single frames averages out; a closer, surer face weighs more)."""

from __future__ import annotations

import numpy as np

from gate.vision.alignment import CropTemplate
from gate.vision.detection import Face

FRAME, TRACK_MEAN = "frame", "mean"


def frame_weight(face: Face, template: CropTemplate) -> float:
    """The detector's probability times how much of the crop's resolution the face fills: its eye distance in the
    frame over the template's, capped at 1 (a face smaller than the crop is enlarged, hence blurred)."""
    return face.prob * min(1.0, face.eye_distance / template.eye_distance)


class TrackEmbeddings:
    """`query(track_id, embedding, weight) -> (D,) unit vector` to match; `end(track_id)` forgets the track."""

    def __init__(self, mode: str = FRAME) -> None:
        if mode not in (FRAME, TRACK_MEAN):
            raise ValueError(f"track embedding mode {mode!r}: expected {FRAME!r} or {TRACK_MEAN!r}")
        self.mode = mode
        self._sums: dict[int, np.ndarray] = {}

    def query(self, track_id: int, embedding: np.ndarray, weight: float) -> np.ndarray:
        if self.mode == FRAME:
            return embedding
        total = self._sums.get(track_id)
        total = embedding * weight if total is None else total + embedding * weight
        self._sums[track_id] = total
        norm = float(np.linalg.norm(total))
        return (total / norm).astype(np.float32) if norm > 0 else embedding

    def end(self, track_id: int) -> None:
        self._sums.pop(track_id, None)
