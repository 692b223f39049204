"""`facegate evaluate`'s protocol in one call: pairs (an LFW pairs file or made from a folder), verification with
person-bootstrap intervals, and on request gallery/probe identification, every image embedded once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evaluation.identification import identification_metrics, split_people
from evaluation.results import VerificationResult
from evaluation.verification import (
    Pair,
    check_pairs,
    embed_named,
    evaluate_pairs,
    folder_photos,
    make_pairs,
    pairs_among,
    read_pairs,
    verification_intervals,
)
from gate.model.embedder import Embedder
from gate.vision.faces import FacePipeline
from training.datasets import read_people_list


@dataclass(frozen=True)
class EvaluationSpec:
    """What to evaluate on: `images` (<person>/<images>), its pairs, and the identification protocol."""

    images: Path
    pairs_file: Path | None = None  # none: pairs made from `images` (identity-disjoint folds)
    people: Path | None = None  # only these people (a people file or one name a line)
    folds: int = 10
    per_fold: int = 300
    seed: int = 0
    identification: bool = False
    gallery_sizes: tuple[int, ...] = (10, 100, 1000)
    enrol: int = 1
    stranger_share: float = 0.3
    bootstrap: int = 1000  # resamples by person; 0: no intervals

    def pairs(self) -> list[Pair]:
        """The pairs to score (read, or made from the folder), restricted to `people` if given; cheap."""
        chosen = read_people_list(self.people) if self.people else None
        if not self.pairs_file:
            return make_pairs(self.images, self.folds, self.per_fold, self.seed, chosen)
        pairs = read_pairs(self.pairs_file)
        return pairs_among(pairs, chosen) if chosen else pairs


def evaluate_model(
    spec: EvaluationSpec, pairs: list[Pair], pipeline: FacePipeline, embedder: Embedder, match: str = "best"
) -> VerificationResult:
    """Verification on `pairs` (with intervals unless spec.bootstrap is 0) and, if asked, identification with
    people matched as the gallery matches them (`match`: best or mean template)."""
    names = check_pairs(pairs, spec.images)
    split = None
    if spec.identification:
        chosen = read_people_list(spec.people) if spec.people else None
        in_pairs = {name.split("/")[0] for pair in pairs for name in (pair.left, pair.right)}
        split = split_people(folder_photos(spec.images, chosen or in_pairs), spec.enrol, spec.stranger_share, spec.seed)
        names = sorted(set(names) | set(split.photos()))
    vectors = embed_named(names, spec.images, pipeline, embedder)
    result = evaluate_pairs(pairs, spec.images, pipeline, embedder, vectors=vectors)
    if spec.bootstrap:
        result.confidence_intervals = verification_intervals(result, pairs, spec.bootstrap, spec.seed)
    if split is not None:
        sizes = list(spec.gallery_sizes)
        result.identification = identification_metrics(split, vectors, sizes, match, embedder.scorer)
    return result
