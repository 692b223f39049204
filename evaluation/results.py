"""What the evaluations return, typed to their leaves: a renamed or missing field fails where the result is made, not
minutes later when a report reads it. Each `to_json()` gives the published JSON, whose keys never change; the
records (the gate's, the study's, the liveness test's, `facegate evaluate`'s intervals and identification) are read
back from it with `from_json()`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evaluation.head_motion import ClipSpec
from evaluation.intervals import rate
from evaluation.study_config import StudyConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def field_values(result: DataclassInstance, leave_out: tuple[str, ...] = ()) -> dict:
    """A result's fields by name, in declaration order (the published key order), without copying them."""
    return {f.name: getattr(result, f.name) for f in fields(result) if f.name not in leave_out}


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
class VerificationResult(ScoredPairs):
    """A model evaluated on pairs of photos: the metrics and their raw scores (not published), what the run
    covered, and, when computed, person-bootstrap intervals and identification."""

    pairs: int
    images: int
    failed_to_detect: int
    failure_to_acquire_rate: float
    pairs_failed: int
    model_id: str
    confidence_intervals: BootstrapIntervals | None = None
    identification: IdentificationResult | None = None

    def to_json(self) -> dict:
        """Every field but the raw arrays, the optional parts (the last two) only when present, in the published
        order."""
        optional = {"confidence_intervals": self.confidence_intervals, "identification": self.identification}
        out = field_values(self, leave_out=("scores", "labels", *optional))
        return out | {name: part.to_json() for name, part in optional.items() if part is not None}


class Record(BaseModel):
    """A part of a published result: named, typed fields in the published key order; a key it does not know is
    refused, so a renamed field fails where the result is made."""

    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """The published JSON's dict (json.dumps writes it)."""
        return self.model_dump()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The result back from its published JSON (json.loads of it)."""
        return cls.model_validate(data)


def _unmeasured(value: object) -> bool:
    return value is None


def _optional() -> Any:
    """A field that may be missing, left out of the JSON when it is (not written as null)."""
    return Field(None, exclude_if=_unmeasured)


# --- `facegate evaluate`'s intervals and identification (results.json) --------------------------------------------


class BootstrapIntervals(Record):
    """Person-bootstrap intervals (evaluation/intervals.py): each metric's [low, high] at `confidence` (keyed
    accuracy, auc, eer, tar_at_far_<far>), the resamples used and those skipped (no genuine or impostor pair)."""

    intervals: dict[str, list[float]]
    confidence: float
    resamples: int
    skipped: int


class GallerySkipped(Record):
    """A gallery size that was not measured, and why."""

    skipped: str


class GalleryEntry(Record):
    """One gallery size: its people, the probes searched (mated and strangers, those without a face), rank-1 and
    rank-5, the CMC up to rank 20, and at each FPIR the FNIR, its threshold and how many strangers it lets match
    someone at most (0: below the data's resolution)."""

    identities: int
    mated_probes: int
    strangers: int
    probes_without_face: int
    strangers_without_face: int
    rank1: float
    rank5: float
    cmc: list[float]
    fnir_at_fpir: dict[str, float]
    thresholds_at_fpir: dict[str, float]
    fpir_support: dict[str, int]

    def supported_fpirs(self) -> list[str]:
        """The FPIRs the strangers can resolve (at least one may match someone), in the reported order."""
        return [fpir for fpir, support in self.fpir_support.items() if support]


class IdentificationResult(Record):
    """Open-set identification as the gallery grows: how people were matched and enrolled, the strangers, and per
    gallery size (as a string) its measures or why it was skipped."""

    match: str
    templates_per_person: int
    enrolled_people: int
    not_enrolled_no_face: int
    stranger_people: int
    stranger_photos: int
    gallery_sizes: dict[str, GalleryEntry | GallerySkipped]


# --- the gate's walk-up evaluation (`facegate evaluate-gate`, gate.json) --------------------------------------------


class Rate(Record):
    """A count out of a total, its rate (None without a total) and Wilson's 95 % interval."""

    count: int
    of: int
    rate: float | None
    ci95: list[float]

    @classmethod
    def counted(cls, count: int, total: int) -> Rate:
        return cls(**rate(count, total))


class Spread(Record):
    """How many values, their median and 95th percentile (None when there are none)."""

    n: int
    median: float | None
    p95: float | None


class Timing(Record):
    """Time to a decision: video frames from the walk's first visible frame, that as video ms at the camera's frame
    rate, and those ms plus the measured processing time of the deciding frame."""

    frames: Spread
    video_ms: Spread
    ms: Spread


class PolicySummary(Record):
    """One policy point's transaction rates: strangers let in (far), employees kept out (frr), let in as
    themselves (tar) or as another (misidentification), all wrong opens, no usable face (fta), times to a
    grant and to a stranger's denial, verdict counts and walks split over several tracks."""

    far: Rate
    frr: Rate
    tar: Rate
    misidentification: Rate
    wrong_opens: Rate
    fta_employees: Rate
    fta_strangers: Rate
    to_grant: Timing
    to_denial_strangers: Timing
    employee_verdicts: dict[str, int]
    stranger_verdicts: dict[str, int]
    split_walks: int


class PolicyPlace(Record):
    """Where on the grid a point is: the N-of-M vote and the threshold with its label."""

    votes_needed: int
    window: int
    threshold: float
    threshold_label: str


class GridPoint(PolicySummary, PolicyPlace):
    """A grid point: its place, its summary, grants to tracks outside every walk, employees kept out although a
    usable frame named them at or above the threshold, and the denial rule it was replayed with."""

    stray_grants: int
    rejected_own_passed: Rate
    early_deny: bool


class Curve(Record):
    """One N/M policy's rates along the fine threshold grid (None: nobody to rate)."""

    far: list[float | None]
    frr: list[float | None]
    misidentification: list[float | None]


class Sweep(Record):
    """The fine threshold grid and each N/M policy's curves on it (keyed "N/M")."""

    thresholds: list[float]
    curves: dict[str, Curve]


class LatencyStats(Record):
    """Per-frame processing times (ms) of some frames: how many, and when there are any, their percentiles."""

    frames: int
    p50: float | None = _optional()
    p95: float | None = _optional()
    p99: float | None = _optional()
    mean: float | None = _optional()
    max: float | None = _optional()


class LatencySummary(Record):
    """Processing time of every processed frame and of those with a face; the frame budget and who went over."""

    all_frames: LatencyStats
    frames_with_face: LatencyStats
    frame_budget_ms: float
    over_budget: Rate


class ConfiguredPolicy(Record):
    """The policy the gate was configured with."""

    votes_needed: int
    window: int
    early_deny: bool
    threshold: float
    target_far: str


class GateSetup(Record):
    """What was walked and how the camera and the gate were set."""

    model_id: str
    employees: int
    strangers: int
    seed: int
    people_file: str
    fps: float
    walk_s: float
    gap_s: float
    frame_size: list[int]
    min_face_px: int
    cooldown_s: float
    track_timeout_s: float
    configured: ConfiguredPolicy
    thresholds: dict[str, float]  # label -> the card's threshold
    policies: list[str]  # "N/M"
    frames: int
    tracks: int
    seconds: float


class EnrolledEmployee(Record):
    """An employee's enrolment: "enrolled" or "refused: <why>", and how many photos were added."""

    person: str
    employee_id: str
    status: str
    photos_added: int


class ConfiguredWalk(Record):
    """One walk at the configured point: who walked when, what the gate did, and per-walk diagnostics."""

    person: str
    role: str  # "employee", "stranger", or "refused" (enrolment refused)
    employee_id: str | None
    first_frame: int
    last_frame: int
    verdict: str
    granted_as: str | None
    score: float | None
    tracks: int
    usable_frames: int
    decision_frame: int | None
    frames_to_decision: int | None
    top1_own_frames: int
    best_top1_score: float | None


class GateReport(Record):
    """`facegate evaluate-gate`'s run: the setup, who was enrolled, whether the replay reproduced the live gate,
    frame latency, the policy grid (per N/M, threshold and denial rule), the fine threshold sweep and every walk
    at the configured point."""

    setup: GateSetup
    enrolment: list[EnrolledEmployee]
    live_matches_replay: bool
    latency_ms: LatencySummary
    grid: list[GridPoint]
    sweep: Sweep
    walks_at_configured: list[ConfiguredWalk]


# --- the two-stage versus end-to-end study (`facegate study`, study.json) ------------------------------------------


class StudyModel(Record):
    """The embedder the study's gate ran: its card, id, architecture, held-out people and the card's results."""

    card: str
    model_id: str
    architecture: str
    held_out_pins: int
    results: dict[str, Any]
    unseen: list[str] | None = _optional()  # datasets none of whose people the card says its training saw


class StudyPeople(Record):
    """The study's people by role (Pins or LFW names, as the study's `people` setting says)."""

    employees: list[str]
    calibration: list[str]  # strangers whose walk-ups set the thresholds
    test: list[str]  # strangers whose walk-ups measure the false-accept rate
    seen: list[str]  # study people the embedder was trained on (empty unless --allow-seen)


class StudyWalks(Record):
    """How many walk-ups of each group, their frames, and the frame sizes."""

    employee: int
    calibration: int
    test: int
    frames_per_walk: int
    frames_without_usable_face: int
    frames: int
    frame_size: list[int]  # the end-to-end classifier's input (width, height)
    camera: list[int]  # the rendered camera's (width, height)


class SystemMetrics(Record):
    """One system at one k: closed-set accuracy, TAR (right and accepted), employees accepted as another, FAR on
    test and on calibration strangers at the threshold set on the latter, walks with no decision, the worst
    employee's accuracy, and how many walk-ups each figure rests on."""

    accuracy: float
    tar: float
    wrong_accept: float
    far: float
    far_calibration: float
    threshold: float
    no_decision: float
    worst_person_accuracy: float
    employee_walks: int
    calibration_walks: int
    test_stranger_walks: int


class SystemPlace(Record):
    system: str
    k: int


class StudyRow(SystemMetrics, SystemPlace):
    """A row of the study's table: the system and k, its metrics, what producing its scores cost (seconds: the
    classifier's whole training, or enrolling one person at the gate), and how (each system's own details)."""

    seconds: float
    enrol_runs: list[float] | None = _optional()  # two-stage: seconds of each timed enrolment
    samples: int | None = _optional()  # classifiers: training images seen
    pool: int | None = _optional()  # classifiers: training images rendered or cropped
    input: list[int] | None = _optional()  # classifiers: input height and width
    render_seconds: float | None = _optional()
    threads: int | None = _optional()
    cached: bool | None = _optional()  # classifiers: the result came back from the study's cache


class StudyResult(Record):
    """`facegate study`'s run: its settings, the embedder, the people, the walk-ups, one row per system and k,
    where each baseline catches up (the smallest k, None: never), and the warning of a smoke run (None for a real
    one)."""

    config: StudyConfig
    model: StudyModel
    people: StudyPeople
    walks: StudyWalks
    rows: list[StudyRow]
    catch_up: dict[str, int | None]
    warning: str | None


# --- the liveness test per attack species (`facegate evaluate-liveness`, liveness.json) ----------------------------


class LivenessRunParams(Record):
    """The liveness test's settings the run used (LivenessParams without its threshold and method: the run
    chooses the one and compares the other)."""

    min_frames: int
    baseline: int
    max_pairs: int
    patch_px: int
    min_eye_px: float
    max_tracks: int


class LivenessSetup(Record):
    """What was measured: the people of each split, the seed, the species and methods, the clips and the test's
    settings; the command line and the detector's smallest face when the command wrote it."""

    train_people: int
    test_people: int
    seed: int
    species: list[str]
    methods: list[str]
    clip: ClipSpec
    params: LivenessRunParams
    command: str | None = _optional()
    detector_min_face_px: int | None = _optional()


class SpeciesName(Record):
    species: str


class SpeciesRate(Rate, SpeciesName):
    """An attack species' APCER, the species named first."""


class ErrorRates(Record):
    """At one threshold: each attack species' APCER (its clips scored live), the worst species' (ties: the first)
    and BPCER (bona fide clips scored not live)."""

    apcer: dict[str, Rate]
    apcer_worst: SpeciesRate
    bpcer: Rate


class SplitRates(ErrorRates):
    """The error rates on one split's clips, and how many of its clips got no verdict."""

    no_verdict: int


class LivenessPoint(Record):
    """A threshold (chosen on train) applied to the train and the test people."""

    train: SplitRates
    test: SplitRates


class SwingBand(Record):
    """Test BPCER of the walk-ups whose head turned within [low, high) degrees (high None: no bound)."""

    swing_deg: list[float | None]
    bpcer: Rate


class ScoreSpread(Record):
    """How many scores, and when there are any, their extremes and quantiles (rounded to 5 decimals)."""

    n: int
    min: float | None = _optional()
    p05: float | None = _optional()
    p25: float | None = _optional()
    median: float | None = _optional()
    p75: float | None = _optional()
    p95: float | None = _optional()
    max: float | None = _optional()


class SplitSpreads(Record):
    """Per split, each species' score spread."""

    train: dict[str, ScoreSpread]
    test: dict[str, ScoreSpread]


class MethodResult(Record):
    """One method: its thresholds (name -> value), the error rates at each, test BPCER by head-turn band at each,
    and the score spreads per split and species."""

    thresholds: dict[str, float]
    points: dict[str, LivenessPoint]
    test_bpcer_by_swing: dict[str, list[SwingBand]]
    distributions: SplitSpreads


@dataclass(frozen=True)
class ClipScore:
    """One clip scored by one method: whose photo, which split and species, the walker track's score (None: no
    verdict, too few usable frames), the frames fed to that track and the clip's swing amplitude in degrees (the
    picture's tilt or the head's turn)."""

    person: str
    split: str
    kind: str
    method: str
    score: float | None
    frames: int
    swing_deg: float


class LivenessResult(Record):
    """`facegate evaluate-liveness`'s run: the setup, each method's thresholds and rates, and every clip's score."""

    setup: LivenessSetup
    methods: dict[str, MethodResult]
    clips: list[ClipScore]
