"""What the network allows at the gate: evaluate-gate's people, scored photo against photo, with hindsight.

Run: `python benchmarks/gate_bound.py [--crops .crops150] [--model CARD] [--employees 120 --strangers 180]`.
Takes the same employees, strangers and photos as `facegate evaluate-gate` (same seed), but instead of a video
scores each walker's still walk photo (its crop from `facegate prepare`) against every enrolled photo,
and picks, with hindsight, the threshold that lets in at most 0, 1, 2 strangers: the employees turned away there
(their best template is someone else's or below it). No video degradation and a threshold tuned on the answers:
a gate rule that works per frame has no obvious way to beat this, though many frames give it more draws.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from evaluation.walkups import pick_walkers
from gate.model.embedder import Embedder
from training.calibrate_card import embed_with_progress
from training.crops import load_crops
from training.datasets import dataset_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=Path, default=Path(".crops150"), help="folder of `facegate prepare` crops")
    parser.add_argument("--model", type=Path, default=None, help="model card (default: the shipped model)")
    parser.add_argument("--employees", type=int, default=120)
    parser.add_argument("--strangers", type=int, default=180)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lfw = dataset_root() / "lfw"
    people_file = lfw / "peopleDevTest.txt"
    walkers = pick_walkers(lfw / "lfw-deepfunneled", people_file, args.employees, args.strangers, args.seed)
    employees = [w for w in walkers if w.enrol_photos]
    strangers = [w for w in walkers if not w.enrol_photos]
    embedder = Embedder(args.model)
    crops = load_crops(args.crops / "lfw.npz", people={w.person for w in walkers})
    vectors = dict(zip([Path(f).name for f in crops.file], embed_with_progress(embedder, crops.crops), strict=True))
    owners = np.array([i for i, w in enumerate(employees) for _ in w.enrol_photos])
    templates = np.stack([vectors[p.name] for w in employees for p in w.enrol_photos])

    def scores(group: list) -> np.ndarray:
        return embedder.scorer.matrix(np.stack([vectors[w.walk_photo.name] for w in group]), templates)

    own, other = scores(employees), scores(strangers)
    right = owners[own.argmax(axis=1)] == np.arange(len(employees))
    stranger_best = np.sort(other.max(axis=1))[::-1]
    print(f"{embedder.model_id}: {len(employees)} employees ({len(templates)} enrolled photos), "
          f"{len(strangers)} strangers, one still photo each")  # fmt: skip
    print(f"{'strangers in':>13} {'threshold':>10} {'employees turned away':>22}")
    for allowed in (0, 1, 2):
        threshold = np.nextafter(stranger_best[allowed], np.inf)
        away = int(np.sum(~right | (own.max(axis=1) < threshold)))
        share = f"{away}/{len(employees)} ({away / len(employees):.1%})"
        print(f"{f'<= {allowed}/{len(strangers)}':>13} {threshold:10.4f} {share:>22}")


if __name__ == "__main__":
    main()
