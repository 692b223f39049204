"""The training pool (LFW peopleDevTrain + Pins, as aligned crops), its held-out validation people, P x K batches."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gate.errors import FaceGateError
from training.crops import CropSet, load_crops
from training.datasets import read_people

log = logging.getLogger(__name__)


@dataclass
class Pool:
    """Crops split by person: `train` for fitting, `val` (people never trained on) for calibration and selection.
    With `train_singles`, `train` ends with the single-photo DevTrain people's crops, labelled -1: no class, no
    positive pair, trained on through the teacher term alone."""

    train: CropSet
    train_labels: np.ndarray  # (N,) int64, 0..C-1, or -1 for an unlabelled single
    val: CropSet
    val_labels: np.ndarray
    classes: list[str]
    held_out_pins: list[str]  # Pins people kept out of training and validation alike (the study's employees)


def _labels(names: np.ndarray) -> tuple[np.ndarray, list[str]]:
    classes = sorted(set(names.tolist()))
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[n] for n in names], dtype=np.int64), classes


def held_out_pins(people: list[str], count: int, seed: int = 0) -> list[str]:
    """The `count` Pins people a run never sees: a seeded choice, so a study can name them from the seed alone."""
    if count > len(people):
        raise FaceGateError(f"holdout_pins={count}, but there are only {len(people)} Pins people")
    return sorted(np.random.default_rng(seed).choice(sorted(people), size=count, replace=False).tolist())


# the training settings that choose the validation people, at their defaults (TrainConfig's)
VALIDATION_SPLIT = {"seed": 0, "val_people": 100, "holdout_pins": 0}


def validation_people(dev_train: dict[str, int], count: int, seed: int) -> set[str]:
    """The LFW people a training run holds out to validate on: `count` seeded ones of those with 2..20 photos,
    so no one person dominates the genuine pairs."""
    several = sorted(name for name, photos in dev_train.items() if 2 <= photos <= 20)
    return set(np.random.default_rng(seed).choice(several, size=min(count, len(several)), replace=False).tolist())


def build_pool(
    crops_dir: Path,
    lfw_dir: Path,
    val_people: int = 100,
    seed: int = 0,
    holdout_pins: int = 0,
    train_singles: bool = False,
) -> Pool:
    """LFW peopleDevTrain + Pins. `val_people` LFW people with 2+ photos are held out, and so are all LFW
    people with a single photo (no positive pair to train on, but good impostors for calibration) unless
    `train_singles` puts them into training, unlabelled, for the teacher (only their crops with a teacher vector).
    `holdout_pins` Pins people are left out altogether (never trained on, never used for calibration)."""
    dev_train = read_people(lfw_dir / "peopleDevTrain.txt")
    lfw = load_crops(crops_dir / "lfw.npz", people=set(dev_train))
    pins = load_crops(crops_dir / "pins.npz")
    held_pins = held_out_pins(sorted(set(pins.person.tolist())), holdout_pins, seed)
    pins = pins.subset(~np.isin(pins.person, held_pins))
    pins.person = np.array([f"pins:{p}" for p in pins.person])  # keep the two namespaces apart
    held = validation_people(dev_train, val_people, seed)
    singles = {name for name, count in dev_train.items() if count < 2}
    is_single = np.isin(lfw.person, sorted(singles))
    in_val = np.isin(lfw.person, sorted(held)) | (is_single & (not train_singles))
    train = CropSet.concat(lfw.subset(~in_val & ~is_single & lfw.detected), pins.subset(pins.detected))
    train_labels, classes = _labels(train.person)
    if train_singles:
        unlabelled = lfw.subset(is_single & lfw.detected & ~np.isnan(lfw.teacher[:, 0]))
        train = CropSet.concat(train, unlabelled)
        train_labels = np.concatenate([train_labels, np.full(len(unlabelled), -1, np.int64)])
    val = lfw.subset(in_val)
    val_labels, _ = _labels(val.person)
    log.info(
        "pool: %d train crops of %d people (+%d unlabelled); %d validation crops of %d people",
        int((train_labels >= 0).sum()),
        len(classes),
        int((train_labels < 0).sum()),
        len(val),
        len(set(val.person.tolist())),
    )
    return Pool(train, train_labels, val, val_labels, classes, held_pins)


class PKSampler:
    """Batches of P identities x K images each (identities with fewer than K photos are sampled with repeats)
    so that every batch holds positives and hard negatives for online triplet mining; then `unlabelled` crops
    labelled -1, if asked, drawn from their own generator so the labelled batches stay those of the same seed."""

    def __init__(self, labels: np.ndarray, p: int, k: int, seed: int = 0, unlabelled: int = 0) -> None:
        self.by_class = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]
        self.classes = np.array([c for c, idx in enumerate(self.by_class) if len(idx) >= 2])
        self.singles = np.flatnonzero(labels < 0)
        if unlabelled > len(self.singles):
            raise FaceGateError(f"{unlabelled} unlabelled crops a batch asked, but the pool has {len(self.singles)}")
        self.p, self.k, self.unlabelled = p, k, unlabelled
        self.batches_per_epoch = max(1, int((labels >= 0).sum()) // (p * k))
        self.rng = np.random.default_rng(seed)
        self.singles_rng = np.random.default_rng([seed, 1])

    def __len__(self) -> int:
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[np.ndarray]:
        for _ in range(self.batches_per_epoch):
            chosen = self.rng.choice(self.classes, size=self.p, replace=False)
            parts = [
                self.rng.choice(self.by_class[c], size=self.k, replace=len(self.by_class[c]) < self.k) for c in chosen
            ]
            if self.unlabelled:
                parts.append(self.singles_rng.choice(self.singles, size=self.unlabelled, replace=False))
            yield np.concatenate(parts)
