"""Training on top of dlib's port with its trunk frozen: the last linear layer learned again on pooled features.

The trunk's 256-d pooled features of every crop of the training pool are computed once (minutes on a CPU); each
recipe then learns a new last layer in seconds:
- `triplet`: batch-hard triplet loss on P x K batches of features, starting from dlib's own layer;
- `wccn`: dlib's layer followed by within-class covariance normalisation (its outputs whitened by the training
  people's within-class scatter, shrunk towards the identity);
- `lda`: dlib's outputs projected onto their `dim` leading discriminant directions (between- against within-class
  scatter).
The result is a dlib_resnet model that differs from the port in its last layer only, calibrated on the pool's
validation people (never trained on) and exported with a card like any other.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from pydantic import Field
from tqdm import tqdm

from gate.config import SettingsModel
from gate.errors import FaceGateError
from gate.model.card import read_card
from gate.model.dlib_resnet import DlibResNet
from gate.model.embedder import load_network, to_tensor
from gate.vision.alignment import CropTemplate
from training.calibration import FARS, calibrate
from training.data import PKSampler, Pool, build_pool
from training.export import CardFields, export_model
from training.losses import batch_hard_triplet, normalise

log = logging.getLogger(__name__)

Recipe = Literal["triplet", "wccn", "lda"]
RECIPES: tuple[str, ...] = get_args(Recipe)
BATCH = 128


class HeadConfig(SettingsModel):
    """How the last layer is learned again (`facegate model head`)."""

    recipe: Recipe = "triplet"
    dim: int = Field(128, ge=8, le=256)  # output size (lda: the discriminant directions kept)
    epochs: int = Field(20, ge=0)  # triplet: passes over the pool's labelled crops
    p: int = Field(64, ge=2)  # triplet: identities per batch (a triplet needs another person) ...
    k: int = Field(4, ge=2)  # ... and crops per identity (and a second crop)
    margin: float = Field(0.2, ge=0)
    lr: float = Field(1e-3, gt=0)
    shrinkage: float = Field(0.1, ge=0, le=1)  # wccn/lda: within-class covariance shrunk to a scaled identity
    seed: int = 0
    val_people: int = Field(100, ge=0)  # the split every FaceGate run holds out (compare_models --validation reads it)


def load_port(card_path: Path) -> DlibResNet:
    """The dlib_resnet of a card, unfused (its stored layers)."""
    card = read_card(card_path)
    if card.architecture != "dlib_resnet":
        raise FaceGateError(f"{card_path}: a {card.architecture}; a frozen head is trained on a dlib_resnet")
    network = load_network(card_path, card)
    assert isinstance(network, DlibResNet)  # the card said dlib_resnet, and build_backbone built one
    return network.eval()


@torch.inference_mode()
def pooled_features(network: DlibResNet, crops: np.ndarray, desc: str) -> np.ndarray:
    """(N, 256) pooled trunk features of (N, 150, 150, 3) crops."""
    parts = [
        network.pooled(to_tensor(crops[i : i + BATCH])).numpy()
        for i in tqdm(range(0, len(crops), BATCH), desc=desc, unit="batch", disable=None)
    ]
    return np.concatenate(parts).astype(np.float32)


def _within_between(outputs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Within- and between-class scatter (covariance) of the rows, every row weighing the same."""
    classes = np.unique(labels)
    means = np.stack([outputs[labels == c].mean(axis=0) for c in classes])
    centred = outputs - means[np.searchsorted(classes, labels)]
    within = centred.T @ centred / len(outputs)
    spread = means - outputs.mean(axis=0)
    counts = np.array([(labels == c).sum() for c in classes], np.float64)
    between = (spread * counts[:, None]).T @ spread / len(outputs)
    return within, between


def _shrunk(covariance: np.ndarray, shrinkage: float) -> np.ndarray:
    scale = np.trace(covariance) / len(covariance)
    return (1 - shrinkage) * covariance + shrinkage * scale * np.eye(len(covariance))


def wccn_head(fc: np.ndarray, features: np.ndarray, labels: np.ndarray, config: HeadConfig) -> np.ndarray:
    """fc followed by within-class whitening: W = Sw^(-1/2) fc, Sw of fc's outputs over the training people."""
    within, _ = _within_between(features @ fc.T, labels)
    values, vectors = np.linalg.eigh(_shrunk(within, config.shrinkage))
    return (vectors @ np.diag(values**-0.5) @ vectors.T @ fc).astype(np.float32)


def lda_head(fc: np.ndarray, features: np.ndarray, labels: np.ndarray, config: HeadConfig) -> np.ndarray:
    """fc followed by the `dim` leading discriminant directions: Sb v = lambda Sw v, scaled so v' Sw v = 1."""
    within, between = _within_between(features @ fc.T, labels)
    values, vectors = np.linalg.eigh(_shrunk(within, config.shrinkage))
    whiten = vectors @ np.diag(values**-0.5) @ vectors.T
    _, directions = np.linalg.eigh(whiten @ between @ whiten)
    projection = directions[:, ::-1][:, : config.dim].T @ whiten
    return (projection @ fc).astype(np.float32)


def triplet_head(fc: np.ndarray, features: np.ndarray, labels: np.ndarray, config: HeadConfig) -> np.ndarray:
    """A last layer trained with batch-hard triplets on the features, from dlib's (or a random one, other dims)."""
    torch.manual_seed(config.seed)
    start = torch.from_numpy(fc) if config.dim == fc.shape[0] else torch.randn(config.dim, fc.shape[1]) * 0.05
    weight = torch.nn.Parameter(start.clone())
    optimizer = torch.optim.AdamW([weight], lr=config.lr, weight_decay=1e-4)
    data, targets = torch.from_numpy(features), torch.from_numpy(labels)
    sampler = PKSampler(labels, config.p, config.k, config.seed)
    for _ in tqdm(range(config.epochs), desc="triplet head", unit="epoch", disable=None):
        for batch in sampler:
            loss = batch_hard_triplet(normalise(data[batch] @ weight.T), targets[batch], config.margin)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return weight.detach().numpy().astype(np.float32)


def cached_features(network: DlibResNet, pool: Pool, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features of the pool's labelled training crops and of its validation crops, computed once."""
    labelled = pool.train_labels >= 0
    if cache.is_file():
        with np.load(cache) as stored:
            if len(stored["train"]) == int(labelled.sum()) and len(stored["val"]) == len(pool.val):
                return stored["train"], stored["val"]
    train = pooled_features(network, pool.train.crops[labelled], "trunk features")
    val = pooled_features(network, pool.val.crops, "validation features")
    np.savez(cache, train=train, val=val)
    return train, val


def train_head(base_card: Path, crops: Path, lfw_dir: Path, config: HeadConfig, out: Path) -> Path:
    """Learn a new last layer for the port of `base_card` on the pool's training people; export `out`."""
    began = time.time()
    network, base = load_port(base_card), read_card(base_card)
    pool = build_pool(crops, lfw_dir, config.val_people, config.seed)
    labelled = pool.train_labels >= 0
    cache = crops / f"pooled-{base.sha256[:12]}-seed{config.seed}-val{config.val_people}.npz"
    features, val_features = cached_features(network, pool, cache)
    fc = network.fc.weight.detach().numpy().astype(np.float64)
    learn = {"triplet": triplet_head, "wccn": wccn_head, "lda": lda_head}[config.recipe]
    weight = learn(fc, features.astype(np.float64), pool.train_labels[labelled], config)
    network.fc = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    network.fc.weight.data = torch.from_numpy(np.ascontiguousarray(weight, np.float32))
    epochs = f"-e{config.epochs}" if config.recipe == "triplet" else ""
    calibration = calibrate(normalise(network.fc(torch.from_numpy(val_features))).detach().numpy(), pool.val_labels)
    export_model(
        network,
        out,
        CardFields(
            model_id=f"{base.model_id}-head-{config.recipe}{config.dim}{epochs}",
            architecture="dlib_resnet",
            embedding_size=weight.shape[0],
            template=CropTemplate.of(base.input_size, base.crop_template),
            thresholds={far: calibration["thresholds"][far] for far in FARS},
            training={
                "config": {**config.model_dump(), "holdout_pins": 0},
                "recipe": f"frozen trunk, last layer: {config.recipe}",
                "base_model": base.model_id,
                "train_images": int(labelled.sum()),
                "train_people": len(pool.classes),
                "seconds": round(time.time() - began, 1),
            },
            results={"validation": calibration["summary"]},
            source=base.source,
        ),
    )
    log.info("exported %s: validation %s", out, calibration["summary"])
    return out
