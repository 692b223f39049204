"""Settings from a recipe file and `key=value` overrides, put through the settings model's own validation (the
gate's way: gate.config.validated): training runs (TrainConfig, with a TOML recipe file) and the study
(StudyConfig) take them the same way. A wrong key or value stops the run in one line naming the key."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar, get_origin

from gate.config import SettingsModel, validated
from gate.errors import FaceGateError
from training.config import TrainConfig

Config = TypeVar("Config", bound=SettingsModel)


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """`--set key=value` items as {key: value}; one-line error on an item without `=`."""
    values = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise FaceGateError(f"--set {item!r}: expected key=value")
        values[key.strip()] = value.strip()
    return values


def _listed(model: type[SettingsModel], name: str, value: object) -> object:
    """A comma-separated string given for a tuple field (`--set ks=1,2,5`) as its items; anything else as given."""
    field = model.model_fields.get(name)
    if field is not None and isinstance(value, str) and get_origin(field.annotation) is tuple:
        return [part.strip() for part in value.split(",")]
    return value


def build_config(model: type[Config], values: Mapping[str, object], what: str) -> Config:
    """`model` with `values` applied over its defaults, through its validation ("3" becomes 3 where a number is
    wanted, "1,2" a tuple's items); a FaceGateError "<what> settings: key: what is wrong" otherwise."""
    return validated(model, {name: _listed(model, name, value) for name, value in values.items()}, f"{what} settings")


def make_config(recipe: Path | None = None, overrides: list[str] | None = None, **explicit: object) -> TrainConfig:
    """Base config <- recipe file <- `key=value` overrides <- explicit keyword values (those not None)."""
    values: dict[str, object] = {}
    if recipe is not None:
        try:
            values.update(tomllib.loads(Path(recipe).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise FaceGateError(f"{recipe}: cannot read recipe ({error})") from None
    values.update(parse_overrides(overrides))
    values.update({k: v for k, v in explicit.items() if v is not None})
    return build_config(TrainConfig, values, "train")
