"""Training recipes: the base TrainConfig overridden by a TOML file and `key=value` pairs, type-checked."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from gate.errors import FaceGateError
from training.train import TrainConfig


def _coerce(name: str, kind: type, value: object) -> object:
    if isinstance(value, str) and kind is not str:
        try:
            value = {"true": True, "false": False}.get(value.lower(), value) if kind is bool else kind(value)
        except ValueError:
            raise FaceGateError(f"train setting {name}: expected {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise FaceGateError(f"train setting {name}: expected {kind.__name__}, got {value!r}")
    return value


def make_config(recipe: Path | None = None, overrides: list[str] | None = None, **explicit: object) -> TrainConfig:
    """Base config <- recipe file <- `key=value` overrides <- explicit keyword values (those not None)."""
    values: dict[str, object] = {}
    if recipe is not None:
        try:
            values.update(tomllib.loads(Path(recipe).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise FaceGateError(f"{recipe}: cannot read recipe ({error})") from None
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise FaceGateError(f"--set {item!r}: expected key=value")
        values[key.strip()] = value.strip()
    values.update({k: v for k, v in explicit.items() if v is not None})
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise FaceGateError(f"unknown train setting {unknown[0]!r}; valid: {', '.join(fields)}")
    types = {name: type(getattr(TrainConfig(), name)) for name in fields}
    return TrainConfig(**{k: _coerce(k, types[k], v) for k, v in values.items()})
