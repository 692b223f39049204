"""Shared fixtures of the gate tests."""

from __future__ import annotations

from pathlib import Path

import pytest

# The gate-loop tests' parts (test_loop, test_mqtt): the untrained network and the real MTCNN pipeline of
# tests/conftest.py (a module may define its own: test_recognition uses the shipped model), and two LFW people.


@pytest.fixture(scope="module")
def people(lfw_root: Path) -> list[tuple[str, list[Path]]]:
    """Two people with at least two photos: the first is enrolled, the second is a stranger."""
    names = ["Colin_Powell", "Tony_Blair"]
    return [(name, sorted((lfw_root / name).glob("*.jpg"))[:2]) for name in names]
