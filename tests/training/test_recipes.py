"""Recipes and --set: the shipped model's recipe is a file that reproduces its card's training config, and a
wrong setting stops a run with its name before anything loads."""

from __future__ import annotations

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
    recipe = make_config(ROOT / "recipes" / "mobilefacenet.toml").model_dump()
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
        ("k=1", "train settings: k: Input should be greater than or equal to 2 .got '1'."),
        ("loss=magic", "train settings: loss: Input should be 'batch_hard', 'semi_hard' or 'contrastive'"),
        ("backbone=vgg", "train settings: backbone: Value error, unknown backbone 'vgg'"),
        ("ema=1.0", "train settings: ema: Input should be less than 1"),
        ("occlusion=1.5", "train settings: occlusion: Input should be less than or equal to 1"),
        ("epochs=x", "train settings: epochs: Input should be a valid integer"),
        ("augment=maybe", "train settings: augment: Input should be a valid boolean"),
        ("device=tpu", "train settings: device: Value error, device must be auto, cpu, cuda"),
        ("nope=1", "train settings: nope: unknown key; valid: data, crops, out, backbone"),
    ],
)
def test_a_wrong_setting_is_refused_with_its_name(override: str, message: str) -> None:
    with pytest.raises(FaceGateError, match=message) as error:
        make_config(overrides=[override])
    assert "\n" not in str(error.value)


def test_overrides_and_recipes_go_through_the_models_validation(tmp_path: Path) -> None:
    config = make_config(overrides=["epochs=3", "lr=0.01", "augment=false", "occlusion=0"], out="runs/x")
    assert (config.epochs, config.lr, config.augment, config.occlusion, config.out) == (3, 0.01, False, 0.0, "runs/x")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text('epochs = 7\nmargin = 1\nbackbone = "mobilefacenet"\n', encoding="utf-8")
    from_file = make_config(recipe, overrides=["epochs=9"])
    assert (from_file.epochs, from_file.margin, from_file.backbone) == (9, 1.0, "mobilefacenet")  # --set wins
    recipe.write_text("epoch = 7\n", encoding="utf-8")
    with pytest.raises(FaceGateError, match="train settings: epoch: unknown key"):
        make_config(recipe)
    with pytest.raises(ValueError, match="frozen"):
        config.epochs = 4  # type: ignore[misc]
