"""Editing the site's config.toml from a command: the runtime only reads it (gate/config.py)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import tomlkit

from gate.config import Settings, settings_from_dict
from gate.errors import FaceGateError


def write_threshold(path: str | os.PathLike, threshold: float, comment: str) -> Settings:
    """Set `[decision] threshold` in the config file, keeping its comments and layout (tomlkit); the edited
    file is validated before it replaces the old one, so a failure leaves the file as it was."""
    path = Path(path)
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except (tomlkit.exceptions.ParseError, UnicodeDecodeError) as error:
        raise FaceGateError(f"{path}: not valid TOML: {error}") from None
    if "decision" not in document:
        document["decision"] = tomlkit.table()
    value = tomlkit.item(round(float(threshold), 4))
    value.comment(comment)
    document["decision"]["threshold"] = value
    text = tomlkit.dumps(document)
    settings = settings_from_dict(tomllib.loads(text), source=str(path), base_dir=path.resolve().parent)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return settings
