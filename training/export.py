"""Export a trained backbone as the deployable pair: float16 weights (.pt) plus its model card (.json)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from gate.alignment import ARCFACE_112, CropTemplate
from gate.model_card import ModelCard, sha256_of


def export_model(
    network: nn.Module,
    card_path: Path,
    *,
    model_id: str,
    architecture: str,
    embedding_size: int,
    template: CropTemplate = ARCFACE_112,
    thresholds: dict[str, float] | None = None,
    training: dict | None = None,
    results: dict | None = None,
    source: dict | None = None,
) -> ModelCard:
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
        model_id=model_id,
        architecture=architecture,
        input_size=template.size,
        embedding_size=embedding_size,
        crop_template=[list(point) for point in template.points],
        weights_file=weights.name,
        sha256=sha256_of(weights),
        thresholds=dict(thresholds or {}),
        training=dict(training or {}),
        results=dict(results or {}),
        source=dict(source or {}),
    )
    card_path.write_text(card.to_json(), encoding="utf-8")
    return card
