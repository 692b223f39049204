"""The liveness test measured per presentation-attack species: each LFW person's photo rendered as every attack
species (flat replay, perspective jitter, two bent prints, an animated head turn) and as a 3D-like walk-up, through
the real MTCNN, the tracker and `LivenessTracker` (every method on the same faces); thresholds chosen on
peopleDevTrain people, APCER per species (the worst counts) and BPCER reported on disjoint peopleDevTest people."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator, model_validator

from evaluation.head_motion import ClipSpec
from evaluation.liveness_metrics import (
    AT_BPCER,
    MIN_ACER,
    bpcer_threshold,
    distribution,
    error_rates,
    min_acer_threshold,
    species_scores,
)
from evaluation.liveness_species import ATTACKS, BONA_FIDE, SPECIES, species_clip
from evaluation.results import (
    ClipScore,
    LivenessPoint,
    LivenessResult,
    LivenessRunParams,
    LivenessSetup,
    MethodResult,
    Rate,
    ScoreSpread,
    SplitRates,
    SplitSpreads,
    SwingBand,
)
from gate.config import SettingsModel
from gate.decision.liveness import RESIDUALS, LivenessParams, LivenessTracker, LivenessVerdict
from gate.decision.tracking import Tracker
from gate.errors import FaceGateError
from gate.vision.detection import Detector, central_face
from gate.vision.imageio import image_files, load_image
from training.datasets import read_people

log = logging.getLogger(__name__)

Progress = Callable[[str, int], Any]  # (description, total) -> a bar with update(n) and close(), e.g. tqdm
TRAIN, TEST = "train", "test"
PEOPLE_FILES = {TRAIN: "peopleDevTrain.txt", TEST: "peopleDevTest.txt"}
TRACK_TIMEOUT_S = 1.0  # a face unseen this long starts a new track (the gate's default)
SWING_BINS = ((0.0, 2.0), (2.0, 4.0), (4.0, None))  # head-turn amplitudes (degrees) BPCER is broken down by


def _silent(description: str, total: int) -> Any:
    class _Bar:
        def update(self, n: int = 1) -> None: ...

        def close(self) -> None: ...

    return _Bar()


class LivenessRun(SettingsModel):
    """What to measure: how many people of each split, the seed, the clips' shape, the species rendered, the
    residual methods compared on the same faces, and the test's other settings."""

    lfw_dir: Path
    train_people: int = Field(60, ge=1)
    test_people: int = Field(100, ge=1)
    seed: int = 0
    clip: ClipSpec = ClipSpec()
    params: LivenessParams = LivenessParams()
    species: tuple[str, ...] = SPECIES
    methods: tuple[str, ...] = Field(tuple(RESIDUALS), min_length=1)

    @field_validator("species")
    @classmethod
    def _bona_fide_and_an_attack(cls, species: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in species if name not in SPECIES]
        if unknown:
            raise ValueError(f"unknown species {unknown[0]!r}; valid: {', '.join(SPECIES)}")
        if BONA_FIDE not in species or not set(species) & set(ATTACKS):
            raise ValueError(f"needs {BONA_FIDE} and an attack ({', '.join(ATTACKS)})")
        return species

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in methods if name not in RESIDUALS]
        if unknown:
            raise ValueError(f"unknown method {unknown[0]!r}; valid: {', '.join(RESIDUALS)}")
        return methods

    @model_validator(mode="after")
    def _clips_long_enough(self) -> LivenessRun:
        if self.clip.frames < self.params.min_frames:
            raise ValueError(
                f"a clip of {self.clip.walk_s:g} s at {self.clip.fps:g} fps has {self.clip.frames} frames, a verdict "
                f"needs {self.params.min_frames}: walk longer or film faster"
            )
        return self


def pick_people(lfw_dir: Path, people_file: Path, count: int, rng: np.random.Generator) -> list[tuple[str, Path]]:
    """`count` people of an LFW people file, each with one photo drawn at random, seeded."""
    names = sorted(name for name in read_people(people_file) if (lfw_dir / name).is_dir())
    if not 1 <= count <= len(names):
        raise FaceGateError(f"{people_file.name}: asked for {count} people, 1 to {len(names)} are there")
    chosen = sorted(rng.choice(names, size=count, replace=False).tolist())
    photos = {name: image_files(lfw_dir / name) for name in chosen}
    return [(name, photos[name][int(rng.integers(len(photos[name])))]) for name in chosen]


def walker_verdicts(
    detector: Detector, frames: Iterable[np.ndarray], params: Sequence[LivenessParams], fps: float
) -> tuple[list[LivenessVerdict | None], int]:
    """Every frame through MTCNN and the gate's tracker, every face fed to one `LivenessTracker` per `params`
    (the same faces for each); the verdicts of the longest track (the walker; a photo may show a second face)
    and how many frames it was fed."""
    trackers, tracker = [LivenessTracker(p) for p in params], Tracker(TRACK_TIMEOUT_S)
    fed: Counter[int] = Counter()
    for index, frame in enumerate(frames):
        faces = detector.detect(frame)
        update = tracker.update([face.box for face in faces], index / fps)
        for track_id, face in zip(update.track_ids, faces, strict=True):
            for liveness in trackers:
                liveness.add(track_id, frame, face)
            fed[track_id] += 1
    if not fed:
        return [None] * len(trackers), 0
    walker, count = fed.most_common(1)[0]
    return [liveness.verdict(walker) for liveness in trackers], count


def score_person(
    detector: Detector, person: str, photo_path: Path, split: str, index: int, run: LivenessRun
) -> list[ClipScore]:
    """Each species' clip of the person (the same seed, so the same backdrop and approach), scored by each of the
    run's methods; empty when MTCNN finds no face in the photo itself. `index`: the person's place in the split."""
    photo = load_image(photo_path)
    face = central_face(detector.detect(photo), photo.shape[1], photo.shape[0])
    if face is None:
        log.warning("%s: no face in %s, skipped", person, photo_path.name)
        return []
    params = [run.params.model_copy(update={"method": method}) for method in run.methods]
    scores = []
    for species in run.species:
        rng = np.random.default_rng([run.seed, int(split == TEST), index])
        clip = species_clip(species, photo, face.landmarks, rng, run.clip)
        verdicts, fed = walker_verdicts(detector, clip.frames, params, run.clip.fps)
        swing = round(abs(float(clip.motion.yaw_deg)), 3)
        for method, verdict in zip(run.methods, verdicts, strict=True):
            score = None if verdict is None else verdict.score
            scores.append(ClipScore(person, split, species, method, score, fed, swing))
    return scores


def split_people(run: LivenessRun, split: str) -> list[tuple[str, Path]]:
    """The split's people and photos (seeded by the run's seed and the split)."""
    count = run.train_people if split == TRAIN else run.test_people
    rng = np.random.default_rng([run.seed, int(split == TEST)])
    return pick_people(run.lfw_dir, run.lfw_dir.parent / PEOPLE_FILES[split], count, rng)


def score_split(
    detector: Detector, split: str, people: Sequence[tuple[str, Path]], run: LivenessRun, progress: Progress = _silent
) -> list[ClipScore]:
    """Every species' clip of each of the split's people, scored by every method."""
    bar = progress(f"{split} people", len(people))
    scores = []
    for index, (person, photo_path) in enumerate(people):
        scores += score_person(detector, person, photo_path, split, index, run)
        bar.update(1)
    bar.close()
    return scores


def _selected(clips: Sequence[ClipScore], split: str, method: str) -> list[ClipScore]:
    return [c for c in clips if c.split == split and c.method == method]


@dataclass(frozen=True)
class LivenessReport:
    """The run's setup, every clip's score under every method, and each method's thresholds chosen on train."""

    setup: LivenessSetup
    clips: list[ClipScore]
    thresholds: dict[str, dict[str, float]]  # method -> threshold name -> value

    def scores(self, split: str, method: str) -> dict[str, list[float]]:
        """Species -> the scores of that split's clips scored by `method` (clips without a verdict left out)."""
        return species_scores([(c.kind, c.score) for c in _selected(self.clips, split, method)])

    def by_swing(self, method: str, threshold: float) -> list[SwingBand]:
        """Test BPCER at `threshold` for each band of head-turn amplitude."""
        head = [
            (c.swing_deg, c.score)
            for c in _selected(self.clips, TEST, method)
            if c.kind == BONA_FIDE and c.score is not None
        ]
        rows = []
        for low, high in SWING_BINS:
            band = [score for swing, score in head if low <= swing and (high is None or swing < high)]
            bpcer = Rate.counted(sum(score < threshold for score in band), len(band))
            rows.append(SwingBand(swing_deg=[low, high], bpcer=bpcer))
        return rows

    def split_rates(self, split: str, method: str, threshold: float) -> SplitRates:
        """The split's error rates under `method` at `threshold`, and its clips without a verdict."""
        no_verdict = sum(c.score is None for c in _selected(self.clips, split, method))
        rates = error_rates(self.scores(split, method), threshold, BONA_FIDE)
        return SplitRates(**dict(rates), no_verdict=no_verdict)

    def points(self, method: str) -> dict[str, LivenessPoint]:
        """Threshold name -> the error rates (per-species APCER, the worst, BPCER) at it on train and on test."""
        return {
            name: LivenessPoint(train=self.split_rates(TRAIN, method, v), test=self.split_rates(TEST, method, v))
            for name, v in self.thresholds[method].items()
        }

    def method_result(self, method: str) -> MethodResult:
        """The method's thresholds, its rates at each, test BPCER by head turn, and its score spreads."""

        def spreads(split: str) -> dict[str, ScoreSpread]:
            return {kind: distribution(scores) for kind, scores in self.scores(split, method).items()}

        return MethodResult(
            thresholds=self.thresholds[method],
            points=self.points(method),
            test_bpcer_by_swing={name: self.by_swing(method, v) for name, v in self.thresholds[method].items()},
            distributions=SplitSpreads(train=spreads(TRAIN), test=spreads(TEST)),
        )

    def result(self) -> LivenessResult:
        """The published result (liveness.json)."""
        methods = {method: self.method_result(method) for method in self.thresholds}
        return LivenessResult(setup=self.setup, methods=methods, clips=self.clips)


def choose_thresholds(clips: Sequence[ClipScore], method: str) -> dict[str, float]:
    """The method's two thresholds from its train clips: the lowest ACER (worst-species APCER and BPCER), and the
    highest with BPCER at most 5 %."""
    by_species = species_scores([(c.kind, c.score) for c in _selected(clips, TRAIN, method)])
    bona_fide = by_species.pop(BONA_FIDE, [])
    return {MIN_ACER: min_acer_threshold(by_species, bona_fide), AT_BPCER: bpcer_threshold(bona_fide)}


def evaluate_liveness(detector: Detector, run: LivenessRun, progress: Progress = _silent) -> LivenessReport:
    """Score every species' clip of the train and test people with every method; choose each method's thresholds
    on train (lowest ACER over the worst species, and BPCER at most 5 %); the report applies them to both."""
    if not run.lfw_dir.is_dir():
        raise FaceGateError(f"LFW folder not found: {run.lfw_dir} (give --data or set $FACEGATE_DATA)")
    people = {split: split_people(run, split) for split in (TRAIN, TEST)}  # bad counts fail before any work
    clips = [clip for split in (TRAIN, TEST) for clip in score_split(detector, split, people[split], run, progress)]
    thresholds = {method: choose_thresholds(clips, method) for method in run.methods}
    setup = LivenessSetup(
        train_people=run.train_people,
        test_people=run.test_people,
        seed=run.seed,
        species=list(run.species),
        methods=list(run.methods),
        clip=run.clip,
        params=LivenessRunParams(**run.params.model_dump(exclude={"threshold", "method"})),
    )
    return LivenessReport(setup, clips, thresholds)
