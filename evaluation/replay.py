"""The gate's decisions replayed: what one real run recorded (every usable frame's top-1 match and every track's
end), fed again through the real `gate.decision.policy.Policy` for any N-of-M vote and threshold, and the transaction
rates, times and sweeps that follow. By construction the same decisions the running gate would have made."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from evaluation.results import (
    Curve,
    GridPoint,
    LatencyStats,
    LatencySummary,
    PolicySummary,
    Rate,
    Spread,
    Sweep,
    Timing,
)
from gate.config import CALIBRATED_FARS, DecisionSettings
from gate.decision.policy import Policy, Verdict, threshold_for
from gate.matching.search import Match
from gate.model.card import ModelCard

NO_FACE = "NO_USABLE_FACE"  # a walk none of whose tracks had a usable frame: failure to acquire


@dataclass(frozen=True)
class Observation:
    """One usable frame of one track as the policy saw it: the top-1 gallery match (None: empty gallery)."""

    track_id: int
    frame: int
    time: float
    match: Match | None


@dataclass(frozen=True)
class TrackEnd:
    """A track ended (timed out, or the video ended) during `frame`; where it was seen and how often usable."""

    track_id: int
    frame: int
    time: float
    first_frame: int
    last_frame: int
    usable_frames: int


Event = Observation | TrackEnd


@dataclass
class Recording:
    """What the real gate saw: the policy's input events in order, and each processed frame's compute time."""

    events: list[Event]
    fps: float
    frames: int
    latency_ms: dict[int, float]  # processed frame -> milliseconds of GateLoop.step on it
    faces: dict[int, int]  # processed frame -> faces detected in it
    live: dict[int, tuple[str, str | None]]  # track -> (verdict, employee id) decided by the running gate
    decided: list[int] = field(default_factory=list)  # the tracks of the run's access events, in recording order

    @property
    def tracks(self) -> dict[int, TrackEnd]:
        return {e.track_id: e for e in self.events if isinstance(e, TrackEnd)}


# --- replay and outcomes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackDecision:
    track_id: int
    verdict: str
    employee_id: str | None
    score: float | None
    frame: int  # the frame during which the decision was made


def replay(events: Sequence[Event], decision: DecisionSettings, threshold: float) -> dict[int, TrackDecision]:
    """Feed recorded events through a fresh real Policy; the policy's clock is each event's video time."""
    now = [0.0]
    policy = Policy(decision, threshold, lambda: now[0])
    decided: dict[int, TrackDecision] = {}
    for event in events:
        now[0] = event.time
        if isinstance(event, Observation):
            made = policy.observe(event.track_id, event.match)
        else:
            made = policy.end_track(event.track_id)
        if made is not None:
            decided[made.track_id] = TrackDecision(
                made.track_id, str(made.verdict), made.employee_id, made.score, event.frame
            )
    return decided


@dataclass(frozen=True)
class Truth:
    """Who walked when: role "employee" (enrolled, with their id), "stranger", or "refused" (enrolment refused)."""

    person: str
    role: str
    employee_id: str | None
    first_frame: int
    last_frame: int


@dataclass(frozen=True)
class WalkOutcome:
    """What the gate did for one walk: the first grant among its tracks, else its first decision, else no face."""

    person: str
    role: str
    verdict: str  # a Verdict, or NO_FACE when no track of the walk had a usable frame
    granted_as: str | None
    score: float | None
    tracks: int  # face tracks that started during the walk (the tracker may split a walk)
    usable_frames: int
    decision_frame: int | None
    frames_to_decision: int | None  # video frames from the walk's first visible frame to the decision, inclusive

    @property
    def granted(self) -> bool:
        return self.granted_as is not None


def walk_tracks(truths: Sequence[Truth], tracks: dict[int, TrackEnd]) -> tuple[list[list[int]], list[int]]:
    """The tracks starting during each walk (by frame range), and the stray ones starting outside every walk."""
    order = sorted(range(len(truths)), key=lambda i: truths[i].first_frame)
    starts = [truths[i].first_frame for i in order]
    per_walk: list[list[int]] = [[] for _ in truths]
    stray = []
    for track_id, track in sorted(tracks.items()):
        position = bisect.bisect_right(starts, track.first_frame) - 1  # the last walk starting at or before it
        walk = order[position] if position >= 0 else None
        if walk is not None and track.first_frame <= truths[walk].last_frame:
            per_walk[walk].append(track_id)
        else:
            stray.append(track_id)
    return per_walk, stray


def walk_outcomes(
    truths: Sequence[Truth], tracks: dict[int, TrackEnd], decisions: dict[int, TrackDecision]
) -> list[WalkOutcome]:
    per_walk, _ = walk_tracks(truths, tracks)
    outcomes = []
    for truth, track_ids in zip(truths, per_walk, strict=True):
        decided = sorted((decisions[i] for i in track_ids if i in decisions), key=lambda d: (d.frame, d.track_id))
        grants = [d for d in decided if d.verdict == Verdict.GRANTED]
        chosen = grants[0] if grants else (decided[0] if decided else None)
        outcomes.append(
            WalkOutcome(
                person=truth.person,
                role=truth.role,
                verdict=chosen.verdict if chosen else NO_FACE,
                granted_as=grants[0].employee_id if grants else None,
                score=chosen.score if chosen else None,
                tracks=len(track_ids),
                usable_frames=sum(tracks[i].usable_frames for i in track_ids),
                decision_frame=chosen.frame if chosen else None,
                frames_to_decision=chosen.frame - truth.first_frame + 1 if chosen else None,
            )
        )
    return outcomes


# --- metrics ------------------------------------------------------------------------------------------------------


def _spread(values: Sequence[float]) -> Spread:
    if not values:
        return Spread(n=0, median=None, p95=None)
    return Spread(n=len(values), median=float(np.median(values)), p95=float(np.percentile(values, 95)))


def summarize(
    truths: Sequence[Truth], outcomes: Sequence[WalkOutcome], fps: float, latency_ms: dict[int, float]
) -> PolicySummary:
    """Transaction-level rates (with counts) and time to decision for one policy point.

    Employees: accepted (granted as themselves), misidentified (granted as another: a false accept), rejected
    (the door stayed shut: FRR, including walks with no usable face). Strangers: accepted (FAR) or not.
    "ms" is video time from the walk's first visible frame to the end of the decided frame at `fps`, plus the
    measured processing time of that frame.
    """
    employees = [o for t, o in zip(truths, outcomes, strict=True) if t.role == "employee"]
    strangers = [o for t, o in zip(truths, outcomes, strict=True) if t.role == "stranger"]
    own = {t.person: t.employee_id for t in truths}
    accepted = [o for o in employees if o.granted and o.granted_as == own[o.person]]
    misidentified = [o for o in employees if o.granted and o.granted_as != own[o.person]]
    rejected = [o for o in employees if not o.granted]

    def timing(walks: Sequence[WalkOutcome]) -> Timing:
        frames = [o.frames_to_decision for o in walks if o.frames_to_decision is not None]
        video = [f / fps * 1000 for f in frames]
        total = [
            o.frames_to_decision / fps * 1000 + latency_ms.get(o.decision_frame, 0.0)
            for o in walks
            if o.frames_to_decision is not None and o.decision_frame is not None
        ]
        return Timing(frames=_spread(frames), video_ms=_spread(video), ms=_spread(total))

    def verdicts(walks: Sequence[WalkOutcome]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in walks:
            counts[o.verdict] = counts.get(o.verdict, 0) + 1
        return dict(sorted(counts.items()))

    strangers_in = sum(o.granted for o in strangers)
    return PolicySummary(
        far=Rate.counted(strangers_in, len(strangers)),
        frr=Rate.counted(len(rejected), len(employees)),
        tar=Rate.counted(len(accepted), len(employees)),
        misidentification=Rate.counted(len(misidentified), len(employees)),
        wrong_opens=Rate.counted(strangers_in + len(misidentified), len(strangers) + len(employees)),
        fta_employees=Rate.counted(sum(o.verdict == NO_FACE for o in employees), len(employees)),
        fta_strangers=Rate.counted(sum(o.verdict == NO_FACE for o in strangers), len(strangers)),
        to_grant=timing(accepted),
        to_denial_strangers=timing([o for o in strangers if not o.granted]),
        employee_verdicts=verdicts(employees),
        stranger_verdicts=verdicts(strangers),
        split_walks=sum(o.tracks > 1 for o in outcomes),
    )


def stray_grants(truths: Sequence[Truth], recording: Recording, decisions: dict[int, TrackDecision]) -> int:
    """Grants for tracks that started while nobody was walking (a face found in the empty scene)."""
    _, stray = walk_tracks(truths, recording.tracks)
    return sum(decisions[i].verdict == Verdict.GRANTED for i in stray if i in decisions)


def threshold_grid(card: ModelCard, decision: DecisionSettings) -> list[tuple[str, float]]:
    """The card's thresholds at FAR 1e-2, 1e-3, 1e-4 and the configured one, labelled, lowest first."""
    configured = threshold_for(decision, card)
    grid = [(f"FAR {key}", card.thresholds[key]) for key in CALIBRATED_FARS if key in card.thresholds]
    labelled = [(f"{label} (configured)" if value == configured else label, value) for label, value in grid]
    if all(value != configured for _, value in grid):
        labelled.append(("configured", configured))
    return sorted(labelled, key=lambda item: item[1])


def sweep(
    recording: Recording,
    truths: Sequence[Truth],
    decision: DecisionSettings,
    policies: Sequence[tuple[int, int]],
    thresholds: Sequence[tuple[str, float]],
) -> list[GridPoint]:
    """Replay the recording for every (votes_needed, window) x threshold; cooldown, the denial rule and the rest
    from `decision`.

    Besides `summarize`'s rates, each point counts the employees kept out although some usable frame of their
    walk named them at or above the threshold (`rejected_own_passed`): the policy decided before or without it.
    """
    own_best = best_own_scores(truths, recording)
    points = []
    for votes, window in policies:
        settings = decision.model_copy(update={"votes_needed": votes, "window": window})
        for label, threshold in thresholds:
            decided = replay(recording.events, settings, threshold)
            outcomes = walk_outcomes(truths, recording.tracks, decided)
            kept_out = [
                best is not None and best >= threshold
                for best, truth, outcome in zip(own_best, truths, outcomes, strict=True)
                if truth.role == "employee" and not outcome.granted
            ]
            summary = summarize(truths, outcomes, recording.fps, recording.latency_ms)
            point = GridPoint(
                votes_needed=votes,
                window=window,
                threshold=threshold,
                threshold_label=label,
                **dict(summary),
                stray_grants=stray_grants(truths, recording, decided),
                rejected_own_passed=Rate.counted(sum(kept_out), sum(t.role == "employee" for t in truths)),
                early_deny=decision.early_deny,
            )
            points.append(point)
    return points


def best_own_scores(truths: Sequence[Truth], recording: Recording) -> list[float | None]:
    """Per walk, the best score of a usable frame whose top-1 match is the walker's own id (None: never)."""
    per_walk, _ = walk_tracks(truths, recording.tracks)
    walk_of = {track_id: i for i, track_ids in enumerate(per_walk) for track_id in track_ids}
    best: list[float | None] = [None] * len(truths)
    for event in recording.events:
        i = walk_of.get(event.track_id)
        if i is None or not isinstance(event, Observation) or event.match is None:
            continue
        score, so_far = event.match.score, best[i]
        if event.match.employee_id == truths[i].employee_id and (so_far is None or score > so_far):
            best[i] = score
    return best


def dense_sweep(
    recording: Recording,
    truths: Sequence[Truth],
    decision: DecisionSettings,
    policies: Sequence[tuple[int, int]],
    thresholds: Sequence[float] | np.ndarray,
) -> Sweep:
    """FAR, FRR and misidentification rate on a fine threshold grid, per policy (for the plot)."""
    curves: dict[str, Curve] = {}
    for votes, window in policies:
        settings = decision.model_copy(update={"votes_needed": votes, "window": window})
        curve = Curve(far=[], frr=[], misidentification=[])
        for threshold in thresholds:
            outcomes = walk_outcomes(truths, recording.tracks, replay(recording.events, settings, float(threshold)))
            summary = summarize(truths, outcomes, recording.fps, recording.latency_ms)
            curve.far.append(summary.far.rate)
            curve.frr.append(summary.frr.rate)
            curve.misidentification.append(summary.misidentification.rate)
        curves[f"{votes}/{window}"] = curve
    return Sweep(thresholds=[float(t) for t in thresholds], curves=curves)


def latency_summary(recording: Recording) -> LatencySummary:
    """Per-frame processing time percentiles (ms): all processed frames, and those with a face in them."""

    def stats(values: list[float]) -> LatencyStats:
        if not values:
            return LatencyStats(frames=0)
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return LatencyStats(
            frames=len(values),
            p50=float(p50),
            p95=float(p95),
            p99=float(p99),
            mean=float(np.mean(values)),
            max=float(np.max(values)),
        )

    everything = list(recording.latency_ms.values())
    with_face = [ms for frame, ms in recording.latency_ms.items() if recording.faces.get(frame, 0) > 0]
    budget = 1000 / recording.fps
    return LatencySummary(
        all_frames=stats(everything),
        frames_with_face=stats(with_face),
        frame_budget_ms=budget,
        over_budget=Rate.counted(sum(ms > budget for ms in everything), len(everything)),
    )
