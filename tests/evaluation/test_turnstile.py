"""Tests of the walk-up simulator: ground truth, empty gaps, a growing subject, reproducibility."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from evaluation.turnstile import TurnstileSpec, render_turnstile

SPEC = TurnstileSpec(width=160, height=120, fps=10, walk_s=1.0, gap_s=0.5, seed=3)


def photo(value: int) -> np.ndarray:
    image = np.full((100, 80, 3), value, np.uint8)
    image[::10] = 255 - value  # stripes: texture for the encoder
    return image


def read_all(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame.astype(np.int16))
    capture.release()
    return frames


def test_render_turnstile_ground_truth_frames_and_gaps(tmp_path: Path) -> None:
    path, walks = render_turnstile([("a", photo(250)), ("b", photo(5))], tmp_path / "t.mp4", SPEC)
    assert [(w.person, w.first_frame, w.last_frame) for w in walks] == [("a", 5, 14), ("b", 20, 29)]
    frames = read_all(path)
    assert len(frames) == 35
    assert frames[0].shape == (120, 160, 3)


def test_render_turnstile_subject_grows_and_gaps_stay_empty(tmp_path: Path) -> None:
    path, walks = render_turnstile([("a", photo(250))], tmp_path / "t.mp4", SPEC)
    frames = read_all(path)
    empty = frames[0]
    changed = [int((np.abs(f - empty).max(axis=2) > 40).sum()) for f in frames]
    walk = walks[0]
    assert all(c < 20 for c in changed[: walk.first_frame] + changed[walk.last_frame + 1 :])
    inside = changed[walk.first_frame : walk.last_frame + 1]
    assert min(inside) > 100
    assert inside[-1] > 4 * inside[0]


def test_render_turnstile_same_seed_same_video_other_seed_differs(tmp_path: Path) -> None:
    photos = [("a", photo(200))]
    one = read_all(render_turnstile(photos, tmp_path / "1.mp4", SPEC)[0])
    two = read_all(render_turnstile(photos, tmp_path / "2.mp4", SPEC)[0])
    other = SPEC.model_copy(update={"seed": 4})
    three = read_all(render_turnstile(photos, tmp_path / "3.mp4", other)[0])
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    assert not np.array_equal(one[0], three[0])


def test_spec_is_a_validated_frozen_setting() -> None:
    assert TurnstileSpec() == TurnstileSpec(width=640, height=480, fps=15.0, walk_s=2.5, gap_s=2.0, seed=0)
    assert SPEC.fps == 10.0 and isinstance(SPEC.fps, float)
    for key, bad in (("width", 20), ("fps", 0), ("gap_s", -1), ("colour", 1)):
        with pytest.raises(ValueError, match=key):
            TurnstileSpec(**{key: bad})
    with pytest.raises(ValueError, match="frozen"):
        SPEC.seed = 5  # type: ignore[misc]
