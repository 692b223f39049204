"""Offline face verification on LFW-style pairs files: the gate's detector, aligner and embedder, scored.

Protocol notes:
- Each distinct image is read and detected once. The face kept is `central_face` (the largest, nearest the
  centre: news photos show bystanders). The quality gate is NOT applied: this benchmark measures the
  embedding on every detectable face, as published LFW figures do; the gate's refusals are measured elsewhere.
- An image where no face is found is counted in `failed_to_detect`, and every pair using it gets the score
  -1 (a certain non-match): at the door a face that is not found never opens it. Genuine pairs therefore
  count as errors, impostor pairs as correct rejections.
- Folds: `folds n` files (pairs.txt: 10 folds of n same + n different pairs) use their folds; a single-block
  file (`n`, as pairsDevTest.txt's 500 + 500) is cut in order into min(10, n) folds of n/10 same + n/10
  different pairs, so k-fold accuracy is defined for both.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evaluation.intervals import bootstrap_by_person, person_indices
from evaluation.results import BootstrapIntervals, ScoredPairs, VerificationMetrics, VerificationResult
from gate.config import CALIBRATED_FARS
from gate.errors import FaceGateError
from gate.model.embedder import Embedder
from gate.vision.detection import central_face
from gate.vision.faces import FacePipeline
from gate.vision.imageio import image_files, load_image
from training.metrics import allowed_false_accepts, auc, eer, kfold_accuracy, tar_at_far

log = logging.getLogger(__name__)

FAILED_SCORE = float("-inf")  # the score of a pair with an image where no face was found: below every threshold
REPORT_FARS = CALIBRATED_FARS[:3]  # 1e-5 needs more impostor pairs than a pairs file holds
BATCH = 16  # images detected and embedded together
SINGLE_BLOCK_FOLDS = 10


@dataclass(frozen=True)
class Pair:
    """Two images (paths relative to the image root), whether they show the same person, and the fold."""

    left: str
    right: str
    same: bool
    fold: int


def image_name(name: str, number: int) -> str:
    """LFW's file naming: `<name>/<name>_<number:04d>.jpg`."""
    return f"{name}/{name}_{number:04d}.jpg"


def _header(fields: list[str], path: Path) -> tuple[int, int]:
    """(folds, n) from the first line: `n` or `folds n`."""
    if len(fields) not in (1, 2) or not all(f.isdigit() and int(f) > 0 for f in fields):
        got = " ".join(fields)
        raise FaceGateError(f"{path}: line 1 must be 'n' or 'folds n' (positive integers), got {got!r}")
    return (1, int(fields[0])) if len(fields) == 1 else (int(fields[0]), int(fields[1]))


def _pair(fields: list[str], same: bool, fold: int, where: str) -> Pair:
    """One pair line: `name n1 n2` (same person) or `name1 n1 name2 n2` (different people)."""
    expected = "'name n1 n2'" if same else "'name1 n1 name2 n2'"
    numbers = fields[1:] if same else fields[1::2]
    if len(fields) != (3 if same else 4) or not all(n.isdigit() for n in numbers):
        raise FaceGateError(f"{where}: expected {expected}, got {' '.join(fields)!r}")
    if same:
        return Pair(image_name(fields[0], int(fields[1])), image_name(fields[0], int(fields[2])), True, fold)
    return Pair(image_name(fields[0], int(fields[1])), image_name(fields[2], int(fields[3])), False, fold)


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Read an LFW pairs file: a header `n` or `folds n`, then per fold n same pairs and n different pairs."""
    path = Path(path)
    if not path.is_file():
        raise FaceGateError(f"pairs file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise FaceGateError(f"{path}: not a text pairs file") from None
    numbered = [(i, line.split()) for i, line in enumerate(lines, 1) if line.split()]
    if not numbered:
        raise FaceGateError(f"{path}: empty pairs file")
    folds, n = _header(numbered[0][1], path)
    body = numbered[1:]
    if len(body) != folds * 2 * n:
        raise FaceGateError(
            f"{path}: header promises {folds} fold(s) x ({n} same + {n} different) = {folds * 2 * n} pairs, "
            f"the file has {len(body)}"
        )
    split = min(SINGLE_BLOCK_FOLDS, n)
    pairs = []
    for position, (line, fields) in enumerate(body):
        block, j = divmod(position, 2 * n)
        fold = block if folds > 1 else (j % n) * split // n
        pairs.append(_pair(fields, j < n, fold, f"{path}:{line}"))
    return pairs


def pairs_among(pairs: list[Pair], people: set[str]) -> list[Pair]:
    """The pairs whose two people are both listed, folds kept: e.g. LFW's 10-fold pairs.txt restricted to people
    a model never trained on (pairs.txt's people overlap peopleDevTrain)."""
    kept = [pair for pair in pairs if {pair.left.split("/")[0], pair.right.split("/")[0]} <= people]
    if all(pair.same for pair in kept) or not any(pair.same for pair in kept):  # an empty list fails too
        raise FaceGateError("the people list leaves no same-and-different pairs to score; check --people")
    return kept


def folder_photos(root: str | os.PathLike, people: set[str] | None = None) -> dict[str, list[str]]:
    """{person: sorted image file names} of a `<person>/<images>` folder, optionally only the named people."""
    root = Path(root)
    if not root.is_dir():
        raise FaceGateError(f"{root}: image folder not found")
    found = {d.name: [p.name for p in image_files(d)] for d in sorted(root.iterdir()) if d.is_dir()}
    if people is not None:
        missing = sorted(people - set(found))
        if missing:
            raise FaceGateError(f"{len(missing)} listed people have no folder under {root} (first: {missing[0]})")
        found = {name: files for name, files in found.items() if name in people}
    return {name: files for name, files in found.items() if files}


def make_pairs(
    root: str | os.PathLike, folds: int = 10, per_fold: int = 300, seed: int = 0, people: set[str] | None = None
) -> list[Pair]:
    """Pairs for any `<person>/<images>` folder, LFW-style: people are dealt into `folds` identity-disjoint
    folds, and each fold gets up to `per_fold` same-person pairs (a person, then two of their photos) and as many
    different-person pairs (two people, a photo of each) drawn among its own people; distinct and seeded: the
    same folder and seed give the same pairs. `people` keeps only those people."""
    root = Path(root)
    photos = folder_photos(root, people)
    if len(photos) < 2 * folds:
        raise FaceGateError(f"{root}: {len(photos)} people with photos; {folds} folds need at least {2 * folds}")
    rng = np.random.default_rng(seed)
    names = list(photos)
    dealt = [names[i] for i in rng.permutation(len(names))]
    pairs: list[Pair] = []
    for fold in range(folds):
        members = dealt[fold::folds]
        several = [n for n in members if len(photos[n]) >= 2]
        couples = list(combinations(members, 2))
        if not several:
            raise FaceGateError(f"{root}: fold {fold} has no person with 2 photos; use fewer folds")
        same: dict[tuple[str, str], None] = {}  # person first, then two of their photos: no one person dominates
        for _ in range(20 * per_fold):
            if len(same) == per_fold:
                break
            name = several[rng.integers(len(several))]
            a, b = sorted(rng.choice(len(photos[name]), 2, replace=False))
            same[(f"{name}/{photos[name][a]}", f"{name}/{photos[name][b]}")] = None
        count = min(len(same), len(couples))
        pairs += [Pair(left, right, True, fold) for left, right in list(same)[:count]]
        for i in sorted(rng.choice(len(couples), count, replace=False)):
            a, b = couples[i]
            left, right = f"{a}/{rng.choice(photos[a])}", f"{b}/{rng.choice(photos[b])}"
            pairs.append(Pair(left, right, False, fold))
    return pairs


def embed_images_with(
    paths: list[Path], pipeline: FacePipeline, embedders: list[Embedder], progress: bool = True
) -> tuple[list[np.ndarray], np.ndarray]:
    """([embeddings (N, D) float32 per embedder], found (N,) bool): each image's central face, detected and
    aligned once, embedded by every embedder (they must share the pipeline's crop size).

    Rows where no face was found stay zero.
    """
    embeddings = [np.zeros((len(paths), e.card.embedding_size), dtype=np.float32) for e in embedders]
    found = np.zeros(len(paths), dtype=bool)
    with tqdm(total=len(paths), desc="evaluating", unit="image", disable=not progress) as bar:
        for start in range(0, len(paths), BATCH):
            images = [load_image(path) for path in paths[start : start + BATCH]]
            crops, rows = [], []
            for offset, (image, faces) in enumerate(zip(images, pipeline.detector.detect_batch(images), strict=True)):
                face = central_face(faces, image.shape[1], image.shape[0])
                if face is not None:
                    crops.append(pipeline.crop(image, face).crop)
                    rows.append(start + offset)
            if crops:
                batch = np.stack(crops)
                for out, embedder in zip(embeddings, embedders, strict=True):
                    out[rows] = embedder.embed(batch)
                found[rows] = True
            bar.update(len(images))
    return embeddings, found


def embed_images(
    paths: list[Path], pipeline: FacePipeline, embedder: Embedder, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (N, D) float32, found (N,) bool) of one embedder: see embed_images_with."""
    embeddings, found = embed_images_with(paths, pipeline, [embedder], progress)
    return embeddings[0], found


def embed_named(
    names: list[str], image_root: Path, pipeline: FacePipeline, embedder: Embedder, progress: bool = True
) -> dict[str, np.ndarray | None]:
    """{image name: its central face's unit embedding, or None where no face was found}."""
    embeddings, found = embed_images([image_root / name for name in names], pipeline, embedder, progress)
    return {name: (embeddings[i] if found[i] else None) for i, name in enumerate(names)}


def verification_metrics(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> VerificationMetrics:
    """k-fold accuracy, AUC, EER, and TAR with its threshold at each reported FAR.

    `far_support[far]` is how many impostor pairs that FAR lets through at most (floor(far x impostors));
    0 means the FAR is below this benchmark's resolution and its threshold is just above the highest impostor.
    """
    accuracy, accuracy_std, _ = kfold_accuracy(scores, labels, folds)
    impostors = int(np.sum(~labels))
    tar, thresholds = {}, {}
    for far in REPORT_FARS:
        tar[far], thresholds[far] = tar_at_far(scores, labels, float(far))
    return VerificationMetrics(
        genuine_pairs=int(np.sum(labels)),
        accuracy=accuracy,
        accuracy_std=accuracy_std,
        auc=auc(scores, labels),
        eer=eer(scores, labels),
        tar_at_far=tar,
        fnmr_at_fmr={far: 1.0 - value for far, value in tar.items()},
        thresholds_at_far=thresholds,
        impostor_pairs=impostors,
        far_support={far: allowed_false_accepts(impostors, float(far)) for far in REPORT_FARS},
    )


def scored_pairs(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> ScoredPairs:
    """The metrics of scored pairs together with the scores (for intervals, fused scores, benchmarks)."""
    return ScoredPairs(**vars(verification_metrics(scores, labels, folds)), scores=scores, labels=labels)


def check_pairs(pairs: list[Pair], image_root: Path) -> list[str]:
    """The distinct image names, after checking the pairs can be scored and every image exists."""
    if not any(p.same for p in pairs) or all(p.same for p in pairs):
        raise FaceGateError("the pairs need both same-person and different-person pairs")
    if len({p.fold for p in pairs}) < 2:
        raise FaceGateError("the pairs need at least 2 folds for k-fold accuracy (a header 'n' with n >= 2)")
    names = sorted({p.left for p in pairs} | {p.right for p in pairs})
    missing = [name for name in names if not (image_root / name).is_file()]
    if missing:
        raise FaceGateError(
            f"{len(missing)} of {len(names)} images not found under {image_root} (first: {missing[0]}); "
            "point --images at the folder holding <Person>/<Person>_NNNN.jpg"
        )
    return names


def evaluate_pairs(
    pairs: list[Pair],
    image_root: str | os.PathLike,
    pipeline: FacePipeline,
    embedder: Embedder,
    progress: bool = True,
    vectors: dict[str, np.ndarray | None] | None = None,
) -> VerificationResult:
    """Score every pair as the model does (cosine, or normalised: gate/model/scoring.py) and summarise (module notes).
    `vectors` (from `embed_named`) saves embedding the images again."""
    image_root = Path(image_root)
    names = check_pairs(pairs, image_root)
    vectors = vectors if vectors is not None else embed_named(names, image_root, pipeline, embedder, progress)
    found = np.array([vectors[name] is not None for name in names])
    blank = np.zeros(embedder.card.embedding_size, dtype=np.float32)
    embeddings = np.stack([blank if (v := vectors[name]) is None else v for name in names]).astype(np.float32)
    row = {name: i for i, name in enumerate(names)}
    left = np.array([row[p.left] for p in pairs])
    right = np.array([row[p.right] for p in pairs])
    scores = embedder.scorer.pair_scores(embeddings[left], embeddings[right]).astype(np.float64)
    failed = ~(found[left] & found[right])
    scores[failed] = FAILED_SCORE
    if not found.all():
        log.warning(
            "no face found in %d of %d images: %d pairs scored %s",
            (~found).sum(),
            len(names),
            failed.sum(),
            FAILED_SCORE,
        )
    labels = np.array([p.same for p in pairs])
    return VerificationResult(
        **vars(scored_pairs(scores, labels, np.array([p.fold for p in pairs]))),
        pairs=len(pairs),
        images=len(names),
        failed_to_detect=int(np.sum(~found)),
        failure_to_acquire_rate=float(np.mean(~found)),
        pairs_failed=int(np.sum(failed)),
        model_id=embedder.model_id,
    )


def write_json(result: VerificationResult, path: str | os.PathLike) -> None:
    """Write the published part as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")


def _pair_people(pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
    return person_indices([p.left.split("/")[0] for p in pairs], [p.right.split("/")[0] for p in pairs])


def _verification_values(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray, fars: list[str]) -> dict:
    """The k-fold accuracy, AUC, EER and TAR at each FAR of some scored pairs."""
    values = {
        "accuracy": kfold_accuracy(scores, labels, folds)[0],
        "auc": auc(scores, labels),
        "eer": eer(scores, labels),
    }
    values.update({f"tar_at_far_{far}": tar_at_far(scores, labels, float(far))[0] for far in fars})
    return values


def verification_intervals(
    result: ScoredPairs, pairs: list[Pair], resamples: int = 1000, seed: int = 0
) -> BootstrapIntervals:
    """Bootstrap 95 % intervals, resampled by person (evaluation/intervals.py), of the k-fold accuracy, AUC, EER
    and the TAR at each reported FAR the pairs can resolve."""
    scores, labels = result.scores, result.labels
    folds = np.array([p.fold for p in pairs])
    fars = [far for far in REPORT_FARS if result.far_support[far]]

    def statistic(index: np.ndarray) -> dict[str, float]:
        return _verification_values(scores[index], labels[index], folds[index], fars)

    left, right = _pair_people(pairs)
    return BootstrapIntervals.from_json(bootstrap_by_person(statistic, left, right, labels, resamples, seed))


def paired_difference_intervals(
    result_a: ScoredPairs, result_b: ScoredPairs, pairs: list[Pair], resamples: int = 1000, seed: int = 0
) -> dict:
    """Bootstrap intervals, resampled by person, of model B's metrics minus model A's on the same pairs: both
    models see the same resample each time, so the people both models find hard cancel out of the difference
    (on pairsDevTest its AUC interval is half as wide as one model's own). A difference whose interval
    excludes 0 is a measured gain (or loss)."""
    labels = result_a.labels
    if len(labels) != len(result_b.labels) or not np.array_equal(labels, result_b.labels):
        raise FaceGateError("the two results were not scored on the same pairs")
    folds = np.array([p.fold for p in pairs])
    fars = [far for far in REPORT_FARS if result_a.far_support[far]]

    def statistic(index: np.ndarray) -> dict[str, float]:
        a = _verification_values(result_a.scores[index], labels[index], folds[index], fars)
        b = _verification_values(result_b.scores[index], labels[index], folds[index], fars)
        return {name: b[name] - a[name] for name in a}

    left, right = _pair_people(pairs)
    return bootstrap_by_person(statistic, left, right, labels, resamples=resamples, seed=seed)
