"""The second visit: does confirming the faces of denied door events let those employees in next time?

Employees (LFW peopleDevTest people with SECOND_VISIT_MIN_PHOTOS+ photos) are enrolled from up to MAX_ENROL_PHOTOS
photos and walk up twice, each visit with a photo never enrolled and different from the other visit's; strangers
walk up twice too (a different photo when they have one). Between the visits the faces of visit one's denials are
confirmed the way a careful admin would: only the employee who really walked (the harness knows), each denied
event of their walk, through the real confirmation rule (`confirm`, default DEFAULT_CONFIRM); the rule may refuse.

Visit two runs the real gate once, against the gallery with the confirmations, while its every gallery query is
kept (QueryTap). The same queries searched in a copy of the gallery as it was before the confirmations give visit
two without them: the frames, faces, tracks and embeddings do not depend on the gallery, only the matches do. Both
recordings are then replayed over the policy grid (evaluation/replay.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from enrollment.confirm import confirm_event
from evaluation.replay import (
    NO_FACE,
    Observation,
    Recording,
    Truth,
    WalkOutcome,
    replay,
    threshold_grid,
    walk_outcomes,
    walk_tracks,
)
from evaluation.results import EnrolledEmployee, Rate
from evaluation.walkups import (
    MAX_ENROL_PHOTOS,
    WORK_FILES,
    Progress,
    Walker,
    WalkupRun,
    _silent,
    enrol_employees,
    live_agrees,
    record_gate,
    render_walkers,
    truths_for,
    walkup_settings,
    walkup_spec,
)
from gate.config import DecisionSettings, Settings
from gate.decision.policy import Verdict, threshold_for
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.matching.search import Match, TemplateSet
from gate.model.embedder import Embedder
from gate.runtime.loop import GateLoop
from gate.runtime.parts import Runtime
from gate.store.events import event_numbers
from gate.vision.imageio import image_files
from training.datasets import read_people

log = logging.getLogger(__name__)

SECOND_VISIT_MIN_PHOTOS = 3  # an employee needs 1+ photo to enrol and 2 more, one per visit, never enrolled
VIDEOS = ("visit-one.mp4", "visit-two.mp4")
SCORE_TOLERANCE = 1e-6  # a match searched again is the same match when its score is this close

Confirm = Callable[[Runtime, int, str], Any]  # (runtime, event id, employee id); refuses with a FaceGateError
DEFAULT_CONFIRM: Confirm = confirm_event  # the admin's own rule


# --- who walks, twice ---------------------------------------------------------------------------------------------


def pick_two_visits(
    lfw_dir: Path, people_file: Path, employees: int, strangers: int, seed: int = 0
) -> tuple[list[Walker], list[Walker]]:
    """Both visits' walkers, each in its own seeded order: `employees` people with SECOND_VISIT_MIN_PHOTOS+ photos
    (two distinct walk photos, enrolled from up to MAX_ENROL_PHOTOS of the rest, the same in both visits) and
    `strangers` other people (a different photo on visit two when they have one)."""
    if employees < 1 or strangers < 1:
        raise FaceGateError(f"need at least 1 employee and 1 stranger (got {employees} and {strangers})")
    if not lfw_dir.is_dir():
        raise FaceGateError(f"LFW folder not found: {lfw_dir} (set $FACEGATE_DATA or give --data)")
    photos = {
        name: image_files(lfw_dir / name) for name in sorted(read_people(people_file)) if (lfw_dir / name).is_dir()
    }
    photos = {name: found for name, found in photos.items() if found}
    eligible = [name for name in photos if len(photos[name]) >= SECOND_VISIT_MIN_PHOTOS]
    if len(eligible) < employees:
        raise FaceGateError(
            f"{people_file.name}: {len(eligible)} people with {SECOND_VISIT_MIN_PHOTOS}+ photos, {employees} employees"
            " asked for two visits"
        )
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(eligible, size=employees, replace=False).tolist())
    others = [name for name in photos if name not in set(chosen)]
    if len(others) < strangers:
        raise FaceGateError(f"{people_file.name}: {len(others)} people left for strangers, {strangers} asked")
    one, two = [], []
    for name in chosen:
        first, second = rng.choice(len(photos[name]), size=2, replace=False).tolist()
        rest = tuple(p for i, p in enumerate(photos[name]) if i not in (first, second))[:MAX_ENROL_PHOTOS]
        one.append(Walker(name, "employee", photos[name][first], rest))
        two.append(Walker(name, "employee", photos[name][second], rest))
    for name in sorted(rng.choice(others, size=strangers, replace=False).tolist()):
        count = len(photos[name])
        first, second = rng.choice(count, size=2, replace=False).tolist() if count > 1 else (0, 0)
        one.append(Walker(name, "stranger", photos[name][first]))
        two.append(Walker(name, "stranger", photos[name][second]))
    return [one[i] for i in rng.permutation(len(one))], [two[i] for i in rng.permutation(len(two))]


# --- the denials of visit one, confirmed ------------------------------------------------------------------------


@dataclass(frozen=True)
class Denial:
    """A denied access event of an enrolled employee's walk that no track of opened the door for them."""

    event_id: int
    employee_id: str
    person: str
    track_id: int
    reason: str  # the event's verdict


@dataclass(frozen=True)
class Confirmation:
    """What the confirmation rule made of one denial: confirmed, or refused with its one-line reason."""

    event_id: int
    employee_id: str
    person: str
    confirmed: bool
    message: str
    refusal: str | None  # refusal_kind(message) when refused


def event_ids_by_track(recording: Recording, event_ids: Sequence[int]) -> dict[int, int]:
    """Each decided track's access event id: the run recorded one event per decision, in decision order."""
    if len(event_ids) != len(recording.decided):
        raise FaceGateError(f"{len(event_ids)} access events for {len(recording.decided)} decisions: cannot pair them")
    return dict(zip(recording.decided, event_ids, strict=True))


def visit_denials(
    truths: Sequence[Truth], outcomes: Sequence[WalkOutcome], recording: Recording, events: dict[int, int]
) -> list[Denial]:
    """The denied events (as the running gate decided: `recording.live`) of every enrolled employee's walk that
    did not open the door (every denied track of it: the tracker may split a walk); strangers' walks and walks
    granted, rightly or as someone else, have none to confirm."""
    per_walk, _ = walk_tracks(truths, recording.tracks)
    denials = []
    for truth, outcome, track_ids in zip(truths, outcomes, per_walk, strict=True):
        if truth.role != "employee" or outcome.granted or truth.employee_id is None:
            continue
        for track_id in track_ids:
            verdict, _ = recording.live.get(track_id, ("", None))
            if track_id in events and verdict and verdict != Verdict.GRANTED:
                denials.append(Denial(events[track_id], truth.employee_id, truth.person, track_id, verdict))
    return denials


REFUSALS = (  # refusal kind, words of the rule's one-line message (this module's and enrollment.confirm's)
    ("no face kept", ("keeps no face",)),
    ("quality", ("quality gate", "too dark", "too bright", "cut for another model")),
    ("below review threshold", ("does not look like",)),
    ("closer to someone else", ("looks like",)),
)


def refusal_kind(message: str) -> str:
    """Which rule refused a confirmation, from its one-line message ("other" when none is recognised)."""
    for kind, words in REFUSALS:
        if any(word in message for word in words):
            return kind
    return "other"


def confirm_denials(
    runtime: Runtime, denials: Sequence[Denial], confirm: Confirm = DEFAULT_CONFIRM
) -> list[Confirmation]:
    """Confirm each denial as the employee who really walked, through `confirm`; a refusal is recorded, not raised."""
    done = []
    for denial in denials:
        try:
            confirm(runtime, denial.event_id, denial.employee_id)
        except FaceGateError as error:
            message = str(error)
            done.append(
                Confirmation(denial.event_id, denial.employee_id, denial.person, False, message, refusal_kind(message))
            )
            continue
        done.append(Confirmation(denial.event_id, denial.employee_id, denial.person, True, "confirmed", None))
    return done


def access_event_ids(runtime: Runtime) -> list[int]:
    with runtime.database.session() as session:
        return event_numbers(session)


# --- visit two: one run, two galleries --------------------------------------------------------------------------


class QueryTap:
    """Stands in for a gate loop's gallery: every search goes to the real one, its query rows kept in order (the
    i-th row is the run's i-th Observation)."""

    def __init__(self, gallery: Gallery) -> None:
        self.gallery = gallery
        self.rows: list[np.ndarray] = []

    def search(self, embeddings: np.ndarray) -> list[Match | None]:
        self.rows.append(np.array(embeddings, dtype=np.float32))
        return self.gallery.search(embeddings)

    def verify(self, embeddings: np.ndarray, employee_id: str) -> list[Match | None]:
        raise FaceGateError("the second-visit evaluation runs without badges ([card] claims = off)")

    def install(self, loop: GateLoop) -> None:
        loop.gallery = cast(Gallery, self)

    def batches(self) -> list[np.ndarray]:
        """The query rows of each search, in order (searched again batch by batch, as the gate searched them:
        FAISS may round a batch of many rows differently, by 1e-7, from one of a few)."""
        return list(self.rows)


def copy_templates(gallery: Gallery) -> TemplateSet:
    """The gallery's templates as they are now, apart from it (later additions do not reach the copy)."""
    templates = gallery.templates
    copy = TemplateSet(templates.settings, templates.model_id, templates.embedding_size, templates.scorer)
    ids = templates.ids()
    copy.add(ids, templates.vectors().astype(np.float32), [templates.owners[int(i)] for i in ids])
    return copy


def researched(recording: Recording, batches: Sequence[np.ndarray], templates: TemplateSet) -> Recording:
    """The recording with every observation's match searched again in `templates`, its queries searched in the
    run's batches (QueryTap.batches: the i-th row overall is the i-th observation)."""
    observations = [i for i, event in enumerate(recording.events) if isinstance(event, Observation)]
    rows = sum(len(batch) for batch in batches)
    if len(observations) != rows:
        raise FaceGateError(f"{rows} gallery queries for {len(observations)} observations: cannot pair them")
    found = [matches for batch in batches if len(batch) for matches in templates.candidates(batch, top=1)]
    events = list(recording.events)
    for position, matches in zip(observations, found, strict=True):
        events[position] = replace(cast(Observation, events[position]), match=matches[0] if matches else None)
    return replace(recording, events=events, live={}, decided=[])


def same_matches(one: Recording, other: Recording) -> bool:
    """Whether two recordings of the same run hand the policy the same matches: the same people, scores within
    SCORE_TOLERANCE."""

    def same(a: Match | None, b: Match | None) -> bool:
        if a is None or b is None:
            return a is b
        return a.employee_id == b.employee_id and abs(a.score - b.score) <= SCORE_TOLERANCE

    pairs = zip(one.events, other.events, strict=True)
    return all(same(a.match, b.match) for a, b in pairs if isinstance(a, Observation) and isinstance(b, Observation))


# --- the two visits, run ------------------------------------------------------------------------------------------


@dataclass
class TwoVisits:
    """Both visits recorded: who was enrolled, who walked when, the denials of visit one and what the rule made of
    them, visit two with and without the confirmations, and the run's self-checks."""

    walkers: tuple[list[Walker], list[Walker]]
    enrolled: dict[str, EnrolledEmployee]
    truths_one: list[Truth]
    truths_two: list[Truth]
    one: Recording
    two_with: Recording
    two_without: Recording
    denials: list[Denial]
    confirmations: list[Confirmation]
    checks: dict[str, bool]


def _visit(
    runtime: Runtime,
    walkers: Sequence[Walker],
    enrolled: dict[str, EnrolledEmployee],
    video: Path,
    spec: Any,
    progress: Progress,
    prepare: Callable[[GateLoop], Any] | None = None,
) -> tuple[Recording, list[Truth]]:
    """Render the walkers' walk-ups and run the real gate over them once: the recording and who walked when."""
    video, walks = render_walkers(walkers, video, spec, progress)
    total_frames = walks[-1].last_frame + 1 + round(spec.gap_s * spec.fps) if walks else 0
    recording = record_gate(runtime, video, progress, total_frames, prepare)
    return recording, truths_for(walkers, walks, enrolled)


def walk_twice(
    settings: Settings,
    embedder: Embedder,
    run: WalkupRun,
    out: Path,
    progress: Progress = _silent,
    confirm: Confirm = DEFAULT_CONFIRM,
) -> TwoVisits:
    """Enrol, walk visit one, confirm its denials (`confirm`), walk visit two against the gallery with them (the
    queries kept and searched again in the gallery as it was before them)."""
    visit_one, visit_two = pick_two_visits(run.lfw_dir, run.people_file, run.employees, run.strangers, run.seed)
    gate_settings = walkup_settings(settings, out)
    if gate_settings.card.claims != "off":
        raise FaceGateError('the second-visit evaluation walks without badges: set [card] claims = "off"')
    out.mkdir(parents=True, exist_ok=True)
    for name in (*WORK_FILES, *VIDEOS):  # a fresh database and index every run
        (out / name).unlink(missing_ok=True)
    runtime = Runtime.open(gate_settings, embedder)
    try:
        enrolled = enrol_employees(visit_one, runtime, progress)
        spec = walkup_spec(settings, run.fps, run.walk_s, run.seed)
        one, truths_one = _visit(runtime, visit_one, enrolled, out / VIDEOS[0], spec, progress)
        decided_one = replay(one.events, gate_settings.decision, runtime.threshold)
        outcomes_one = walk_outcomes(truths_one, one.tracks, decided_one)
        denials = visit_denials(truths_one, outcomes_one, one, event_ids_by_track(one, access_event_ids(runtime)))
        before = copy_templates(runtime.gallery)
        confirmations = confirm_denials(runtime, denials, confirm)
        tap = QueryTap(runtime.gallery)
        spec_two = walkup_spec(settings, run.fps, run.walk_s, run.seed + 1)
        two_with, truths_two = _visit(runtime, visit_two, enrolled, out / VIDEOS[1], spec_two, progress, tap.install)
        queries = tap.batches()
        checks = {
            "visit_one_replay_matches_live": live_agrees(one, decided_one),
            "visit_two_replay_matches_live": live_agrees(
                two_with, replay(two_with.events, gate_settings.decision, runtime.threshold)
            ),
            "queries_reproduce_live_matches": same_matches(
                two_with, researched(two_with, queries, runtime.gallery.templates)
            ),
        }
    finally:
        runtime.close()
    two_without = researched(two_with, queries, before)
    return TwoVisits(
        (visit_one, visit_two),
        enrolled,
        truths_one,
        truths_two,
        one,
        two_with,
        two_without,
        denials,
        confirmations,
        checks,
    )


# --- rates ----------------------------------------------------------------------------------------------------------


def frr(truths: Sequence[Truth], outcomes: Sequence[WalkOutcome], people: set[str] | None = None) -> Rate:
    """Enrolled employees' walks (only `people`'s, when given) that did not open the door, of all theirs."""
    walks = [
        o
        for t, o in zip(truths, outcomes, strict=True)
        if t.role == "employee" and (people is None or t.person in people)
    ]
    return Rate.counted(sum(not o.granted for o in walks), len(walks))


def far(truths: Sequence[Truth], outcomes: Sequence[WalkOutcome]) -> Rate:
    """Strangers' walks that opened the door."""
    walks = [o for t, o in zip(truths, outcomes, strict=True) if t.role == "stranger"]
    return Rate.counted(sum(o.granted for o in walks), len(walks))


def misidentified(truths: Sequence[Truth], outcomes: Sequence[WalkOutcome]) -> Rate:
    """Enrolled employees' walks that opened the door for someone else."""
    walks = [(t, o) for t, o in zip(truths, outcomes, strict=True) if t.role == "employee"]
    return Rate.counted(sum(o.granted and o.granted_as != t.employee_id for t, o in walks), len(walks))


def groups(visits: TwoVisits, outcomes_one: Sequence[WalkOutcome]) -> dict[str, set[str]]:
    """The employees rated apart: those visit one kept out (at the configured point), those with a confirmed face."""
    denied = {
        t.person for t, o in zip(visits.truths_one, outcomes_one, strict=True) if t.role == "employee" and not o.granted
    }
    return {"denied_on_visit_one": denied, "confirmed": {c.person for c in visits.confirmations if c.confirmed}}


def rates(
    truths: Sequence[Truth],
    recording: Recording,
    decision: DecisionSettings,
    threshold: float,
    apart: dict[str, set[str]],
) -> dict[str, dict]:
    """FRR (all employees and each group apart), stranger FAR and misidentification at one policy point."""
    outcomes = walk_outcomes(truths, recording.tracks, replay(recording.events, decision, threshold))
    found = {
        "frr": frr(truths, outcomes),
        "far": far(truths, outcomes),
        "misidentified": misidentified(truths, outcomes),
    }
    found |= {f"frr_{name}": frr(truths, outcomes, people) for name, people in apart.items()}
    return {name: rate.to_json() for name, rate in found.items()}


# --- the report's data --------------------------------------------------------------------------------------------


def evaluate_second_visit(
    settings: Settings,
    embedder: Embedder,
    run: WalkupRun,
    out: Path,
    progress: Progress = _silent,
    confirm: Confirm = DEFAULT_CONFIRM,
) -> dict[str, Any]:
    """Walk twice (walk_twice), then the rates of visit one and of visit two with and without the confirmations, at
    the configured point, over the policy x threshold grid and along a fine threshold sweep of the configured
    policy: the report's JSON."""
    started = time.perf_counter()
    visits = walk_twice(settings, embedder, run, out, progress, confirm)
    decision = walkup_settings(settings, out).decision
    configured = threshold_for(decision, embedder.card)
    outcomes_one = walk_outcomes(visits.truths_one, visits.one.tracks, replay(visits.one.events, decision, configured))
    apart = groups(visits, outcomes_one)
    recordings = {
        "visit_one": (visits.truths_one, visits.one),
        "visit_two_without": (visits.truths_two, visits.two_without),
        "visit_two_with": (visits.truths_two, visits.two_with),
    }

    def point(votes: int, window: int, threshold: float) -> dict[str, dict]:
        policy = decision.model_copy(update={"votes_needed": votes, "window": window})
        return {name: rates(truths, rec, policy, threshold, apart) for name, (truths, rec) in recordings.items()}

    grid = [
        {"policy": f"{votes}/{window}", "threshold": value, "label": label} | point(votes, window, value)
        for votes, window in run.policies
        for label, value in threshold_grid(embedder.card, decision)
    ]
    values = [value for _, value in threshold_grid(embedder.card, decision)]
    span = max(values) - min(values) or 0.1
    fine = [float(t) for t in np.round(np.linspace(min(values) - span, max(values) + span, 61), 4)]
    return {
        "setup": _setup(settings, embedder, run, visits, configured, confirm, time.perf_counter() - started),
        "checks": visits.checks,
        "denials": _denials(visits, outcomes_one),
        "configured": point(decision.votes_needed, decision.window, configured),
        "grid": grid,
        "sweep": {"thresholds": fine, "points": [point(decision.votes_needed, decision.window, t) for t in fine]},
    }


def _setup(
    settings: Settings,
    embedder: Embedder,
    run: WalkupRun,
    visits: TwoVisits,
    threshold: float,
    confirm: Confirm,
    seconds: float,
) -> dict[str, Any]:
    decision = settings.decision
    refused = {e.person: e.status for e in visits.enrolled.values() if e.status != "enrolled"}
    return {
        "model_id": embedder.model_id,
        "employees": run.employees,
        "strangers": run.strangers,
        "seed": run.seed,
        "people_file": run.people_file.name,
        "min_photos": SECOND_VISIT_MIN_PHOTOS,
        "max_enrol_photos": MAX_ENROL_PHOTOS,
        "enrolled": len(visits.enrolled) - len(refused),
        "refused": refused,
        "strangers_same_photo_twice": _same_photo_strangers(visits),
        "fps": run.fps,
        "walk_s": run.walk_s,
        "policies": [f"{n}/{m}" for n, m in run.policies],
        "thresholds": dict(threshold_grid(embedder.card, decision)),
        "configured": {
            "policy": f"{decision.votes_needed}/{decision.window}",
            "threshold": threshold,
            "target_far": decision.target_far,
            "early_deny": decision.early_deny,
        },
        "confirm": f"{confirm.__module__}.{getattr(confirm, '__name__', type(confirm).__name__)}",
        "frames": [visits.one.frames, visits.two_with.frames],
        "seconds": seconds,
    }


def _same_photo_strangers(visits: TwoVisits) -> int:
    """Strangers with one photo only, who walk with it on both visits."""
    first = {w.person: w.walk_photo for w in visits.walkers[0] if w.role == "stranger"}
    return sum(first[w.person] == w.walk_photo for w in visits.walkers[1] if w.role == "stranger")


def _denials(visits: TwoVisits, outcomes_one: Sequence[WalkOutcome]) -> dict[str, Any]:
    """Visit one's kept-out employees, their denied events and what the confirmation rule made of each."""
    kept_out = [
        o for t, o in zip(visits.truths_one, outcomes_one, strict=True) if t.role == "employee" and not o.granted
    ]
    refusals: dict[str, int] = {}
    for confirmation in visits.confirmations:
        if confirmation.refusal is not None:
            refusals[confirmation.refusal] = refusals.get(confirmation.refusal, 0) + 1
    return {
        "walks_kept_out": len(kept_out),
        "walks_without_usable_face": sum(o.verdict == NO_FACE for o in kept_out),
        "events": len(visits.denials),
        "people_with_events": len({d.person for d in visits.denials}),
        "confirmed": sum(c.confirmed for c in visits.confirmations),
        "people_confirmed": len({c.person for c in visits.confirmations if c.confirmed}),
        "refused": sum(not c.confirmed for c in visits.confirmations),
        "refusals": dict(sorted(refusals.items())),
        "items": [asdict(c) | {"reason": d.reason} for d, c in zip(visits.denials, visits.confirmations, strict=True)],
    }
