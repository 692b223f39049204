"""FaceGate beside dlib's ResNet (what the face_recognition package runs) on the same LFW pairs, scored by the
same metric code, each timed per image on this CPU.

Run: `python benchmarks/peer_dlib.py [--pairs PATH] [--people FILE] [--model CARD] [--limit N] [--crops DIR]`
(needs the `peer` extra: dlib-bin). `--people` keeps the pairs of two listed
people (pairs.txt restricted to never-trained people); `--crops` adds a row for dlib reading FaceGate's own
aligned crops the way the distillation teacher does (training/teacher.py), from `facegate prepare`'s lfw.npz.
dlib's side is face_recognition's default pipeline: the HOG detector (one upsample), the 5-point shape
predictor and the ResNet descriptor; a pair's score is minus the Euclidean distance of the two descriptors
(face_recognition accepts a distance of at most 0.6). On both sides a photo with no face found gives its pairs
the lowest score, and with several faces the central one is used (gate.vision.detection.central_face).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from evaluation.verification import evaluate_pairs, pairs_among, read_pairs, verification_metrics
from gate.model.embedder import Embedder
from gate.vision.detection import Face, central_face
from gate.vision.faces import FacePipeline
from gate.vision.imageio import load_image
from training.crops import load_crops
from training.datasets import dataset_root, lfw_images, read_people_list
from training.teacher import DlibTeacher, load_dlib

NO_LANDMARKS = np.zeros((5, 2), np.float32)
NO_FACE_SCORE = -10.0  # below any minus-distance of dlib's descriptors (distances stay under 2)


class DlibPeer:
    """face_recognition's pipeline, called through dlib directly (same models, no extra package)."""

    def __init__(self) -> None:
        dlib, self._shape, self._net = load_dlib()
        self._detect = dlib.get_frontal_face_detector()

    def describe(self, image: np.ndarray) -> tuple[np.ndarray | None, float]:
        """(descriptor of the central face or None, seconds spent in the descriptor network)."""
        rects = self._detect(image, 1)
        faces = [Face((r.left(), r.top(), r.right(), r.bottom()), 1.0, NO_LANDMARKS) for r in rects]
        face = central_face(faces, image.shape[1], image.shape[0])
        if face is None:
            return None, 0.0
        rect = rects[faces.index(face)]
        started = time.perf_counter()
        descriptor = np.asarray(self._net.compute_face_descriptor(image, self._shape(image, rect)), np.float32)
        return descriptor, time.perf_counter() - started


def dlib_scores(pairs: list, root: Path, peer: DlibPeer) -> tuple[np.ndarray, int, float, float]:
    """Scores of the pairs, images without a face, seconds per image (all), seconds per descriptor."""
    names = sorted({p.left for p in pairs} | {p.right for p in pairs})
    descriptors: dict[str, np.ndarray | None] = {}
    embed_seconds, started = [], time.perf_counter()
    for name in tqdm(names, desc="dlib", unit="image"):
        descriptors[name], seconds = peer.describe(load_image(root / name))
        if descriptors[name] is not None:
            embed_seconds.append(seconds)
    per_image = (time.perf_counter() - started) / len(names)
    scores = np.array([
        NO_FACE_SCORE if descriptors[p.left] is None or descriptors[p.right] is None
        else -float(np.linalg.norm(descriptors[p.left] - descriptors[p.right]))
        for p in pairs
    ])  # fmt: skip
    missing = sum(d is None for d in descriptors.values())
    return scores, missing, per_image, float(np.median(embed_seconds))


def pair_crops(pairs: list, crops_file: Path) -> dict[str, np.ndarray]:
    """{image name: its stored aligned crop} for every photo of the pairs, from `facegate prepare`'s lfw.npz."""
    names = sorted({p.left for p in pairs} | {p.right for p in pairs})
    crops = load_crops(crops_file, people={name.split("/")[0] for name in names})
    row = {file: i for i, file in enumerate(crops.file)}
    return {name: crops.crops[row[name]] for name in names}


def teacher_scores(pairs: list, crops: dict[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """Scores of the pairs with dlib describing FaceGate's aligned crops (the teacher's view), seconds a crop."""
    teacher, started = DlibTeacher(), time.perf_counter()
    descriptors = {name: teacher.describe(crop) for name, crop in tqdm(crops.items(), desc="teacher", unit="crop")}
    seconds = (time.perf_counter() - started) / len(crops)
    return np.array([-float(np.linalg.norm(descriptors[p.left] - descriptors[p.right])) for p in pairs]), seconds


def _spread(pairs: list, count: int) -> list:
    """`count` pairs taken evenly through the list, so that they keep several folds (the first N share one)."""
    return pairs[:: max(1, len(pairs) // count)][:count]


def facegate_embed_seconds(embedder: Embedder, repeats: int = 50) -> float:
    crop = np.random.default_rng(0).integers(0, 256, (1, embedder.input_size, embedder.input_size, 3), np.uint8)
    embedder.embed(crop)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        embedder.embed(crop)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=dataset_root() / "lfw" / "pairsDevTest.txt")
    parser.add_argument("--people", type=Path, default=None, help="only the pairs of two listed people")
    parser.add_argument("--model", type=Path, default=None, help="FaceGate model card (default: the shipped one)")
    parser.add_argument("--limit", type=int, default=0, help="use only N pairs of each kind, spread over the folds")
    parser.add_argument("--crops", type=Path, default=None, help="folder of `facegate prepare` crops: add a row")
    args = parser.parse_args()
    pairs = read_pairs(args.pairs)
    if args.people:
        pairs = pairs_among(pairs, read_people_list(args.people))
    if args.limit:
        same, different = [p for p in pairs if p.same], [p for p in pairs if not p.same]
        pairs = _spread(same, args.limit) + _spread(different, args.limit)
    root = lfw_images()
    labels = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    embedder = Embedder(args.model)
    started = time.perf_counter()
    ours = evaluate_pairs(pairs, root, FacePipeline(template=embedder.template), embedder)
    images = len({p.left for p in pairs} | {p.right for p in pairs})
    ours_per_image = (time.perf_counter() - started) / images
    scores, missing, dlib_per_image, dlib_embed = dlib_scores(pairs, root, DlibPeer())
    theirs = (verification_metrics(scores, labels, folds), missing)
    rows = [
        (
            f"FaceGate {embedder.model_id}",
            (ours, ours.failed_to_detect),
            ours_per_image,
            facegate_embed_seconds(embedder),
        ),
        ("dlib ResNet (face_recognition)", theirs, dlib_per_image, dlib_embed),
    ]
    if args.crops:
        scores, per_crop = teacher_scores(pairs, pair_crops(pairs, args.crops / "lfw.npz"))
        on_crops = (verification_metrics(scores, labels, folds), 0)
        rows.append(("dlib on FaceGate's aligned crops (the teacher)", on_crops, per_crop, per_crop))
    print(f"{len(pairs)} pairs of {args.pairs.name}, {images} images")
    print(f"{'system':52} {'accuracy':>15} {'AUC':>6} {'EER':>6} {'TAR@1e-2':>9} {'TAR@1e-3':>9} {'no face':>8}"
          f" {'ms/image':>9} {'ms/embed':>9}")  # fmt: skip
    for name, (result, no_face), per_image, per_embed in rows:
        print(
            f"{name:52} {result.accuracy:.4f}±{result.accuracy_std:.4f} {result.auc:6.4f}"
            f" {result.eer:6.4f} {result.tar_at_far['0.01']:9.4f} {result.tar_at_far['0.001']:9.4f}"
            f" {no_face:8d} {per_image * 1000:9.1f} {per_embed * 1000:9.1f}"
        )


if __name__ == "__main__":
    main()
