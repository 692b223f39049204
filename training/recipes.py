"""Settings from `key=value` overrides, type-checked against a dataclass's defaults: training runs (TrainConfig,
with a TOML recipe file) and the study (StudyConfig) take them the same way."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from gate.errors import FaceGateError
from training.config import TrainConfig

Config = TypeVar("Config")


def _coerce(name: str, default: object, value: object, what: str) -> object:
    """`value` (a string from the command line, or a TOML value) as the type of the field's default."""
    if isinstance(default, tuple):
        parts = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[arg-type]
        kind = type(default[0]) if default else str
        return tuple(_coerce(name, kind(), part.strip() if isinstance(part, str) else part, what) for part in parts)
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        try:
            value = {"true": True, "false": False}.get(value.lower(), value) if kind is bool else kind(value)
        except ValueError:
            raise FaceGateError(f"{what} setting {name}: expected {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise FaceGateError(f"{what} setting {name}: expected {kind.__name__}, got {value!r}")
    return value


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """`--set key=value` items as {key: value}; one-line error on an item without `=`."""
    values = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise FaceGateError(f"--set {item!r}: expected key=value")
        values[key.strip()] = value.strip()
    return values


def build_config(cls: type[Config], values: dict[str, Any], what: str) -> Config:
    """`cls` (a dataclass with defaults) with `values` applied, each checked against its default's type."""
    defaults = cls()
    names = [f.name for f in dataclasses.fields(defaults)]  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise FaceGateError(f"unknown {what} setting {unknown[0]!r}; valid: {', '.join(names)}")
    try:
        return cls(**{k: _coerce(k, getattr(defaults, k), v, what) for k, v in values.items()})
    except ValidationError as error:  # a pydantic-checked config (TrainConfig): its first complaint, one line
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise FaceGateError(f"{what} setting {where}: {first['msg']} (got {first.get('input')!r})") from None


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
