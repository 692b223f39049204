"""A walk-up of a real LFW person with the head turning and nodding (evaluation.head_motion), as frames a capture from
the camera can keep several of: for the capture tests (enrollment, API, page), played as a file or a live stream."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from evaluation.head_motion import HEAD, ClipSpec, clip_frames, draw_motion
from gate.vision.faces import FacePipeline
from gate.vision.imageio import load_image

SPEC = ClipSpec(width=320, height=240, fps=10, walk_s=3.0)


def walk_up(
    lfw_root: Path, person: str, pipeline: FacePipeline, seed: int = 3, spec: ClipSpec = SPEC
) -> list[np.ndarray]:
    """A walk-up of the person's first LFW photo, the head turning 15 degrees and nodding 6: RGB frames."""
    photo = load_image(sorted((lfw_root / person).glob("*.jpg"))[0])
    landmarks = max(pipeline.detector.detect(photo), key=lambda face: face.area).landmarks
    motion = replace(draw_motion(HEAD, np.random.default_rng(seed), spec), yaw_deg=15.0, pitch_deg=6.0, roll_deg=0.0)
    return list(clip_frames(photo, landmarks, motion, np.random.default_rng(seed + 1), spec))


def bgr(frames: list[np.ndarray]) -> list[np.ndarray]:
    """RGB frames as BGR (what OpenCV writes and PacedStream plays)."""
    return [np.ascontiguousarray(frame[..., ::-1]) for frame in frames]
