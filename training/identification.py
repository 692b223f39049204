"""Identification metrics, the gate's real question ("who is this, if anyone?"), as pure numpy functions.

Scores are probe x identity similarities (one column per enrolled identity, already reduced from templates by
the caller: best or mean). Mated probes belong to an enrolled identity; non-mated probes (strangers) do not.
"""

from __future__ import annotations

import numpy as np

from training.metrics import threshold_at_far


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
