"""Export a trained backbone as the deployable pair: float16 weights (.pt) plus its model card (.json)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from gate.model.card import ModelCard, sha256_of
from gate.vision.alignment import ARCFACE_112, CropTemplate


@dataclass(frozen=True)
class CardFields:
    """What a new model's card says beyond its weights: who it is, its crop, its thresholds and its record."""

    model_id: str
    architecture: str
    embedding_size: int
    template: CropTemplate = ARCFACE_112
    thresholds: dict[str, float] = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)


def export_model(network: nn.Module, card_path: Path, fields: CardFields) -> ModelCard:
    """Write `<card>.pt` (backbone only, float16: half the bytes, no measurable score change) and the card."""
    card_path = Path(card_path)
    card_path.parent.mkdir(parents=True, exist_ok=True)
    weights = card_path.with_suffix(".pt")
    state = {
        key: value.detach().cpu().half() if value.is_floating_point() else value.detach().cpu()
        for key, value in network.state_dict().items()
    }
    torch.save(state, weights)
    card = ModelCard(
        model_id=fields.model_id,
        architecture=fields.architecture,
        input_size=fields.template.size,
        embedding_size=fields.embedding_size,
        crop_template=[list(point) for point in fields.template.points],
        weights_file=weights.name,
        sha256=sha256_of(weights),
        thresholds=dict(fields.thresholds),
        training=dict(fields.training),
        results=dict(fields.results),
        source=dict(fields.source),
    )
    card_path.write_text(card.to_json(), encoding="utf-8")
    return card
