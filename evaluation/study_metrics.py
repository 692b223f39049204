"""The study's metrics, pure functions: a walk's score from its frames, the decision, thresholds on strangers,
accuracy / TAR / FAR per system and k, two-stage gallery scores, and where a baseline catches up."""

from __future__ import annotations

from collections.abc import Sequence

import faiss
import numpy as np

from evaluation.results import StudyRow, SystemMetrics
from evaluation.study_config import TWO_STAGE
from gate.errors import FaceGateError
from gate.matching.rule import mean_template
from training import metrics


def walk_scores(frame_scores: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """(W, T, C) per-frame scores and (W, T) usable flags -> (W, C) mean over each walk's usable frames, NaN for a
    walk without any."""
    frame_scores = np.asarray(frame_scores, np.float64)
    usable = np.asarray(usable, bool)
    weights = usable[..., None].astype(np.float64)
    counts = weights.sum(axis=1)
    total = np.where(weights > 0, frame_scores, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


def decide(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W, C) walk scores -> (predicted employee (W,), decision score (W,)).

    The predicted employee is the top scorer; -1 where there is no face (a NaN row) or the top is shared (the gate
    cannot tell whom to let in), and then the decision score is -inf: such a walk is never accepted.
    """
    scores = np.asarray(scores, np.float64)
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ValueError(f"decide() wants (walks, employees) scores, got shape {scores.shape}")
    valid = ~np.isnan(scores).any(axis=1)
    filled = np.where(np.isnan(scores), -np.inf, scores)
    top = filled.max(axis=1)
    unique = (filled == top[:, None]).sum(axis=1) == 1
    ok = valid & unique
    predicted = np.where(ok, filled.argmax(axis=1), -1)
    return predicted, np.where(ok, top, -np.inf)


def threshold_at_far(stranger_scores: np.ndarray, target_far: float) -> float:
    """training.metrics.threshold_at_far on the strangers' walk-up scores (ties at the cut are not split, so fewer
    may be accepted), with a clear error when there are no strangers."""
    if len(stranger_scores) == 0:
        raise FaceGateError("no stranger walk-ups to set a threshold on: the false-accept rate cannot be calibrated")
    return metrics.threshold_at_far(stranger_scores, target_far)


def system_metrics(
    employee_scores: np.ndarray,
    employee_labels: np.ndarray,
    calibration_scores: np.ndarray,
    test_scores: np.ndarray,
    target_far: float,
) -> SystemMetrics:
    """Closed-set accuracy, threshold at the target FAR on calibration strangers, TAR and FAR on test strangers.

    accuracy: share of employees' walk-ups whose top employee is right (no threshold). tar: right and accepted.
    wrong_accept: an employee accepted as someone else. far: test strangers accepted as anyone.
    """
    labels = np.asarray(employee_labels)
    if len(labels) == 0:
        raise FaceGateError("no employee walk-ups to measure accuracy on")
    if len(test_scores) == 0:
        raise FaceGateError("no test stranger walk-ups: the false-accept rate cannot be measured")
    predicted, top = decide(employee_scores)
    _, calibration_top = decide(calibration_scores)
    _, test_top = decide(test_scores)
    threshold = threshold_at_far(calibration_top, target_far)
    correct = predicted == labels
    accepted = top >= threshold
    per_person = [float(np.mean(correct[labels == c])) for c in np.unique(labels)]
    return SystemMetrics(
        accuracy=float(np.mean(correct)),
        tar=float(np.mean(correct & accepted)),
        wrong_accept=float(np.mean(~correct & accepted)),
        far=float(np.mean(test_top >= threshold)),
        far_calibration=float(np.mean(calibration_top >= threshold)),
        threshold=threshold,
        no_decision=float(np.mean(predicted < 0)),
        worst_person_accuracy=min(per_person),
        employee_walks=int(len(labels)),
        calibration_walks=int(len(calibration_top)),
        test_stranger_walks=int(len(test_top)),
    )


def gallery_scores(templates: np.ndarray, queries: np.ndarray, match: str = "best") -> np.ndarray:
    """Cosine scores (N, E) of unit-length queries (N, D) against each employee's templates (E, k, D), searched
    with a FAISS inner-product index: the best template ("best") or the re-normalised mean template ("mean")."""
    employees, k, dim = templates.shape
    out = np.full((len(queries), employees), -np.inf, np.float32)
    if len(queries) == 0:
        return out
    queries = np.ascontiguousarray(queries, np.float32)
    if match == "mean":
        vectors = mean_template(templates)
        owners = np.arange(employees)
    else:
        vectors = templates.reshape(employees * k, dim)
        owners = np.repeat(np.arange(employees), k)
    index = faiss.IndexFlatIP(dim)
    index.add(np.ascontiguousarray(vectors, np.float32))
    sims, ids = index.search(queries, index.ntotal)
    rows = np.repeat(np.arange(len(queries)), ids.shape[1])
    np.maximum.at(out, (rows, owners[ids.ravel()]), sims.ravel())
    return out


def catch_up(rows: Sequence[StudyRow], system: str, reference: str = TWO_STAGE) -> int | None:
    """The smallest k at which `system` matches or beats the reference on both closed-set accuracy and TAR."""
    by_k = {(r.system, r.k): r for r in rows}
    for k in sorted({r.k for r in rows}):
        mine, ref = by_k.get((system, k)), by_k.get((reference, k))
        if mine and ref and mine.accuracy >= ref.accuracy and mine.tar >= ref.tar:
            return k
    return None
