"""Passive liveness over a face track: does the face move as one plane (a photo, a screen) or show depth parallax?

Each frame's face is warped onto a landmark-aligned gray patch. Between two patches `baseline` frames apart, dense
optical flow (Farneback) is measured over the inner face and the best single homography is fitted to it robustly.
Everything a flat picture can do in front of a camera (move, scale, turn in its plane, tilt in perspective, and
every error of the landmark alignment, which is a similarity warp) is a homography, so it leaves almost nothing
unexplained. A head that turns shows parallax: the nose moves against the cheeks and the curved face stretches
unevenly, which no homography reproduces. A pair's residual is the mean distance between the flow and the fitted
homography, as a share of the patch's eye distance; a track's score is the median of its recent pairs. The
"registered" method first warps the later patch back by that homography and measures the flow again, so a plane
under any perspective change leaves only flow noise; the "plane" method stops after the first fit. A head that
does not turn scores low either way: the test cannot tell a still head from a photo. See docs/research/liveness.md.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from pydantic import Field, field_validator

from gate.config import LivenessRules
from gate.vision.alignment import CropTemplate, arcface_template, similarity_transform

if TYPE_CHECKING:
    from gate.vision.detection import Face  # a type only: importing the liveness test does not load torch

log = logging.getLogger(__name__)

FLOW_GRID_PX = 2  # flow is sampled every this many patch pixels for the homography fit
PATCH_MEAN, PATCH_STD = 128.0, 40.0  # every patch is brought to this gray level and contrast (light changes)


class LivenessParams(LivenessRules):
    """The test's settings: a site's (LivenessRules: threshold, frames, baseline, pairs) and its inner workings.
    `threshold` is on the score's scale (see docs/research/liveness.md for how it was chosen and what it does)."""

    patch_px: int = Field(64, ge=32)  # side of the landmark-aligned gray patch the flow is measured on
    min_eye_px: float = Field(12.0, ge=0)  # faces with eyes closer than this in the frame are skipped (too few pixels)
    max_tracks: int = Field(64, ge=1)  # tracks held at once; the least recently fed is dropped beyond this
    method: str = "registered"  # how a pair's residual is measured: a name in RESIDUALS

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        if method not in RESIDUALS:
            raise ValueError(f"liveness method {method!r}: expected one of {', '.join(RESIDUALS)}")
        return method


@dataclass(frozen=True)
class LivenessVerdict:
    """A track's liveness: its score, whether that reaches the threshold, and how many frames it rests on."""

    score: float
    live: bool
    frames: int


def face_patch(image_rgb: np.ndarray, landmarks: np.ndarray, template: CropTemplate) -> np.ndarray:
    """The face warped onto `template` by the similarity of its 5 landmarks, as a (size, size) uint8 gray patch
    brought to a fixed mean and contrast."""
    matrix = similarity_transform(landmarks, template.array)
    size = template.size
    crop = cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    normalised = (gray - gray.mean()) / max(float(gray.std()), 1.0) * PATCH_STD + PATCH_MEAN
    return np.clip(normalised, 0, 255).astype(np.uint8)


def inner_face_mask(template: CropTemplate) -> np.ndarray:
    """(size, size) bool: an ellipse over eyes, nose, mouth and cheeks, inside the face outline (no background)."""
    points = template.array
    eyes, mouth = points[:2].mean(axis=0), points[3:].mean(axis=0)
    centre = (eyes + mouth) / 2
    half_width, half_height = 0.95 * template.eye_distance, 0.85 * float(mouth[1] - eyes[1]) + 2
    mask = np.zeros((template.size, template.size), np.uint8)
    cv2.ellipse(mask, (round(centre[0]), round(centre[1])), (round(half_width), round(half_height)), 0, 0, 360, 1, -1)
    return mask.astype(bool)


def _flow_and_plane(
    previous: np.ndarray, current: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Dense flow from `previous` to `current` at the masked grid points, as (source, target) (N, 2) float32
    point sets, and the single homography that fits it best (least median of squares, refined on its inliers;
    None when the flow is degenerate)."""
    flow = cv2.calcOpticalFlowFarneback(previous, current, None, 0.5, 3, 11, 3, 5, 1.1, 0)
    ys, xs = np.nonzero(mask[::FLOW_GRID_PX, ::FLOW_GRID_PX])
    ys, xs = ys * FLOW_GRID_PX, xs * FLOW_GRID_PX
    source = np.stack([xs, ys], axis=1).astype(np.float32)
    target = source + flow[ys, xs]
    homography, _ = cv2.findHomography(source, target, cv2.LMEDS)
    return source, target, homography


def _mean_miss(source: np.ndarray, target: np.ndarray, homography: np.ndarray) -> float:
    """Mean distance in pixels between where `homography` sends the source points and where the flow did."""
    predicted = cv2.perspectiveTransform(source[None], homography)[0]
    return float(np.linalg.norm(predicted - target, axis=1).mean())


def plane_residual(previous: np.ndarray, current: np.ndarray, mask: np.ndarray) -> float:
    """Mean distance in pixels, over the masked points, between the dense flow from `previous` to `current` and
    the single homography that fits that flow best (the "plane" method)."""
    source, target, homography = _flow_and_plane(previous, current, mask)
    if homography is None:  # degenerate flow (no texture at all): nothing can be said, count it as flat
        return 0.0
    return _mean_miss(source, target, homography)


def registered_residual(previous: np.ndarray, current: np.ndarray, mask: np.ndarray) -> float:
    """The "registered" method: `current` is first warped back onto `previous` by the homography its flow
    suggests, then the flow is measured again and one more homography fitted; the residual of that second fit.
    A plane under any perspective change stays a plane, so after registration only flow noise is left of it,
    and the optical flow, now measuring small motions, is more accurate; a head's parallax survives it."""
    _, _, homography = _flow_and_plane(previous, current, mask)
    if homography is None:
        return 0.0
    size = previous.shape[::-1]
    back = cv2.warpPerspective(
        current, homography, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )
    source, target, remaining = _flow_and_plane(previous, back, mask)
    return 0.0 if remaining is None else _mean_miss(source, target, remaining)


RESIDUALS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "plane": plane_residual,
    "registered": registered_residual,
}


@dataclass
class _TrackState:
    """What one track keeps: the last `baseline` patches and the last `max_pairs` residuals (bounded)."""

    patches: deque[np.ndarray]
    residuals: deque[float]
    frames: int = 0


class LivenessTracker:
    """Per-track accumulator: `add(track_id, image_rgb, face)` each frame, `verdict(track_id)` when asked,
    `end(track_id)` when the track ends. Memory per track is bounded by `baseline` patches and `max_pairs`
    floats, and at most `max_tracks` tracks are held."""

    def __init__(self, params: LivenessParams | None = None) -> None:
        self.params = params or LivenessParams()
        self.template = arcface_template(self.params.patch_px)
        self.mask = inner_face_mask(self.template)
        self._residual = RESIDUALS[self.params.method]
        self._tracks: OrderedDict[int, _TrackState] = OrderedDict()

    def add(self, track_id: int, image_rgb: np.ndarray, face: Face) -> None:
        """Feed one frame's face of a track (RGB uint8 frame, the face detected in it)."""
        if face.eye_distance < self.params.min_eye_px:
            return
        state = self._state(track_id)
        patch = face_patch(image_rgb, face.landmarks, self.template)
        if len(state.patches) == self.params.baseline:
            state.residuals.append(self._residual(state.patches[0], patch, self.mask) / self.template.eye_distance)
        state.patches.append(patch)
        state.frames += 1

    def verdict(self, track_id: int) -> LivenessVerdict | None:
        """The track's verdict, or None while it has fewer than `min_frames` usable frames."""
        state = self._tracks.get(track_id)
        if state is None or state.frames < self.params.min_frames or not state.residuals:
            return None
        score = float(np.median(np.fromiter(state.residuals, dtype=np.float64)))
        return LivenessVerdict(score=score, live=score >= self.params.threshold, frames=state.frames)

    def end(self, track_id: int) -> None:
        """Forget a track (its face left)."""
        self._tracks.pop(track_id, None)

    @property
    def tracks(self) -> int:
        """How many tracks are held now."""
        return len(self._tracks)

    def _state(self, track_id: int) -> _TrackState:
        state = self._tracks.get(track_id)
        if state is None:
            state = _TrackState(deque(maxlen=self.params.baseline), deque(maxlen=self.params.max_pairs))
            self._tracks[track_id] = state
            while len(self._tracks) > self.params.max_tracks:
                dropped, _ = self._tracks.popitem(last=False)
                log.debug("liveness: track %d dropped (more than %d tracks)", dropped, self.params.max_tracks)
        self._tracks.move_to_end(track_id)
        return state
