"""Shared fixtures: the dataset root (tests needing real faces skip without it) and a throwaway model.

Every test that reads real faces (through `data_root`) is marked `slow` here, so `pytest -m "not slow"` is the
fast lane before a commit; tests that train or run the gate without the dataset carry the mark themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from postgres_server import PostgresServer, remove_server, start_server

from gate.model.backbones import build_backbone
from gate.model.embedder import Embedder
from gate.vision.faces import FacePipeline
from training.datasets import DATA_ENV, dataset_root
from training.export import CardFields, export_model


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "data_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


def need_extra(module: str, extra: str) -> None:
    """Skips the test where an optional extra is missing (`make test` installs them all), saying which to install."""
    pytest.importorskip(module, reason=f"{module}, the {extra} extra, is not installed: pip install -e '.[{extra}]'")


@pytest.fixture(scope="session")
def evaluate_extra() -> None:
    """For a test that draws plots, or runs a command that does: matplotlib."""
    need_extra("matplotlib", "evaluate")


@pytest.fixture(scope="session")
def import_extra() -> None:
    """For a test that converts dlib's packaged network file (`facegate model import`): face_recognition_models."""
    need_extra("face_recognition_models", "import")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = dataset_root()
    if not (root / "lfw" / "lfw-deepfunneled").is_dir():
        pytest.skip(f"face datasets not found at {root} (set {DATA_ENV})")
    return root


@pytest.fixture(scope="session")
def lfw_root(data_root: Path) -> Path:
    return data_root / "lfw" / "lfw-deepfunneled"


@pytest.fixture(scope="session")
def untrained_card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real but untrained network exported with a card: for tests of mechanics, not of accuracy."""
    torch.manual_seed(0)
    network = build_backbone("mobilefacenet", 128).eval()
    path = tmp_path_factory.mktemp("model") / "untrained.json"
    export_model(
        network,
        path,
        CardFields(
            model_id="untrained-test",
            architecture="mobilefacenet",
            embedding_size=128,
            thresholds={"0.01": 0.5, "0.001": 0.6, "0.0001": 0.7},
        ),
    )
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (Debian's postgresql; .ci/run installs it); skips without it."""
    server = start_server()
    if server is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    yield server
    remove_server(server)


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A fresh empty database on the session's server."""
    return postgres.new_database()


@pytest.fixture(scope="module")
def embedder(untrained_card: Path) -> Embedder:
    """The untrained network (mechanics, not accuracy); a test module may define its own."""
    return Embedder(untrained_card)


@pytest.fixture(scope="module")
def pipeline(embedder: Embedder) -> FacePipeline:
    """The real MTCNN pipeline, aligning onto `embedder`'s template."""
    return FacePipeline(template=embedder.template)
