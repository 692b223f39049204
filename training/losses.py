"""Metric-learning losses on L2-normalised embeddings: triplet (batch-hard or semi-hard online mining) and
contrastive Siamese pairs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gate.errors import FaceGateError


def _distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances of unit vectors (sqrt(2 - 2 cos)), clamped for a finite gradient at 0."""
    cosine = embeddings @ embeddings.T
    return torch.sqrt((2.0 - 2.0 * cosine).clamp_min(1e-12))


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def batch_hard_triplet(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """For each anchor: its farthest positive and nearest negative in the batch (Hermans et al., 2017)."""
    dist = _distances(embeddings)
    positive, negative = _masks(labels)
    hardest_pos = (dist * positive).max(dim=1).values
    hardest_neg = dist.masked_fill(~negative, float("inf")).min(dim=1).values
    valid = positive.any(dim=1) & negative.any(dim=1)
    return torch.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def semi_hard_triplet(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """FaceNet's semi-hard mining: for every (anchor, positive), the nearest negative farther than the positive;
    the hardest negative when none is."""
    dist = _distances(embeddings)
    positive, negative = _masks(labels)
    d_ap = dist[:, :, None]  # (anchor, positive, 1)
    d_an = dist[:, None, :]  # (anchor, 1, negative)
    farther = negative[:, None, :] & (d_an > d_ap)
    semi = d_an.masked_fill(~farther, float("inf")).min(dim=2).values
    hardest = dist.masked_fill(~negative, float("inf")).min(dim=1).values[:, None].expand_as(semi)
    chosen = torch.where(torch.isfinite(semi), semi, hardest)
    losses = torch.relu(dist - chosen + margin)[positive & negative.any(dim=1)[:, None]]
    return losses.mean() if losses.numel() else embeddings.sum() * 0.0


def contrastive(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Siamese pairs (Hadsell et al., 2006) over every pair of the batch: same-person distances pulled to 0,
    other-person distances pushed past `1 + margin` (unit vectors: distance 0..2), each side averaged apart."""
    dist = _distances(embeddings)
    positive, negative = _masks(labels)
    pulled = (dist[positive] ** 2).mean() if positive.any() else dist.sum() * 0.0
    pushed = (torch.relu(1.0 + margin - dist[negative]) ** 2).mean() if negative.any() else dist.sum() * 0.0
    return pulled + pushed


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "batch_hard": batch_hard_triplet,
    "semi_hard": semi_hard_triplet,
    "contrastive": contrastive,
}


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]:
    if name not in LOSSES:
        raise FaceGateError(f"unknown loss {name!r}; valid: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]


def normalise(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.normalize(x.float(), dim=1)
