"""Score normalisation on LFW pairsDevTest: raw cosine against symmetric S-norm and adaptive S-norm (AS-norm).

Run: `python benchmarks/score_norm.py [--cohort 3000] [--model CARD]`. Needs the training crops
(`facegate prepare`): the cohort is a seeded sample of LFW peopleDevTrain crops (people the evaluation never
sees). Each image is scored against the cohort; a pair's score s becomes
0.5 * ((s - mu_a) / sd_a + (s - mu_b) / sd_b), with mu/sd over the whole cohort (S-norm) or over each image's
top-K cohort scores (AS-norm). Prints accuracy, AUC, EER and TAR@FAR 1e-2 per variant, same metric code as
`facegate evaluate`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gate.embedder import Embedder
from gate.pipeline import FacePipeline
from training.crops import load_crops
from training.data import read_people
from training.datasets import dataset_root, lfw_images
from training.evaluate import check_pairs, embed_named, read_pairs, verification_metrics


def cohort_stats(vectors: np.ndarray, cohort: np.ndarray, top: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Per vector, mean and std of its `top` highest cohort scores (all of them when top is None)."""
    scores = vectors @ cohort.T
    if top is not None:
        scores = -np.sort(-scores, axis=1)[:, :top]
    return scores.mean(axis=1), scores.std(axis=1) + 1e-6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", type=int, default=3000, help="cohort crops sampled from LFW DevTrain")
    parser.add_argument("--crops", type=Path, default=Path(".crops"), help="folder of `facegate prepare` crops")
    parser.add_argument("--model", type=Path, default=None, help="model card (default: the shipped model)")
    args = parser.parse_args()
    root = dataset_root()
    embedder = Embedder(args.model)
    pairs = read_pairs(root / "lfw" / "pairsDevTest.txt")
    images = lfw_images(root)
    names = check_pairs(pairs, images)
    vectors = embed_named(names, images, FacePipeline(template=embedder.template), embedder)
    dev_train = set(read_people(root / "lfw" / "peopleDevTrain.txt"))
    crops = load_crops(args.crops / "lfw.npz", people=dev_train)
    pick = np.random.default_rng(0).choice(np.flatnonzero(crops.detected), size=args.cohort, replace=False)
    cohort = embedder.embed(crops.crops[np.sort(pick)])
    found = np.array([vectors[n] is not None for n in names])
    blank = np.zeros(embedder.card.embedding_size, dtype=np.float32)
    matrix = np.stack([blank if vectors[n] is None else vectors[n] for n in names])
    row = {name: i for i, name in enumerate(names)}
    left, right = np.array([row[p.left] for p in pairs]), np.array([row[p.right] for p in pairs])
    raw = np.einsum("ij,ij->i", matrix[left], matrix[right])
    labels, folds = np.array([p.same for p in pairs]), np.array([p.fold for p in pairs])
    variants = {"raw cosine": raw}
    for name, top in (("S-norm (whole cohort)", None), ("AS-norm top 300", 300), ("AS-norm top 100", 100)):
        mean, std = cohort_stats(matrix, cohort, top)
        variants[name] = 0.5 * ((raw - mean[left]) / std[left] + (raw - mean[right]) / std[right])
    print(f"{embedder.model_id}: {len(pairs)} pairs, {int((~found).sum())} images without a face, "
          f"cohort {len(cohort)} DevTrain crops")  # fmt: skip
    print(f"{'variant':24} {'accuracy':>15} {'AUC':>7} {'EER':>7} {'TAR@1e-2':>9}")
    for name, scores in variants.items():
        scores = np.where(found[left] & found[right], scores, -np.inf)
        m = verification_metrics(scores, labels, folds)
        accuracy = f"{m['accuracy']:.4f}±{m['accuracy_std']:.4f}"
        print(f"{name:24} {accuracy:>15} {m['auc']:7.4f} {m['eer']:7.4f} {m['tar_at_far']['0.01']:9.4f}")


if __name__ == "__main__":
    main()
