"""Where the face datasets live (one setting, $FACEGATE_DATA, default ../shared/datasets from the repo root) and
the one reader of LFW's people files."""

from __future__ import annotations

import os
from pathlib import Path

from gate.errors import FaceGateError

DATA_ENV = "FACEGATE_DATA"
DEFAULT_ROOT = Path("../shared/datasets")


def dataset_root() -> Path:
    """The folder holding lfw/ and pins/."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_ROOT).absolute()


def lfw_images(root: Path | None = None) -> Path:
    """LFW's <Person>/<Person>_NNNN.jpg folder."""
    return (root or dataset_root()) / "lfw" / "lfw-deepfunneled"


def _lfw_person(line: str) -> tuple[str, int] | None:
    """A `name count` line of an LFW people file as (name, count); None for any other line (fold sizes...)."""
    parts = line.split()
    if len(parts) == 2 and not parts[0].isdigit() and parts[1].isdigit():
        return parts[0], int(parts[1])
    return None


def read_people(path: Path) -> dict[str, int]:
    """An LFW people file (`n` then `name count` lines, possibly several folds) as {name: image count}."""
    if not path.is_file():
        raise FaceGateError(f"{path}: people file not found")
    return dict(person for line in path.read_text().splitlines() if (person := _lfw_person(line)))


def read_people_list(path: str | os.PathLike) -> set[str]:
    """Names from an LFW people file (`name count` lines, fold counts ignored) or a plain one-name-a-line list."""
    path = Path(path)
    if not path.is_file():
        raise FaceGateError(f"people file not found: {path}")
    names = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        person, parts = _lfw_person(line), line.split()
        if person or (len(parts) == 1 and not parts[0].isdigit()):  # an LFW people line, or a plain name
            names.add(parts[0])
    if not names:
        raise FaceGateError(f"{path}: no person names in it")
    return names
