"""Threshold calibration from impostor scores of people the model never saw: every pair of a held-out set."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from gate.scoring import Scorer
from training.metrics import threshold_at_far, weighted_threshold_at_far

FARS = ("0.01", "0.001", "0.0001", "0.00001")


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
    summary = {"genuine_pairs": int(len(genuine)), "impostor_pairs": int(len(impostor))}
    for far, threshold in thresholds.items():
        summary[f"tar_at_far_{far}"] = round(float(np.mean(genuine >= threshold)), 4)
    return {"thresholds": thresholds, "summary": summary}


def paired_tar_intervals(
    embeddings_a: np.ndarray,
    embeddings_b: np.ndarray,
    labels: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    scorers: tuple[Scorer | None, Scorer | None] = (None, None),
) -> dict:
    """Bootstrap intervals of model B's TAR minus model A's at each calibration FAR, on every pair of the same
    held-out crops (as `calibrate` scores them). People are drawn with replacement and each pair counts as in
    training/bootstrap.py (a genuine pair as often as its person was drawn, an impostor pair the product of
    its two people's counts; weighted, not repeated, as 5 M pairs would make each resample slow), each model
    scoring as its `scorers` entry says (default cosine); each resample
    sets its own thresholds from its weighted impostors, so the
    intervals carry the thresholds' uncertainty too. Returns {far: [low, high]} under "intervals"."""
    upper = np.triu_indices(len(labels), k=1)
    left, right = labels[upper[0]], labels[upper[1]]
    same = left == right
    people = int(labels.max()) + 1
    models = []
    for embeddings, scorer in zip((embeddings_a, embeddings_b), scorers, strict=True):
        scores = (scorer or Scorer()).matrix(embeddings, embeddings)[upper]
        order = np.argsort(-scores[~same], kind="stable")
        models.append((scores[same], scores[~same][order], left[~same][order], right[~same][order]))
    genuine_person = left[same]
    rng = np.random.default_rng(seed)
    differences: dict[str, list[float]] = {far: [] for far in FARS}
    for _ in tqdm(range(resamples), desc="bootstrap", unit="resample", leave=False):
        counts = np.bincount(rng.integers(people, size=people), minlength=people)
        genuine_weight = counts[genuine_person]
        if not genuine_weight.any():
            continue
        tars = []
        for genuine, descending, a, b in models:
            cumulative = np.cumsum(counts[a] * counts[b])
            thresholds = {far: weighted_threshold_at_far(descending, cumulative, float(far)) for far in FARS}
            tars.append({far: np.average(genuine >= t, weights=genuine_weight) for far, t in thresholds.items()})
        for far in FARS:
            differences[far].append(float(tars[1][far] - tars[0][far]))
    tail = (1.0 - confidence) / 2.0 * 100.0
    intervals = {far: np.percentile(v, [tail, 100.0 - tail]).tolist() for far, v in differences.items()}
    return {"intervals": intervals, "resamples": len(differences[FARS[0]])}
