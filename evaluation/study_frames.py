"""The study's walk-ups: photos rendered by the turnstile simulator at a few moments of a walk, detected and aligned
once (the same frames for all three systems), and the end-to-end classifier's training frames."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from evaluation.study_config import StudyConfig
from evaluation.turnstile import TurnstileSpec, background, draw_walk, expose, walk_frame
from gate.vision.faces import FacePipeline


def shrink(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def door(spec: TurnstileSpec, seed: int) -> np.ndarray:
    """The one fixed backdrop of the study's door (a real gate's camera does not move)."""
    return background(spec.width, spec.height, np.random.default_rng([seed, 7]))


@dataclass
class Walks:
    """The test walk-ups, rendered once and shared by all systems."""

    label: np.ndarray  # (W,) employee index; -1 for strangers
    group: np.ndarray  # (W,) EMPLOYEE, CALIBRATION or TEST
    frames: np.ndarray  # (W, T, h, w, 3) uint8 whole frames, downscaled: the end-to-end input
    crops: np.ndarray  # (W, T, S, S, 3) uint8 aligned crop of each frame's largest usable face (zeros: none)
    found: np.ndarray  # (W, T) bool: a usable face was found (detected and passed the quality gate)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(path.name + ".tmp.npz")
        np.savez(temp, **asdict(self))
        os.replace(temp, path)

    @staticmethod
    def load(path: Path) -> Walks:
        with np.load(path) as data:
            return Walks(**{name: data[name] for name in ("label", "group", "frames", "crops", "found")})


def best_usable_crop(pipeline: FacePipeline, frame: np.ndarray, faces: list) -> np.ndarray | None:
    """The aligned crop of the largest face that passes the quality gate, or None."""
    for face in faces:  # largest first
        crop = pipeline.crop(frame, face)
        if crop.rejected is None:
            return crop.crop
    return None


BATCH_WALKS = 6  # walk-ups whose frames MTCNN detects in one batch


def render_walks(
    photos: Sequence[np.ndarray],
    labels: Sequence[int],
    groups: Sequence[int],
    pipeline: FacePipeline,
    config: StudyConfig,
    spec: TurnstileSpec,
    progress: bool = True,
) -> Walks:
    """Render each photo as a walk-up at config.walk_t, detect and align every frame once."""
    backdrop = door(spec, config.seed)
    count, moments, size = len(photos), len(config.walk_t), pipeline.template.size
    frames = np.zeros((count, moments, config.frame_height, config.frame_width, 3), np.uint8)
    crops = np.zeros((count, moments, size, size, 3), np.uint8)
    found = np.zeros((count, moments), bool)
    bar = tqdm(total=count, desc="rendering walk-ups", unit="walk", disable=not progress)
    for start in range(0, count, BATCH_WALKS):
        full: list[np.ndarray] = []
        for i in range(start, min(start + BATCH_WALKS, count)):
            rng = np.random.default_rng([config.seed, 3, i])
            params = draw_walk(rng, spec)
            for j, t in enumerate(config.walk_t):
                frame = expose(walk_frame(photos[i], backdrop, params, t, spec), rng)
                frames[i, j] = shrink(frame, config.frame_width, config.frame_height)
                full.append(frame)
        for n, (frame, faces) in enumerate(zip(full, pipeline.detector.detect_batch(full), strict=True)):
            i, j = start + n // moments, n % moments
            crop = best_usable_crop(pipeline, frame, faces)
            if crop is not None:
                crops[i, j], found[i, j] = crop, True
        bar.update(min(BATCH_WALKS, count - start))
    bar.close()
    return Walks(np.asarray(labels, np.int64), np.asarray(groups, np.int64), frames, crops, found)


def training_frames(
    photos: Sequence[Sequence[np.ndarray]], config: StudyConfig, spec: TurnstileSpec, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The end-to-end classifier's training pool at k: each employee's k photos rendered at the same door at
    random walk moments, positions and light (about config.pool_frames frames in all), downscaled."""
    backdrop = door(spec, config.seed)
    total = sum(len(p) for p in photos)
    per_photo = max(1, math.ceil(config.pool_frames / total))
    rng = np.random.default_rng([config.seed, 4, k])
    images = np.zeros((total * per_photo, config.frame_height, config.frame_width, 3), np.uint8)
    labels = np.zeros(total * per_photo, np.int64)
    n = 0
    for label, person_photos in enumerate(photos):
        for photo in person_photos:
            for _ in range(per_photo):
                frame = expose(walk_frame(photo, backdrop, draw_walk(rng, spec), rng.uniform(0, 1), spec), rng)
                images[n], labels[n] = shrink(frame, config.frame_width, config.frame_height), label
                n += 1
    return images, labels
