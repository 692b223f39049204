"""Face detection with facenet-pytorch's MTCNN (weights bundled in the wheel): boxes, probabilities, 5 landmarks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from gate.config import DetectorSettings
from gate.devices import torch_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Face:
    """One detected face in image pixel coordinates.

    box: (x1, y1, x2, y2); prob: detector probability; landmarks: (5, 2) float32 in the order
    left eye, right eye, nose, left mouth corner, right mouth corner (as seen in the image).
    """

    box: tuple[float, float, float, float]
    prob: float
    landmarks: np.ndarray

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


class Detector:
    """MTCNN over RGB uint8 frames; `detect(frame) -> list[Face]`, largest face first."""

    def __init__(self, settings: DetectorSettings | None = None) -> None:
        from facenet_pytorch import MTCNN  # here, so the trainer can read crop files where it is not installed

        settings = settings or DetectorSettings()
        self.max_side = settings.max_side
        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=settings.min_face_px,
            thresholds=list(settings.thresholds),
            post_process=False,
            device=torch_device(settings.device, "detector.device"),
        )

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Find every face in an RGB uint8 (H, W, 3) frame."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"detect() wants an RGB uint8 (H, W, 3) array, got {frame.dtype} {frame.shape}")
        if min(frame.shape[:2]) < 12:  # below MTCNN's 12-pixel pyramid floor nothing can be found
            return []
        small, scale = self.bounded_copy(frame)
        with torch.inference_mode():
            boxes, probs, points = self._mtcnn.detect(small, landmarks=True)
        return _faces(boxes, probs, points, scale)

    def bounded_copy(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """The frame scaled down to `max_side` when larger, with the factor that maps its points back."""
        longest = max(frame.shape[:2])
        if longest <= self.max_side:
            return frame, 1.0
        scale = self.max_side / longest
        size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), frame.shape[1] / size[0]

    def detect_batch(self, frames: list[np.ndarray]) -> list[list[Face]]:
        """Detect in several frames at once (faster for datasets). Each frame is first bounded to `max_side`; frames
        of other sizes are then padded at the bottom and right to the largest, so coordinates are unchanged."""
        if not frames:
            return []
        bounded = [self.bounded_copy(frame) for frame in frames]
        height = max(small.shape[0] for small, _ in bounded)
        width = max(small.shape[1] for small, _ in bounded)
        padded = [
            np.pad(f, ((0, height - f.shape[0]), (0, width - f.shape[1]), (0, 0)), mode="edge") for f, _ in bounded
        ]
        with torch.inference_mode():
            boxes, probs, points = self._mtcnn.detect(np.stack(padded), landmarks=True)
        scales = [scale for _, scale in bounded]
        return [_faces(b, p, q, s) for b, p, q, s in zip(boxes, probs, points, scales, strict=True)]


def _faces(
    boxes: np.ndarray | None, probs: np.ndarray | None, points: np.ndarray | None, scale: float = 1.0
) -> list[Face]:
    """MTCNN's output as Faces in the full image's pixels (`scale` maps a reduced copy's points back)."""
    if boxes is None or probs is None or points is None:
        return []
    faces = [
        Face(
            box=tuple(float(v) * scale for v in box),
            prob=float(prob),
            landmarks=np.asarray(pts, dtype=np.float32) * np.float32(scale),
        )
        for box, prob, pts in zip(boxes, probs, points, strict=True)
        if box is not None and prob is not None
    ]
    return sorted(faces, key=lambda face: face.area, reverse=True)


def central_face(faces: list[Face], width: int, height: int) -> Face | None:
    """The face a dataset photo is about: the largest box, ties broken by closeness to the centre.

    Used for training crops and offline evaluation, where a photo may show bystanders.
    """
    if not faces:
        return None
    cx, cy = width / 2, height / 2

    def score(face: Face) -> float:
        x1, y1, x2, y2 = face.box
        offset = np.hypot((x1 + x2) / 2 - cx, (y1 + y2) / 2 - cy)
        return face.area - 2.0 * offset**2

    return max(faces, key=score)
