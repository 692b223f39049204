"""A face the gate kept at its door (an access event's aligned crop), judged again before it may become a template:
the event numbers a caller may name, and the quality gate run on the crop as on a photo. Confirming one event
(enrollment.confirm) and enrolling an unknown visitor (enrollment.visitors) share these rules."""

from __future__ import annotations

import cv2
import numpy as np

from gate.errors import FaceGateError
from gate.runtime.parts import Runtime
from gate.vision.quality import Reason

MAX_EVENT_ID = 2**63 - 1  # the largest event number a database holds (a 64-bit integer)
# an event's face is an aligned crop: padded by this share of its side on each side, the detector finds it again
# with a margin around it (and its landmarks, for the quality gate's size, confidence, pose and sharpness)
PADDING = 0.5
MIN_BRIGHTNESS, MAX_BRIGHTNESS = 30.0, 225.0  # the face's mean grey level (0-255): not black, not burnt out


def check_event_id(event_id: int) -> int:
    """An event number as the database holds them, or a one-line refusal."""
    if not 1 <= event_id <= MAX_EVENT_ID:
        raise FaceGateError(f"an event number is 1 to {MAX_EVENT_ID}, got {event_id}")
    return event_id


def recheck(runtime: Runtime, crop: np.ndarray) -> float | str:
    """The quality gate again on a door face: cut for the model in use, neither too dark nor too bright, and found
    again by the detector (padded) as one face passing the gate's size, confidence, pose and sharpness rules. The
    detector's confidence, or why not (a phrase: "is too dark: ...")."""
    size = runtime.embedder.template.size
    if crop.shape[:2] != (size, size):
        return f"was cut for another model ({crop.shape[0]} px; the model in use takes {size} px)"
    brightness = float(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).mean())
    if not MIN_BRIGHTNESS <= brightness <= MAX_BRIGHTNESS:
        return (
            f"is too {'dark' if brightness < MIN_BRIGHTNESS else 'bright'}: mean grey level {brightness:.0f} outside"
            f" {MIN_BRIGHTNESS:.0f}-{MAX_BRIGHTNESS:.0f}"
        )
    pad = round(size * PADDING)
    found = runtime.pipeline.one_face(cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REPLICATE))
    if isinstance(found, Reason):
        return f"fails the quality gate again: {found}"
    return float(found.face.prob)
