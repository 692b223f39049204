"""The liveness test measured: a flat replay and a 3D-like walk-up of each LFW person through the real MTCNN, the
tracker and `LivenessTracker`; thresholds chosen on peopleDevTrain people, APCER and BPCER reported on (disjoint)
peopleDevTest people with Wilson intervals, and the score distributions."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.head_motion import FLAT, HEAD, KINDS, ClipSpec, clip_frames, draw_motion
from evaluation.intervals import rate
from gate.detection import Detector, central_face
from gate.errors import FaceGateError
from gate.imageio import image_files, load_image
from gate.liveness import LivenessParams, LivenessTracker, LivenessVerdict
from gate.tracking import Tracker
from training.datasets import read_people

log = logging.getLogger(__name__)

Progress = Callable[[str, int], Any]  # (description, total) -> a bar with update(n) and close(), e.g. tqdm
TRAIN, TEST = "train", "test"
PEOPLE_FILES = {TRAIN: "peopleDevTrain.txt", TEST: "peopleDevTest.txt"}
TRACK_TIMEOUT_S = 1.0  # a face unseen this long starts a new track (the gate's default)
TARGET_BPCER = 0.05  # the second operating point: the strictest threshold that turns away at most this share
SWING_BINS = ((0.0, 2.0), (2.0, 4.0), (4.0, None))  # head-turn amplitudes (degrees) BPCER is broken down by
MIN_ACER, AT_BPCER = "min_acer", "bpcer_5pct"  # the two thresholds' names


def _silent(description: str, total: int) -> Any:
    class _Bar:
        def update(self, n: int = 1) -> None: ...

        def close(self) -> None: ...

    return _Bar()


@dataclass(frozen=True)
class LivenessRun:
    """What to measure: how many people of each split, the seed, the clips' shape and the test's settings."""

    lfw_dir: Path
    train_people: int = 60
    test_people: int = 100
    seed: int = 0
    clip: ClipSpec = field(default_factory=ClipSpec)
    params: LivenessParams = field(default_factory=LivenessParams)


@dataclass(frozen=True)
class ClipScore:
    """One clip's outcome: whose photo, which split and kind, the walker track's score (None: no verdict, too few
    usable frames), the frames fed to that track and the clip's swing amplitude in degrees (tilt or head turn)."""

    person: str
    split: str
    kind: str
    score: float | None
    frames: int
    swing_deg: float


def pick_people(lfw_dir: Path, people_file: Path, count: int, rng: np.random.Generator) -> list[tuple[str, Path]]:
    """`count` people of an LFW people file, each with one photo drawn at random, seeded."""
    names = sorted(name for name in read_people(people_file) if (lfw_dir / name).is_dir())
    if not 1 <= count <= len(names):
        raise FaceGateError(f"{people_file.name}: asked for {count} people, 1 to {len(names)} are there")
    chosen = sorted(rng.choice(names, size=count, replace=False).tolist())
    photos = {name: image_files(lfw_dir / name) for name in chosen}
    return [(name, photos[name][int(rng.integers(len(photos[name])))]) for name in chosen]


def walker_verdict(
    detector: Detector, frames: Iterable[np.ndarray], params: LivenessParams, fps: float
) -> tuple[LivenessVerdict | None, int]:
    """Every frame through MTCNN and the gate's tracker, every face fed to a `LivenessTracker`; the verdict of the
    longest track (the walker; a photo may show a second face) and how many frames it was fed."""
    liveness, tracker = LivenessTracker(params), Tracker(TRACK_TIMEOUT_S)
    fed: Counter[int] = Counter()
    for index, frame in enumerate(frames):
        faces = detector.detect(frame)
        update = tracker.update([face.box for face in faces], index / fps)
        for track_id, face in zip(update.track_ids, faces, strict=True):
            liveness.add(track_id, frame, face)
            fed[track_id] += 1
    if not fed:
        return None, 0
    walker, count = fed.most_common(1)[0]
    return liveness.verdict(walker), count


def score_person(
    detector: Detector, person: str, photo_path: Path, split: str, index: int, run: LivenessRun
) -> list[ClipScore]:
    """The person's flat replay and 3D-like walk-up (the same seed, so the same backdrop and approach), scored;
    empty when MTCNN finds no face in the photo itself. `index`: the person's place in the split (the seed's)."""
    photo = load_image(photo_path)
    face = central_face(detector.detect(photo), photo.shape[1], photo.shape[0])
    if face is None:
        log.warning("%s: no face in %s, skipped", person, photo_path.name)
        return []
    scores = []
    for kind in KINDS:
        rng = np.random.default_rng([run.seed, int(split == TEST), index])
        motion = draw_motion(kind, rng, run.clip)
        frames = clip_frames(photo, face.landmarks, motion, rng, run.clip)
        verdict, fed = walker_verdict(detector, frames, run.params, run.clip.fps)
        score = None if verdict is None else verdict.score
        scores.append(ClipScore(person, split, kind, score, fed, round(abs(float(motion.yaw_deg)), 3)))
    return scores


def split_people(run: LivenessRun, split: str) -> list[tuple[str, Path]]:
    """The split's people and photos (seeded by the run's seed and the split)."""
    count = run.train_people if split == TRAIN else run.test_people
    rng = np.random.default_rng([run.seed, int(split == TEST)])
    return pick_people(run.lfw_dir, run.lfw_dir.parent / PEOPLE_FILES[split], count, rng)


def score_split(
    detector: Detector, split: str, people: Sequence[tuple[str, Path]], run: LivenessRun, progress: Progress = _silent
) -> list[ClipScore]:
    """Both clips of each of the split's people."""
    bar = progress(f"{split} people", len(people))
    scores = []
    for index, (person, photo_path) in enumerate(people):
        scores += score_person(detector, person, photo_path, split, index, run)
        bar.update(1)
    bar.close()
    return scores


def scores_of(clips: Sequence[ClipScore], split: str, kind: str) -> list[float]:
    """The scores of one split's clips of one kind that have a verdict."""
    return [c.score for c in clips if c.split == split and c.kind == kind and c.score is not None]


def error_rates(clips: Sequence[ClipScore], threshold: float) -> dict[str, dict]:
    """APCER (flat clips scored live) and BPCER (3D-like clips scored not live) at `threshold`, each with its
    count, total and Wilson 95 % interval; clips with no verdict are left out and counted."""
    flat = [c.score for c in clips if c.kind == FLAT and c.score is not None]
    head = [c.score for c in clips if c.kind == HEAD and c.score is not None]
    return {
        "apcer": rate(sum(s >= threshold for s in flat), len(flat)),
        "bpcer": rate(sum(s < threshold for s in head), len(head)),
        "no_verdict": sum(c.score is None for c in clips),
    }


def min_acer_threshold(flat: Sequence[float], head: Sequence[float]) -> float:
    """The threshold with the lowest mean of APCER and BPCER (the highest such when several tie: fewer attacks
    pass), put halfway between that score and the next lower one so it does not sit on a clip's score."""
    if not flat or not head:
        raise FaceGateError("choosing a threshold needs scored clips of both kinds")
    flat_scores, head_scores = np.sort(flat), np.sort(head)
    candidates = np.unique(np.concatenate([flat_scores, head_scores, [np.inf]]))
    apcer = 1 - np.searchsorted(flat_scores, candidates, side="left") / len(flat_scores)
    bpcer = np.searchsorted(head_scores, candidates, side="left") / len(head_scores)
    acer = (apcer + bpcer) / 2
    best = int(np.flatnonzero(acer == acer.min())[-1])
    if best == 0:
        return float(candidates[0])
    if not np.isfinite(candidates[best]):
        return float(candidates[best - 1]) + 1e-9
    return float((candidates[best] + candidates[best - 1]) / 2)


def bpcer_threshold(head: Sequence[float], target: float = TARGET_BPCER) -> float:
    """The highest threshold that turns away at most `target` of the 3D-like clips (scores below it)."""
    if not head:
        raise FaceGateError("choosing a threshold needs scored 3D-like clips")
    return float(np.sort(head)[int(np.floor(target * len(head)))])


def distribution(scores: Sequence[float]) -> dict[str, float | int]:
    """Count, extremes and quantiles of some scores."""
    if not scores:
        return {"n": 0}
    quantiles = np.quantile(scores, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
    names = ("min", "p05", "p25", "median", "p75", "p95", "max")
    return {"n": len(scores), **{name: round(float(q), 5) for name, q in zip(names, quantiles, strict=True)}}


@dataclass(frozen=True)
class LivenessReport:
    """The run's setup, every clip's score and the thresholds chosen on the train split."""

    setup: dict[str, Any]
    clips: list[ClipScore]
    thresholds: dict[str, float]

    def scores(self, split: str, kind: str) -> list[float]:
        return scores_of(self.clips, split, kind)

    def by_swing(self, threshold: float) -> list[dict[str, Any]]:
        """Test BPCER at `threshold` for each band of head-turn amplitude."""
        head = [c for c in self.clips if c.split == TEST and c.kind == HEAD and c.score is not None]
        rows = []
        for low, high in SWING_BINS:
            band = [c for c in head if low <= c.swing_deg and (high is None or c.swing_deg < high)]
            rows.append({"swing_deg": [low, high], "bpcer": rate(sum(c.score < threshold for c in band), len(band))})
        return rows

    def to_json(self) -> dict[str, Any]:
        points = {
            name: {split: error_rates([c for c in self.clips if c.split == split], value) for split in (TRAIN, TEST)}
            for name, value in self.thresholds.items()
        }
        return {
            "setup": self.setup,
            "thresholds": self.thresholds,
            "points": points,
            "test_bpcer_by_swing": {name: self.by_swing(value) for name, value in self.thresholds.items()},
            "distributions": {
                f"{split}_{kind}": distribution(self.scores(split, kind)) for split in (TRAIN, TEST) for kind in KINDS
            },
            "clips": [asdict(clip) for clip in self.clips],
        }


def evaluate_liveness(detector: Detector, run: LivenessRun, progress: Progress = _silent) -> LivenessReport:
    """Score both kinds of clip for the train and test people; choose the thresholds on train (lowest ACER, and
    BPCER at most 5 %); the report applies them to both splits."""
    if not run.lfw_dir.is_dir():
        raise FaceGateError(f"LFW folder not found: {run.lfw_dir} (give --data or set $FACEGATE_DATA)")
    people = {split: split_people(run, split) for split in (TRAIN, TEST)}  # bad counts fail before any work
    clips = [clip for split in (TRAIN, TEST) for clip in score_split(detector, split, people[split], run, progress)]
    flat, head = scores_of(clips, TRAIN, FLAT), scores_of(clips, TRAIN, HEAD)
    thresholds = {MIN_ACER: min_acer_threshold(flat, head), AT_BPCER: bpcer_threshold(head)}
    setup = {
        "train_people": run.train_people,
        "test_people": run.test_people,
        "seed": run.seed,
        "clip": asdict(run.clip),
        "params": {k: v for k, v in asdict(run.params).items() if k != "threshold"},  # thresholds: chosen here
    }
    return LivenessReport(setup, clips, thresholds)
