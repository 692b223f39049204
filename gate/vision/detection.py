"""Face detection with facenet-pytorch's MTCNN (weights bundled in the wheel): boxes, probabilities, 5 landmarks.

`Detector.detect` searches a whole frame (PNet over an image pyramid, then RNet and ONet on its proposals);
`Detector.refine` runs only the later stages (RNet, ONet) on regions where a face is expected, which is what
following a face from frame to frame needs (gate.vision.following).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from gate.config import MIN_FACE_PX_FLOOR, DetectorSettings, QualitySettings
from gate.devices import torch_device
from gate.vision.boxes import Box, as_box

log = logging.getLogger(__name__)

# MTCNN's box side over the eye distance of the face in it: 1.94 at the lowest on 300 random LFW faces (median
# 2.22, 99th percentile 2.80), so a face whose eyes are d pixels apart has a box of at least 1.9 d.
BOX_PER_EYE_DISTANCE = 1.9
MTCNN_MIN_FACE_PX = 20.0  # facenet-pytorch's smallest face: its pyramid's finest level (12 px windows at 12/20)
PYRAMID_FACTOR = 0.709  # MTCNN's step from one pyramid level to the next
RNET_SIZE, ONET_SIZE = 24, 48  # the input sides of MTCNN's second and third networks
# RNet moves a region onto the face in it twice before ONet looks: one pass leaves ONet's landmarks up to 0.20 eye
# distances from a full detection's on regions 1.0-1.5x the face and off-centre by up to 25 % of it, two 0.09
RNET_PASSES = 2
PIXEL_SCALE = 0.0078125  # MTCNN's input normalisation: (pixel - 127.5) / 128


def smallest_face_px(settings: DetectorSettings, quality: QualitySettings) -> float:
    """The smallest face side MTCNN searches for: `min_face_px` when set, else derived from the quality gate.

    A face whose eye distance is below `min_eye_distance_px` is rejected TOO_SMALL whatever else it is, so the
    pyramid need not look for faces whose box (BOX_PER_EYE_DISTANCE x the eye distance) is smaller. The size is
    snapped down to a level of MTCNN's usual pyramid (20 px / 0.709^k), so the pyramid is the usual one less its
    finest levels and a face large enough is found at the same scales as with 20 px (the same landmarks, to the
    bit, on 98 % of 300 LFW photos): 18 px eyes -> boxes of 34.2 px and more -> 28.2 px, which halves PNet's
    pixels. Faces a little below the quality minimum are still found (and rejected with their reason).
    """
    if settings.min_face_px:
        return float(settings.min_face_px)
    smallest_box = quality.min_eye_distance_px * BOX_PER_EYE_DISTANCE
    if smallest_box <= MIN_FACE_PX_FLOOR:
        return float(MIN_FACE_PX_FLOOR)
    levels = math.floor(math.log(smallest_box / MTCNN_MIN_FACE_PX) / -math.log(PYRAMID_FACTOR) + 1e-9)
    return max(float(MIN_FACE_PX_FLOOR), MTCNN_MIN_FACE_PX / PYRAMID_FACTOR**levels)


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

    def __init__(self, settings: DetectorSettings | None = None, quality: QualitySettings | None = None) -> None:
        """`quality`: the gate's quality settings, from which the smallest face searched is derived unless
        `settings.min_face_px` is set (smallest_face_px)."""
        from facenet_pytorch import MTCNN  # here, so the trainer can read crop files where it is not installed

        settings = settings or DetectorSettings()
        self.max_side = settings.max_side
        self.min_face_px = smallest_face_px(settings, quality or QualitySettings())
        self.thresholds = settings.thresholds
        self.device = torch_device(settings.device, "detector.device")
        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=self.min_face_px,
            factor=PYRAMID_FACTOR,
            thresholds=list(settings.thresholds),
            post_process=False,
            device=self.device,
        )

    @property
    def networks(self) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
        """MTCNN's PNet, RNet and ONet (shared by every stream this detector serves)."""
        return self._mtcnn.pnet, self._mtcnn.rnet, self._mtcnn.onet

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Find every face in an RGB uint8 (H, W, 3) frame."""
        _check_frame(frame, "detect")
        if min(frame.shape[:2]) < 12:  # below MTCNN's 12-pixel pyramid floor nothing can be found
            return []
        small, scale = self.bounded_copy(frame)
        with torch.inference_mode():
            boxes, probs, points = self._mtcnn.detect(small, landmarks=True)
        return _faces(boxes, probs, points, scale)

    def refine(self, frame: np.ndarray, regions: list[Box]) -> list[Face | None]:
        """MTCNN's later stages only, on regions of an RGB uint8 frame where a face is expected (each (x1, y1, x2,
        y2) in the frame's pixels, about one face wide, larger to allow for movement; it may cross the border).

        RNet moves each region onto the face in it (twice), ONet gives the box, probability and 5 landmarks; the result
        for each region, in order, is a Face like `detect` gives, or None where ONet's probability is below its
        threshold (no face there any more). No pyramid: a few milliseconds per region on a CPU.
        """
        _check_frame(frame, "refine")
        if not regions:
            return []
        _, rnet, onet = self.networks
        squares = _squares(np.asarray(regions, dtype=np.float32))
        with torch.inference_mode():
            for _ in range(RNET_PASSES):
                shift, _ = rnet(self._patches(frame, squares, RNET_SIZE))
                squares = _squares(_regress(squares, shift.cpu().numpy()))
            shift, points, probs = onet(self._patches(frame, squares, ONET_SIZE))
        outputs = (shift.cpu().numpy(), points.cpu().numpy(), probs[:, 1].cpu().numpy())
        return _refined(squares, *outputs, threshold=self.thresholds[2])

    def _patches(self, frame: np.ndarray, squares: np.ndarray, size: int) -> torch.Tensor:
        """Each square cut from the frame (zeros outside it), resized to size x size and normalised as MTCNN
        wants: (N, 3, size, size) float32 on the detector's device."""
        patches = []
        for x1, y1, x2, y2 in squares:
            cut = torch.from_numpy(_cut(frame, int(x1) - 1, int(y1) - 1, int(x2), int(y2)))
            patch = cut.to(self.device).permute(2, 0, 1)[None].float()
            patches.append(torch.nn.functional.interpolate(patch, size=(size, size), mode="area"))
        return (torch.cat(patches) - 127.5) * PIXEL_SCALE

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


def _check_frame(frame: np.ndarray, caller: str) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"{caller}() wants an RGB uint8 (H, W, 3) array, got {frame.dtype} {frame.shape}")


def _squares(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) boxes made square about their centres, on their longer side (as MTCNN's stages expect)."""
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1).astype(np.float32)


def _regress(boxes: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """A network's box regression applied: each edge moved by its output times the box's side (MTCNN counts a
    box's side as x2 - x1 + 1)."""
    width = boxes[:, 2] - boxes[:, 0] + 1
    height = boxes[:, 3] - boxes[:, 1] + 1
    return boxes + shift * np.stack([width, height, width, height], axis=1)


def _cut(frame: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """frame[top:bottom, left:right], with zeros where that reaches past the frame's border."""
    height, width = frame.shape[:2]
    cut = np.zeros((max(1, bottom - top), max(1, right - left), 3), np.uint8)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if x1 > x0 and y1 > y0:
        cut[y0 - top : y1 - top, x0 - left : x1 - left] = frame[y0:y1, x0:x1]
    return cut


def _refined(
    squares: np.ndarray, shift: np.ndarray, points: np.ndarray, probs: np.ndarray, threshold: float
) -> list[Face | None]:
    """ONet's outputs on `squares` as Faces in frame pixels (None below ONet's threshold). Landmarks are fractions
    of the square's side from its corner (MTCNN's corner is one pixel before x1, y1)."""
    side = (squares[:, 2] - squares[:, 0] + 1)[:, None]
    xs = squares[:, :1] - 1 + side * points[:, :5]
    ys = squares[:, 1:2] - 1 + side * points[:, 5:]
    boxes = _regress(squares, shift)
    return [
        Face(box=as_box(box), prob=float(prob), landmarks=np.stack([x, y], axis=1).astype(np.float32))
        if prob >= threshold
        else None
        for box, prob, x, y in zip(boxes, probs, xs, ys, strict=True)
    ]


def _faces(
    boxes: np.ndarray | None, probs: np.ndarray | None, points: np.ndarray | None, scale: float = 1.0
) -> list[Face]:
    """MTCNN's output as Faces in the full image's pixels (`scale` maps a reduced copy's points back)."""
    if boxes is None or probs is None or points is None:
        return []
    faces = [
        Face(
            box=as_box(box, scale),
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
