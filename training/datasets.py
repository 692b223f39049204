"""Where the face datasets live: one setting, $FACEGATE_DATA (default ../shared/datasets, from the repo root)."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "FACEGATE_DATA"
DEFAULT_ROOT = Path("../shared/datasets")


def dataset_root() -> Path:
    """The folder holding lfw/ and pins/."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_ROOT).absolute()


def lfw_images(root: Path | None = None) -> Path:
    """LFW's <Person>/<Person>_NNNN.jpg folder."""
    return (root or dataset_root()) / "lfw" / "lfw-deepfunneled"
