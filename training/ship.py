"""Ship a trained model: copy weights and card into the package as the gate's default, with evaluation results."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from gate.errors import FaceGateError
from gate.model.card import SHIPPED_CARD, cohort_path, read_card, sha256_of, weights_path

MAX_SHIPPED_BYTES = 25 * 1024 * 1024


def ship_model(card_path: Path, results: list[Path], target: Path = SHIPPED_CARD) -> Path:
    """Copy `card_path` and its weights to `target` (default gate/models/default.json), merging evaluation
    JSON files (keyed by their file stem) into the card's results."""
    card = read_card(card_path)
    weights = weights_path(card_path, card)
    if weights.stat().st_size > MAX_SHIPPED_BYTES:
        raise FaceGateError(f"{weights}: {weights.stat().st_size / 1e6:.1f} MB, over the 25 MB shipped-model limit")
    merged = dict(card.results)
    for path in results:
        try:
            merged[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise FaceGateError(f"{path}: cannot read evaluation results ({error})") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    target_weights = target.with_suffix(".pt")
    _copy(weights, target_weights)
    score_norm = dict(card.score_norm)
    if score_norm:  # the score-normalisation cohort travels with the card
        target_cohort = target.with_suffix(".cohort.npz")
        _copy(cohort_path(card_path, card), target_cohort)
        score_norm["cohort_file"] = target_cohort.name
    shipped = dataclasses.replace(
        card, weights_file=target_weights.name, sha256=sha256_of(target_weights), results=merged, score_norm=score_norm
    )
    target.write_text(shipped.to_json(), encoding="utf-8")
    return target


def _copy(source: Path, target: Path) -> None:
    """Copy a file, unless it is already the target (shipping the shipped card again only merges results)."""
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
