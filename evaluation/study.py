"""Two stages versus end to end (issue 4, section 3): the gate's pipeline (detect, align, embed, FAISS) against a
ResNet-18 classifier trained from the whole camera frame to the employee, and against the same classifier fed the
gate's aligned crops (the middle way), for k = 1 ... 50 photos per employee.

Protocol. Employees and strangers are Pins people the embedder never saw (its card's `held_out_pins`). Each
employee's photos are shuffled (seeded): the last `test_photos` become test walk-ups, the first k detected ones are
the enrolment photos of the gate and the training photos of both classifiers. Every walk-up is a photo rendered by
the turnstile simulator at a few moments of its walk (same door, same frames for all three systems). A system
scores every employee on each frame, averages over the walk's frames (frames without a usable face count for
nothing where a face is needed), names the top employee and accepts when that score reaches a threshold set on
calibration strangers at the target false-accept rate; the false-accept rate is then measured on other strangers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import faiss
import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from enrollment.photos import UsableFace, read_face
from evaluation.baseline import BaselineConfig, predict_proba, train_classifier
from evaluation.results import StudyResult
from evaluation.turnstile import TurnstileSpec, background, draw_walk, expose, walk_frame
from gate.config import DetectorSettings, Settings
from gate.embedder import Embedder
from gate.errors import FaceGateError
from gate.imageio import load_image
from gate.matching import mean_template
from gate.model_card import ModelCard
from gate.pipeline import FacePipeline
from training import metrics
from training.crops import load_crops
from training.data import held_out_pins

log = logging.getLogger(__name__)

DEFAULT_KS = (1, 2, 5, 10, 20, 50)
TWO_STAGE, END_TO_END, MIDDLE = "two-stage", "end-to-end", "middle"
SYSTEMS = (TWO_STAGE, END_TO_END, MIDDLE)
SYSTEM_NAMES = {
    TWO_STAGE: "two-stage (MTCNN + alignment + held-out embedder + FAISS)",
    END_TO_END: "end to end (ResNet-18 classifier on whole frames)",
    MIDDLE: "middle way (ResNet-18 classifier on aligned crops)",
}
EMPLOYEE, CALIBRATION, TEST = 0, 1, 2  # walk groups: employees' test walk-ups, calibration strangers, test strangers
CACHE_VERSION = 2  # bump when rendering, detection or training change in a way the cache keys do not see


# ---------------------------------------------------------------- configuration and people


@dataclass(frozen=True)
class StudyConfig:
    """Everything that shapes the study's numbers (the cache keys are made from it)."""

    ks: tuple[int, ...] = DEFAULT_KS
    employees: int = 30
    strangers: int = 10  # split by person: the first half calibrates thresholds, the second half tests them
    test_photos: int = 10  # per employee: held-out walk-ups
    stranger_photos: int = 40  # per stranger: walk-ups
    walk_t: tuple[float, ...] = (0.4, 0.7, 1.0)  # moments of the walk taken as frames (0 far away, 1 at the camera)
    frame_width: int = 160  # whole frames are downscaled to this for the end-to-end classifier
    frame_height: int = 120
    pool_frames: int = 3000  # training frames rendered per k for the end-to-end classifier (then flipped)
    samples: int = 4000  # training images seen at k = 1; samples_for(k) grows it with log2(k)
    target_far: float = 0.05  # per walk, on calibration strangers
    match: str = "best"  # two-stage: score a person by their best template or by their mean template
    seed: int = 0
    allow_seen: bool = False
    systems: tuple[str, ...] = SYSTEMS

    def __post_init__(self) -> None:
        """One-line errors naming the setting (`facegate study --set name=value`)."""
        small = [
            name for name in ("test_photos", "stranger_photos", "pool_frames", "samples") if getattr(self, name) < 1
        ]
        problems = [
            (
                not self.ks or any(k < 1 for k in self.ks),
                f"study setting ks must be positive photo counts, got {self.ks}",
            ),
            (self.employees < 2, "the study needs at least 2 employees"),
            (self.strangers < 2, "the study needs at least 2 strangers (one to calibrate, one to test)"),
            (bool(small), f"study setting {small[0] if small else ''} must be at least 1"),
            (min(self.frame_width, self.frame_height) < 32, "study settings frame_width and frame_height: at least 32"),
            (not 0.0 <= self.target_far < 1.0, f"study setting target_far must be in [0, 1), got {self.target_far}"),
            (self.match not in ("best", "mean"), f"study setting match must be best or mean, got {self.match}"),
            (
                not self.systems or not set(self.systems) <= set(SYSTEMS),
                f"study setting systems takes some of {', '.join(SYSTEMS)}; got {', '.join(self.systems)}",
            ),
            (
                not self.walk_t or any(not 0.0 <= t <= 1.0 for t in self.walk_t),
                f"walk moments must lie in [0, 1], got {self.walk_t}",
            ),
        ]
        for bad, message in problems:
            if bad:
                raise FaceGateError(message)


def samples_for(k: int, base: int) -> int:
    """Training images seen by a classifier at k photos per person: base at k = 1, growing with log2(k)
    (x1.5 at k = 2, x3.8 at k = 50), a fixed CPU budget rather than a fixed number of epochs."""
    return int(round(base * (1 + math.log2(k) / 2)))


@dataclass(frozen=True)
class People:
    employees: list[str]
    calibration: list[str]  # strangers whose walk-ups set the thresholds
    test: list[str]  # strangers whose walk-ups measure the false-accept rate
    seen: list[str]  # study people the embedder was trained on (empty unless --allow-seen)


def held_out_names(card: ModelCard) -> list[str]:
    """The Pins people a model's training never saw, as its card records them."""
    return sorted(card.training.get("held_out_pins") or [])


def choose_people(
    held_out: Sequence[str], pins_people: Sequence[str], employees: int, strangers: int, allow_seen: bool, seed: int
) -> People:
    """Employees are the first `employees` held-out names (sorted), strangers the next `strangers`.

    Refuses (FaceGateError) when the model holds out too few Pins people or any study person was seen in its
    training, unless allow_seen (smoke tests), where a seeded draw from all Pins people stands in.
    """
    need = employees + strangers
    held = sorted(held_out)
    if len(held) >= need:
        names = held
    elif allow_seen:
        names = held_out_pins(sorted(pins_people), need, seed)
    else:
        raise FaceGateError(
            f"the model's card holds out {len(held)} Pins people, the study needs {need} the embedder never saw "
            f"({employees} employees + {strangers} strangers): train with --set holdout_pins={need}, "
            "or pass --allow-seen for a smoke test"
        )
    missing = sorted(set(names[:need]) - set(pins_people))
    if missing:
        raise FaceGateError(f"study people not found in the Pins folder: {', '.join(missing)}")
    chosen, stranger_names = names[:employees], names[employees:need]
    half = len(stranger_names) // 2
    seen = sorted(set(names[:need]) - set(held))
    if seen and not allow_seen:
        raise FaceGateError(
            f"{len(seen)} study people were seen by the embedder's training (first: {seen[0]}); "
            "pass --allow-seen only for a smoke test"
        )
    return People(chosen, stranger_names[:half], stranger_names[half:], seen)


def _person_rng(seed: int, name: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, zlib.crc32(name.encode())])


def split_employee_photos(
    files: Sequence[str], detected: Sequence[bool], test_photos: int, max_k: int, seed: int, name: str
) -> tuple[list[str], list[str]]:
    """(enrolment files, test files) of one employee: a seeded shuffle; the last test_photos are the test walk-ups,
    the first max_k detected ones among the rest the enrolment/training photos (enrolment refuses no-face photos);
    the first k of them are used at k, so smaller k are subsets of larger ones."""
    order = _person_rng(seed, name, 1).permutation(len(files))
    if len(files) < test_photos + max_k:
        raise FaceGateError(f"{name}: {len(files)} photos, the study needs {test_photos} test + {max_k} enrolment")
    test = [files[i] for i in order[len(order) - test_photos :]]
    enrol = [files[i] for i in order[: len(order) - test_photos] if detected[i]][:max_k]
    if len(enrol) < max_k:
        raise FaceGateError(f"{name}: only {len(enrol)} photos with a detected face for enrolment, need {max_k}")
    return enrol, test


# ---------------------------------------------------------------- metrics (pure)


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
) -> dict:
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
    return {
        "accuracy": float(np.mean(correct)),
        "tar": float(np.mean(correct & accepted)),
        "wrong_accept": float(np.mean(~correct & accepted)),
        "far": float(np.mean(test_top >= threshold)),
        "far_calibration": float(np.mean(calibration_top >= threshold)),
        "threshold": threshold,
        "no_decision": float(np.mean(predicted < 0)),
        "worst_person_accuracy": min(per_person),
        "employee_walks": int(len(labels)),
        "calibration_walks": int(len(calibration_top)),
        "test_stranger_walks": int(len(test_top)),
    }


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


def catch_up(rows: list[dict], system: str, reference: str = TWO_STAGE) -> int | None:
    """The smallest k at which `system` matches or beats the reference on both closed-set accuracy and TAR."""
    by_k = {(r["system"], r["k"]): r for r in rows}
    for k in sorted({r["k"] for r in rows}):
        mine, ref = by_k.get((system, k)), by_k.get((reference, k))
        if mine and ref and mine["accuracy"] >= ref["accuracy"] and mine["tar"] >= ref["tar"]:
            return k
    return None


# ---------------------------------------------------------------- the turnstile's frames


def shrink(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)


def door(spec: TurnstileSpec, seed: int) -> np.ndarray:
    """The one fixed backdrop of the study's door (a real gate's camera does not move)."""
    return background(spec.width, spec.height, np.random.default_rng([seed, 7]))


@dataclass
class Walks:
    """The test walk-ups, rendered once and shared by all systems."""

    label: np.ndarray  # (W,) employee index; -1 for strangers
    group: np.ndarray  # (W,) EMPLOYEE, CALIBRATION or TEST
    frames: np.ndarray  # (W, T, h, w, 3) uint8 whole frames, downscaled: the end-to-end input
    crops: np.ndarray  # (W, T, S, S, 3) uint8 aligned crop of each frame's largest usable face (zeros: none)
    found: np.ndarray  # (W, T) bool: a usable face was found (detected and passed the quality gate)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(path.name + ".tmp.npz")
        np.savez(temp, **asdict(self))
        os.replace(temp, path)

    @staticmethod
    def load(path: Path) -> Walks:
        with np.load(path) as data:
            return Walks(**{name: data[name] for name in ("label", "group", "frames", "crops", "found")})


def best_usable_crop(pipeline: FacePipeline, frame: np.ndarray, faces: list) -> np.ndarray | None:
    """The aligned crop of the largest face that passes the quality gate, or None."""
    for face in faces:  # largest first
        crop = pipeline.crop(frame, face)
        if crop.rejected is None:
            return crop.crop
    return None


BATCH_WALKS = 6  # walk-ups whose frames MTCNN detects in one batch


def render_walks(
    photos: Sequence[np.ndarray],
    labels: Sequence[int],
    groups: Sequence[int],
    pipeline: FacePipeline,
    config: StudyConfig,
    spec: TurnstileSpec,
    progress: bool = True,
) -> Walks:
    """Render each photo as a walk-up at config.walk_t, detect and align every frame once."""
    backdrop = door(spec, config.seed)
    count, moments, size = len(photos), len(config.walk_t), pipeline.template.size
    frames = np.zeros((count, moments, config.frame_height, config.frame_width, 3), np.uint8)
    crops = np.zeros((count, moments, size, size, 3), np.uint8)
    found = np.zeros((count, moments), bool)
    bar = tqdm(total=count, desc="rendering walk-ups", unit="walk", disable=not progress)
    for start in range(0, count, BATCH_WALKS):
        full: list[np.ndarray] = []
        for i in range(start, min(start + BATCH_WALKS, count)):
            rng = np.random.default_rng([config.seed, 3, i])
            params = draw_walk(rng, spec)
            for j, t in enumerate(config.walk_t):
                frame = expose(walk_frame(photos[i], backdrop, params, t, spec), rng)
                frames[i, j] = shrink(frame, config.frame_width, config.frame_height)
                full.append(frame)
        for n, (frame, faces) in enumerate(zip(full, pipeline.detector.detect_batch(full), strict=True)):
            i, j = start + n // moments, n % moments
            crop = best_usable_crop(pipeline, frame, faces)
            if crop is not None:
                crops[i, j], found[i, j] = crop, True
        bar.update(min(BATCH_WALKS, count - start))
    bar.close()
    return Walks(np.asarray(labels, np.int64), np.asarray(groups, np.int64), frames, crops, found)


def training_frames(
    photos: Sequence[Sequence[np.ndarray]], config: StudyConfig, spec: TurnstileSpec, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The end-to-end classifier's training pool at k: each employee's k photos rendered at the same door at
    random walk moments, positions and light (about config.pool_frames frames in all), downscaled."""
    backdrop = door(spec, config.seed)
    total = sum(len(p) for p in photos)
    per_photo = max(1, math.ceil(config.pool_frames / total))
    rng = np.random.default_rng([config.seed, 4, k])
    images = np.zeros((total * per_photo, config.frame_height, config.frame_width, 3), np.uint8)
    labels = np.zeros(total * per_photo, np.int64)
    n = 0
    for label, person_photos in enumerate(photos):
        for photo in person_photos:
            for _ in range(per_photo):
                frame = expose(walk_frame(photo, backdrop, draw_walk(rng, spec), rng.uniform(0, 1), spec), rng)
                images[n], labels[n] = shrink(frame, config.frame_width, config.frame_height), label
                n += 1
    return images, labels


# ---------------------------------------------------------------- the study's data


@dataclass
class StudyData:
    people: People
    enrol_files: list[list[str]]  # per employee: max(ks) files relative to the Pins folder
    enrol_crops: np.ndarray  # (E, max_k, S, S, 3): the aligned crops of those photos (the crop file's)
    enrol_photos: list[list[np.ndarray]]  # the photos themselves, RGB
    walk_items: list[tuple[str, int, int]]  # (file, label, group) of every test walk-up
    pins_root: Path


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_data(people: People, pins_root: Path, crops_path: Path, config: StudyConfig) -> StudyData:
    """Split the photos and load the enrolment crops and photos."""
    study = set(people.employees) | set(people.calibration) | set(people.test)
    crop_set = load_crops(crops_path, people=study)
    index_of = {str(f): i for i, f in enumerate(crop_set.file)}
    max_k = max(config.ks)
    enrol_files, enrol_crops, items = [], [], []
    for label, name in enumerate(people.employees):
        rows = np.flatnonzero(crop_set.person == name)
        files = [str(crop_set.file[i]) for i in rows]
        enrol, test = split_employee_photos(
            files, crop_set.detected[rows].tolist(), config.test_photos, max_k, config.seed, name
        )
        enrol_files.append(enrol)
        enrol_crops.append(crop_set.crops[[index_of[f] for f in enrol]])
        items.extend((f, label, EMPLOYEE) for f in test)
    for group, names in ((CALIBRATION, people.calibration), (TEST, people.test)):
        for name in names:
            files = sorted(str(f) for f in crop_set.file[crop_set.person == name])
            order = _person_rng(config.seed, name, 2).permutation(len(files))[: config.stranger_photos]
            items.extend((files[i], -1, group) for i in sorted(order))
    photos = [[load_image(pins_root / f) for f in files] for files in enrol_files]
    return StudyData(people, enrol_files, np.stack(enrol_crops), photos, items, pins_root)


def walks_key(data: StudyData, config: StudyConfig, spec: TurnstileSpec, pipeline: FacePipeline, detector: dict) -> str:
    return digest(
        {
            "version": CACHE_VERSION,
            "items": data.walk_items,
            "walk_t": config.walk_t,
            "frame": (config.frame_width, config.frame_height),
            "seed": config.seed,
            "spec": asdict(spec),
            "crop": pipeline.template.size,
            "detector": detector,
            "quality": pipeline.quality.model_dump(),
        }
    )


def load_walks(
    data: StudyData,
    config: StudyConfig,
    spec: TurnstileSpec,
    pipeline: FacePipeline,
    detector: DetectorSettings,
    cache: Path,
    progress: bool,
) -> tuple[Walks, str]:
    """The rendered, detected walk-ups: from the cache when the same ones were made before."""
    key = walks_key(data, config, spec, pipeline, detector.model_dump())
    path = cache / f"walks-{key}.npz"
    if path.is_file():
        log.info("walk-ups from the cache %s", path)
        return Walks.load(path), key
    photos = [load_image(data.pins_root / f) for f, _, _ in data.walk_items]
    walks = render_walks(
        photos,
        [label for _, label, _ in data.walk_items],
        [g for _, _, g in data.walk_items],
        pipeline,
        config,
        spec,
        progress,
    )
    walks.save(path)
    return walks, key


# ---------------------------------------------------------------- the systems


@dataclass
class SystemRun:
    """One system at one k: walk scores (W, E) for every walk-up and what producing them cost."""

    system: str
    k: int
    scores: np.ndarray
    seconds: float  # classifiers: the whole (re)training; two-stage: enrolling one person with k photos
    details: dict = field(default_factory=dict)


def run_classifier(
    system: str, k: int, data: StudyData, walks: Walks, config: StudyConfig, spec: TurnstileSpec, progress: bool
) -> SystemRun:
    """Train the end-to-end or middle-way classifier on the k photos per employee; score every walk-up."""
    employees = len(data.people.employees)
    baseline = BaselineConfig(samples=samples_for(k, config.samples), geometry=system == MIDDLE, seed=config.seed)
    render_start = time.perf_counter()
    if system == END_TO_END:
        images, labels = training_frames([p[:k] for p in data.enrol_photos], config, spec, k)
    else:
        images = data.enrol_crops[:, :k].reshape(-1, *data.enrol_crops.shape[2:])
        labels = np.repeat(np.arange(employees), k)
    render_seconds = time.perf_counter() - render_start
    model, seconds = train_classifier(images, labels, employees, baseline, progress, desc=f"{system} k={k}")
    count, moments = walks.found.shape
    if system == END_TO_END:
        probs = predict_proba(model, walks.frames.reshape(-1, *walks.frames.shape[2:]))
        frame_scores, usable = probs.reshape(count, moments, employees), np.ones((count, moments), bool)
    else:
        frame_scores = np.zeros((count, moments, employees), np.float64)
        frame_scores[walks.found] = predict_proba(model, walks.crops[walks.found])
        usable = walks.found
    details = {
        "samples": baseline.samples,
        "pool": int(len(images)),
        "input": list(images.shape[1:3]),
        "render_seconds": round(render_seconds, 2),
        "threads": torch.get_num_threads(),
    }
    return SystemRun(system, k, walk_scores(frame_scores, usable), seconds, details)


@dataclass
class StudySetup:
    """What every system of one study run shares: the people's photos and crops, the walk-ups, the settings."""

    data: StudyData
    walks: Walks
    walks_digest: str
    config: StudyConfig
    spec: TurnstileSpec
    cache: Path
    progress: bool


def cached_classifier(system: str, k: int, setup: StudySetup) -> SystemRun:
    """run_classifier, or its stored result when the same walk-ups, photos and training settings were run before
    (so the classifiers can be trained while the embedder is still training, and the two-stage part added later)."""
    data, config, cache = setup.data, setup.config, setup.cache
    key = digest(
        {
            "version": CACHE_VERSION,
            "system": system,
            "k": k,
            "walks": setup.walks_digest,
            "employees": data.people.employees,
            "photos": [files[:k] for files in data.enrol_files],
            "samples": samples_for(k, config.samples),
            "pool": config.pool_frames if system == END_TO_END else None,
            "seed": config.seed,
            "baseline": asdict(BaselineConfig()),
        }
    )
    path = cache / f"{system}-k{k}-{key}.npz"
    if path.is_file():
        with np.load(path) as stored:
            details = json.loads(str(stored["details"]))
            return SystemRun(system, k, stored["scores"], float(stored["seconds"]), details | {"cached": True})
    run = run_classifier(system, k, data, setup.walks, config, setup.spec, setup.progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp.npz")
    np.savez(temp, scores=run.scores, seconds=run.seconds, details=json.dumps(run.details))
    os.replace(temp, path)
    return run


def enrol_seconds(files: Sequence[Path], pipeline: FacePipeline, embedder: Embedder, index: faiss.Index) -> float:
    """Wall-clock seconds to enrol one person at the gate: read each photo, detect, align and check its one face
    (enrollment.photos.read_face, as `facegate enroll` does), embed the usable crops, add them to the index.
    The database write is left out."""
    start = time.perf_counter()
    faces = [read_face(pipeline, Path(f)) for f in files]
    crops = [face.crop for face in faces if isinstance(face, UsableFace)]
    if crops:
        index.add(embedder.embed(np.stack(crops)))
    return time.perf_counter() - start


def run_two_stage(
    data: StudyData, walks: Walks, embedder: Embedder, pipeline: FacePipeline, config: StudyConfig, progress: bool
) -> list[SystemRun]:
    """Enrol every employee with their first k crops; score every walk-up frame's crop against the gallery."""
    employees, max_k = data.enrol_crops.shape[:2]
    size = data.enrol_crops.shape[2:]
    templates = embedder.embed(data.enrol_crops.reshape(-1, *size)).reshape(employees, max_k, -1)
    queries = embedder.embed(walks.crops[walks.found]) if walks.found.any() else np.zeros((0, templates.shape[2]))
    count, moments = walks.found.shape
    timing_people = data.enrol_files[: min(3, employees)]
    index = faiss.IndexFlatIP(templates.shape[2])
    enrol_seconds([data.pins_root / f for f in timing_people[0][:1]], pipeline, embedder, index)  # warm-up
    runs = []
    for k in tqdm(config.ks, desc="two-stage", unit="k", disable=not progress):
        frame_scores = np.zeros((count, moments, employees), np.float32)
        frame_scores[walks.found] = gallery_scores(templates[:, :k], queries, config.match)
        timings = [
            enrol_seconds([data.pins_root / f for f in files[:k]], pipeline, embedder, index) for files in timing_people
        ]
        details = {"enrol_runs": [round(s, 3) for s in timings], "threads": torch.get_num_threads()}
        runs.append(SystemRun(TWO_STAGE, k, walk_scores(frame_scores, walks.found), float(np.median(timings)), details))
    return runs


# ---------------------------------------------------------------- the whole study


@dataclass(frozen=True)
class StudyPaths:
    """Where the study reads and keeps things: the Pins photos, their aligned crops, the cache."""

    pins_root: Path
    crops: Path
    cache: Path


def run_study(
    card_path: Path, paths: StudyPaths, config: StudyConfig, settings: Settings | None = None, progress: bool = True
) -> StudyResult:
    """Run every system at every k and return the results (rows of metrics and the study's description);
    detection, quality and flip averaging as `settings` say (default: the gate's defaults)."""
    settings = settings or Settings()
    embedder = Embedder(card_path, flip=settings.model.flip_average)
    if not paths.pins_root.is_dir():
        raise FaceGateError(f"{paths.pins_root}: Pins folder not found (set FACEGATE_DATA)")
    pins_people = sorted(d.name for d in paths.pins_root.iterdir() if d.is_dir())
    people = choose_people(
        held_out_names(embedder.card), pins_people, config.employees, config.strangers, config.allow_seen, config.seed
    )
    if people.seen:
        log.warning("%d study people were seen by the embedder: a smoke test, not a result", len(people.seen))
    pipeline = FacePipeline(settings.detector, settings.quality, template=embedder.template)
    spec = TurnstileSpec()
    data = prepare_data(people, paths.pins_root, paths.crops, config)
    walks, walks_digest = load_walks(data, config, spec, pipeline, settings.detector, paths.cache, progress)
    setup = StudySetup(data, walks, walks_digest, config, spec, paths.cache, progress)
    runs: list[SystemRun] = []
    if TWO_STAGE in config.systems:
        runs.extend(run_two_stage(data, walks, embedder, pipeline, config, progress))
    for system in (END_TO_END, MIDDLE):
        if system in config.systems:
            runs.extend(cached_classifier(system, k, setup) for k in config.ks)
    return _study_result(card_path, embedder.card, people, setup, runs)


def _study_result(
    card_path: Path, card: ModelCard, people: People, setup: StudySetup, runs: list[SystemRun]
) -> StudyResult:
    walks, config = setup.walks, setup.config
    employee = walks.group == EMPLOYEE
    rows = []
    for run in runs:
        metrics = system_metrics(
            run.scores[employee],
            walks.label[employee],
            run.scores[walks.group == CALIBRATION],
            run.scores[walks.group == TEST],
            config.target_far,
        )
        rows.append({"system": run.system, "k": run.k, **metrics, "seconds": run.seconds, **run.details})
    return StudyResult(
        config=asdict(config),
        model={
            "card": str(card_path),
            "model_id": card.model_id,
            "architecture": card.architecture,
            "held_out_pins": len(held_out_names(card)),
            "results": card.results,
        },
        people=asdict(people),
        walks={
            "employee": int(employee.sum()),
            "calibration": int((walks.group == CALIBRATION).sum()),
            "test": int((walks.group == TEST).sum()),
            "frames_per_walk": len(config.walk_t),
            "frames_without_usable_face": int((~walks.found).sum()),
            "frames": int(walks.found.size),
            "frame_size": [config.frame_width, config.frame_height],
            "camera": [setup.spec.width, setup.spec.height],
        },
        rows=rows,
        catch_up={system: catch_up(rows, system) for system in (END_TO_END, MIDDLE) if system in config.systems},
        warning=seen_warning(people),
    )


def seen_warning(people: People) -> str | None:
    if not people.seen:
        return None
    return (
        f"WARNING: --allow-seen: {len(people.seen)} of the study's people were in the embedder's training data "
        "(the two-stage numbers are optimistic; a smoke test, not a result)"
    )


# ---------------------------------------------------------------- report


def _fmt(value: float) -> str:
    return f"{value:.3f}"


def results_table(result: StudyResult) -> str:
    """The Markdown table: one row per k and system."""
    lines = [
        "| k | system | closed-set accuracy | TAR | FAR (test strangers) | FAR (calibration) | threshold | cost (s) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = {s: i for i, s in enumerate(SYSTEMS)}
    for row in sorted(result.rows, key=lambda r: (r["k"], order[r["system"]])):
        cost = f"{row['seconds']:.2f} enrol 1" if row["system"] == TWO_STAGE else f"{row['seconds']:.0f} retrain"
        lines.append(
            f"| {row['k']} | {row['system']} | {_fmt(row['accuracy'])} | {_fmt(row['tar'])} | {_fmt(row['far'])} "
            f"| {_fmt(row['far_calibration'])} | {row['threshold']:.3f} | {cost} |"
        )
    return "\n".join(lines)


def catch_up_text(result: StudyResult) -> str:
    ks = result.config["ks"]
    lines = []
    for system, k in result.catch_up.items():
        if k is None:
            lines.append(f"- {system}: does not catch up with the two-stage gate at any k <= {max(ks)}.")
        else:
            lines.append(f"- {system}: matches or beats the two-stage gate on accuracy and TAR from k = {k}.")
    return "\n".join(lines)


def report_markdown(result: StudyResult, command: str, plot_name: str) -> str:
    """The study as a Markdown report (the command, the people, the table, the plot, where each baseline
    catches up)."""
    config, walks, people = result.config, result.walks, result.people
    warning = result.warning
    parts = []
    if warning:
        parts += [f"> **{warning}**", ""]
    parts += [
        "# Two stages versus end to end",
        "",
        f"Command: `{command}`",
        "",
        f"Embedder: `{result.model['model_id']}` ({result.model['card']}); its training held out "
        f"{result.model['held_out_pins']} Pins people.",
        f"Employees ({len(people['employees'])}): {', '.join(people['employees'])}.",
        f"Calibration strangers: {', '.join(people['calibration'])}. Test strangers: {', '.join(people['test'])}.",
        f"Walk-ups: {walks['employee']} employee, {walks['calibration']} calibration-stranger, {walks['test']} "
        f"test-stranger; {walks['frames_per_walk']} frames each (t = {', '.join(map(str, config['walk_t']))}) at "
        f"{walks['camera'][0]}x{walks['camera'][1]}; {walks['frames_without_usable_face']} of {walks['frames']} "
        "frames without a usable face.",
        f"Thresholds set per system and k at FAR {config['target_far']} on the calibration strangers' walk-ups.",
        "",
        results_table(result),
        "",
        f"![accuracy and false-accept rate against k]({plot_name})",
        "",
        "Where the direct approach catches up:",
        "",
        catch_up_text(result),
        "",
    ]
    return "\n".join(parts)


def plot_study(result: StudyResult, path: Path) -> None:
    """Closed-set accuracy (solid) and TAR (dashed), and FAR on test strangers, against k on a log axis."""
    figure = Figure(figsize=(11, 4.5), dpi=100)
    accuracy_axes, far_axes = figure.subplots(1, 2)
    colours = {TWO_STAGE: "tab:blue", END_TO_END: "tab:red", MIDDLE: "tab:green"}
    for system in SYSTEMS:
        rows = sorted((r for r in result.rows if r["system"] == system), key=lambda r: r["k"])
        if not rows:
            continue
        ks = [r["k"] for r in rows]
        colour = colours[system]
        accuracy_axes.plot(ks, [r["accuracy"] for r in rows], "o-", color=colour, label=f"{system}: accuracy")
        accuracy_axes.plot(ks, [r["tar"] for r in rows], "s--", color=colour, alpha=0.7, label=f"{system}: TAR")
        far_axes.plot(ks, [r["far"] for r in rows], "o-", color=colour, label=system)
    chance = 1 / max(1, len(result.people["employees"]))
    accuracy_axes.axhline(chance, color="grey", linestyle=":", label=f"chance 1/{len(result.people['employees'])}")
    target = result.config["target_far"]
    far_axes.axhline(target, color="grey", linestyle=":", label=f"target FAR {target}")
    for axes, title, ylabel in (
        (accuracy_axes, "Employees' walk-ups", "closed-set accuracy (solid), TAR (dashed)"),
        (far_axes, "Test strangers' walk-ups", "false-accept rate"),
    ):
        axes.set_xscale("log")
        ks = result.config["ks"]
        axes.set_xticks(ks, [str(k) for k in ks])
        axes.minorticks_off()
        axes.set_xlabel("photos per employee (k)")
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
    accuracy_axes.set_ylim(0, 1.02)
    far_axes.set_ylim(0, max(0.2, 1.2 * max((r["far"] for r in result.rows), default=0)))
    accuracy_axes.legend(fontsize=7, loc="best")
    far_axes.legend(fontsize=7, loc="best")
    if result.warning:
        figure.suptitle(result.warning, color="red", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def write_outputs(result: StudyResult, out: Path, command: str) -> dict[str, Path]:
    """study.json, study.png and study.md in out."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "study.json", "plot": out / "study.png", "report": out / "study.md"}
    paths["json"].write_text(json.dumps(result.to_json() | {"command": command}, indent=2) + "\n", encoding="utf-8")
    plot_study(result, paths["plot"])
    paths["report"].write_text(report_markdown(result, command, paths["plot"].name), encoding="utf-8")
    return paths
