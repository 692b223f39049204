"""Two stages versus end to end: the gate's pipeline (detect, align, embed, FAISS) against a
ResNet-18 classifier trained from the whole camera frame to the employee, and against the same classifier fed the
gate's aligned crops (the middle way), for k = 1 ... 50 photos per employee.

Protocol. Employees and strangers are people the embedder never saw: Pins people its card holds out
(`held_out_pins`), or LFW people (`--set people=lfw`) when its card says no LFW person was in its training
(`"unseen": ["lfw"]`) and they have enough photos for the largest k. Each
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
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
import torch
from tqdm import tqdm

from enrollment.photos import UsableFace, read_face
from evaluation.baseline import BaselineConfig, predict_proba, train_classifier
from evaluation.results import StudyModel, StudyPeople, StudyResult, StudyRow, StudyWalks
from evaluation.study_config import END_TO_END, MIDDLE, TWO_STAGE, StudyConfig
from evaluation.study_frames import Walks, render_walks, training_frames
from evaluation.study_metrics import catch_up, gallery_scores, system_metrics, walk_scores
from evaluation.turnstile import TurnstileSpec
from gate.config import DetectorSettings, Settings
from gate.errors import FaceGateError
from gate.model.card import ModelCard
from gate.model.embedder import Embedder
from gate.vision.alignment import CropTemplate
from gate.vision.faces import FacePipeline
from gate.vision.imageio import image_files, load_image
from training.crops import build_crops, crop_template_of, load_crops
from training.data import held_out_pins

log = logging.getLogger(__name__)

EMPLOYEE, CALIBRATION, TEST = 0, 1, 2  # walk groups: employees' test walk-ups, calibration strangers, test strangers
CACHE_VERSION = 2  # bump when rendering, detection or training change in a way the cache keys do not see


# ---------------------------------------------------------------- the people


def samples_for(k: int, base: int) -> int:
    """Training images seen by a classifier at k photos per person: base at k = 1, growing with log2(k)
    (x1.5 at k = 2, x3.8 at k = 50), a fixed CPU budget rather than a fixed number of epochs."""
    return int(round(base * (1 + math.log2(k) / 2)))


def held_out_names(card: ModelCard) -> list[str]:
    """The Pins people a model's training never saw, as its card records them."""
    return sorted(card.training.get("held_out_pins") or [])


def choose_people(
    held_out: Sequence[str], pins_people: Sequence[str], employees: int, strangers: int, allow_seen: bool, seed: int
) -> StudyPeople:
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
    return StudyPeople(employees=chosen, calibration=stranger_names[:half], test=stranger_names[half:], seen=seen)


def unseen_datasets(card: ModelCard) -> list[str]:
    """The datasets none of whose people the model's training saw, as its card states them (`training.unseen`)."""
    return sorted(str(name) for name in card.training.get("unseen") or [])


def photo_counts(root: Path) -> dict[str, int]:
    """Photos per person of a `<person>/<images>` folder."""
    if not root.is_dir():
        raise FaceGateError(f"{root}: photo folder not found (set FACEGATE_DATA)")
    return {d.name: len(image_files(d)) for d in sorted(root.iterdir()) if d.is_dir()}


def choose_lfw_people(counts: dict[str, int], unseen: Sequence[str], config: StudyConfig) -> StudyPeople:
    """Employees: a seeded draw of `employees` LFW people with max(ks) + test_photos photos or more; strangers: a
    seeded draw of `strangers` others with stranger_photos or more (the first half calibrates, the second tests).

    Refuses (FaceGateError) when the card does not state that LFW is unseen, unless allow_seen (smoke tests, where
    every study person is marked seen), and when too few people have enough photos."""
    if "lfw" not in unseen and not config.allow_seen:
        raise FaceGateError(
            'the model\'s card does not state that its training saw no LFW person (training.unseen lacks "lfw"): '
            "use a card that does, --set people=pins with held-out Pins people, or --allow-seen for a smoke test"
        )
    need = max(config.ks) + config.test_photos
    eligible = sorted(name for name, count in counts.items() if count >= need)
    if len(eligible) < config.employees:
        raise FaceGateError(
            f"{len(eligible)} LFW people have {need}+ photos (k up to {max(config.ks)} + {config.test_photos} test), "
            f"the study needs {config.employees} employees: lower ks, test_photos or employees"
        )
    rng = np.random.default_rng([config.seed, 5])
    employees = sorted(rng.choice(eligible, size=config.employees, replace=False).tolist())
    pool = sorted(n for n, c in counts.items() if c >= config.stranger_photos and n not in set(employees))
    if len(pool) < config.strangers:
        raise FaceGateError(
            f"{len(pool)} other LFW people have {config.stranger_photos}+ photos, the study needs {config.strangers} "
            "strangers: lower stranger_photos or strangers"
        )
    drawn = rng.choice(pool, size=config.strangers, replace=False).tolist()
    half = len(drawn) // 2
    seen = [] if "lfw" in unseen else sorted(employees + drawn)
    return StudyPeople(employees=employees, calibration=sorted(drawn[:half]), test=sorted(drawn[half:]), seen=seen)


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


# ---------------------------------------------------------------- the study's data


@dataclass
class StudyData:
    people: StudyPeople
    enrol_files: list[list[str]]  # per employee: max(ks) files relative to the photo folder (Pins or LFW)
    enrol_crops: np.ndarray  # (E, max_k, S, S, 3): the aligned crops of those photos (the crop file's)
    enrol_photos: list[list[np.ndarray]]  # the photos themselves, RGB
    walk_items: list[tuple[str, int, int]]  # (file, label, group) of every test walk-up
    root: Path


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prepare_data(people: StudyPeople, root: Path, crops_path: Path, config: StudyConfig) -> StudyData:
    """Split the photos and load the enrolment crops and photos."""
    study = set(people.employees) | set(people.calibration) | set(people.test)
    crop_set = load_crops(crops_path, people=study)
    index_of = {str(f): i for i, f in enumerate(crop_set.file)}
    max_k = max(config.ks)
    enrol_files: list[list[str]] = []
    enrol_crops: list[np.ndarray] = []
    items: list[tuple[str, int, int]] = []
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
    photos = [[load_image(root / f) for f in files] for files in enrol_files]
    return StudyData(people, enrol_files, np.stack(enrol_crops), photos, items, root)


def walks_key(data: StudyData, config: StudyConfig, spec: TurnstileSpec, pipeline: FacePipeline, detector: dict) -> str:
    return digest(
        {
            "version": CACHE_VERSION,
            "items": data.walk_items,
            "walk_t": config.walk_t,
            "frame": (config.frame_width, config.frame_height),
            "seed": config.seed,
            "spec": spec.model_dump(),
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
    photos = [load_image(data.root / f) for f, _, _ in data.walk_items]
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
            "baseline": BaselineConfig().model_dump(),
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
    enrol_seconds([data.root / f for f in timing_people[0][:1]], pipeline, embedder, index)  # warm-up
    runs = []
    for k in tqdm(config.ks, desc="two-stage", unit="k", disable=not progress):
        frame_scores = np.zeros((count, moments, employees), np.float32)
        frame_scores[walks.found] = gallery_scores(templates[:, :k], queries, config.match)
        timings = [
            enrol_seconds([data.root / f for f in files[:k]], pipeline, embedder, index) for files in timing_people
        ]
        details = {"enrol_runs": [round(s, 3) for s in timings], "threads": torch.get_num_threads()}
        runs.append(SystemRun(TWO_STAGE, k, walk_scores(frame_scores, walks.found), float(np.median(timings)), details))
    return runs


# ---------------------------------------------------------------- the whole study


@dataclass(frozen=True)
class StudyPaths:
    """Where the study reads and keeps things: the Pins and LFW photos, their aligned crops (None: .crops/pins.npz
    for Pins; for LFW a file of the study people's crops built once under the cache), the cache."""

    pins_root: Path
    crops: Path | None
    cache: Path
    lfw_root: Path | None = None  # None: lfw/lfw-deepfunneled beside the Pins folder

    @property
    def lfw(self) -> Path:
        return self.lfw_root or self.pins_root.parent / "lfw" / "lfw-deepfunneled"


PINS_CROPS = Path(".crops/pins.npz")


def study_crops(paths: StudyPaths, config: StudyConfig, people: StudyPeople, template: CropTemplate) -> Path:
    """The aligned-crop file the study reads, checked against the embedder's crop template. For LFW without
    --crops, the study people's photos are aligned as `facegate prepare` aligns them (training.crops.build_crops,
    onto the embedder's template) into the cache, once."""
    path = paths.crops or PINS_CROPS
    if config.people == "lfw" and paths.crops is None:
        names = sorted(set(people.employees) | set(people.calibration) | set(people.test))
        key = digest({"version": CACHE_VERSION, "people": names, "template": [template.size, template.points]})
        path = paths.cache / f"lfw-crops-{key}.npz"
        if not path.is_file():
            temp = build_crops(paths.lfw, path.with_name(path.stem + ".tmp.npz"), template, people=set(names))
            os.replace(temp, path)
    made_for = crop_template_of(path)
    if made_for != template:
        raise FaceGateError(
            f"{path}: crops aligned for a {made_for.size}-pixel template, the embedder wants its own "
            f"{template.size}-pixel one: make them with `facegate prepare --backbone <its backbone>`"
        )
    return path


def study_people(paths: StudyPaths, config: StudyConfig, card: ModelCard) -> tuple[StudyPeople, Path]:
    """The study's people (employees, calibration and test strangers) and the folder of their photos."""
    if config.people == "lfw":
        root = paths.lfw
        return choose_lfw_people(photo_counts(root), unseen_datasets(card), config), root
    if not paths.pins_root.is_dir():
        raise FaceGateError(f"{paths.pins_root}: Pins folder not found (set FACEGATE_DATA)")
    pins_people = sorted(d.name for d in paths.pins_root.iterdir() if d.is_dir())
    people = choose_people(
        held_out_names(card), pins_people, config.employees, config.strangers, config.allow_seen, config.seed
    )
    return people, paths.pins_root


def run_study(
    card_path: Path, paths: StudyPaths, config: StudyConfig, settings: Settings | None = None, progress: bool = True
) -> StudyResult:
    """Run every system at every k and return the results (rows of metrics and the study's description);
    detection, quality and flip averaging as `settings` say (default: the gate's defaults)."""
    settings = settings or Settings()
    embedder = Embedder(card_path, flip=settings.model.flip_average)
    people, root = study_people(paths, config, embedder.card)
    if people.seen:
        log.warning("%d study people were seen by the embedder: a smoke test, not a result", len(people.seen))
    pipeline = FacePipeline(settings.detector, settings.quality, template=embedder.template)
    spec = TurnstileSpec()
    data = prepare_data(people, root, study_crops(paths, config, people, embedder.template), config)
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
    card_path: Path, card: ModelCard, people: StudyPeople, setup: StudySetup, runs: list[SystemRun]
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
        rows.append(StudyRow(system=run.system, k=run.k, **metrics.model_dump(), seconds=run.seconds, **run.details))
    return StudyResult(
        config=config,
        model=StudyModel(
            card=str(card_path),
            model_id=card.model_id,
            architecture=card.architecture,
            held_out_pins=len(held_out_names(card)),
            results=card.results,
            unseen=unseen_datasets(card) or None,
        ),
        people=people,
        walks=StudyWalks(
            employee=int(employee.sum()),
            calibration=int((walks.group == CALIBRATION).sum()),
            test=int((walks.group == TEST).sum()),
            frames_per_walk=len(config.walk_t),
            frames_without_usable_face=int((~walks.found).sum()),
            frames=int(walks.found.size),
            frame_size=[config.frame_width, config.frame_height],
            camera=[setup.spec.width, setup.spec.height],
        ),
        rows=rows,
        catch_up={system: catch_up(rows, system) for system in (END_TO_END, MIDDLE) if system in config.systems},
        warning=seen_warning(people),
    )


def seen_warning(people: StudyPeople) -> str | None:
    if not people.seen:
        return None
    return (
        f"WARNING: --allow-seen: {len(people.seen)} of the study's people were in the embedder's training data "
        "(the two-stage numbers are optimistic; a smoke test, not a result)"
    )
