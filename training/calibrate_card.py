"""Calibrate a model card's thresholds on people the model never saw: every pair of their aligned crops."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gate.errors import FaceGateError
from gate.model.card import ModelCard, sha256_of
from gate.model.embedder import Embedder
from gate.model.scoring import Scorer, write_cohort
from training.calibration import CARD_ENTRY, FARS, CalibrationSummary, calibrate
from training.crops import crop_template_of, load_crops
from training.data import VALIDATION_SPLIT, validation_people

log = logging.getLogger(__name__)

BATCH = 128


def embed_with_progress(embedder: Embedder, crops: np.ndarray, desc: str = "embedding") -> np.ndarray:
    """embedder.embed over many crops, in batches with a progress bar."""
    out = np.empty((len(crops), embedder.card.embedding_size), np.float32)
    for start in tqdm(range(0, len(crops), BATCH), desc=desc, unit="batch", disable=None):
        out[start : start + BATCH] = embedder.embed(crops[start : start + BATCH])
    return out


@dataclass(frozen=True)
class CohortPlan:
    """Score normalisation's cohort, drawn from the calibration people: a seeded `share` of `candidates` (people
    no evaluation uses), at most `per_person` crops each; the rest of the people calibrate the thresholds."""

    candidates: set[str]
    share: float = 0.5
    per_person: int = 4
    top_k: int = 100
    seed: int = 0


def cohort_candidates(counts: dict[str, int]) -> set[str]:
    """Who a cohort may hold, of an LFW people file's {name: photos}: people with 2+ photos, outside the
    validation people that training runs hold out (so `benchmarks/compare_models.py --validation` stays fair)."""
    held = validation_people(counts, VALIDATION_SPLIT["val_people"], VALIDATION_SPLIT["seed"])
    return {name for name, photos in counts.items() if photos >= 2} - held


def calibrate_card(
    card_path: Path, crops_file: Path, people: set[str], note: str, cohort: CohortPlan | None = None
) -> ModelCard:
    """Thresholds at every calibration FAR from the impostor pairs of `people`'s detected crops in `crops_file`
    (aligned to the card's template), written into the card with what they rest on. `note` says who the people
    are and why the model never saw them. With a `cohort`, scores are normalised against it (gate/model/scoring.py):
    the cohort file is written beside the card and its people are left out of the calibration."""
    embedder = Embedder(card_path)
    if crop_template_of(crops_file) != embedder.template:
        raise FaceGateError(
            f"{crops_file} was aligned for another template than {embedder.model_id}'s: run "
            f"`facegate prepare --backbone {embedder.card.architecture} --crops DIR` first"
        )
    crop_set = load_crops(crops_file, people=people)
    crop_set = crop_set.subset(crop_set.detected)  # the gate never matches a face it did not detect
    embeddings = embed_with_progress(embedder, crop_set.crops, "calibrating")
    scorer, score_norm, calibrating = Scorer(), {}, np.ones(len(crop_set), dtype=bool)
    if cohort is not None:
        chosen, calibrating = pick_cohort(crop_set.person, cohort)
        score_norm = _write_cohort(card_path, embeddings[chosen], crop_set.person[chosen], cohort)
        scorer = Scorer(embeddings[chosen], cohort.top_k)
    names = sorted(set(crop_set.person[calibrating].tolist()))
    if len(names) < 2:
        raise FaceGateError(f"{crops_file}: fewer than two of the given people have detected crops to calibrate on")
    labels = np.searchsorted(names, crop_set.person[calibrating])
    result = calibrate(embeddings[calibrating], labels, scorer)
    summary = CalibrationSummary.from_json(result["summary"])
    summary = dataclasses.replace(summary, people=len(names), images=len(labels), who=note)
    card = dataclasses.replace(
        embedder.card,
        thresholds={far: result["thresholds"][far] for far in FARS},
        results={**embedder.card.results, CARD_ENTRY: summary.to_json()},
        score_norm=score_norm,
    )
    Path(card_path).write_text(card.to_json(), encoding="utf-8")
    log.info("calibrated %s on %d impostor pairs", card_path, summary.impostor_pairs)
    return card


def pick_cohort(person: np.ndarray, plan: CohortPlan) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the cohort crops, mask of the crops left to calibrate on: everyone outside the cohort)."""
    rng = np.random.default_rng(plan.seed)
    candidates = sorted(plan.candidates & set(person.tolist()))
    cohort_people = sorted(rng.permutation(candidates)[: int(len(candidates) * plan.share)].tolist())
    if not cohort_people:
        raise FaceGateError("score normalisation: no cohort people among the calibration crops")
    chosen = [rng.permutation(np.flatnonzero(person == name))[: plan.per_person] for name in cohort_people]
    return np.sort(np.concatenate(chosen)), ~np.isin(person, cohort_people)


def _write_cohort(card_path: Path, embeddings: np.ndarray, people: np.ndarray, plan: CohortPlan) -> dict:
    """Write the cohort beside the card; the card's score_norm entry describing it."""
    path = Path(card_path).with_suffix(".cohort.npz")
    write_cohort(path, embeddings, people)
    return {
        "cohort_file": path.name,
        "sha256": sha256_of(path),
        "top_k": plan.top_k,
        "people": len(set(people.tolist())),
        "images": len(people),
        "who": f"a seeded {plan.share:.0%} of the candidate people, at most {plan.per_person} crops each; "
        "left out of the calibration pairs",
    }
