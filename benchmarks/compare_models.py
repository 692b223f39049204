"""Two model cards on the same LFW pairs: each one's metrics, and B minus A with a paired person bootstrap.

Run: `python benchmarks/compare_models.py A.json B.json [--pairs FILE] [--people FILE] [--resamples 1000]`
(default pairs: pairsDevTest.txt; `--people` keeps the pairs of two listed people, as `facegate evaluate`).
Both models see the same photos, the same detected and aligned faces (detected once when both take crops of
the same size) and the same resampled people, so the interval of the
difference says whether B measurably beats A (it excludes 0) where the two models' own intervals overlap.
Prints a table: metric, A, B, B - A and its 95 % interval (EER: lower is better).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gate.embedder import Embedder
from gate.pipeline import FacePipeline
from training.datasets import dataset_root, lfw_images
from training.evaluate import (
    check_pairs,
    embed_images_with,
    evaluate_pairs,
    paired_difference_intervals,
    pairs_among,
    read_pairs,
    read_people_list,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_a", type=Path, help="model card A (e.g. gate/models/default.json)")
    parser.add_argument("model_b", type=Path, help="model card B")
    parser.add_argument("--pairs", type=Path, default=None, help="LFW pairs file (default: pairsDevTest.txt)")
    parser.add_argument("--people", type=Path, default=None, help="only the pairs of two listed people")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    args = parser.parse_args()
    root = dataset_root()
    pairs = read_pairs(args.pairs or root / "lfw" / "pairsDevTest.txt")
    if args.people:
        pairs = pairs_among(pairs, read_people_list(args.people))
    images = lfw_images(root)
    embedders = [Embedder(args.model_a), Embedder(args.model_b)]
    names = check_pairs(pairs, images)
    paths = [images / name for name in names]
    pipelines = [FacePipeline(crop_size=e.input_size) for e in embedders]
    named: list[dict | None] = [None, None]  # None: evaluate_pairs detects and embeds for its model alone
    if embedders[0].input_size == embedders[1].input_size:  # detect and align once for both
        vectors, found = embed_images_with(paths, pipelines[0], embedders)
        named = [{name: v[row] if found[row] else None for row, name in enumerate(names)} for v in vectors]
    results = {}
    for i, (key, card) in enumerate((("A", args.model_a), ("B", args.model_b))):
        results[key] = evaluate_pairs(pairs, images, pipelines[i], embedders[i], vectors=named[i])
        print(f"{key}: {embedders[i].model_id} ({card}), {results[key]['failed_to_detect']} images without a face")
    boot = paired_difference_intervals(results["A"], results["B"], pairs, args.resamples)
    print(f"{len(pairs)} pairs; paired bootstrap by person, {boot['resamples']} resamples")
    print(f"{'metric':16} {'A':>8} {'B':>8} {'B - A':>8} {'95 % interval':>20}")
    for name, (low, high) in boot["intervals"].items():
        a, b = (_value(results[k], name) for k in ("A", "B"))
        print(f"{name:16} {a:8.4f} {b:8.4f} {b - a:+8.4f} {f'[{low:+.4f}, {high:+.4f}]':>20}")


def _value(result: dict, name: str) -> float:
    if name.startswith("tar_at_far_"):
        return result["tar_at_far"][name.removeprefix("tar_at_far_")]
    return result[name]


if __name__ == "__main__":
    main()
