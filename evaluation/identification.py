"""Open-set identification on a `<person>/<images>` folder: who is this, if anyone, as the gallery grows.

Protocol (seeded, reproducible):
- People are split: a share of them are strangers (never enrolled; every photo of theirs is a non-mated probe),
  the rest are enrolled. Each enrolled person's photos are shuffled; the first `enrol` (at most all but one)
  become their templates, the others are mated probes. People with a single photo are enrolled from it and
  never probed: they pad the gallery like any other employee.
- Gallery sizes: the first n enrolled people, those with probes first, so a small gallery still has probes;
  the strangers are the same for every size, so FPIR is comparable across sizes.
- A photo where no face is found scores -inf against everyone: a mated probe is then missed, a stranger
  cannot get in; a person none of whose template photos has a face cannot be enrolled and is left out.
- A person's score is their best template's cosine ("best"), or the cosine with their normalised mean
  template ("mean"), as `[gallery] match` does at the gate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.results import GalleryEntry, GallerySkipped, IdentificationResult
from evaluation.verification import FAILED_SCORE
from gate.errors import FaceGateError
from gate.matching.rule import person_scores
from gate.model.scoring import Scorer
from training.metrics import allowed_false_accepts, cmc, fnir_at_fpir, ranks

REPORT_FPIRS = ("0.01", "0.003", "0.001")
MAX_CMC_RANK = 20


@dataclass(frozen=True)
class IdentificationSplit:
    """Photo names (`<person>/<file>`) per role; `enrolled` is in gallery order."""

    enrolled: list[str]
    templates: dict[str, list[str]]
    probes: dict[str, list[str]]
    strangers: list[str]  # photos of never-enrolled people

    def photos(self) -> list[str]:
        """Every photo the protocol uses, sorted."""
        groups = [*self.templates.values(), *self.probes.values(), self.strangers]
        return sorted({name for group in groups for name in group})


def split_people(
    photos: dict[str, list[str]], enrol: int = 1, stranger_share: float = 0.3, seed: int = 0
) -> IdentificationSplit:
    """Deal people into enrolled and strangers, and each enrolled person's photos into templates and probes."""
    if enrol < 1:
        raise FaceGateError(f"--enrol must be at least 1, got {enrol}")
    if not 0.0 < stranger_share < 1.0:
        raise FaceGateError(f"--strangers must lie strictly between 0 and 1, got {stranger_share}")
    people = sorted(name for name, files in photos.items() if files)
    strangers_count = round(stranger_share * len(people))
    if strangers_count < 1 or len(people) - strangers_count < 1:
        raise FaceGateError(f"{len(people)} people: too few to split into enrolled people and strangers")
    rng = np.random.default_rng(seed)
    order = [people[i] for i in rng.permutation(len(people))]
    stranger_people, enrolled_people = order[:strangers_count], order[strangers_count:]
    templates, probes = {}, {}
    for name in enrolled_people:
        files = [photos[name][i] for i in rng.permutation(len(photos[name]))]
        keep = min(enrol, max(1, len(files) - 1))
        templates[name] = [f"{name}/{f}" for f in files[:keep]]
        probes[name] = [f"{name}/{f}" for f in files[keep:]]
    with_probes = [name for name in enrolled_people if probes[name]]
    without = [name for name in enrolled_people if not probes[name]]
    strangers = [f"{name}/{f}" for name in sorted(stranger_people) for f in sorted(photos[name])]
    return IdentificationSplit(with_probes + without, templates, probes, strangers)


def identification_metrics(
    split: IdentificationSplit,
    vectors: dict[str, np.ndarray | None],
    gallery_sizes: list[int],
    match: str = "best",
    scorer: Scorer | None = None,
) -> IdentificationResult:
    """Rank-1/rank-5, CMC and FNIR at FPIR for each gallery size; `vectors` maps a photo to its unit
    embedding, or None where no face was found; pairs scored by `scorer` (the model's; default cosine)."""
    photos = _Photos(vectors)
    enrolled = [p for p in split.enrolled if any(vectors[t] is not None for t in split.templates[p])]
    sizes: dict[str, GalleryEntry | GallerySkipped] = {}
    for size in gallery_sizes:
        if size > len(enrolled):
            sizes[str(size)] = GallerySkipped(skipped=f"only {len(enrolled)} people could be enrolled")
        elif not any(split.probes[p] for p in enrolled[:size]):
            sizes[str(size)] = GallerySkipped(skipped="no enrolled person in it has a probe photo")
        else:
            sizes[str(size)] = _gallery_entry(split, photos, enrolled[:size], match, scorer)
    return IdentificationResult(
        match=match,
        templates_per_person=max(len(t) for t in split.templates.values()),
        enrolled_people=len(enrolled),
        not_enrolled_no_face=len(split.enrolled) - len(enrolled),
        stranger_people=len({s.split("/")[0] for s in split.strangers}),
        stranger_photos=len(split.strangers),
        gallery_sizes=sizes,
    )


class _Photos:
    """Photo name -> embedding rows, NaN where no face was found."""

    def __init__(self, vectors: dict[str, np.ndarray | None]) -> None:
        self.vectors = vectors
        self.dim = len(next(v for v in vectors.values() if v is not None))

    def rows(self, names: list[str]) -> np.ndarray:
        out = np.full((len(names), self.dim), np.nan, dtype=np.float64)
        for i, name in enumerate(names):
            if self.vectors[name] is not None:
                out[i] = self.vectors[name]
        return out


def _gallery_entry(
    split: IdentificationSplit, photos: _Photos, people: list[str], match: str, scorer: Scorer | None
) -> GalleryEntry:
    """One gallery size: `people` enrolled, their probes and every stranger searched."""
    templates = [np.nan_to_num(photos.rows(split.templates[p]), nan=0.0) for p in people]
    templates = [t[np.linalg.norm(t, axis=1) > 0] for t in templates]
    probe_names = [(p, photo) for p in people for photo in split.probes[p]]
    probe_ids = np.array([p for p, _ in probe_names] + [""] * len(split.strangers), dtype=object)
    queries = np.concatenate([photos.rows([photo for _, photo in probe_names]), photos.rows(split.strangers)])
    found = ~np.isnan(queries).any(axis=1)
    scores = person_scores(np.nan_to_num(queries, nan=0.0), templates, match, scorer)
    scores[~found] = FAILED_SCORE
    mated = np.array([p != "" for p in probe_ids])
    gallery_ids = np.array(people, dtype=object)
    curve = cmc(ranks(scores[mated], probe_ids[mated], gallery_ids), min(MAX_CMC_RANK, len(people)))
    strangers = int((~mated).sum())
    fnir, thresholds = {}, {}
    for fpir in REPORT_FPIRS:
        fnir[fpir], thresholds[fpir] = fnir_at_fpir(scores, probe_ids, gallery_ids, float(fpir))
    return GalleryEntry(
        identities=len(people),
        mated_probes=int(mated.sum()),
        strangers=strangers,
        probes_without_face=int((~found & mated).sum()),
        strangers_without_face=int((~found & ~mated).sum()),
        rank1=float(curve[0]),
        rank5=float(curve[min(5, len(curve)) - 1]),
        cmc=curve.tolist(),
        fnir_at_fpir=fnir,
        thresholds_at_fpir=thresholds,
        fpir_support={fpir: allowed_false_accepts(strangers, float(fpir)) for fpir in REPORT_FPIRS},
    )
