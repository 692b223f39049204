"""Score normalisation at the gate's operating points: plain cosine against the model's adaptive S-norm.

Run: `python benchmarks/score_norm.py [--crops .crops150] [--model CARD] [--resamples 200]`. Needs the crops of
`facegate prepare` aligned for the model. Every pair of detected LFW peopleDevTest crops (people neither in the
cohort nor in the calibration) is scored both ways; prints TAR at FAR 1e-3 / 1e-4 / 1e-5 (thresholds from those
pairs' own impostors) with a paired bootstrap interval of the difference by person, and how the card's shipped
thresholds, calibrated on DevTrain people, hold on these new people (the FAR they really give).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from evaluation.intervals import paired_tar_intervals
from gate.errors import FaceGateError
from gate.model.embedder import Embedder
from gate.model.scoring import Scorer, cohort_people
from training.calibrate_card import embed_with_progress
from training.calibration import all_pair_scores, calibrate
from training.crops import crop_template_of, load_crops
from training.datasets import dataset_root, read_people

FARS = ("0.001", "0.0001", "0.00001")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=Path, default=Path(".crops150"), help="folder of `facegate prepare` crops")
    parser.add_argument("--model", type=Path, default=None, help="model card (default: the shipped model)")
    parser.add_argument("--resamples", type=int, default=200, help="bootstrap resamples (by person)")
    args = parser.parse_args()
    embedder = Embedder(args.model)
    if not embedder.scorer.normalised:
        raise FaceGateError(f"{embedder.model_id} has no score-normalisation cohort: nothing to compare")
    if crop_template_of(args.crops / "lfw.npz") != embedder.template:
        raise FaceGateError(f"{args.crops}/lfw.npz is not aligned for {embedder.model_id}")
    people = set(read_people(dataset_root() / "lfw" / "peopleDevTest.txt"))
    if people & cohort_people(embedder.card_path, embedder.card):
        raise FaceGateError("the model's cohort holds DevTest people: the comparison would be flattered")
    crops = load_crops(args.crops / "lfw.npz", people=people)
    crops = crops.subset(crops.detected)
    labels = np.searchsorted(sorted(set(crops.person.tolist())), crops.person)
    embeddings = embed_with_progress(embedder, crops.crops, "DevTest crops")
    scorers = (Scorer(), embedder.scorer)
    summaries = [calibrate(embeddings, labels, s)["summary"] for s in scorers]
    boot = paired_tar_intervals(embeddings, embeddings, labels, args.resamples, scorers=scorers)
    print(f"{embedder.model_id}: {len(crops)} DevTest crops of {labels.max() + 1} people, "
          f"{summaries[0]['genuine_pairs']} genuine / {summaries[0]['impostor_pairs']} impostor pairs; "
          f"cohort {embedder.card.score_norm['images']} crops, top {embedder.scorer.top_k}")  # fmt: skip
    print(f"{'TAR at FAR':12} {'cosine':>8} {'S-norm':>8} {'difference':>11} {'95 % interval':>20}")
    for far in FARS:
        a, b = (s[f"tar_at_far_{far}"] for s in summaries)
        low, high = boot["intervals"][far]
        print(f"{far:12} {a:8.4f} {b:8.4f} {b - a:+11.4f} {f'[{low:+.4f}, {high:+.4f}]':>20}")
    scores, same = all_pair_scores(embeddings, labels, embedder.scorer)
    genuine, impostor = scores[same], scores[~same]
    print("\nthe card's thresholds (calibrated on DevTrain people) on these people:")
    print(f"{'target FAR':12} {'threshold':>10} {'real FAR':>10} {'TAR':>8}")
    for far in FARS:
        threshold = embedder.card.thresholds[far]
        print(f"{far:12} {threshold:10.4f} {np.mean(impostor >= threshold):10.2e} {np.mean(genuine >= threshold):8.4f}")


if __name__ == "__main__":
    main()
