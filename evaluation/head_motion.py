"""Walk-up clips for the liveness test, from one photo and its 5 landmarks: a flat replay (the photo moved as one
plane, as a held print or phone would be) or a 3D-like walk-up (the same approach, with the head turning a few
degrees, synthesised per pixel from a depth proxy). Rendered with the turnstile simulator's helpers; seeded."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import cv2
import numpy as np
from pydantic import Field, field_validator

from evaluation.turnstile import BACKDROP_CELL_PX, TurnstileSpec, WalkPath, background, draw_walk, expose, walk_frame
from gate.config import SettingsModel

FLAT, HEAD = "flat", "3d"  # a flat replay (an attack) and a 3D-like walk-up (a bona fide presentation)
KINDS = (FLAT, HEAD)
FOCAL = 3.0  # the camera's focal length in photo heights: the head's centre sits this far from it
TURN_ITERATIONS = 4  # fixed-point steps that invert the head's per-pixel displacement


Degrees = Annotated[float, Field(ge=0, le=90)]


class ClipSpec(SettingsModel):
    """The clips' shape, pacing and how far each kind swings (amplitudes are drawn per clip, in degrees)."""

    width: int = Field(640, ge=BACKDROP_CELL_PX, le=7680)
    height: int = Field(480, ge=BACKDROP_CELL_PX, le=4320)
    fps: float = Field(12.0, gt=0, le=240)
    walk_s: float = Field(2.5, gt=0)
    tilt_deg: tuple[Degrees, Degrees] = (2.0, 10.0)  # flat: the held picture's tilt about its vertical axis
    yaw_deg: tuple[Degrees, Degrees] = (1.0, 8.0)  # 3D-like: the head turning left and right
    pitch_share: float = Field(0.5, ge=0)  # the nod (or forward tilt of the picture) as a share of the turn
    roll_deg: Degrees = 3.0  # both kinds: the largest in-plane sway

    @field_validator("tilt_deg", "yaw_deg")
    @classmethod
    def _range_ordered(cls, amplitudes: tuple[float, float]) -> tuple[float, float]:
        if amplitudes[0] > amplitudes[1]:
            raise ValueError(f"{amplitudes}: the smallest amplitude first")
        return amplitudes

    @property
    def turnstile(self) -> TurnstileSpec:
        return TurnstileSpec(width=self.width, height=self.height, fps=self.fps, walk_s=self.walk_s)

    @property
    def frames(self) -> int:
        return round(self.walk_s * self.fps)


@dataclass(frozen=True)
class Motion:
    """One clip's draws: the approach, and the swing of yaw, pitch and roll (amplitudes in degrees, `cycles`
    swings per walk starting at `phase`). For a flat replay yaw and pitch tilt the picture's plane; for a 3D-like
    clip they turn the head."""

    kind: str
    path: WalkPath
    yaw_deg: float
    pitch_deg: float
    roll_deg: float
    cycles: float
    phase: float

    def angles(self, t: float) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees at moment t of the walk (0: far, 1: at the camera)."""
        angle = 2 * math.pi * self.cycles * t + self.phase
        return self.yaw_deg * math.sin(angle), self.pitch_deg * math.cos(angle), self.roll_deg * math.sin(angle / 2)


def draw_motion(kind: str, rng: np.random.Generator, spec: ClipSpec) -> Motion:
    """A clip's approach (the turnstile's walk) and its swing; the same draws are made for either kind."""
    if kind not in KINDS:
        raise ValueError(f"clip kind {kind!r}: expected one of {', '.join(KINDS)}")
    path = draw_walk(rng, spec.turnstile)
    low, high = spec.tilt_deg if kind == FLAT else spec.yaw_deg
    yaw = rng.uniform(low, high) * rng.choice([-1.0, 1.0])
    roll = rng.uniform(-spec.roll_deg, spec.roll_deg)
    return Motion(kind, path, yaw, yaw * spec.pitch_share, roll, rng.uniform(0.5, 1.0), rng.uniform(0, 2 * math.pi))


def rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """3x3 rotation: roll about the camera axis, then pitch about the horizontal, then yaw about the vertical."""
    yaw, pitch, roll = np.radians([yaw_deg, pitch_deg, roll_deg])
    about_y = np.array([[math.cos(yaw), 0, math.sin(yaw)], [0, 1, 0], [-math.sin(yaw), 0, math.cos(yaw)]])
    about_x = np.array([[1, 0, 0], [0, math.cos(pitch), -math.sin(pitch)], [0, math.sin(pitch), math.cos(pitch)]])
    about_z = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
    return about_y @ about_x @ about_z


def _turned(
    xs: np.ndarray, ys: np.ndarray, depth: np.ndarray, turn: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Where photo pixels (xs, ys) at `depth` towards the camera land once turned by `turn` about the centre of
    the photo, `FOCAL` photo heights from a pinhole camera; the unturned surface projects onto the photo itself."""
    height, width = size
    focal = FOCAL * height
    shrink = (focal - depth) / focal
    x, y, z = (xs - width / 2) * shrink, (ys - height / 2) * shrink, -depth
    moved = [turn[row, 0] * x + turn[row, 1] * y + turn[row, 2] * z for row in range(3)]
    perspective = focal / (focal + moved[2])
    return moved[0] * perspective + width / 2, moved[1] * perspective + height / 2


def plane_turn(photo: np.ndarray, yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """The photo as a flat picture turned about its centre and seen in perspective: an exact homography."""
    height, width = photo.shape[:2]
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    xs, ys = _turned(corners[:, 0], corners[:, 1], np.zeros(4), rotation(yaw_deg, pitch_deg, roll_deg), (height, width))
    landed = np.stack([xs, ys], axis=1)
    homography = cv2.getPerspectiveTransform(corners.astype(np.float32), landed.astype(np.float32))
    return cv2.warpPerspective(
        photo, homography, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def head_depth(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """A depth proxy (pixels towards the camera from the head's centre, (H, W) float32) from the 5 landmarks:
    an ellipsoid head (half width 1.3, half height 1.8, half depth 1.5 eye distances) plus a nose ridge (0.4 eye
    distances high at the tip) and shallow eye sockets, smoothed so its slope stays finite at the outline."""
    points = np.asarray(landmarks, np.float64)
    eyes, mouth = points[:2].mean(axis=0), points[3:].mean(axis=0)
    across = points[1] - points[0]
    eye_distance = float(np.linalg.norm(across))
    unit = across / eye_distance
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)

    def face_coords(origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx, dy = xs - origin[0], ys - origin[1]
        return (dx * unit[0] + dy * unit[1]) / eye_distance, (-dx * unit[1] + dy * unit[0]) / eye_distance

    u, v = face_coords((eyes + mouth) / 2)
    depth = 1.5 * np.sqrt(np.clip(1 - (u / 1.3) ** 2 - (v / 1.8) ** 2, 0, None))
    nu, nv = face_coords(points[2] - 0.2 * eye_distance * np.array([-unit[1], unit[0]]))
    depth += 0.4 * np.exp(-0.5 * ((nu / 0.22) ** 2 + (nv / 0.45) ** 2))
    for eye in points[:2]:
        eu, ev = face_coords(eye)
        depth -= 0.12 * np.exp(-0.5 * (eu**2 + ev**2) / 0.25**2)
    smoothed = cv2.GaussianBlur(depth.astype(np.float32), (0, 0), 0.1 * eye_distance)
    return smoothed * np.float32(eye_distance)


def head_turn(photo: np.ndarray, depth: np.ndarray, yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """The photo re-rendered as the surface `depth` turned about the head's centre: each pixel moves by its own
    parallax (cv2.remap of the displacement field, inverted by fixed-point steps; occlusion is ignored, which is
    fair for a few degrees)."""
    height, width = depth.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    landed_x, landed_y = _turned(xs, ys, depth, rotation(yaw_deg, pitch_deg, roll_deg).astype(np.float32), depth.shape)
    shift = np.dstack([landed_x - xs, landed_y - ys])
    grid = np.dstack([xs, ys])
    source = grid
    for _ in range(TURN_ITERATIONS):  # the pixel that lands on each output pixel: source + shift(source) = grid
        # beyond the photo the shift counts as 0 (BORDER_CONSTANT): how the published liveness clips were rendered;
        # BORDER_REPLICATE would move the edge pixels and change those numbers
        source = grid - cv2.remap(
            shift, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
    return cv2.remap(photo, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def clip_frames(
    photo: np.ndarray, landmarks: np.ndarray, motion: Motion, rng: np.random.Generator, spec: ClipSpec
) -> Iterator[np.ndarray]:
    """The clip's RGB uint8 frames: over a fresh backdrop, the photo (turned as a plane or as a head, by the
    motion's angles at each moment) walks up as in the turnstile simulator, blurred far away, with sensor noise."""
    backdrop = background(spec.width, spec.height, rng)
    depth = head_depth(photo.shape[:2], landmarks) if motion.kind == HEAD else None
    count = spec.frames
    for step in range(count):
        t = step / max(1, count - 1)
        angles = motion.angles(t)
        turned = plane_turn(photo, *angles) if depth is None else head_turn(photo, depth, *angles)
        yield expose(walk_frame(turned, backdrop, motion.path, t, spec.turnstile), rng)
