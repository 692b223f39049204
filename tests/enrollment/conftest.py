"""Enrolment tests that need the shipped model (rules that must tell people apart: confirming door faces, grouping
unknown visitors): the embedder and pipeline, loaded once (shipped_model.shipped_runtime makes a runtime of them)."""

from __future__ import annotations

import pytest

from gate.model.embedder import Embedder
from gate.vision.faces import FacePipeline


@pytest.fixture(scope="session")
def shipped() -> Embedder:
    return Embedder()  # the shipped model


@pytest.fixture(scope="session")
def shipped_pipeline(shipped: Embedder) -> FacePipeline:
    return FacePipeline(template=shipped.template)
