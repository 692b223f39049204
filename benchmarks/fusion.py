"""Score fusion: the default model's pair scores fused with a second model's (the small MobileFaceNet), against the
default alone on the same LFW pairs, with a paired person bootstrap of the difference.

Run: `python benchmarks/fusion.py [--model-b gate/models/mobilefacenet.json] [--weights 0.1 0.2 0.3] [--pairs FILE]`.
The two models' cosines live on different scales (dlib's port: impostors near 0.83, genuine near 0.95; the
MobileFaceNet: 0.1 and 0.6), so each model's scores are standardised by the mean and spread of all its scores on
these pairs (no labels used), then mixed: (1 - w) z_A + w z_B. Prints, per weight, the fused metrics and the
fused minus A with its 95 % interval (1,000 resamples of the people).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from evaluation.results import ScoredPairs
from evaluation.verification import evaluate_pairs, paired_difference_intervals, read_pairs, scored_pairs
from gate.model.card import SHIPPED_CARD, SHIPPED_MODELS
from gate.model.embedder import Embedder
from gate.vision.faces import FacePipeline
from training.datasets import dataset_root, lfw_images


def standardised(scores: np.ndarray) -> np.ndarray:
    return (scores - scores.mean()) / scores.std()


def fused_result(result_a: ScoredPairs, result_b: ScoredPairs, weight: float, folds: np.ndarray) -> ScoredPairs:
    """The metrics of the mixed, standardised scores (with model A's FAR support: the same pairs)."""
    scores = (1 - weight) * standardised(result_a.scores) + weight * standardised(result_b.scores)
    fused = scored_pairs(scores, result_a.labels, folds)
    fused.far_support = result_a.far_support
    return fused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-a", type=Path, default=SHIPPED_CARD)
    parser.add_argument("--model-b", type=Path, default=SHIPPED_MODELS / "mobilefacenet.json")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5])
    parser.add_argument("--pairs", type=Path, default=None, help="default: LFW pairsDevTest.txt")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    root = dataset_root()
    pairs = read_pairs(args.pairs or root / "lfw" / "pairsDevTest.txt")
    images = lfw_images(root)
    embedders = [Embedder(args.model_a), Embedder(args.model_b)]
    results = [evaluate_pairs(pairs, images, FacePipeline(template=e.template), e) for e in embedders]
    folds = np.array([p.fold for p in pairs])
    print(f"A: {embedders[0].model_id}; B: {embedders[1].model_id}; {len(pairs)} pairs")
    print(f"{'w (B share)':12} {'accuracy':>9} {'AUC':>8} {'EER':>7}  {'accuracy - A':>26}  {'AUC - A':>26}")
    for weight in [0.0, *args.weights]:
        fused = fused_result(*results, weight, folds)
        boot = paired_difference_intervals(results[0], fused, pairs, args.resamples)["intervals"]
        cells = []
        for name in ("accuracy", "auc"):
            low, high = boot[name]
            cells.append(f"{getattr(fused, name) - getattr(results[0], name):+.4f} [{low:+.4f}, {high:+.4f}]")
        metrics = f"{fused.accuracy:9.4f} {fused.auc:8.4f} {fused.eer:7.4f}"
        print(f"{weight:<12.2f} {metrics}  {cells[0]:>26}  {cells[1]:>26}")


if __name__ == "__main__":
    main()
