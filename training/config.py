"""A training run's settings, validated with bounds like the gate's (gate.config.SettingsModel): a wrong value stops
the run before minutes of loading, with the setting's name. `facegate train --set key=value` and recipes/*.toml set
them (training/recipes.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from gate.config import SettingsModel
from gate.model.backbones import backbone_names

Count = Annotated[int, Field(ge=0)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Weight = Annotated[float, Field(ge=0.0)]


class TrainConfig(SettingsModel):
    """Every knob of a run; saved in the checkpoint and the model card."""

    data: str = ""  # holds lfw/ (with peopleDevTrain.txt) and pins/; empty: $FACEGATE_DATA
    crops: str = ".crops"  # aligned crops made by `facegate prepare`
    out: str = "runs/default"
    backbone: str = "resnet18"
    init_from: str = ""  # a model card to start from (fine-tuning), e.g. gate/models/default.json; empty: random
    embedding_size: Annotated[int, Field(ge=8, le=4096)] = 128
    loss: Literal["batch_hard", "semi_hard", "contrastive"] = "batch_hard"  # triplet mining, or Siamese pairs
    margin: Weight = 0.3
    triplet_weight: Weight = 1.0
    arcface_weight: Weight = 0.0  # >0 adds an ArcFace classification term over the training identities
    arcface_scale: Annotated[float, Field(gt=0.0)] = 32.0
    arcface_margin: Weight = 0.4
    distill_weight: Weight = 0.0  # >0 adds a cosine loss towards the dlib teacher (needs `facegate teach`)
    singles_per_batch: Count = 0  # >0: DevTrain's single-photo people leave validation; this many of their crops
    # join every batch, unlabelled, trained by the teacher term alone (needs distill_weight)
    p: Annotated[int, Field(ge=2)] = 64  # identities per batch (a triplet needs another person)
    k: Annotated[int, Field(ge=2)] = 4  # photos per identity (a triplet needs a second photo)
    epochs: Annotated[int, Field(ge=1)] = 40
    lr: Annotated[float, Field(gt=0.0)] = 1e-3
    weight_decay: Weight = 5e-4
    warmup_epochs: Weight = 1.0
    augment: bool = True  # false: train on the crops as they are (no flip, jitter, colour, blur), to measure it
    occlusion: Share = 0.0  # >0: this share of training crops gets a random grey rectangle (augment.py)
    ema: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0  # >0: export a moving average of the weights (e.g. 0.999)
    val_people: Count = 100
    holdout_pins: Count = 0  # >0: leave this many Pins people (a seeded choice) out entirely, for the study
    eval_every: Annotated[int, Field(ge=1)] = 5
    max_batches: Count = 0  # >0: stop each epoch early (smoke tests)
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    amp: bool = True  # bfloat16 autocast on a GPU, and on a CPU with native bfloat16 (AVX512-BF16 / AMX)

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, name: str) -> str:
        if name not in backbone_names():
            raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(backbone_names())}")
        return name

    @field_validator("device")
    @classmethod
    def _known_device(cls, name: str) -> str:
        if name not in ("auto", "cpu", "cuda") and not name.startswith("cuda:"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
        return name
