"""Quality gate: reject faces too small, unsure, blurred or turned away, each with a named reason.

Pose and sharpness are measured on one fixed crop (GRADING_TEMPLATE, the 112-pixel ArcFace crop) whatever the
model in use, so `[quality]` thresholds keep one meaning across models: the variance of the Laplacian falls
steeply as a face is enlarged, and dlib's 150-pixel chip shows the face 1.5x larger than the 112-pixel crop.
"""

from __future__ import annotations

from enum import StrEnum

import cv2
import numpy as np

from gate.config import QualitySettings
from gate.vision.alignment import ARCFACE_112, CropTemplate, align, transform_points
from gate.vision.detection import Face

GRADING_TEMPLATE = ARCFACE_112


class Reason(StrEnum):
    """Why a photo, a face or a door decision was refused."""

    NO_FACE = "NO_FACE"
    SEVERAL_FACES = "SEVERAL_FACES"
    TOO_SMALL = "TOO_SMALL"
    LOW_CONFIDENCE = "LOW_CONFIDENCE"
    BLURRY = "BLURRY"
    TURNED = "TURNED"


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the grey crop: low for blurred faces."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def yaw(face: Face, matrix: np.ndarray, template: CropTemplate) -> float:
    """How far the nose sits sideways from the middle of the eyes after alignment, in eye distances.

    About 0 for a frontal face, growing past 0.5 as the head turns towards profile.
    """
    aligned = transform_points(face.landmarks, matrix)
    eye_mid = (aligned[0, 0] + aligned[1, 0]) / 2
    return float((aligned[2, 0] - eye_mid) / template.eye_distance)


def assess(
    face: Face, crop: np.ndarray, matrix: np.ndarray, template: CropTemplate, settings: QualitySettings
) -> Reason | None:
    """The first reason this face is unfit to match on, or None when it passes."""
    if face.eye_distance < settings.min_eye_distance_px:
        return Reason.TOO_SMALL
    if face.prob < settings.min_detector_prob:
        return Reason.LOW_CONFIDENCE
    if abs(yaw(face, matrix, template)) > settings.max_yaw:
        return Reason.TURNED
    if sharpness(crop) < settings.min_sharpness:
        return Reason.BLURRY
    return None


def grade(frame: np.ndarray, face: Face, settings: QualitySettings) -> Reason | None:
    """assess() on the face's grading crop, cut from the frame (the model's own crop may differ)."""
    crop, matrix = align(frame, face.landmarks, GRADING_TEMPLATE)
    return assess(face, crop, matrix, GRADING_TEMPLATE, settings)
