"""Confidence intervals, each rule once: bootstrap by person (verification metrics, paired model differences)
and Wilson's interval of a proportion (the gate's rates).

Bootstrap intervals resample by person, not by pair.

Pairs that share a person are not independent: one hard-to-recognise person spoils every pair they are in.
So the people are drawn with replacement, and each pair enters a resample once per way it can be formed from
the drawn people: a genuine pair of person p as often as p was drawn, an impostor pair of a and b
(count a) x (count b) times. The statistic is recomputed on each resample; the interval is the central
percentile range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
from tqdm import tqdm

from gate.model.scoring import Scorer
from training.calibration import FARS
from training.metrics import weighted_threshold_at_far

CONFIDENCE = 0.95  # every interval's coverage
Statistic = Callable[[np.ndarray], dict[str, float]]  # pair indices (with repeats) -> named values


def person_draws(people: int, resamples: int, seed: int = 0, progress: bool = True) -> Iterator[np.ndarray]:
    """Each resample's draw: how often each of `people` people was drawn, with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    for _ in tqdm(range(resamples), desc="bootstrap", unit="resample", disable=not progress, leave=False):
        yield np.bincount(rng.integers(people, size=people), minlength=people)


def percentile_interval(values: list[float], confidence: float = CONFIDENCE) -> list[float]:
    """The central `confidence` range of resampled values."""
    tail = (1.0 - confidence) / 2.0 * 100.0
    return np.percentile(values, [tail, 100.0 - tail]).tolist()


def pair_weights(draw_counts: np.ndarray, left: np.ndarray, right: np.ndarray, same: np.ndarray) -> np.ndarray:
    """How often each pair enters a resample in which person i was drawn draw_counts[i] times.

    `left`/`right` are person indices of the pairs' two images (equal for genuine pairs).
    """
    return np.where(same, draw_counts[left], draw_counts[left] * draw_counts[right])


def bootstrap_by_person(
    statistic: Statistic,
    left: np.ndarray,
    right: np.ndarray,
    same: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Percentile intervals {name: [low, high]} (CONFIDENCE) of each value `statistic` returns, plus `resamples`
    used and `skipped` (resamples without a genuine or without an impostor pair, or where the statistic failed)."""
    confidence = CONFIDENCE
    left, right, same = np.asarray(left), np.asarray(right), np.asarray(same, dtype=bool)
    if not len(left):
        raise ValueError("no pairs to resample")
    people = int(max(left.max(), right.max())) + 1
    values: dict[str, list[float]] = {}
    skipped = 0
    for counts in person_draws(people, resamples, seed, progress):
        weights = pair_weights(counts, left, right, same)
        if not (weights[same].any() and weights[~same].any()):
            skipped += 1
            continue
        try:
            result = statistic(np.repeat(np.arange(len(left)), weights))
        except ValueError:  # e.g. a resample that leaves k-fold accuracy with one fold
            skipped += 1
            continue
        for name, value in result.items():
            values.setdefault(name, []).append(value)
    intervals = {name: percentile_interval(v, confidence) for name, v in values.items()}
    return {"intervals": intervals, "confidence": confidence, "resamples": resamples - skipped, "skipped": skipped}


def person_indices(names_left: list[str], names_right: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Person names of each pair's two images as indices into their sorted union."""
    people = sorted(set(names_left) | set(names_right))
    index = {name: i for i, name in enumerate(people)}
    return np.array([index[n] for n in names_left]), np.array([index[n] for n in names_right])


def paired_tar_intervals(
    embeddings_a: np.ndarray,
    embeddings_b: np.ndarray,
    labels: np.ndarray,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
    scorers: tuple[Scorer | None, Scorer | None] = (None, None),
) -> dict:
    """Bootstrap intervals of model B's TAR minus model A's at each calibration FAR, on every pair of the same
    held-out crops (as `calibrate` scores them). People are drawn with replacement and each pair counts as in
    `bootstrap_by_person` (a genuine pair as often as its person was drawn, an impostor pair the product of
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
    differences: dict[str, list[float]] = {far: [] for far in FARS}
    for counts in person_draws(people, resamples, seed):
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
    intervals = {far: percentile_interval(v, confidence) for far, v in differences.items()}
    return {"intervals": intervals, "resamples": len(differences[FARS[0]])}


def wilson(count: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion; (0, 1) when there is nothing to count."""
    if total == 0:
        return 0.0, 1.0
    p = count / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(count: int, total: int) -> dict:
    low, high = wilson(count, total)
    return {"count": count, "of": total, "rate": count / total if total else None, "ci95": [low, high]}
