"""FaceGate's runtime, one room (subpackage) a step of a frame's path:

vision (frame → graded aligned crops) → model (crop → embedding) → matching (embedding → best person) →
decision (a track's matches → a decision) → door (decision → world), with the store recording it all and the
runtime assembling the parts and running the loop. Shared by every room: config (the settings), errors, devices.

Imports run one way: a room imports only the rooms listed before it in tests/gate/test_rooms.py (vision, model,
store, matching, decision, door, runtime: the store sits below matching because the gallery syncs from it).

The public API is re-exported here, each name loaded on first use (so `import gate.errors` stays light).
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "Settings": "gate.config",
    "load_settings": "gate.config",
    "FaceGateError": "gate.errors",
    "FacePipeline": "gate.vision.faces",
    "Embedder": "gate.model.embedder",
    "ModelCard": "gate.model.card",
    "read_card": "gate.model.card",
    "Database": "gate.store.database",
    "Gallery": "gate.matching.gallery",
    "Match": "gate.matching.search",
    "Policy": "gate.decision.policy",
    "Runtime": "gate.runtime.parts",
    "GateLoop": "gate.runtime.loop",
    "run_gate": "gate.runtime.run",
    "open_source": "gate.vision.sources",
    "build_actuator": "gate.door.actuators",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'gate' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)
