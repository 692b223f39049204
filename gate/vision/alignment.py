"""Alignment: a least-squares similarity warp of the 5 landmarks onto a model's crop template gives its crop.

Every model card carries its own template (crop side and where the eyes, nose tip and mouth corners go); the
pipeline aligns to the template of the model in use. Enrolment also keeps one crop in the model-independent
ARCHIVE template, loose enough that any model's crop can be cut from it later (re-embedding without the photos).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from gate.errors import FaceGateError


@dataclass(frozen=True)
class CropTemplate:
    """A square crop of `size` pixels and the 5 landmark positions (x, y) in it: eyes, nose tip, mouth corners."""

    size: int
    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        inside = all(len(p) == 2 and 0 <= p[0] < self.size and 0 <= p[1] < self.size for p in self.points)
        if self.size < 16 or len(self.points) != 5 or not inside:
            raise FaceGateError(f"a crop template needs 5 points inside a crop of 16+ pixels, got {self}")

    @classmethod
    def of(cls, size: int, points: np.ndarray | list) -> CropTemplate:
        return cls(int(size), tuple((round(float(x), 4), round(float(y), 4)) for x, y in np.asarray(points)))

    @property
    def array(self) -> np.ndarray:
        """(5, 2) float32."""
        return np.asarray(self.points, dtype=np.float32)

    @property
    def eye_distance(self) -> float:
        return float(self.points[1][0] - self.points[0][0])

    def scaled(self, size: int) -> CropTemplate:
        """The same template for a crop of another side (every point scales with it)."""
        return CropTemplate.of(size, self.array * (size / self.size))


# The widely used 112x112 ArcFace crop (InsightFace), the template of FaceGate's own MobileFaceNet.
ARCFACE_112 = CropTemplate(
    112, ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041))
)
# Stored enrolment crops: the ArcFace shape shrunk by 0.8 about the centre of a 224-pixel crop. About 2 eye
# distances of margin on each side, 1.9 above the eyes and 2.1 below them: it holds every model's crop
# (dlib's 150-pixel chip reaches 1.9 below the eyes), with 56 pixels between the eyes.
ARCHIVE = CropTemplate.of(224, ((ARCFACE_112.array - 56.0) * 0.8 + 56.0) * 2.0)


def arcface_template(size: int = 112) -> CropTemplate:
    return ARCFACE_112.scaled(size)


def stored_crop_template(size: int) -> CropTemplate:
    """The template of a crop stored with a template: the archive's, or, for crops stored before it existed,
    the ArcFace template at the crop's size (FaceGate stored each model's own crop then)."""
    return ARCHIVE if size == ARCHIVE.size else arcface_template(size)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 matrix of the rotation+uniform scale+translation that maps src onto dst in least squares.

    Umeyama's closed form: deterministic and exact for 5 points (OpenCV's estimateAffinePartial2D
    samples point subsets at random, so repeated calls can differ).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = (src_c**2).sum() / len(src)
    scale = (singular * sign).sum() / variance if variance > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]]).astype(np.float32)


def align(frame: np.ndarray, landmarks: np.ndarray, template: CropTemplate) -> tuple[np.ndarray, np.ndarray]:
    """Warp the face onto the template: returns (crop (size, size, 3) uint8, the 2x3 matrix used)."""
    matrix = similarity_transform(landmarks, template.array)
    size = template.size
    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, matrix


def realign(crop: np.ndarray, source: CropTemplate, target: CropTemplate) -> np.ndarray:
    """A crop aligned to `source` cut again for `target` (a stored crop fed to another model)."""
    if source == target:
        return crop
    matrix = similarity_transform(source.array, target.array)
    shrinking = abs(np.linalg.det(matrix[:, :2])) < 1.0
    flags = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.warpAffine(crop, matrix, (target.size, target.size), flags=flags, borderMode=cv2.BORDER_CONSTANT)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    return points @ matrix[:, :2].T + matrix[:, 2]
