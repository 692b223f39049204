"""Threshold calibration on held-out people, and the paired bootstrap of two models' TAR on them."""

from __future__ import annotations

import numpy as np

from evaluation.intervals import paired_tar_intervals
from training.calibration import FARS, calibrate


def _embeddings(labels: np.ndarray, spread: float, seed: int) -> np.ndarray:
    """Unit vectors: one random centre per person plus noise of the given spread (less spread: easier)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(labels.max() + 1, 32))
    vectors = centres[labels] + spread * rng.normal(size=(len(labels), 32))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


LABELS = np.repeat(np.arange(60), 3)  # 60 people, 3 crops each: 180 genuine, 15,930 impostor pairs


def test_same_model_differs_by_nothing():
    embeddings = _embeddings(LABELS, 1.2, seed=0)
    result = paired_tar_intervals(embeddings, embeddings, LABELS, resamples=50)
    assert result["resamples"] == 50
    assert all(result["intervals"][far] == [0.0, 0.0] for far in FARS)


def test_a_better_model_has_an_interval_above_zero():
    worse, better = _embeddings(LABELS, 1.6, seed=0), _embeddings(LABELS, 0.6, seed=0)
    summaries = [calibrate(e, LABELS)["summary"] for e in (worse, better)]
    gain = {far: summaries[1][f"tar_at_far_{far}"] - summaries[0][f"tar_at_far_{far}"] for far in FARS}
    result = paired_tar_intervals(worse, better, LABELS, resamples=200)
    for far in FARS:
        low, high = result["intervals"][far]
        assert 0 < low <= gain[far] <= high
    swapped = paired_tar_intervals(better, worse, LABELS, resamples=200)
    assert all(swapped["intervals"][far][1] < 0 for far in FARS)
