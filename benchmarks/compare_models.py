"""Two model cards on the same LFW pairs: each one's metrics, and B minus A with a paired person bootstrap.

Run: `python benchmarks/compare_models.py A.json B.json [--pairs FILE] [--people FILE] [--resamples 1000]`
(default pairs: pairsDevTest.txt; `--people` keeps the pairs of two listed people, as `facegate evaluate`).
Both models see the same photos, the same detected and aligned faces (detected once when both take crops of
the same size) and the same resampled people, so the interval of the
difference says whether B measurably beats A (it excludes 0) where the two models' own intervals overlap.
Prints a table: metric, A, B, B - A and its 95 % interval (EER: lower is better).

`--validation` compares them instead on the training pool's held-out validation people (LFW DevTrain people no
run trains on; both cards must have been trained with the same split: seed, val_people, holdout_pins; without
the single-photo people when either trained on them, `singles_per_batch`) at the
calibration FARs 1e-2, 1e-3 and 1e-4: every pair of those 3,199 crops, 795 genuine and 5.1 M impostor pairs,
which resolves the gate's low-FAR operating points that LFW's 500 impostor pairs cannot
(`[--crops .crops]`, the aligned crops of `facegate prepare`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from evaluation.intervals import paired_tar_intervals
from evaluation.results import VerificationResult
from evaluation.verification import (
    check_pairs,
    embed_images_with,
    evaluate_pairs,
    paired_difference_intervals,
    pairs_among,
    read_pairs,
)
from gate.errors import FaceGateError
from gate.model.embedder import Embedder
from gate.model.scoring import cohort_people
from gate.vision.faces import FacePipeline
from training.calibration import FARS, calibrate
from training.crops import crop_template_of
from training.data import VALIDATION_SPLIT, build_pool
from training.datasets import dataset_root, lfw_images, read_people_list


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_a", type=Path, help="model card A (e.g. gate/models/default.json)")
    parser.add_argument("model_b", type=Path, help="model card B")
    parser.add_argument("--pairs", type=Path, default=None, help="LFW pairs file (default: pairsDevTest.txt)")
    parser.add_argument("--people", type=Path, default=None, help="only the pairs of two listed people")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--validation", action="store_true", help="compare on the held-out validation people")
    parser.add_argument("--crops", type=Path, default=Path(".crops"), help="aligned crops (with --validation)")
    args = parser.parse_args()
    root = dataset_root()
    if args.validation:
        compare_on_validation(args.model_a, args.model_b, args.crops, root, args.resamples)
        return
    pairs = read_pairs(args.pairs or root / "lfw" / "pairsDevTest.txt")
    if args.people:
        pairs = pairs_among(pairs, read_people_list(args.people))
    images = lfw_images(root)
    embedders = [Embedder(args.model_a), Embedder(args.model_b)]
    names = check_pairs(pairs, images)
    paths = [images / name for name in names]
    pipelines = [FacePipeline(template=e.template) for e in embedders]
    named: list[dict | None] = [None, None]  # None: evaluate_pairs detects and embeds for its model alone
    if embedders[0].template == embedders[1].template:  # detect and align once for both
        vectors, found = embed_images_with(paths, pipelines[0], embedders)
        named = [{name: v[row] if found[row] else None for row, name in enumerate(names)} for v in vectors]
    results = {}
    for i, (key, card) in enumerate((("A", args.model_a), ("B", args.model_b))):
        results[key] = evaluate_pairs(pairs, images, pipelines[i], embedders[i], vectors=named[i])
        print(f"{key}: {embedders[i].model_id} ({card}), {results[key].failed_to_detect} images without a face")
    boot = paired_difference_intervals(results["A"], results["B"], pairs, args.resamples)
    print(f"{len(pairs)} pairs; paired bootstrap by person, {boot['resamples']} resamples")
    print(f"{'metric':16} {'A':>8} {'B':>8} {'B - A':>8} {'95 % interval':>20}")
    for name, (low, high) in boot["intervals"].items():
        a, b = (_value(results[k], name) for k in ("A", "B"))
        print(f"{name:16} {a:8.4f} {b:8.4f} {b - a:+8.4f} {f'[{low:+.4f}, {high:+.4f}]':>20}")


def compare_on_validation(card_a: Path, card_b: Path, crops: Path, root: Path, resamples: int) -> None:
    embedders = [Embedder(card_a), Embedder(card_b)]
    if embedders[0].template != embedders[1].template or crop_template_of(crops / "lfw.npz") != embedders[0].template:
        raise FaceGateError(f"--validation needs two models of one crop template, and crops in {crops} aligned to it")
    configs = [e.card.training.get("config", {}) for e in embedders]
    splits = [{k: config.get(k, v) for k, v in VALIDATION_SPLIT.items()} for config in configs]
    if splits[0] != splits[1]:
        raise FaceGateError(f"the two models held out different validation people: {splits[0]} vs {splits[1]}")
    # a model that trained on the single-photo people (through the teacher) must not be validated on them
    singles = any(config.get("singles_per_batch", 0) > 0 for config in configs)
    pool = build_pool(crops, root / "lfw", **splits[0], train_singles=singles)
    embeddings = [e.embed(pool.val.crops) for e in embedders]
    in_cohorts = {person for e in embedders for person in cohort_people(e.card_path, e.card)}
    if overlap := sorted(set(pool.val.person.tolist()) & in_cohorts):
        raise FaceGateError(f"a model's score-normalisation cohort holds validation people: {overlap[:5]}")
    scorers = tuple(e.scorer for e in embedders)
    summaries = [calibrate(v, pool.val_labels, s)["summary"] for v, s in zip(embeddings, scorers, strict=True)]
    boot = paired_tar_intervals(*embeddings, pool.val_labels, resamples, scorers=scorers)
    for key, embedder in zip("AB", embedders, strict=True):
        print(f"{key}: {embedder.model_id}")
    print(
        f"validation people of {splits[0]}: {summaries[0]['genuine_pairs']} genuine, "
        f"{summaries[0]['impostor_pairs']} impostor pairs; paired bootstrap by person, {boot['resamples']} resamples"
    )
    print(f"{'metric':16} {'A':>8} {'B':>8} {'B - A':>8} {'95 % interval':>20}")
    for far in FARS:
        a, b = (s[f"tar_at_far_{far}"] for s in summaries)
        low, high = boot["intervals"][far]
        print(f"{'tar_at_far_' + far:16} {a:8.4f} {b:8.4f} {b - a:+8.4f} {f'[{low:+.4f}, {high:+.4f}]':>20}")


def _value(result: VerificationResult, name: str) -> float:
    if name.startswith("tar_at_far_"):
        return result.tar_at_far[name.removeprefix("tar_at_far_")]
    return getattr(result, name)


if __name__ == "__main__":
    main()
