"""Margin heads for training only: they turn embeddings into class logits and are dropped at export."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ArcFaceHead(nn.Module):
    """Additive angular margin (Deng et al., 2019): logits s*cos(theta + m) for the true class, s*cos(theta)
    for the others. Returns logits; cross-entropy stays with the caller."""

    def __init__(self, embedding_size: int, classes: int, scale: float = 32.0, margin: float = 0.4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)
        self.scale, self.margin = scale, margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = F.linear(F.normalize(embeddings.float(), dim=1), F.normalize(self.weight, dim=1))
        theta = torch.acos(cosine.clamp(-1 + 1e-6, 1 - 1e-6))
        target = torch.cos(theta + self.margin)
        # past pi - m the margin would make cos grow again; fall back to a linear penalty there (as insightface)
        target = torch.where(theta + self.margin < torch.pi, target, cosine - self.margin * math.sin(self.margin))
        one_hot = F.one_hot(labels, cosine.shape[1]).bool()
        return self.scale * torch.where(one_hot, target, cosine)


class TrainingHeads(nn.Module):
    """The training-only terms on top of the triplet loss, dropped at export: an ArcFace classification head
    and a linear projection into the teacher's space trained with a cosine loss (distillation)."""

    def __init__(
        self,
        embedding_size: int,
        classes: int,
        arcface_weight: float = 0.0,
        arcface_scale: float = 32.0,
        arcface_margin: float = 0.4,
        distill_weight: float = 0.0,
        teacher_size: int = 128,
    ) -> None:
        super().__init__()
        self.arcface_weight, self.distill_weight = arcface_weight, distill_weight
        self.arcface = ArcFaceHead(embedding_size, classes, arcface_scale, arcface_margin) if arcface_weight else None
        self.to_teacher = nn.Linear(embedding_size, teacher_size) if distill_weight else None

    def loss(self, embeddings: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The weighted extra terms for a batch; `targets` are unit teacher vectors, NaN rows have none;
        rows labelled -1 (unlabelled crops) get the teacher term only."""
        total = embeddings.new_zeros((), dtype=torch.float32)
        if self.arcface is not None:
            known = labels >= 0
            logits = self.arcface(embeddings[known], labels[known])
            total = total + self.arcface_weight * F.cross_entropy(logits, labels[known])
        if self.to_teacher is not None:
            rows = ~torch.isnan(targets[:, 0])
            if rows.any():
                projected = self.to_teacher(embeddings[rows].float())
                cosine = F.cosine_similarity(projected, targets[rows], dim=1)
                total = total + self.distill_weight * (1.0 - cosine).mean()
        return total
