"""Shared fixtures of the gate tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from gate.model.embedder import Embedder
from gate.vision.faces import FacePipeline

# The gate-loop tests' parts (test_loop, test_mqtt): an untrained network (mechanics, not accuracy), the real
# MTCNN pipeline, and two LFW people. A test module may define its own (test_recognition uses the shipped model).


@pytest.fixture(scope="module")
def embedder(untrained_card: Path) -> Embedder:
    return Embedder(untrained_card)


@pytest.fixture(scope="module")
def pipeline(embedder: Embedder) -> FacePipeline:
    return FacePipeline(template=embedder.template)


@pytest.fixture(scope="module")
def people(lfw_root: Path) -> list[tuple[str, list[Path]]]:
    """Two people with at least two photos: the first is enrolled, the second is a stranger."""
    names = ["Colin_Powell", "Tony_Blair"]
    return [(name, sorted((lfw_root / name).glob("*.jpg"))[:2]) for name in names]
