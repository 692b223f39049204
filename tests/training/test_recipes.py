"""Recipes and --set: the shipped model's recipe is a file that reproduces its card's training config, and a
wrong setting stops a run with its name before anything loads."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gate.errors import FaceGateError
from gate.model.card import SHIPPED_MODELS
from training.recipes import make_config

ROOT = Path(__file__).resolve().parents[2]
RUN_KEYS = {"data", "out", "device"}  # where a run reads and writes and on what: the run's, not the recipe's


def test_shipped_small_model_recipe_reproduces_its_card() -> None:
    card = json.loads((SHIPPED_MODELS / "mobilefacenet.json").read_text(encoding="utf-8"))
    trained = card["training"]["config"]
    recipe = dataclasses.asdict(make_config(ROOT / "recipes" / "mobilefacenet.toml"))
    different = {
        key: (trained[key], recipe[key])
        for key in recipe
        if key in trained and trained[key] is not None and key not in RUN_KEYS and trained[key] != recipe[key]
    }
    assert not different, f"card vs recipe: {different}"
    assert recipe["backbone"] == card["architecture"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("k=1", "train setting k: Input should be greater than or equal to 2"),
        ("loss=magic", "train setting loss"),
        ("backbone=vgg", "unknown backbone 'vgg'"),
        ("ema=1.0", "train setting ema: Input should be less than 1"),
        ("occlusion=1.5", "train setting occlusion"),
        ("epochs=x", "train setting epochs: expected int"),
        ("device=tpu", "device must be auto, cpu, cuda"),
        ("nope=1", "unknown train setting 'nope'"),
    ],
)
def test_a_wrong_setting_is_refused_with_its_name(override: str, message: str) -> None:
    with pytest.raises(FaceGateError, match=message) as error:
        make_config(overrides=[override])
    assert "\n" not in str(error.value)
