"""The direct baseline of the two-stage study: a ResNet-18 trained from scratch as a classifier that names
the employee, fed either whole camera frames (end to end: no detection, no crop) or the gate's aligned face crops
(the middle way). It can reject a stranger only by thresholding its softmax confidence."""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torchvision
from pydantic import Field
from torch.nn import functional as F
from tqdm import tqdm

from gate.config import SettingsModel
from training.augment import FaceAugment
from training.train import use_bf16


class BaselineConfig(SettingsModel):
    """How one classifier is trained: a fixed number of images seen, AdamW with warm-up and cosine decay."""

    samples: int = Field(6000, ge=1)  # training images seen (steps x batch size), not epochs: the pools differ in size
    batch_size: int = Field(32, ge=1)  # small batches: more steps for the same CPU budget (far from converged)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup: float = Field(0.05, ge=0, le=1)  # share of the steps spent warming up
    geometry: bool = True  # small random scale/shift/rotation (crops); frames get their geometry from rendering
    amp: bool = True  # bfloat16 autocast where the CPU runs it natively (training.train.use_bf16)
    seed: int = 0


def build_classifier(classes: int) -> torchvision.models.ResNet:
    """torchvision's ResNet-18 with random weights (nothing pretrained) and one output per employee."""
    return torchvision.models.resnet18(weights=None, num_classes=classes)


def to_input(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1], the same convention as the embedder's."""
    return (images.permute(0, 3, 1, 2).float() - 127.5) / 127.5


def _schedule(optimizer: torch.optim.Optimizer, steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    classes: int,
    config: BaselineConfig,
    progress: bool = True,
    desc: str = "baseline",
) -> tuple[torchvision.models.ResNet, float]:
    """Train a fresh classifier on (N, H, W, 3) uint8 RGB images with integer labels in [0, classes).

    Returns the model in eval mode and the wall-clock seconds the training took (the cost of a retrain).
    Each batch is drawn from a reshuffled pass over the pool, flipped and colour-jittered on the fly.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"need as many labels as images, and some images: {len(images)} images, {len(labels)} labels")
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = torch.device("cpu")
    amp = use_bf16(device, config.amp)
    model = build_classifier(classes)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    data = torch.from_numpy(np.ascontiguousarray(images))
    targets = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    augment = FaceAugment() if config.geometry else FaceAugment(scale=0.0, shift=0.0, degrees=0.0)
    steps = max(1, math.ceil(config.samples / config.batch_size))
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    scheduler = _schedule(optimizer, steps, max(1, int(config.warmup * steps)))
    order = torch.empty(0, dtype=torch.int64)
    model.train()
    bar = tqdm(range(steps), desc=desc, unit="batch", leave=False, disable=not progress)
    for _ in bar:
        while len(order) < config.batch_size:  # top up with fresh passes over the pool
            order = torch.cat([order, torch.randperm(len(data), generator=generator)])
        index, order = order[: config.batch_size], order[config.batch_size :]
        batch = augment(data[index])
        if amp:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = model(batch)
        loss = F.cross_entropy(logits.float(), targets[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return model, time.perf_counter() - start


@torch.inference_mode()
def predict_proba(
    model: torchvision.models.ResNet, images: np.ndarray, batch_size: int = 128, amp: bool = True
) -> np.ndarray:
    """Softmax probabilities (N, classes) float64 of (N, H, W, 3) uint8 images (double precision, so that confident
    answers near 1 stay apart instead of tying at exactly 1.0)."""
    use_amp = use_bf16(torch.device("cpu"), amp)
    out = []
    for start in range(0, len(images), batch_size):
        batch = to_input(torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])))
        if use_amp:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_amp):
            logits = model(batch)
        out.append(torch.softmax(logits.double(), dim=1).numpy())
    if not out:
        return np.zeros((0, model.fc.out_features), np.float64)
    return np.concatenate(out)
