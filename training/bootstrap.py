"""Bootstrap confidence intervals for verification metrics, resampled by person, not by pair.

Pairs that share a person are not independent: one hard-to-recognise person spoils every pair they are in.
So the people are drawn with replacement, and each pair enters a resample once per way it can be formed from
the drawn people: a genuine pair of person p as often as p was drawn, an impostor pair of a and b
(count a) x (count b) times. The statistic is recomputed on each resample; the interval is the central
percentile range.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm import tqdm

Statistic = Callable[[np.ndarray], dict[str, float]]  # pair indices (with repeats) -> named values


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
    confidence: float = 0.95,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Percentile intervals {name: [low, high]} of each value `statistic` returns, plus `resamples` used and
    `skipped` (resamples without a genuine or without an impostor pair, or where the statistic failed)."""
    left, right, same = np.asarray(left), np.asarray(right), np.asarray(same, dtype=bool)
    if not len(left):
        raise ValueError("no pairs to resample")
    people = int(max(left.max(), right.max())) + 1
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    skipped = 0
    for _ in tqdm(range(resamples), desc="bootstrap", unit="resample", disable=not progress, leave=False):
        counts = np.bincount(rng.integers(people, size=people), minlength=people)
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
    tail = (1.0 - confidence) / 2.0 * 100.0
    intervals = {name: np.percentile(v, [tail, 100.0 - tail]).tolist() for name, v in values.items()}
    return {"intervals": intervals, "confidence": confidence, "resamples": resamples - skipped, "skipped": skipped}


def person_indices(names_left: list[str], names_right: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Person names of each pair's two images as indices into their sorted union."""
    people = sorted(set(names_left) | set(names_right))
    index = {name: i for i, name in enumerate(people)}
    return np.array([index[n] for n in names_left]), np.array([index[n] for n in names_right])
