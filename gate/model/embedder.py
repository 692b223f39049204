"""The embedder: loads a model file with its card and turns aligned crops into L2-normalised embeddings."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gate.devices import torch_device
from gate.errors import FaceGateError
from gate.model.backbones import build_backbone
from gate.model.card import SHIPPED_CARD, ModelCard, read_card, weights_path
from gate.model.scoring import Scorer, card_scorer
from gate.vision.alignment import CropTemplate

log = logging.getLogger(__name__)


def to_tensor(crops: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(N, S, S, 3) RGB uint8, an array or a tensor on any device -> (N, 3, S, S) float32 in [-1, 1], the
    networks' input convention (training without augmentation feeds its device batches through it too)."""
    tensor = crops if isinstance(crops, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(crops))
    return (tensor.permute(0, 3, 1, 2).float() - 127.5) / 127.5


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """Weights saved by training.export (float16 to halve the file), as float32 tensors."""
    try:
        state = torch.load(io.BytesIO(path.read_bytes()), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise FaceGateError(f"{path}: cannot read model weights ({type(error).__name__})") from None
    return {key: value.float() if value.is_floating_point() else value for key, value in state.items()}


def load_network(card_path: Path, card: ModelCard) -> nn.Module:
    """The card's backbone with its stored weights, unfused (training starts from it; Embedder fuses it)."""
    network = build_backbone(card.architecture, card.embedding_size)
    try:
        network.load_state_dict(load_state(weights_path(card_path, card)))
    except RuntimeError as error:
        raise FaceGateError(f"{card_path}: weights do not fit {card.architecture}: {error}") from None
    return network


class Embedder:
    """`embed(crops (N, S, S, 3) uint8) -> (N, D) float32`, each row of unit length."""

    def __init__(
        self, card_path: Path | None = None, device: str = "cpu", batch_size: int = 64, flip: bool = False
    ) -> None:
        self.card_path = Path(card_path) if card_path else SHIPPED_CARD
        self.card: ModelCard = read_card(self.card_path)
        try:
            self.template = CropTemplate.of(self.card.input_size, self.card.crop_template)
        except (FaceGateError, TypeError, ValueError):
            raise FaceGateError(f"{self.card_path}: the card's crop_template is not 5 points inside its crop") from None
        self.device = torch_device(device, "model.device")
        self.batch_size = batch_size
        self.flip = flip  # average each crop's embedding with its mirror image's (twice the work)
        self.network = load_network(self.card_path, self.card).eval().to(self.device)
        fuse = getattr(self.network, "fuse", None)  # a backbone may fold layers for inference (DlibResNet does)
        if callable(fuse):
            fuse()
        self.scorer: Scorer = card_scorer(self.card_path, self.card)  # how two of its embeddings are compared

    @property
    def model_id(self) -> str:
        return self.card.model_id

    @property
    def input_size(self) -> int:
        return self.card.input_size

    def embed(self, crops: np.ndarray) -> np.ndarray:
        size = self.card.input_size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
            raise ValueError(f"embed() wants (N, {size}, {size}, 3) crops, got {crops.shape}")
        out = np.empty((len(crops), self.card.embedding_size), dtype=np.float32)
        for start in range(0, len(crops), self.batch_size):
            batch = to_tensor(crops[start : start + self.batch_size]).to(self.device)
            out[start : start + len(batch)] = embed_tensor(self.network, batch, self.flip).cpu().numpy()
        return out


@torch.inference_mode()
def embed_tensor(network: nn.Module, batch: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """Unit-length embeddings of a prepared batch (shared by the gate and the trainer's evaluation); with
    flip, each crop's raw embedding is summed with its mirror image's before normalising."""
    if not flip:
        return nn.functional.normalize(network(batch).float(), dim=1)
    both = network(torch.cat([batch, batch.flip(3)])).float()
    return nn.functional.normalize(both[: len(batch)] + both[len(batch) :], dim=1)
