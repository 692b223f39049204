"""Several templates per person (best match wins, as the gallery does) against one mean template per person.

Run: `python benchmarks/templates.py [--enrol 3]`. LFW DevTest people (never trained on) with more than --enrol
photos are enrolled from their first photos and probed with the rest; DevTest people with one photo are
strangers. Prints, per strategy: rank-1 identification and, at the shipped card's thresholds, the share of
probes accepted as themselves and the share of strangers let in.
"""

from __future__ import annotations

import argparse

import numpy as np

from evaluation.verification import embed_images
from gate.model.embedder import Embedder
from gate.vision.faces import FacePipeline
from training.datasets import dataset_root, lfw_images, read_people
from training.metrics import cmc, ranks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrol", type=int, default=3, help="photos enrolled per person")
    args = parser.parse_args()
    people = read_people(dataset_root() / "lfw" / "peopleDevTest.txt")
    root = lfw_images()
    enrolled = sorted(name for name, n in people.items() if n > args.enrol)
    strangers = sorted(name for name, n in people.items() if n == 1)
    paths = [p for name in enrolled + strangers for p in sorted((root / name).glob("*.jpg"))]
    owner = np.array([p.parent.name for p in paths])
    embedder = Embedder()
    vectors, found = embed_images(paths, FacePipeline(template=embedder.template), embedder)
    rank = np.array([int(p.stem.rsplit("_", 1)[1]) for p in paths])
    gallery = found & np.isin(owner, enrolled) & (rank <= args.enrol)
    probes = found & np.isin(owner, enrolled) & (rank > args.enrol)
    outsiders = found & np.isin(owner, strangers)
    ids = {name: i for i, name in enumerate(enrolled)}
    template_owner = np.array([ids[o] for o in owner[gallery]])
    means = np.stack([vectors[gallery][template_owner == i].mean(axis=0) for i in range(len(enrolled))])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    strategies = {
        "best of templates": lambda q: _best_of(q @ vectors[gallery].T, template_owner, len(enrolled)),
        "mean template": lambda q: q @ means.T,
    }
    truth = np.array([ids[o] for o in owner[probes]])
    print(f"{len(enrolled)} enrolled x {args.enrol} photos, {probes.sum()} probes, {outsiders.sum()} strangers")
    print(
        f"{'strategy':20} {'rank-1':>7}"
        + "".join(f" {'TAR@' + far:>10} {'FPIR@' + far:>11}" for far in embedder.card.thresholds)
    )
    for name, score in strategies.items():
        probe_scores, stranger_scores = score(vectors[probes]), score(vectors[outsiders])
        rank_one = cmc(ranks(probe_scores, truth, np.arange(len(enrolled))), 1)[0]
        row = f"{name:20} {rank_one:7.3f}"
        for threshold in embedder.card.thresholds.values():
            accepted = (probe_scores.argmax(1) == truth) & (probe_scores.max(1) >= threshold)
            row += f" {accepted.mean():10.3f} {np.mean(stranger_scores.max(1) >= threshold):11.3f}"
        print(row)


def _best_of(scores: np.ndarray, template_owner: np.ndarray, people: int) -> np.ndarray:
    """Per query and person, the best score over that person's templates."""
    best = np.full((len(scores), people), -np.inf, np.float32)
    for person in range(people):
        best[:, person] = scores[:, template_owner == person].max(axis=1)
    return best


if __name__ == "__main__":
    main()
