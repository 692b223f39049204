"""Where FaceGate's verification errors fall, beside dlib's, on the same aligned crops of LFW pairsDevTest.

Run: `python benchmarks/error_sources.py [--model CARD] [--crops DIR] [--pairs FILE]` (needs the `teacher`
extra and `facegate prepare`'s lfw.npz). Both networks read the same stored 112x112 crops (dlib as the
distillation teacher does), so a difference between their errors belongs to the networks, not to detection or
alignment. A pair is an error when the 10-fold protocol misjudges it (each fold's threshold fitted on the other
nine, the errors behind the reported accuracy). The pairs are split into thirds by two properties of their
photos: the pose difference (|a - b| of each face's nose offset from the eye midpoint, in eye distances, from
MTCNN's landmarks: a yaw proxy) and the sharpness of the blurrier photo (variance of the crop's Laplacian).
Prints, for each third, the false-reject rate on same-person pairs and the false-accept rate on different-person
pairs of both networks, then how many errors the two share.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from peer_dlib import pair_crops, teacher_scores
from tqdm import tqdm

from evaluation.verification import read_pairs
from gate.model.embedder import Embedder
from gate.vision.detection import Detector, central_face
from gate.vision.imageio import load_image
from training.datasets import dataset_root, lfw_images
from training.metrics import kfold_accuracy

BATCH = 16


def nose_offset(landmarks: np.ndarray) -> float:
    """Signed distance of the nose from the eye midpoint along the eye line, in eye distances (0: frontal)."""
    left, right, nose = landmarks[0], landmarks[1], landmarks[2]
    eyes = right - left
    return float(np.dot(nose - (left + right) / 2, eyes) / np.dot(eyes, eyes))


def nose_offsets(names: list[str], images: Path) -> dict[str, float]:
    """Each photo's central face's nose offset (NaN where MTCNN finds no face)."""
    detector, offsets = Detector(), {}
    for start in tqdm(range(0, len(names), BATCH), desc="landmarks", unit="batch"):
        chunk = names[start : start + BATCH]
        photos = [load_image(images / name) for name in chunk]
        for name, photo, faces in zip(chunk, photos, detector.detect_batch(photos), strict=True):
            face = central_face(faces, photo.shape[1], photo.shape[0])
            offsets[name] = float("nan") if face is None else nose_offset(face.landmarks)
    return offsets


def sharpness(crop: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def kfold_errors(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> tuple[np.ndarray, float]:
    """(which pairs the 10-fold protocol misjudges, its accuracy)."""
    accuracy, _, thresholds = kfold_accuracy(scores, labels, folds)
    per_pair = thresholds[np.searchsorted(np.unique(folds), folds)]
    return (scores >= per_pair) != labels, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="FaceGate model card (default: the shipped one)")
    parser.add_argument("--crops", type=Path, default=Path(".crops"), help="folder of `facegate prepare` crops")
    parser.add_argument("--pairs", type=Path, default=dataset_root() / "lfw" / "pairsDevTest.txt")
    args = parser.parse_args()
    pairs = read_pairs(args.pairs)
    crops = pair_crops(pairs, args.crops / "lfw.npz")
    names = list(crops)
    embedder = Embedder(args.model)
    vectors = dict(zip(names, embedder.embed(np.stack(list(crops.values()))), strict=True))
    ours = np.array([float(vectors[p.left] @ vectors[p.right]) for p in pairs])
    theirs, _ = teacher_scores(pairs, crops)
    labels, folds = np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])
    (our_errors, our_accuracy), (their_errors, their_accuracy) = (
        kfold_errors(ours, labels, folds),
        kfold_errors(theirs, labels, folds),
    )
    offsets = nose_offsets(names, lfw_images())
    sharp = {name: sharpness(crop) for name, crop in crops.items()}
    properties = {
        "pose difference": np.array([abs(offsets[p.left] - offsets[p.right]) for p in pairs]),
        "sharpness (blurrier photo)": np.array([min(sharp[p.left], sharp[p.right]) for p in pairs]),
    }
    print(f"{len(pairs)} pairs of {args.pairs.name}; 10-fold accuracy on the stored crops: "
          f"FaceGate {embedder.model_id} {our_accuracy:.4f}, dlib {their_accuracy:.4f}")  # fmt: skip
    print(f"{'property':28} {'third':>17} {'same/diff':>10} {'FaceGate FRR':>13} {'dlib FRR':>9}"
          f" {'FaceGate FAR':>13} {'dlib FAR':>9}")  # fmt: skip
    for name, values in properties.items():
        known = ~np.isnan(values)
        edges = np.quantile(values[known], [0, 1 / 3, 2 / 3, 1])
        for third, (low, high) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
            inside = known & (values >= low) & ((values < high) if third < 2 else (values <= high))
            same, diff = inside & labels, inside & ~labels
            print(
                f"{name:28} {f'{low:.3g} - {high:.3g}':>17} {f'{same.sum()}/{diff.sum()}':>10}"
                f" {our_errors[same].mean():13.1%} {their_errors[same].mean():9.1%}"
                f" {our_errors[diff].mean():13.1%} {their_errors[diff].mean():9.1%}"
            )
    shared = our_errors & their_errors
    print(f"errors: FaceGate {our_errors.sum()}, dlib {their_errors.sum()}, both {shared.sum()} "
          f"({shared[labels].sum()} same-person, {shared[~labels].sum()} different-person pairs)")  # fmt: skip


if __name__ == "__main__":
    main()
