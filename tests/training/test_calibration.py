"""Threshold calibration on held-out people, its summary as a card keeps it, and the paired bootstrap of two models'
TAR on them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation.intervals import paired_tar_intervals
from gate.errors import FaceGateError
from gate.model.card import SHIPPED_CARD, read_card
from training.calibration import FARS, CalibrationSummary, calibrate


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
    summaries = [CalibrationSummary.from_json(calibrate(e, LABELS)["summary"]) for e in (worse, better)]
    gain = {far: summaries[1].tar_at_far[far] - summaries[0].tar_at_far[far] for far in FARS}
    result = paired_tar_intervals(worse, better, LABELS, resamples=200)
    for far in FARS:
        low, high = result["intervals"][far]
        assert 0 < low <= gain[far] <= high
    swapped = paired_tar_intervals(better, worse, LABELS, resamples=200)
    assert all(swapped["intervals"][far][1] < 0 for far in FARS)


def test_calibration_summary_reads_back_as_the_card_keeps_it():
    summary = CalibrationSummary.from_json(calibrate(_embeddings(LABELS, 1.2, seed=0), LABELS)["summary"])
    assert (summary.genuine_pairs, summary.impostor_pairs) == (180, 15_930) and tuple(summary.tar_at_far) == tuple(FARS)
    assert summary.people is None and "people" not in summary.to_json()
    card = read_card(SHIPPED_CARD)  # written by `facegate model calibrate`: with its people, images and who
    shipped = CalibrationSummary.of_card(card)
    assert json.dumps(shipped.to_json()) == json.dumps(card.results["calibration"])  # same keys, order, values
    assert shipped.people and shipped.images and shipped.who and list(shipped.tar_at_far) == list(card.thresholds)
    with pytest.raises(FaceGateError, match="people_count"):
        CalibrationSummary.from_json({**summary.to_json(), "people_count": 3})
