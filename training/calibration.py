"""Threshold calibration from impostor scores of people the model never saw: every pair of a held-out set."""

from __future__ import annotations

import numpy as np

from gate.config import CALIBRATED_FARS
from gate.model.scoring import Scorer
from training.metrics import threshold_at_far

FARS = CALIBRATED_FARS


def all_pair_scores(
    embeddings: np.ndarray, labels: np.ndarray, scorer: Scorer | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (the model's `scorer`; default cosine) and same-person flags of every unordered pair (i < j)."""
    scores = (scorer or Scorer()).matrix(embeddings, embeddings)
    upper = np.triu_indices(len(labels), k=1)
    return scores[upper], labels[upper[0]] == labels[upper[1]]


def calibrate(embeddings: np.ndarray, labels: np.ndarray, scorer: Scorer | None = None) -> dict:
    """Thresholds at each target FAR from the impostor pairs, with the genuine accept rate each gives."""
    scores, same = all_pair_scores(embeddings, labels, scorer)
    genuine, impostor = scores[same], scores[~same]
    thresholds = {far: float(threshold_at_far(impostor, float(far))) for far in FARS}
    summary: dict[str, float] = {"genuine_pairs": int(len(genuine)), "impostor_pairs": int(len(impostor))}
    for far, threshold in thresholds.items():
        summary[f"tar_at_far_{far}"] = round(float(np.mean(genuine >= threshold)), 4)
    return {"thresholds": thresholds, "summary": summary}
