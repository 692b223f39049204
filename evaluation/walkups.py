"""The gate as a whole system: walk-ups of enrolled people and strangers through the real gate, then the decision
policy replayed for a grid of N-of-M votes and thresholds (evaluation/replay.py) and reported
(evaluation/gate_report.py).

The networks run once: the real GateLoop (MTCNN, aligner, quality gate, embedder, FAISS gallery, policy, events)
watches a turnstile video while each frame's processing is timed and every usable frame's top-1 gallery match is
recorded with its track and time. The recorded sequence of observations and track ends is then fed again through
the real `gate.decision.policy.Policy` for each (votes_needed, window, threshold): cheap, and by construction the same
decisions the running gate would have made (checked against the live run for the configured point).

For `evaluate-gate`, people are LFW peopleDevTest people only (never trained on by the shipped model): employees
have 2+ photos, are enrolled from all their photos but one (up to MAX_ENROL_PHOTOS) and walk with the one left out;
strangers are other DevTest people, never enrolled, walking with one of their photos. The demo draws its people from
any <person>/<images> folder (`pick_folder_walkers`); both go through `walk_past_gate` (enrol, render, run once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from pydantic import Field, field_validator

from enrollment.people import add_person
from evaluation.replay import (
    Event,
    Observation,
    Recording,
    TrackDecision,
    TrackEnd,
    Truth,
    dense_sweep,
    latency_summary,
    replay,
    sweep,
    threshold_grid,
    walk_outcomes,
    walk_tracks,
)
from evaluation.results import ConfiguredPolicy, EnrolledEmployee, GateReport, GateSetup
from evaluation.turnstile import WALKUP_MIN_FACE_PX, TurnstileSpec, Walk, render_turnstile
from gate.config import DatabaseSettings, Settings, SettingsModel
from gate.decision.policy import threshold_for
from gate.door.actuators import LogActuator
from gate.errors import FaceGateError
from gate.matching.search import Match
from gate.model.embedder import Embedder
from gate.runtime.loop import GateLoop
from gate.runtime.parts import Runtime
from gate.runtime.results import TrackReport
from gate.vision.imageio import image_files, load_image
from gate.vision.sources import VideoFileSource
from training.datasets import read_people

log = logging.getLogger(__name__)

MAX_ENROL_PHOTOS = 4  # as the demo: an employee is enrolled from up to 4 photos, never the one that walks
DEFAULT_POLICIES: tuple[tuple[int, int], ...] = ((1, 1), (2, 3), (3, 5), (4, 7), (5, 10))
FRAME_SIZE = (480, 360)  # the demo's frames
DATABASE_FILE = "gate.db"  # each walk-up run's own database, in its output folder
WORK_FILES = (DATABASE_FILE, "gallery.faiss", "gallery.faiss.json", "turnstile.mp4")

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


def enrol_employees(
    walkers: Sequence[Walker], runtime: Runtime, progress: Progress = _silent
) -> dict[str, EnrolledEmployee]:
    """Enrol every employee with the real `add_person`; a refusal is recorded, not raised."""
    employees = [w for w in walkers if w.role == "employee"]
    result: dict[str, EnrolledEmployee] = {}
    bar = progress("enrolling", len(employees))
    for index, walker in enumerate(sorted(employees, key=lambda w: w.person)):
        employee_id = f"E{index + 1:03d}"
        try:
            done = add_person(runtime, employee_id, walker.person.replace("_", " "), list(walker.enrol_photos))
            result[walker.person] = EnrolledEmployee(
                person=walker.person, employee_id=employee_id, status="enrolled", photos_added=done.added
            )
        except FaceGateError as error:  # no usable photo, or taken for someone already enrolled
            log.warning("%s not enrolled: %s", walker.person, error)
            result[walker.person] = EnrolledEmployee(
                person=walker.person, employee_id=employee_id, status=f"refused: {error}", photos_added=0
            )
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


def record_gate(
    runtime: Runtime,
    video: Path,
    progress: Progress = _silent,
    total_frames: int = 0,
    prepare: Callable[[GateLoop], Any] | None = None,
) -> Recording:
    """Run the real gate over the video once, timing every frame's processing and recording the policy's input;
    `prepare` sees the loop before its first frame (evaluation.second_visit taps its gallery searches)."""
    settings = runtime.settings
    source = VideoFileSource(video)
    recorder = _Recorder()
    loop = GateLoop(runtime, LogActuator(), observer=recorder)
    if prepare is not None:
        prepare(loop)
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
    decided = [decision.track_id for decision in loop.decisions]
    return Recording(recorder.events, source.fps, loop.frames, latency, faces, live, decided)


# --- the whole evaluation -----------------------------------------------------------------------------------------


def walkup_settings(settings: Settings, out: Path) -> Settings:
    """The user's settings with a fresh database and gallery in `out`, and no search for faces too small to pass the
    quality gate (WALKUP_MIN_FACE_PX)."""
    gallery = settings.gallery.model_copy(update={"index_path": str((out / "gallery.faiss").resolve())})
    database = DatabaseSettings(
        url=f"sqlite:///{(out / DATABASE_FILE).resolve()}", journal_path=str((out / "events.journal").resolve())
    )
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


class WalkupRun(SettingsModel):
    """What one evaluate-gate run walks: who (drawn from `people_file`'s people in `lfw_dir`), the camera, and the
    N-of-M policies replayed (deduplicated, in order)."""

    lfw_dir: Path
    people_file: Path
    employees: int = Field(ge=1)
    strangers: int = Field(ge=1)
    seed: int = 0
    fps: float = Field(12.0, ge=1, le=120)
    walk_s: float = Field(2.5, ge=0.5, le=30)
    policies: tuple[tuple[int, int], ...] = DEFAULT_POLICIES

    @field_validator("policies")
    @classmethod
    def _policies(cls, value: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        try:
            return tuple(check_policies(value))
        except FaceGateError as error:
            raise ValueError(str(error)) from None


@dataclass
class _Walked:
    """One recorded run: who was enrolled, the walks in the video, and what the gate saw."""

    walkers: list[Walker]
    enrolled: dict[str, EnrolledEmployee]
    spec: TurnstileSpec
    walks: list[Walk]
    recording: Recording


def evaluate_gate(
    settings: Settings, embedder: Embedder, run: WalkupRun, out: Path, progress: Progress = _silent
) -> GateReport:
    """Pick, enrol, render, run the real gate once, replay the policy grid; the report."""
    started = time.perf_counter()
    walked = _walk_up(settings, embedder, run, out, progress)
    return _gate_report(walkup_settings(settings, out), embedder, run, walked, time.perf_counter() - started)


def _walk_up(settings: Settings, embedder: Embedder, run: WalkupRun, out: Path, progress: Progress) -> _Walked:
    """Enrol the employees into a fresh database in `out`, render everyone's walk-up, run the real gate once."""
    walkers = pick_walkers(run.lfw_dir, run.people_file, run.employees, run.strangers, run.seed)
    spec = walkup_spec(settings, run.fps, run.walk_s, run.seed)

    def record(runtime: Runtime, video: Path, walks: list[Walk]) -> Recording:
        total_frames = walks[-1].last_frame + 1 + round(spec.gap_s * spec.fps) if walks else 0
        return record_gate(runtime, video, progress, total_frames)

    walked = walk_past_gate(settings, embedder, walkers, out, spec, record, progress)
    return _Walked(walkers, walked.enrolled, spec, walked.walks, walked.watched)


def _gate_report(settings: Settings, embedder: Embedder, run: WalkupRun, walked: _Walked, seconds: float) -> GateReport:
    """Replay the recorded run over the policy grid and the fine threshold sweep: the gate's report."""
    recording, decision = walked.recording, settings.decision
    configured = threshold_for(decision, embedder.card)
    truths = truths_for(walked.walkers, walked.walks, walked.enrolled)
    thresholds = threshold_grid(embedder.card, decision)
    grid = [  # the configured early-deny rule first, then the other one
        point
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
        setup=_setup(settings, embedder, run, walked, configured, thresholds, seconds),
        enrolment=sorted(walked.enrolled.values(), key=lambda e: e.employee_id),
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


def _setup(
    settings: Settings,
    embedder: Embedder,
    run: WalkupRun,
    walked: _Walked,
    configured: float,
    thresholds: list[tuple[str, float]],
    seconds: float,
) -> GateSetup:
    """The report's "setup": what was walked, how the camera and the configured gate were set."""
    decision = settings.decision
    policy = ConfiguredPolicy(
        votes_needed=decision.votes_needed,
        window=decision.window,
        early_deny=decision.early_deny,
        threshold=configured,
        target_far=decision.target_far,
    )
    return GateSetup(
        model_id=embedder.model_id,
        employees=run.employees,
        strangers=run.strangers,
        seed=run.seed,
        people_file=str(run.people_file.name),
        fps=run.fps,
        walk_s=run.walk_s,
        gap_s=walked.spec.gap_s,
        frame_size=list(FRAME_SIZE),
        min_face_px=settings.detector.min_face_px,
        cooldown_s=decision.cooldown_s,
        track_timeout_s=decision.track_timeout_s,
        configured=policy,
        thresholds=dict(thresholds),
        policies=[f"{n}/{m}" for n, m in run.policies],
        frames=walked.recording.frames,
        tracks=len(walked.recording.tracks),
        seconds=seconds,
    )


def truths_for(walkers: Sequence[Walker], walks: Sequence[Walk], enrolled: dict[str, EnrolledEmployee]) -> list[Truth]:
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


# --- a small walk-up run: the demo's ----------------------------------------------------------------------------

FOLDER_MIN_PHOTOS = 3  # one photo walks past the camera, the others (never the walked one) are enrolled
Watched = TypeVar("Watched")


def pick_folder_walkers(folder: Path, employees: int, strangers: int, seed: int = 0) -> list[Walker]:
    """`employees` + `strangers` people with FOLDER_MIN_PHOTOS+ photos each, drawn (seeded) from any
    <person>/<images> folder, in a seeded walking order that mixes the two. Each walks with their first photo; an
    employee is enrolled from the next MAX_ENROL_PHOTOS."""
    count = employees + strangers
    if employees < 0 or strangers < 0 or count == 0:
        raise FaceGateError(f"need employees, strangers >= 0 and someone to walk (got {employees} and {strangers})")
    if not folder.is_dir():
        raise FaceGateError(f"photo folder not found: {folder} (give --data)")
    eligible = []
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        photos = image_files(person)
        if len(photos) >= FOLDER_MIN_PHOTOS:
            eligible.append((person.name, photos))
    if len(eligible) < count:
        raise FaceGateError(f"{folder}: {len(eligible)} people with {FOLDER_MIN_PHOTOS}+ photos, {count} asked")
    drawn = sorted(np.random.default_rng(seed).choice(len(eligible), size=count, replace=False))
    chosen = [eligible[i] for i in drawn]  # the first `employees` are enrolled
    walkers = []
    for i in np.random.default_rng(seed + 1).permutation(count):  # employees and strangers interleaved
        name, photos = chosen[i]
        enrol = tuple(photos[1 : 1 + MAX_ENROL_PHOTOS]) if i < employees else ()
        walkers.append(Walker(name, "employee" if i < employees else "stranger", photos[0], enrol))
    return walkers


@dataclass(frozen=True)
class WalkedPast(Generic[Watched]):
    """One walk-up run: who was enrolled, the video and the walks in it, and what the gate made of them."""

    enrolled: dict[str, EnrolledEmployee]
    video: Path
    walks: list[Walk]
    watched: Watched


def walk_past_gate(
    settings: Settings,
    embedder: Embedder,
    walkers: Sequence[Walker],
    out: Path,
    spec: TurnstileSpec,
    watch: Callable[[Runtime, Path, list[Walk]], Watched],
    progress: Progress = _silent,
) -> WalkedPast[Watched]:
    """Enrol the employees among `walkers` into a fresh database and gallery in `out`, render everyone's walk-up
    (`spec`, e.g. walkup_spec's) and hand the open runtime, the video and its walks to `watch`, which runs the real
    gate over them once. The runtime is closed however that ends."""
    out.mkdir(parents=True, exist_ok=True)
    for name in WORK_FILES:  # a fresh database and index every run
        (out / name).unlink(missing_ok=True)
    runtime = Runtime.open(walkup_settings(settings, out), embedder)
    try:
        enrolled = enrol_employees(walkers, runtime, progress)
        video, walks = render_walkers(walkers, out / "turnstile.mp4", spec, progress)
        watched = watch(runtime, video, walks)
    finally:
        runtime.close()
    return WalkedPast(enrolled, video, walks, watched)
