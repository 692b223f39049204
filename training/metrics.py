"""Verification metrics as small pure numpy functions: ROC, AUC, EER, TAR@FAR, k-fold accuracy.

Conventions: `scores` are similarities (higher = more alike), `labels` are True for genuine
(same-person) pairs, and a pair is accepted when score >= threshold.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def _split(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Genuine and impostor scores as float64 arrays; both must be present."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in length")
    genuine, impostor = scores[labels], scores[~labels]
    if not len(genuine) or not len(impostor):
        raise ValueError("need at least one genuine and one impostor score")
    return genuine, impostor


def _above(score: float) -> float:
    """The next float32 above a score: a threshold that rejects it even after a round trip through float32."""
    return float(np.nextafter(np.float32(score), np.float32(np.inf)))


def roc(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve: (far, tar, thresholds), one point per distinct score, thresholds decreasing.

    The first point (threshold +inf) accepts nothing (far = tar = 0);
    the last accepts everything (far = tar = 1).
    Tied scores form a single point, so the curve steps diagonally across ties.
    """
    genuine, impostor = _split(scores, labels)
    thresholds = np.concatenate([[np.inf], np.unique(np.concatenate([genuine, impostor]))[::-1]])
    genuine_sorted, impostor_sorted = np.sort(genuine), np.sort(impostor)
    # count of scores >= t = n - (number strictly below t)
    tar = 1.0 - np.searchsorted(genuine_sorted, thresholds, side="left") / len(genuine)
    far = 1.0 - np.searchsorted(impostor_sorted, thresholds, side="left") / len(impostor)
    return far, tar, thresholds


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC (trapezoids): the chance a genuine score beats an impostor one, ties count half."""
    far, tar, _ = roc(scores, labels)
    return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2.0))


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate: where the false-accept rate equals the false-reject rate, interpolated on the ROC."""
    far, tar, _ = roc(scores, labels)
    gap = far - (1.0 - tar)  # non-decreasing from -1 (accept nothing) to +1 (accept everything)
    i = int(np.searchsorted(gap, 0.0, side="left"))
    if gap[i] == 0.0:
        return float(far[i])
    t = -gap[i - 1] / (gap[i] - gap[i - 1])
    return float(far[i - 1] + t * (far[i] - far[i - 1]))


def allowed_false_accepts(impostors: int, far: float) -> int:
    """How many of `impostors` impostor pairs a false-accept rate of `far` lets through: floor(far * n)."""
    return int(np.floor(far * impostors + 1e-9))  # 1e-9: 0.01 * 500 must give 5, not 4.999...


def threshold_at_far(impostor_scores: np.ndarray, far: float) -> float:
    """The smallest threshold whose false-accept rate on the impostor scores is <= far.

    With n impostors at most k = floor(far * n) may be accepted, so the threshold sits just above the
    (k+1)-th highest impostor score (one float32 step). Ties there can make the achieved rate lower than far.
    k = 0 (far below 1/n) puts it just above the highest impostor: the estimate is at the data's resolution.
    """
    impostor = np.sort(np.asarray(impostor_scores, dtype=np.float64).ravel())[::-1]
    if not len(impostor):
        raise ValueError("need at least one impostor score")
    if not 0.0 <= far < 1.0:
        raise ValueError(f"far must lie in [0, 1), got {far}")
    return _above(impostor[allowed_false_accepts(len(impostor), far)])


def weighted_threshold_at_far(descending: np.ndarray, cumulative_weights: np.ndarray, far: float) -> float:
    """threshold_at_far for impostor scores sorted high to low, each counted as often as its integer weight
    says (a bootstrap resample); `cumulative_weights` is the weights' running sum in that order."""
    allowed = allowed_false_accepts(int(cumulative_weights[-1]), far)
    return _above(descending[np.searchsorted(cumulative_weights, allowed + 1)])


def tar_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> tuple[float, float]:
    """(true-accept rate, threshold) at the smallest threshold that keeps the false-accept rate <= far."""
    genuine, impostor = _split(scores, labels)
    threshold = threshold_at_far(impostor, far)
    return float(np.mean(genuine >= threshold)), threshold


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(threshold, accuracy) maximising accuracy over the given pairs.

    Candidates: the lowest score (accept all), midpoints between consecutive distinct scores, and just above
    the highest (reject all). Among equally accurate candidates the lowest threshold wins.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    order = np.argsort(scores, kind="stable")
    s, genuine = scores[order], labels[order]
    # splitting before index i accepts s[i:]: correct = genuine in s[i:] + impostors in s[:i]
    genuine_from = np.concatenate([np.cumsum(genuine[::-1])[::-1], [0]])
    impostor_before = np.concatenate([[0], np.cumsum(~genuine)])
    correct = genuine_from + impostor_before
    valid = np.ones(len(s) + 1, dtype=bool)
    valid[1:-1] = s[1:] > s[:-1]  # never split inside a run of tied scores
    best = int(np.flatnonzero(valid)[np.argmax(correct[valid])])
    if best == 0:
        threshold = float(s[0])
    elif best == len(s):
        threshold = _above(s[-1])
    else:
        threshold = max((s[best - 1] + s[best]) / 2.0, float(np.nextafter(s[best - 1], np.inf)))
    return threshold, float(correct[best] / len(s))


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> tuple[float, float, np.ndarray]:
    """LFW view-2 protocol: (mean accuracy, std over folds (ddof=0), the threshold used for each fold).

    For each fold id (sorted), the threshold maximising accuracy on all the other folds is applied to it.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    folds = np.asarray(folds).ravel()
    if not scores.shape == labels.shape == folds.shape:
        raise ValueError("scores, labels and folds must have the same length")
    fold_ids = np.unique(folds)
    if len(fold_ids) < 2:
        raise ValueError(f"k-fold accuracy needs at least 2 folds, got {len(fold_ids)}")
    accuracies, thresholds = [], []
    for fold in fold_ids:
        held_out = folds == fold
        threshold, _ = best_threshold(scores[~held_out], labels[~held_out])
        accuracies.append(np.mean((scores[held_out] >= threshold) == labels[held_out]))
        thresholds.append(threshold)
    return float(np.mean(accuracies)), float(np.std(accuracies)), np.asarray(thresholds)


# Identification ("who is this, if anyone?"): scores are probe x identity similarities, one column per enrolled
# identity, already reduced from templates by the caller (best or mean). Mated probes belong to an enrolled
# identity; non-mated probes (strangers) do not.


def ranks(scores: np.ndarray, probe_ids: np.ndarray, gallery_ids: np.ndarray) -> np.ndarray:
    """1-based rank of each probe's true identity among the gallery columns; 0 for non-mated probes.

    Ties count against the probe: rank = 1 + the number of other identities scoring at least as high.
    """
    scores = np.asarray(scores, dtype=np.float64)
    gallery_ids = np.asarray(gallery_ids)
    if scores.shape != (len(probe_ids), len(gallery_ids)):
        raise ValueError(f"scores {scores.shape} do not match {len(probe_ids)} probes x {len(gallery_ids)} identities")
    column = {identity: j for j, identity in enumerate(gallery_ids.tolist())}
    out = np.zeros(len(probe_ids), dtype=np.int64)
    for i, identity in enumerate(np.asarray(probe_ids).tolist()):
        j = column.get(identity)
        if j is not None:
            others = np.delete(scores[i], j)
            out[i] = 1 + int(np.sum(others >= scores[i, j]))
    return out


def cmc(probe_ranks: np.ndarray, max_rank: int) -> np.ndarray:
    """Cumulative match characteristic: share of mated probes (rank > 0) found within rank k, k = 1..max_rank."""
    mated = np.asarray(probe_ranks)[np.asarray(probe_ranks) > 0]
    if not len(mated):
        raise ValueError("no mated probe: every probe's identity is missing from the gallery")
    return np.array([np.mean(mated <= k) for k in range(1, max_rank + 1)])


def fnir_at_fpir(
    scores: np.ndarray, probe_ids: np.ndarray, gallery_ids: np.ndarray, fpir: float
) -> tuple[float, float]:
    """Open-set (FNIR, threshold) at the threshold where at most `fpir` of the non-mated probes have a top
    score at or above it. A mated probe counts as identified when its true identity ranks first (ties lose)
    and scores at or above the threshold."""
    scores = np.asarray(scores, dtype=np.float64)
    probe_ranks = ranks(scores, probe_ids, gallery_ids)
    mated, strangers = probe_ranks > 0, probe_ranks == 0
    if not mated.any() or not strangers.any():
        raise ValueError("FNIR at FPIR needs both mated probes and strangers")
    threshold = threshold_at_far(scores[strangers].max(axis=1), fpir)
    true_column = {identity: j for j, identity in enumerate(np.asarray(gallery_ids).tolist())}
    true_scores = np.array([scores[i, true_column[p]] for i, p in enumerate(np.asarray(probe_ids)) if mated[i]])
    identified = (probe_ranks[mated] == 1) & (true_scores >= threshold)
    return float(1.0 - identified.mean()), threshold
