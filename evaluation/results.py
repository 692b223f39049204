"""What the evaluations return, typed: a renamed or missing field fails where the result is made, not minutes
later when a report reads it. Each `to_json()` gives the published JSON, whose keys never change."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


def field_values(result: object, leave_out: tuple[str, ...] = ()) -> dict:
    """A result's fields by name, in declaration order (the published key order), without copying them."""
    return {f.name: getattr(result, f.name) for f in fields(result) if f.name not in leave_out}  # type: ignore[arg-type]


@dataclass
class VerificationMetrics:
    """Verification of scored pairs: k-fold accuracy, AUC, EER, and TAR with its threshold at each reported FAR.
    `far_support[far]`: how many impostor pairs that FAR lets through at most (0: below the data's resolution)."""

    genuine_pairs: int
    accuracy: float
    accuracy_std: float
    auc: float
    eer: float
    tar_at_far: dict[str, float]
    fnmr_at_fmr: dict[str, float]
    thresholds_at_far: dict[str, float]
    impostor_pairs: int
    far_support: dict[str, int]


@dataclass
class ScoredPairs(VerificationMetrics):
    """The metrics with the scores and same-person labels they came from: what intervals resample."""

    scores: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)


@dataclass
class IdentificationResult:
    """Open-set identification as the gallery grows: per gallery size (as a string) rank-1/5, CMC and FNIR at
    each FPIR with its threshold and support, or {"skipped": why}."""

    match: str
    templates_per_person: int
    enrolled_people: int
    not_enrolled_no_face: int
    stranger_people: int
    stranger_photos: int
    gallery_sizes: dict[str, dict]

    def to_json(self) -> dict:
        return field_values(self)


@dataclass
class VerificationResult(ScoredPairs):
    """A model evaluated on pairs of photos: the metrics and their raw scores (not published), what the run
    covered, and, when computed, person-bootstrap intervals and identification."""

    pairs: int
    images: int
    failed_to_detect: int
    failure_to_acquire_rate: float
    pairs_failed: int
    model_id: str
    confidence_intervals: dict | None = None
    identification: IdentificationResult | None = None

    def to_json(self) -> dict:
        """Every field but the raw arrays, the optional parts only when present, in the published order."""
        out = field_values(self, leave_out=("scores", "labels"))
        if self.confidence_intervals is None:
            del out["confidence_intervals"]
        if self.identification is None:
            del out["identification"]
        else:
            out["identification"] = self.identification.to_json()
        return out


@dataclass
class GateReport:
    """`facegate evaluate-gate`'s run: the setup, who was enrolled, whether the replay reproduced the live gate,
    frame latency, the policy grid (per N/M, threshold and denial rule), the fine threshold sweep and every walk
    at the configured point."""

    setup: dict
    enrolment: list[dict]
    live_matches_replay: bool
    latency_ms: dict
    grid: list[dict]
    sweep: dict
    walks_at_configured: list[dict]

    def to_json(self) -> dict:
        return field_values(self)


@dataclass
class StudyResult:
    """`facegate study`'s run: its settings, the embedder, the people, the walk-ups, one row per system and k,
    where each baseline catches up, and the warning of a smoke run (None for a real one)."""

    config: dict
    model: dict
    people: dict
    walks: dict
    rows: list[dict]
    catch_up: dict
    warning: str | None

    def to_json(self) -> dict:
        return field_values(self)
