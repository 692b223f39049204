"""Calibrate a model card's thresholds on people the model never saw: every pair of their aligned crops."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gate.embedder import Embedder
from gate.errors import FaceGateError
from gate.model_card import ModelCard
from training.calibration import FARS, calibrate
from training.crops import crop_template_of, load_crops

log = logging.getLogger(__name__)

BATCH = 128


def embed_with_progress(embedder: Embedder, crops: np.ndarray, desc: str = "embedding") -> np.ndarray:
    """embedder.embed over many crops, in batches with a progress bar."""
    out = np.empty((len(crops), embedder.card.embedding_size), np.float32)
    for start in tqdm(range(0, len(crops), BATCH), desc=desc, unit="batch", disable=None):
        out[start : start + BATCH] = embedder.embed(crops[start : start + BATCH])
    return out


def calibrate_card(card_path: Path, crops_file: Path, people: set[str], note: str) -> ModelCard:
    """Thresholds at every calibration FAR from the impostor pairs of `people`'s detected crops in `crops_file`
    (aligned to the card's template), written into the card with what they rest on. `note` says who the people
    are and why the model never saw them."""
    embedder = Embedder(card_path)
    if crop_template_of(crops_file) != embedder.template:
        raise FaceGateError(
            f"{crops_file} was aligned for another template than {embedder.model_id}'s: run "
            f"`facegate prepare --backbone {embedder.card.architecture} --crops DIR` first"
        )
    crop_set = load_crops(crops_file, people=people)
    crop_set = crop_set.subset(crop_set.detected)  # the gate never matches a face it did not detect
    if len(set(crop_set.person.tolist())) < 2:
        raise FaceGateError(f"{crops_file}: fewer than two of the given people have detected crops")
    names = sorted(set(crop_set.person.tolist()))
    labels = np.searchsorted(names, crop_set.person)
    embeddings = embed_with_progress(embedder, crop_set.crops, "calibrating")
    result = calibrate(embeddings, labels)
    summary = {**result["summary"], "people": len(names), "images": len(labels), "who": note}
    card = dataclasses.replace(
        embedder.card,
        thresholds={far: result["thresholds"][far] for far in FARS},
        results={**embedder.card.results, "calibration": summary},
    )
    Path(card_path).write_text(card.to_json(), encoding="utf-8")
    log.info("calibrated %s on %d impostor pairs", card_path, summary["impostor_pairs"])
    return card
