"""Presentation-attack detection metrics over liveness scores, as ISO/IEC 30107-3 reports them: APCER for each
attack instrument species (the worst species counts), BPCER on bona fide presentations, with Wilson intervals;
and the two ways a threshold is chosen. Pure functions over score lists: a score at or above the threshold is live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from evaluation.results import ErrorRates, Rate, ScoreSpread, SpeciesRate
from gate.errors import FaceGateError

TARGET_BPCER = 0.05  # the second operating point: the strictest threshold that turns away at most this share
MIN_ACER, AT_BPCER = "min_acer", "bpcer_5pct"  # the two thresholds' names


def species_scores(scored: Iterable[tuple[str, float | None]]) -> dict[str, list[float]]:
    """(species, score) pairs grouped by species, in first-seen order; None scores (no verdict) left out."""
    grouped: dict[str, list[float]] = {}
    for species, score in scored:
        bucket = grouped.setdefault(species, [])
        if score is not None:
            bucket.append(score)
    return grouped


def error_rates(by_species: Mapping[str, Sequence[float]], threshold: float, bona_fide: str) -> ErrorRates:
    """At `threshold`: each attack species' APCER (its clips scored live), the worst species' (ties: the first),
    and BPCER (the `bona_fide` clips scored not live); each a count, total, rate and Wilson 95 % interval."""
    apcer = {
        species: Rate.counted(sum(s >= threshold for s in scores), len(scores))
        for species, scores in by_species.items()
        if species != bona_fide
    }
    rated = {species: value.rate for species, value in apcer.items() if value.rate is not None}
    if not rated:
        raise FaceGateError("no attack clip got a verdict: APCER cannot be computed")
    worst = max(rated, key=lambda species: rated[species])
    head = by_species.get(bona_fide, [])
    return ErrorRates(
        apcer=apcer,
        apcer_worst=SpeciesRate(species=worst, **dict(apcer[worst])),
        bpcer=Rate.counted(sum(s < threshold for s in head), len(head)),
    )


def min_acer_threshold(attacks: Mapping[str, Sequence[float]], bona_fide: Sequence[float]) -> float:
    """The threshold with the lowest mean of the worst species' APCER and BPCER (the highest such when several
    tie: fewer attacks pass), put halfway between that score and the next lower one so it sits on no clip."""
    attack_scores = [np.sort(scores) for scores in attacks.values() if len(scores)]
    if not attack_scores or not bona_fide:
        raise FaceGateError("choosing a threshold needs scored clips of an attack species and of bona fide ones")
    head = np.sort(bona_fide)
    candidates = np.unique(np.concatenate([*attack_scores, head, [np.inf]]))
    worst_apcer = np.max(
        [1 - np.searchsorted(scores, candidates, side="left") / len(scores) for scores in attack_scores], axis=0
    )
    bpcer = np.searchsorted(head, candidates, side="left") / len(head)
    acer = (worst_apcer + bpcer) / 2
    best = int(np.flatnonzero(acer == acer.min())[-1])
    if best == 0:
        return float(candidates[0])
    if not np.isfinite(candidates[best]):
        return float(candidates[best - 1]) + 1e-9
    return float((candidates[best] + candidates[best - 1]) / 2)


def bpcer_threshold(bona_fide: Sequence[float], target: float = TARGET_BPCER) -> float:
    """The highest threshold that turns away at most `target` of the bona fide clips (scores below it)."""
    if not bona_fide:
        raise FaceGateError("choosing a threshold needs scored bona fide clips")
    return float(np.sort(bona_fide)[int(np.floor(target * len(bona_fide)))])


def distribution(scores: Sequence[float]) -> ScoreSpread:
    """Count, extremes and quantiles of some scores."""
    if not scores:
        return ScoreSpread(n=0)
    quantiles = np.quantile(scores, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    names = ("min", "p05", "p25", "median", "p75", "p95", "max")
    return ScoreSpread(n=len(scores), **{name: round(float(q), 5) for name, q in zip(names, quantiles, strict=True)})
