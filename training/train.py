"""Triplet training of the embedding network: `train(config)` with checkpoints, resume, and a progress bar.

Shaped as torchvision's classification reference: build_* helpers, train_one_epoch, evaluate, a short main.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from gate.errors import FaceGateError
from gate.model.backbones import build_backbone, template_for_backbone
from gate.model.card import read_card
from gate.model.embedder import embed_tensor, load_network, to_tensor
from training.augment import FaceAugment
from training.calibration import FARS, calibrate
from training.config import TrainConfig
from training.crops import crop_template_of
from training.data import PKSampler, Pool, build_pool
from training.datasets import dataset_root
from training.export import CardFields, export_model
from training.heads import TrainingHeads
from training.losses import get_loss, normalise
from training.teacher import prepare_targets

log = logging.getLogger(__name__)


TRAINING_DATA = (
    "aligned crops on the backbone's template (the gate's MTCNN + 5-point aligner) of LFW peopleDevTrain people "
    "with 2+ photos and the Pins people; held out for calibration: `val_people` DevTrain people with 2-20 photos "
    "and every single-photo DevTrain person (unless `singles_per_batch` trains on them, unlabelled, through the "
    "teacher); no LFW DevTest person is seen"
)


def recipe_name(config: TrainConfig) -> str:
    """A short name of the losses used, e.g. 'batch_hard+arcface'."""
    parts: list[str] = [config.loss] if config.triplet_weight > 0 else []
    parts += ["arcface"] if config.arcface_weight > 0 else []
    parts += ["dlib-distill"] if config.distill_weight > 0 else []
    parts += ["singles"] if config.singles_per_batch > 0 else []
    parts += ["occlusion"] if config.occlusion > 0 else []
    parts += [] if config.augment else ["no-augment"]
    parts += ["ema"] if config.ema > 0 else []
    parts += ["finetuned"] if config.init_from else []
    return "+".join(parts)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def use_bf16(device: torch.device, wanted: bool) -> bool:
    """bfloat16 autocast where the hardware runs it natively: every CUDA GPU we train on, AMX/AVX512-BF16 CPUs
    (about 2x faster there); elsewhere it would be emulated and slower."""
    if not wanted:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())


def initial_network(config: TrainConfig) -> nn.Module:
    """The backbone, random or (fine-tuning) with the weights of the model card `init_from`."""
    if not config.init_from:
        return build_backbone(config.backbone, config.embedding_size)
    card_path = Path(config.init_from)
    card = read_card(card_path)
    if (card.architecture, card.embedding_size) != (config.backbone, config.embedding_size):
        raise FaceGateError(
            f"init_from {config.init_from}: a {card.architecture} with {card.embedding_size}-d "
            f"embeddings, but this run trains a {config.backbone} with {config.embedding_size}-d ones"
        )
    log.info("starting from %s (%s)", config.init_from, card.model_id)
    return load_network(card_path, card)  # the stored weights, not an Embedder's (fused for inference)


def build_optimizer(
    model: nn.Module, config: TrainConfig, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with linear warm-up then cosine decay to zero, stepped per batch."""
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    warmup = max(1, int(config.warmup_epochs * steps / max(config.epochs, 1)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class DeviceData:
    """The training pool moved to the training device once: crops, labels and teacher targets."""

    crops: torch.Tensor  # (N, S, S, 3) uint8
    labels: torch.Tensor  # (N,) int64
    targets: torch.Tensor  # (N, 128) float32, NaN rows without a teacher vector


@dataclass
class TrainingState:
    """What a run trains and checkpoints: the network, its training heads, the optimiser, its schedule, the EMA."""

    model: nn.Module
    heads: TrainingHeads
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: AveragedModel | None = None

    @property
    def trained(self) -> nn.ModuleList:
        return nn.ModuleList([self.model, self.heads])

    @property
    def final(self) -> nn.Module:
        """What is validated and exported: the EMA's network when there is one."""
        return self.ema.module if self.ema is not None else self.model


def train_one_epoch(
    state: TrainingState, data: DeviceData, sampler: PKSampler, config: TrainConfig, epoch: int
) -> float:
    model, heads, optimizer, scheduler, ema = state.model, state.heads, state.optimizer, state.scheduler, state.ema
    model.train()
    augment = FaceAugment(occlusion_p=config.occlusion) if config.augment else to_tensor
    triplet = get_loss(config.loss)
    device = data.crops.device
    use_amp = use_bf16(device, config.amp)
    total, count = 0.0, 0
    batches = tqdm(sampler, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, unit="batch")
    for step, index in enumerate(batches):
        if config.max_batches and step >= config.max_batches:
            break
        index_t = torch.from_numpy(index).to(device)
        images = augment(data.crops[index_t]).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            embeddings = model(images)
        batch_labels = data.labels[index_t]
        labelled = batch_labels >= 0  # the unlabelled singles (-1) take part in the teacher term only
        loss = config.triplet_weight * triplet(normalise(embeddings[labelled]), batch_labels[labelled], config.margin)
        loss = loss + heads.loss(embeddings, batch_labels, data.targets[index_t])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update_parameters(model)
        total, count = total + loss.item(), count + 1
        batches.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


def embed_crops(model: nn.Module, crops: np.ndarray, device: torch.device, batch: int = 256) -> np.ndarray:
    model.eval()
    parts = [embed_tensor(model, to_tensor(crops[i : i + batch]).to(device)).cpu() for i in range(0, len(crops), batch)]
    return torch.cat(parts).numpy()


def validate(model: nn.Module, pool: Pool, device: torch.device) -> dict:
    """Verification on the held-out people: every genuine pair against every impostor pair."""
    embeddings = embed_crops(model, pool.val.crops, device)
    return calibrate(embeddings, pool.val_labels)


def _checkpoint(path: Path, state: TrainingState, epoch: int, config: TrainConfig, history: list) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": state.trained.state_dict(),
            "ema": state.ema.state_dict() if state.ema is not None else None,
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(),
            "epoch": epoch,
            "config": config.model_dump(),
            "history": history,
        },
        tmp,
    )
    tmp.replace(path)


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Train, checkpoint every epoch (resumable), calibrate on held-out people, export `<out>/model.json`."""
    torch.manual_seed(config.seed)
    out = Path(config.out)
    device = resolve_device(config.device)
    pool = _pool(config)
    out.mkdir(parents=True, exist_ok=True)
    data = DeviceData(
        torch.from_numpy(pool.train.crops).to(device),
        torch.from_numpy(pool.train_labels).to(device),
        torch.from_numpy(prepare_targets(pool.train.teacher)).to(device),
    )
    sampler = PKSampler(pool.train_labels, config.p, config.k, config.seed, config.singles_per_batch)
    state = _initial_state(config, len(pool.classes), device, min(len(sampler), config.max_batches or len(sampler)))
    checkpoint = out / "checkpoint.pt"
    start, history = _resume(state, checkpoint, device) if resume and checkpoint.exists() else (0, [])
    # a resumed run's clock goes on from its last epoch, so the card's training time counts every session
    began, calibration = time.time() - (history[-1]["seconds"] if history else 0.0), None
    for epoch in range(start, config.epochs):
        loss = train_one_epoch(state, data, sampler, config, epoch)
        record = {"epoch": epoch + 1, "loss": round(loss, 5), "seconds": round(time.time() - began, 1)}
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            calibration = validate(state.final, pool, device)  # the last epoch always ends here: the export's too
            record.update(calibration["summary"])
        history.append(record)
        log.info("epoch %s", json.dumps(record))
        _checkpoint(checkpoint, state, epoch, config, history)
    calibration = calibration or validate(state.final, pool, device)  # resumed after the last epoch
    return _export(state.final.cpu().eval(), calibration, pool, config, history, device, time.time() - began)


def _pool(config: TrainConfig) -> Pool:
    """The training pool of the configured crops, refused when they were aligned for another backbone."""
    root = Path(config.data) if config.data else dataset_root()
    if config.singles_per_batch > 0 and config.distill_weight <= 0:
        raise FaceGateError("singles_per_batch needs distill_weight > 0: only the teacher term trains on the singles")
    singles = config.singles_per_batch > 0
    pool = build_pool(Path(config.crops), root / "lfw", config.val_people, config.seed, config.holdout_pins, singles)
    template = template_for_backbone(config.backbone)
    if crop_template_of(Path(config.crops) / "lfw.npz") != template:
        raise FaceGateError(
            f"backbone {config.backbone} takes its own {template.size}x{template.size} crops, but those in "
            f"{config.crops} were aligned to another template: "
            f"run `facegate prepare --backbone {config.backbone} --crops DIR` and train with --set crops=DIR"
        )
    return pool


def _initial_state(config: TrainConfig, classes: int, device: torch.device, steps_per_epoch: int) -> TrainingState:
    model = initial_network(config).to(device).to(memory_format=torch.channels_last)  # faster on CPUs and GPUs
    heads = TrainingHeads(
        config.embedding_size,
        classes,
        config.arcface_weight,
        config.arcface_scale,
        config.arcface_margin,
        config.distill_weight,
    ).to(device)
    ema = None
    if config.ema > 0:  # torch's own EMA, batch-norm statistics averaged too
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
    optimizer, scheduler = build_optimizer(nn.ModuleList([model, heads]), config, steps_per_epoch * config.epochs)
    return TrainingState(model, heads, optimizer, scheduler, ema)


def _resume(state: TrainingState, checkpoint: Path, device: torch.device) -> tuple[int, list]:
    """Load a checkpoint into `state`; (the epoch to start from, the history so far)."""
    saved = torch.load(checkpoint, map_location=device, weights_only=False)
    state.trained.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.scheduler.load_state_dict(saved["scheduler"])
    if state.ema is not None and saved.get("ema") is not None:
        state.ema.load_state_dict(saved["ema"])
    log.info("resumed from %s at epoch %d", checkpoint, saved["epoch"] + 1)
    return saved["epoch"] + 1, saved["history"]


def _export(
    model: nn.Module, calibration: dict, pool: Pool, config: TrainConfig, history, device: torch.device, seconds: float
) -> Path:
    card_path = Path(config.out) / "model.json"
    export_model(
        model,
        card_path,
        CardFields(
            model_id=f"facegate-{config.backbone}-{recipe_name(config)}-{time.strftime('%Y%m%d-%H%M')}",
            architecture=config.backbone,
            embedding_size=config.embedding_size,
            template=template_for_backbone(config.backbone),
            thresholds={far: calibration["thresholds"][far] for far in FARS},
            training={
                "config": config.model_dump(),
                "recipe": recipe_name(config),
                "data": TRAINING_DATA,
                "train_images": int((pool.train_labels >= 0).sum()),
                "unlabelled_images": int((pool.train_labels < 0).sum()),
                "train_people": len(pool.classes),
                "held_out_pins": pool.held_out_pins,
                "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                "seconds": round(seconds, 1),
                "history": history,
            },
            results={"validation": calibration["summary"]},
        ),
    )
    log.info("exported %s", card_path)
    return card_path
