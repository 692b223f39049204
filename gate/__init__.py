"""FaceGate's runtime, one module a step of a frame's path:

sources (camera frames) → detection (MTCNN) → alignment (crop templates) → quality (grading) → pipeline (the
three together) → embedder (+ backbones, dlib_resnet, dlib_format, model_card) → scoring and matching → gallery
(FAISS over the store's templates) → tracking and aggregation → policy (the door decision) → actuators (the door)
→ annotate (drawing); daemon runs the loop, runtime holds the parts, config the settings.

The public API is re-exported here, each name loaded on first use (so `import gate.errors` stays light).
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "Settings": "gate.config",
    "load_settings": "gate.config",
    "FaceGateError": "gate.errors",
    "FacePipeline": "gate.pipeline",
    "Embedder": "gate.embedder",
    "ModelCard": "gate.model_card",
    "read_card": "gate.model_card",
    "Database": "gate.store",
    "Gallery": "gate.gallery",
    "Match": "gate.gallery",
    "Policy": "gate.policy",
    "Runtime": "gate.runtime",
    "GateLoop": "gate.daemon",
    "run_gate": "gate.daemon",
    "open_source": "gate.sources",
    "build_actuator": "gate.actuators",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'gate' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)
