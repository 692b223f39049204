"""Walk-up simulator: a video of people approaching a door camera one after another, with ground truth."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pydantic import Field

from gate.config import SettingsModel

log = logging.getLogger(__name__)

START_HEIGHT = 0.25  # the photo's height as a share of the frame's when a walk starts (far away) ...
END_HEIGHT = 0.85  # ... and when it ends (at the camera)
MAX_BLUR_SIGMA = 1.6  # motion/defocus blur at the start of a walk, fading to none
SENSOR_NOISE = 2.0  # standard deviation of the per-frame pixel noise
WALKUP_MIN_FACE_PX = 40  # smallest face searched in walk-up videos: smaller ones fail the quality gate's eye
# distance anyway, and skipping them makes detection about 3x faster


@dataclass(frozen=True)
class Walk:
    """Ground truth of one walk: who, and the first and last frame (inclusive) in which they are visible."""

    person: str
    first_frame: int
    last_frame: int


BACKDROP_CELL_PX = 40  # the backdrop's texture varies over cells this large: a frame holds at least one


class TurnstileSpec(SettingsModel):
    """The video's shape and pacing."""

    width: int = Field(640, ge=BACKDROP_CELL_PX, le=7680)
    height: int = Field(480, ge=BACKDROP_CELL_PX, le=4320)
    fps: float = Field(15.0, gt=0, le=240)
    walk_s: float = Field(2.5, gt=0)
    gap_s: float = Field(2.0, ge=0)  # empty frames between people: longer than the tracker's timeout
    seed: int = 0


def background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A static synthetic backdrop: a vertical colour gradient with a smooth low-frequency texture."""
    top, bottom = rng.uniform(40, 200, size=3), rng.uniform(40, 200, size=3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    image = top * (1 - ramp) + bottom * ramp
    texture = cv2.resize(
        rng.normal(0, 18, size=(height // BACKDROP_CELL_PX, width // BACKDROP_CELL_PX, 3)),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    return np.clip(image + texture, 0, 255).astype(np.float32)


def elliptical_mask(height: int, width: int) -> np.ndarray:
    """A soft-edged ellipse (1 inside, 0 outside) covering the face and hair of a centred portrait."""
    mask = np.zeros((height, width), np.float32)
    center = (width // 2, int(height * 0.48))
    axes = (int(width * 0.36), int(height * 0.46))
    cv2.ellipse(mask, center, axes, 0, 0, 360, 1.0, thickness=-1)
    sigma = max(1.0, 0.04 * width)
    return cv2.GaussianBlur(mask, (0, 0), sigma)[..., None]


def _paste(canvas: np.ndarray, photo: np.ndarray, center: tuple[float, float], height: int) -> None:
    """Blend the photo, scaled to `height` pixels, through the elliptical mask onto canvas (in place)."""
    width = max(2, round(photo.shape[1] * height / photo.shape[0]))
    scaled = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    mask = elliptical_mask(height, width)
    x0, y0 = round(center[0] - width / 2), round(center[1] - height / 2)
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(canvas.shape[1], x0 + width), min(canvas.shape[0], y0 + height)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    part = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
    region = canvas[cy0:cy1, cx0:cx1]
    region[:] = region * (1 - mask[part]) + scaled[part] * mask[part]


@dataclass(frozen=True)
class WalkPath:
    """One walk's random draws: where the face starts (far) and ends (close), and the light at both ends."""

    start: tuple[float, float]
    end: tuple[float, float]
    light_start: float
    light_end: float


def draw_walk(rng: np.random.Generator, spec: TurnstileSpec) -> WalkPath:
    """A walk's path: from a random spot off-centre towards the centre, brightening."""
    w, h = spec.width, spec.height
    start = (w / 2 + rng.uniform(-0.25, 0.25) * w, h / 2 + rng.uniform(-0.1, 0.05) * h)
    end = (w / 2 + rng.uniform(-0.05, 0.05) * w, h / 2 + rng.uniform(-0.02, 0.04) * h)
    light_start, light_end = rng.uniform(0.7, 0.9), rng.uniform(0.95, 1.15)
    return WalkPath(start, end, light_start, light_end)


def walk_frame(photo: np.ndarray, backdrop: np.ndarray, path: WalkPath, t: float, spec: TurnstileSpec) -> np.ndarray:
    """The frame at moment t of a walk (0: far, 1: at the camera), float32, before sensor noise: the photo grown,
    moved along the path, lit, and blurred the more the farther away."""
    canvas = backdrop.copy()
    center = (path.start[0] + (path.end[0] - path.start[0]) * t, path.start[1] + (path.end[1] - path.start[1]) * t)
    lit = np.clip(photo.astype(np.float32) * (path.light_start + (path.light_end - path.light_start) * t), 0, 255)
    _paste(canvas, lit, center, round(spec.height * (START_HEIGHT + (END_HEIGHT - START_HEIGHT) * t)))
    sigma = MAX_BLUR_SIGMA * (1 - t) ** 2
    if sigma > 0.3:
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    return canvas


def expose(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The camera's uint8 frame: sensor noise added, clipped."""
    return np.clip(canvas + rng.normal(0, SENSOR_NOISE, size=canvas.shape), 0, 255).astype(np.uint8)


def walk_frames(
    photo: np.ndarray, backdrop: np.ndarray, count: int, rng: np.random.Generator, spec: TurnstileSpec
) -> Iterator[np.ndarray]:
    """The `count` frames of one walk (before sensor noise): growing, drifting towards the centre, sharpening."""
    path = draw_walk(rng, spec)
    for step in range(count):
        yield walk_frame(photo, backdrop, path, step / max(1, count - 1), spec)


def render_turnstile(
    photos: list[tuple[str, np.ndarray]], path: Path, spec: TurnstileSpec | None = None
) -> tuple[Path, list[Walk]]:
    """Write an .mp4 in which each (person, RGB photo) walks up to the camera in turn.

    Returns the path and the ground-truth walks.

    The video opens and ends with a gap of empty frames and has one between people. Same inputs and
    seed give the same video.
    """
    spec = spec or TurnstileSpec()
    rng = np.random.default_rng(spec.seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    backdrop = background(spec.width, spec.height, rng)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), spec.fps, (spec.width, spec.height))
    gap, walk = round(spec.gap_s * spec.fps), round(spec.walk_s * spec.fps)
    walks: list[Walk] = []
    index = 0

    def write(image: np.ndarray) -> None:
        nonlocal index
        writer.write(cv2.cvtColor(expose(image, rng), cv2.COLOR_RGB2BGR))
        index += 1

    try:
        for person, photo in photos:
            for _ in range(gap):
                write(backdrop)
            first = index
            for frame in walk_frames(photo, backdrop, walk, rng, spec):
                write(frame)
            walks.append(Walk(person, first, index - 1))
        for _ in range(gap):
            write(backdrop)
    finally:
        writer.release()
    log.info("turnstile video %s: %d frames, %d walks", path, index, len(walks))
    return path, walks
