"""The gate as a whole system: walk-ups of enrolled people and strangers through the real gate, then the decision
policy replayed for a grid of N-of-M votes and thresholds.

The networks run once: the real GateLoop (MTCNN, aligner, quality gate, embedder, FAISS gallery, policy, events)
watches a turnstile video while each frame's processing is timed and every usable frame's top-1 gallery match is
recorded with its track and time. The recorded sequence of observations and track ends is then fed again through
the real `gate.policy.Policy` for each (votes_needed, window, threshold): cheap, and by construction the same
decisions the running gate would have made (checked against the live run for the configured point).

People are LFW peopleDevTest people only (never trained on by the shipped model): employees have 2+ photos, are
enrolled from all their photos but one (up to MAX_ENROL_PHOTOS) and walk with the one left out; strangers are
other DevTest people, never enrolled, walking with one of their photos.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from enrollment.people import add_person
from evaluation.intervals import rate
from evaluation.results import GateReport
from evaluation.turnstile import WALKUP_MIN_FACE_PX, TurnstileSpec, Walk, render_turnstile
from gate.actuators import LogActuator
from gate.config import DatabaseSettings, DecisionSettings, Settings
from gate.daemon import GateLoop, TrackReport
from gate.embedder import Embedder
from gate.errors import FaceGateError
from gate.gallery import Match
from gate.imageio import image_files, load_image
from gate.model_card import CALIBRATED_FARS, ModelCard
from gate.policy import Policy, Verdict, threshold_for
from gate.runtime import Runtime
from gate.sources import VideoFileSource
from training.datasets import read_people

log = logging.getLogger(__name__)

MAX_ENROL_PHOTOS = 4  # as the demo: an employee is enrolled from up to 4 photos, never the one that walks
DEFAULT_POLICIES: tuple[tuple[int, int], ...] = ((1, 1), (2, 3), (3, 5), (4, 7), (5, 10))
FAR_KEYS = CALIBRATED_FARS  # the card's calibrated thresholds looked at
FRAME_SIZE = (480, 360)  # the demo's frames
WORK_FILES = ("gate.db", "gallery.faiss", "gallery.faiss.json", "turnstile.mp4")
NO_FACE = "NO_USABLE_FACE"  # a walk none of whose tracks had a usable frame: failure to acquire

Progress = Callable[[str, int], Any]  # (description, total) -> a bar with update(n) and close(), e.g. tqdm


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _silent(_description: str, _total: int) -> _Silent:
    return _Silent()


# --- who walks ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Walker:
    """One person walking up to the gate; employees also have the photos they are enrolled from."""

    person: str
    role: str  # "employee" or "stranger"
    walk_photo: Path
    enrol_photos: tuple[Path, ...] = ()


def pick_walkers(lfw_dir: Path, people_file: Path, employees: int, strangers: int, seed: int = 0) -> list[Walker]:
    """`employees` DevTest people with 2+ photos and `strangers` other DevTest people, in a seeded walking order
    that interleaves the two."""
    if employees < 1 or strangers < 1:
        raise FaceGateError(f"need at least 1 employee and 1 stranger (got {employees} and {strangers})")
    if not lfw_dir.is_dir():
        raise FaceGateError(f"LFW folder not found: {lfw_dir} (set $FACEGATE_DATA or give --data)")
    names = sorted(read_people(people_file))
    photos = {name: image_files(lfw_dir / name) for name in names if (lfw_dir / name).is_dir()}
    photos = {name: found for name, found in photos.items() if found}
    eligible = [name for name in photos if len(photos[name]) >= 2]
    if len(eligible) < employees:
        raise FaceGateError(f"{people_file.name}: {len(eligible)} people with 2+ photos, {employees} employees asked")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(eligible, size=employees, replace=False).tolist())
    others = [name for name in photos if name not in set(chosen)]
    if len(others) < strangers:
        raise FaceGateError(f"{people_file.name}: {len(others)} people left for strangers, {strangers} asked")
    walkers = []
    for name in chosen:
        walking = int(rng.integers(len(photos[name])))
        rest = [p for i, p in enumerate(photos[name]) if i != walking]
        walkers.append(Walker(name, "employee", photos[name][walking], tuple(rest[:MAX_ENROL_PHOTOS])))
    for name in sorted(rng.choice(others, size=strangers, replace=False).tolist()):
        walkers.append(Walker(name, "stranger", photos[name][int(rng.integers(len(photos[name])))]))
    return [walkers[i] for i in rng.permutation(len(walkers))]


@dataclass(frozen=True)
class Enrolment:
    person: str
    employee_id: str
    status: str  # "enrolled" or "refused: <why>"
    photos_added: int


def enrol_employees(walkers: Sequence[Walker], runtime: Runtime, progress: Progress = _silent) -> dict[str, Enrolment]:
    """Enrol every employee with the real `add_person`; a refusal is recorded, not raised."""
    employees = [w for w in walkers if w.role == "employee"]
    result: dict[str, Enrolment] = {}
    bar = progress("enrolling", len(employees))
    for index, walker in enumerate(sorted(employees, key=lambda w: w.person)):
        employee_id = f"E{index + 1:03d}"
        try:
            done = add_person(runtime, employee_id, walker.person.replace("_", " "), list(walker.enrol_photos))
            result[walker.person] = Enrolment(walker.person, employee_id, "enrolled", done.added)
        except FaceGateError as error:  # no usable photo, or taken for someone already enrolled
            log.warning("%s not enrolled: %s", walker.person, error)
            result[walker.person] = Enrolment(walker.person, employee_id, f"refused: {error}", 0)
        bar.update(1)
    bar.close()
    return result


def walkup_spec(settings: Settings, fps: float, walk_s: float, seed: int) -> TurnstileSpec:
    """The walk-up camera: FRAME_SIZE at `fps`, walks of `walk_s` seconds, gaps long enough to end each track."""
    gap_s = settings.decision.track_timeout_s + 0.5
    return TurnstileSpec(width=FRAME_SIZE[0], height=FRAME_SIZE[1], fps=fps, walk_s=walk_s, gap_s=gap_s, seed=seed)


def render_walkers(
    walkers: Sequence[Walker], path: Path, spec: TurnstileSpec, progress: Progress = _silent
) -> tuple[Path, list[Walk]]:
    """The turnstile video of everyone walking up with their walk photo, in order."""
    bar = progress("rendering", len(walkers))
    photos = []
    for walker in walkers:
        photos.append((walker.person, load_image(walker.walk_photo)))
        bar.update(1)
    bar.close()
    return render_turnstile(photos, path, spec)


# --- one real run, recorded -------------------------------------------------------------------------------------


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

    @property
    def tracks(self) -> dict[int, TrackEnd]:
        return {e.track_id: e for e in self.events if isinstance(e, TrackEnd)}


class _Recorder:
    """A GateObserver writing down, in order, what the real GateLoop hands its policy."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def observed(self, track_id: int, frame: int, time: float, match: Match | None) -> None:
        self.events.append(Observation(track_id, frame, time, match))

    def track_ended(self, report: TrackReport, frame: int, time: float) -> None:
        self.events.append(
            TrackEnd(report.track_id, frame, time, report.first_frame, report.last_frame, report.usable_frames)
        )


def record_gate(runtime: Runtime, video: Path, progress: Progress = _silent, total_frames: int = 0) -> Recording:
    """Run the real gate over the video once, timing every frame's processing and recording the policy's input."""
    settings = runtime.settings
    source = VideoFileSource(video)
    recorder = _Recorder()
    loop = GateLoop(runtime, LogActuator(), observer=recorder)
    latency: dict[int, float] = {}
    faces: dict[int, int] = {}
    bar = progress("gate", total_frames)
    try:
        for frame in source.frames():
            start = time.perf_counter()
            loop.step(frame)
            elapsed = (time.perf_counter() - start) * 1000
            if frame.index % settings.camera.process_every == 0:
                latency[frame.index] = elapsed
                faces[frame.index] = len(loop.overlays)
            bar.update(1)
    finally:
        source.close()
        bar.close()
    loop.finish()
    live = {
        r.track_id: (str(r.decision.verdict), r.decision.employee_id)
        for r in loop.reports.values()
        if r.decision is not None
    }
    return Recording(recorder.events, source.fps, loop.frames, latency, faces, live)


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


def _spread(values: Sequence[float]) -> dict:
    if not values:
        return {"n": 0, "median": None, "p95": None}
    return {"n": len(values), "median": float(np.median(values)), "p95": float(np.percentile(values, 95))}


def summarize(
    truths: Sequence[Truth], outcomes: Sequence[WalkOutcome], fps: float, latency_ms: dict[int, float]
) -> dict:
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

    def timing(walks: Sequence[WalkOutcome]) -> dict:
        frames = [o.frames_to_decision for o in walks if o.frames_to_decision is not None]
        video = [f / fps * 1000 for f in frames]
        total = [
            o.frames_to_decision / fps * 1000 + latency_ms.get(o.decision_frame, 0.0)
            for o in walks
            if o.frames_to_decision is not None and o.decision_frame is not None
        ]
        return {"frames": _spread(frames), "video_ms": _spread(video), "ms": _spread(total)}

    def verdicts(walks: Sequence[WalkOutcome]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in walks:
            counts[o.verdict] = counts.get(o.verdict, 0) + 1
        return dict(sorted(counts.items()))

    return {
        "far": rate(sum(o.granted for o in strangers), len(strangers)),
        "frr": rate(len(rejected), len(employees)),
        "tar": rate(len(accepted), len(employees)),
        "misidentification": rate(len(misidentified), len(employees)),
        "wrong_opens": rate(sum(o.granted for o in strangers) + len(misidentified), len(strangers) + len(employees)),
        "fta_employees": rate(sum(o.verdict == NO_FACE for o in employees), len(employees)),
        "fta_strangers": rate(sum(o.verdict == NO_FACE for o in strangers), len(strangers)),
        "to_grant": timing(accepted),
        "to_denial_strangers": timing([o for o in strangers if not o.granted]),
        "employee_verdicts": verdicts(employees),
        "stranger_verdicts": verdicts(strangers),
        "split_walks": sum(o.tracks > 1 for o in outcomes),
    }


def stray_grants(truths: Sequence[Truth], recording: Recording, decisions: dict[int, TrackDecision]) -> int:
    """Grants for tracks that started while nobody was walking (a face found in the empty scene)."""
    _, stray = walk_tracks(truths, recording.tracks)
    return sum(decisions[i].verdict == Verdict.GRANTED for i in stray if i in decisions)


def threshold_grid(card: ModelCard, decision: DecisionSettings) -> list[tuple[str, float]]:
    """The card's thresholds at FAR 1e-2, 1e-3, 1e-4 and the configured one, labelled, lowest first."""
    configured = threshold_for(decision, card)
    grid = [(f"FAR {key}", card.thresholds[key]) for key in FAR_KEYS if key in card.thresholds]
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
) -> list[dict]:
    """Replay the recording for every (votes_needed, window) x threshold; cooldown and the rest from `decision`.

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
            point = {"votes_needed": votes, "window": window, "threshold": threshold, "threshold_label": label}
            point |= summarize(truths, outcomes, recording.fps, recording.latency_ms)
            point["stray_grants"] = stray_grants(truths, recording, decided)
            kept_out = [
                own_best[i] is not None and own_best[i] >= threshold
                for i, (truth, outcome) in enumerate(zip(truths, outcomes, strict=True))
                if truth.role == "employee" and not outcome.granted
            ]
            point["rejected_own_passed"] = rate(sum(kept_out), sum(t.role == "employee" for t in truths))
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
        if event.match.employee_id == truths[i].employee_id and (best[i] is None or event.match.score > best[i]):
            best[i] = event.match.score
    return best


def dense_sweep(
    recording: Recording,
    truths: Sequence[Truth],
    decision: DecisionSettings,
    policies: Sequence[tuple[int, int]],
    thresholds: Sequence[float],
) -> dict:
    """FAR, FRR and misidentification rate on a fine threshold grid, per policy (for the plot)."""
    curves: dict[str, dict[str, list[float | None]]] = {}
    for votes, window in policies:
        settings = decision.model_copy(update={"votes_needed": votes, "window": window})
        curve: dict[str, list[float | None]] = {"far": [], "frr": [], "misidentification": []}
        for threshold in thresholds:
            outcomes = walk_outcomes(truths, recording.tracks, replay(recording.events, settings, float(threshold)))
            summary = summarize(truths, outcomes, recording.fps, recording.latency_ms)
            for key in curve:
                curve[key].append(summary[key]["rate"])
        curves[f"{votes}/{window}"] = curve
    return {"thresholds": [float(t) for t in thresholds], "curves": curves}


def latency_summary(recording: Recording) -> dict:
    """Per-frame processing time percentiles (ms): all processed frames, and those with a face in them."""

    def stats(values: list[float]) -> dict:
        if not values:
            return {"frames": 0}
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return {
            "frames": len(values),
            "p50": float(p50),
            "p95": float(p95),
            "p99": float(p99),
            "mean": float(np.mean(values)),
            "max": float(np.max(values)),
        }

    everything = list(recording.latency_ms.values())
    with_face = [ms for frame, ms in recording.latency_ms.items() if recording.faces.get(frame, 0) > 0]
    budget = 1000 / recording.fps
    return {
        "all_frames": stats(everything),
        "frames_with_face": stats(with_face),
        "frame_budget_ms": budget,
        "over_budget": rate(sum(ms > budget for ms in everything), len(everything)),
    }


# --- the whole evaluation -----------------------------------------------------------------------------------------


def walkup_settings(settings: Settings, out: Path, database_file: str = "gate.db") -> Settings:
    """The user's settings with a fresh database and gallery in `out`, and no search for faces too small to pass the
    quality gate (WALKUP_MIN_FACE_PX)."""
    gallery = settings.gallery.model_copy(update={"index_path": str((out / "gallery.faiss").resolve())})
    database = DatabaseSettings(url=f"sqlite:///{(out / database_file).resolve()}")
    detector = settings.detector.model_copy(
        update={"min_face_px": max(settings.detector.min_face_px, WALKUP_MIN_FACE_PX)}
    )
    return settings.model_copy(update={"gallery": gallery, "database": database, "detector": detector})


def check_policies(policies: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    if not policies:
        raise FaceGateError("no N/M policy to evaluate")
    for votes, window in policies:
        if not 1 <= votes <= window <= 100:
            raise FaceGateError(f"policy {votes}/{window}: need 1 <= N <= M <= 100 (N agreeing of the last M frames)")
    return list(dict.fromkeys(policies))


@dataclass(frozen=True)
class WalkupRun:
    """What one evaluate-gate run walks: who (drawn from `people_file`'s people in `lfw_dir`), and the camera."""

    lfw_dir: Path
    people_file: Path
    employees: int
    strangers: int
    seed: int = 0
    fps: float = 12.0
    walk_s: float = 2.5
    policies: Sequence[tuple[int, int]] = DEFAULT_POLICIES

    def checked(self) -> WalkupRun:
        """This run with its policies deduplicated; one-line error on a bad policy, frame rate or walk time."""
        if not 1 <= self.fps <= 120 or not 0.5 <= self.walk_s <= 30:
            raise FaceGateError(
                f"fps must be in [1, 120] and walk seconds in [0.5, 30] (got {self.fps} and {self.walk_s})"
            )
        return dataclasses.replace(self, policies=check_policies(self.policies))


@dataclass
class _Walked:
    """One recorded run: who was enrolled, the walks in the video, and what the gate saw."""

    walkers: list[Walker]
    enrolled: dict[str, Enrolment]
    spec: TurnstileSpec
    walks: list[Walk]
    recording: Recording


def evaluate_gate(
    settings: Settings, embedder: Embedder, run: WalkupRun, out: Path, progress: Progress = _silent
) -> dict:
    """Pick, enrol, render, run the real gate once, replay the policy grid; the JSON-able report."""
    run = run.checked()
    started = time.perf_counter()
    walked = _walk_up(settings, embedder, run, out, progress)
    return _gate_report(walkup_settings(settings, out), embedder, run, walked, time.perf_counter() - started)


def _walk_up(settings: Settings, embedder: Embedder, run: WalkupRun, out: Path, progress: Progress) -> _Walked:
    """Enrol the employees into a fresh database in `out`, render everyone's walk-up, run the real gate once."""
    walkers = pick_walkers(run.lfw_dir, run.people_file, run.employees, run.strangers, run.seed)
    out.mkdir(parents=True, exist_ok=True)
    for name in WORK_FILES:  # a fresh database and index every run
        (out / name).unlink(missing_ok=True)
    runtime = Runtime.open(walkup_settings(settings, out), embedder)
    try:
        enrolled = enrol_employees(walkers, runtime, progress)
        spec = walkup_spec(runtime.settings, run.fps, run.walk_s, run.seed)
        video, walks = render_walkers(walkers, out / "turnstile.mp4", spec, progress)
        total_frames = walks[-1].last_frame + 1 + round(spec.gap_s * spec.fps) if walks else 0
        recording = record_gate(runtime, video, progress, total_frames)
    finally:
        runtime.close()
    return _Walked(walkers, enrolled, spec, walks, recording)


def _gate_report(settings: Settings, embedder: Embedder, run: WalkupRun, walked: _Walked, seconds: float) -> GateReport:
    """Replay the recorded run over the policy grid and the fine threshold sweep; the JSON-able report."""
    recording, decision = walked.recording, settings.decision
    configured = threshold_for(decision, embedder.card)
    truths = truths_for(walked.walkers, walked.walks, walked.enrolled)
    thresholds = threshold_grid(embedder.card, decision)
    grid = [  # the configured early-deny rule first, then the other one
        point | {"early_deny": early}
        for early in (decision.early_deny, not decision.early_deny)
        for point in sweep(
            recording, truths, decision.model_copy(update={"early_deny": early}), run.policies, thresholds
        )
    ]
    values = [value for _, value in thresholds]
    span = max(values) - min(values) or 0.1  # the card's thresholds, one span beyond each end, whatever the scale
    fine = np.round(np.linspace(min(values) - span, max(values) + span, 61), 4)
    configured_decided = replay(recording.events, decision, configured)
    configured_walks = walk_outcomes(truths, recording.tracks, configured_decided)
    return GateReport(
        setup=_setup(settings, embedder, run, walked, configured) | {"seconds": seconds},
        enrolment=[asdict(e) for e in sorted(walked.enrolled.values(), key=lambda e: e.employee_id)],
        live_matches_replay=live_agrees(recording, configured_decided),
        latency_ms=latency_summary(recording),
        grid=grid,
        sweep=dense_sweep(recording, truths, decision, run.policies, fine),
        walks_at_configured=[
            asdict(truth) | asdict(outcome) | walk_scores(truth, track_ids, recording)
            for truth, outcome, track_ids in zip(
                truths, configured_walks, walk_tracks(truths, recording.tracks)[0], strict=True
            )
        ],
    )


def _setup(settings: Settings, embedder: Embedder, run: WalkupRun, walked: _Walked, configured: float) -> dict:
    """The report's "setup": what was walked, how the camera and the configured gate were set."""
    return {
        "model_id": embedder.model_id,
        "employees": run.employees,
        "strangers": run.strangers,
        "seed": run.seed,
        "people_file": str(run.people_file.name),
        "fps": run.fps,
        "walk_s": run.walk_s,
        "gap_s": walked.spec.gap_s,
        "frame_size": list(FRAME_SIZE),
        "min_face_px": settings.detector.min_face_px,
        "cooldown_s": settings.decision.cooldown_s,
        "track_timeout_s": settings.decision.track_timeout_s,
        "configured": {
            "votes_needed": settings.decision.votes_needed,
            "window": settings.decision.window,
            "early_deny": settings.decision.early_deny,
            "threshold": configured,
            "target_far": settings.decision.target_far,
        },
        "thresholds": dict(threshold_grid(embedder.card, settings.decision)),
        "policies": [f"{n}/{m}" for n, m in run.policies],
        "frames": walked.recording.frames,
        "tracks": len(walked.recording.tracks),
    }


def truths_for(walkers: Sequence[Walker], walks: Sequence[Walk], enrolled: dict[str, Enrolment]) -> list[Truth]:
    truths = []
    for walker, walk in zip(walkers, walks, strict=True):
        role, employee_id = walker.role, None
        if walker.role == "employee":
            enrolment = enrolled[walker.person]
            employee_id = enrolment.employee_id
            role = "employee" if enrolment.status == "enrolled" else "refused"
        truths.append(Truth(walker.person, role, employee_id, walk.first_frame, walk.last_frame))
    return truths


def live_agrees(recording: Recording, replayed: dict[int, TrackDecision]) -> bool:
    """Whether replaying the configured point gives exactly the running gate's decisions (it must)."""
    return recording.live == {i: (d.verdict, d.employee_id) for i, d in replayed.items()}


def walk_scores(truth: Truth, track_ids: Sequence[int], recording: Recording) -> dict:
    """Per-walk diagnostics: usable frames, how many had the walker's own id on top, the best top-1 score."""
    ids = set(track_ids)
    matches = [e.match for e in recording.events if isinstance(e, Observation) and e.track_id in ids]
    scores = [m.score for m in matches if m is not None]
    own = [m for m in matches if m is not None and truth.employee_id is not None and m.employee_id == truth.employee_id]
    return {"top1_own_frames": len(own), "best_top1_score": max(scores) if scores else None}


# --- report -------------------------------------------------------------------------------------------------------


def _pct(entry: dict) -> str:
    if entry["rate"] is None:
        return "-"
    return f"{entry['count']}/{entry['of']} ({100 * entry['rate']:.1f}%)"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def main_table(report: GateReport, early_deny: bool | None = None) -> list[list[str]]:
    """One row per grid point (only those with this `early_deny` rule, when given): policy, threshold, FAR,
    misidentification, FRR, FTA, frames and ms to a grant."""
    header = [
        "N/M",
        "threshold",
        "stranger FAR",
        "misidentified",
        "FRR",
        "of which a frame had passed",
        "no usable face",
        "frames to grant (median / p95)",
        "ms to grant (median / p95)",
    ]
    rows = [header]
    for point in report.grid:
        if early_deny is not None and point.get("early_deny", early_deny) != early_deny:
            continue
        grant = point["to_grant"]
        rows.append(
            [
                f"{point['votes_needed']}/{point['window']}",
                f"{point['threshold']:.3f} {point['threshold_label']}",
                _pct(point["far"]),
                _pct(point["misidentification"]),
                _pct(point["frr"]),
                str(point["rejected_own_passed"]["count"]),
                _pct(point["fta_employees"]),
                f"{_num(grant['frames']['median'], 1)} / {_num(grant['frames']['p95'], 1)}",
                f"{_num(grant['ms']['median'])} / {_num(grant['ms']['p95'])}",
            ]
        )
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def markdown_report(report: GateReport, command: str = "", plot_name: str = "gate.png") -> str:
    """The run as a Markdown page: setup, enrolment, both denial rules' tables, frame times, failures."""
    lines = _md_setup(report, command) + _md_transactions(report, plot_name)
    lines += _md_latency(report) + _md_failures(report)
    return "\n".join(lines) + "\n"


def _md_setup(report: GateReport, command: str) -> list[str]:
    setup = report.setup
    configured = setup["configured"]
    enrolled = [e for e in report.enrolment if e["status"] == "enrolled"]
    refused = [e for e in report.enrolment if e["status"] != "enrolled"]
    lines = [
        "# Gate walk-up evaluation",
        "",
        f"Model `{setup['model_id']}`; {setup['employees']} employees and {setup['strangers']} strangers drawn from "
        f"LFW {setup['people_file']} (seed {setup['seed']}), never trained on. Employees are enrolled from up to "
        f"{MAX_ENROL_PHOTOS} photos and walk with a photo that was not enrolled.",
        f"Video: {setup['frame_size'][0]}x{setup['frame_size'][1]} at {setup['fps']:g} fps, {setup['walk_s']:g} s "
        f"per walk, {setup['gap_s']:g} s between walks, {setup['frames']} frames, {setup['tracks']} face tracks; "
        f"smallest face searched {setup['min_face_px']} px; cooldown {setup['cooldown_s']:g} s; configured policy "
        f"{configured['votes_needed']}/{configured['window']} at threshold {configured['threshold']:.3f} "
        f"(FAR {configured['target_far']}). Wall time {setup['seconds'] / 60:.1f} min.",
    ]
    if command:
        lines += ["", f"Command: `{command}`"]
    return lines + [
        "",
        f"Enrolled {len(enrolled)}/{len(report.enrolment)} employees"
        + (f"; {len(refused)} refused by `add_person`, left out of the rates:" if refused else "."),
        *(f"- {e['person']}: {e['status'].removeprefix('refused: ')}" for e in refused),
        "",
        f"Replaying the configured point reproduces the running gate's decisions: "
        f"{'yes' if report.live_matches_replay else 'NO (a bug)'}.",
    ]


def _md_transactions(report: GateReport, plot_name: str) -> list[str]:
    configured_early = report.setup["configured"].get("early_deny", True)
    return [
        "",
        "## Transactions",
        "",
        "Stranger FAR: strangers' walks that opened the door. Misidentified: employees' walks that opened the door "
        "for someone else (a false accept too). FRR: employees' walks after which the door stayed shut, including "
        "those with no usable face (also shown alone); 'of which a frame had passed': those kept out although some "
        "usable frame of their walk named them at or above the threshold (the policy had already denied the track, "
        "or the votes never came together). Frames to grant: video frames from the walk's first visible "
        "frame to the frame whose processing opened the door, for correct grants; ms to grant: those frames at the "
        "video's fps plus the measured processing time of the deciding frame, i.e. what a person at the door waits "
        "at this camera frame rate when the gate keeps up with the camera.",
        "",
        f"With the configured rule (early_deny = {str(configured_early).lower()}: "
        + (
            "a track is denied as soon as a full window has no frame above the threshold"
            if configured_early
            else "a track is watched until it ends"
        )
        + "):",
        "",
        markdown_table(main_table(report, configured_early)),
        "",
        f"With early_deny = {str(not configured_early).lower()} instead (the same recorded frames, replayed):",
        "",
        markdown_table(main_table(report, not configured_early)),
        "",
        f"![FAR and FRR against threshold]({plot_name})",
    ]


def _md_latency(report: GateReport) -> list[str]:
    setup, latency = report.setup, report.latency_ms
    lines = [
        "",
        "## Per-frame processing time",
        "",
        "| frames | count | p50 ms | p95 ms | p99 ms | mean ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label in (("all_frames", "all processed"), ("frames_with_face", "with a face")):
        s = latency[key]
        if s["frames"]:
            lines.append(
                f"| {label} | {s['frames']} | {s['p50']:.1f} | {s['p95']:.1f} | {s['p99']:.1f} | {s['mean']:.1f} "
                f"| {s['max']:.1f} |"
            )
    return lines + [
        "",
        f"Frames over the {latency['frame_budget_ms']:.0f} ms budget of {setup['fps']:g} fps: "
        f"{_pct(latency['over_budget'])}.",
    ]


def _md_failures(report: GateReport) -> list[str]:
    lines = ["", "## Failures at the configured point", ""]
    failures = [
        w
        for w in report.walks_at_configured
        if (w["role"] == "employee" and w["granted_as"] != w["employee_id"])
        or (w["role"] == "stranger" and w["granted_as"] is not None)
    ]
    if not failures:
        lines.append("None.")
    for w in failures:
        lines.append(
            f"- {w['role']} {w['person']}: {w['verdict']}"
            + (f" as {w['granted_as']}" if w["granted_as"] else "")
            + f", score {_num(w['score'], 3)}, {w['usable_frames']} usable frames"
            + (f", {w['top1_own_frames']} with their own id on top" if w["role"] == "employee" else "")
            + f", best top-1 score {_num(w['best_top1_score'], 3)}"
        )
    return lines


def plot_sweep(report: GateReport, path: Path) -> None:
    """Strangers' FAR (left) and employees' FRR (right) against threshold, one line per N/M; the grid's thresholds
    dotted (the configured one starred)."""
    sweep_data = report.sweep
    setup = report.setup
    figure = Figure(figsize=(10, 4.5), dpi=100)
    panels = figure.subplots(1, 2, sharex=True, sharey=True)
    for axes, key, title in (
        (panels[0], "far", f"stranger FAR ({setup['strangers']} strangers)"),
        (panels[1], "frr", f"FRR ({setup['employees']} employees)"),
    ):
        for name, curve in sweep_data["curves"].items():
            axes.plot(sweep_data["thresholds"], curve[key], label=f"{name} frames")
        for label, value in setup["thresholds"].items():
            axes.axvline(value, color="black", linestyle=":", linewidth=0.8)
            text = label.replace(" (configured)", "*").replace("FAR ", "")
            axes.text(value, 0.5, text, rotation=90, fontsize=7, va="center", ha="right")
        axes.set_title(title)
        axes.set_xlabel("score threshold (the model card's scale)")
        axes.set_ylim(-0.02, 1.02)
        axes.grid(True, alpha=0.3)
    panels[0].set_ylabel("share of walks")
    panels[1].legend(title="N of M", fontsize=8, loc="upper left")
    figure.suptitle(f"Walk-ups through the gate, model {setup['model_id']} (dotted: card thresholds by FAR)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
