"""Enrollment: add people from photos (people) or from the gate's camera (capture), list, show and remove them
(roster), re-embed (reembed), seal stored templates (sealing); one transaction per person, the gallery kept in step.

The public names are re-exported here, each loaded on first use: `enroll list` must not load the network.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "EnrollmentRefused": "enrollment.people",
    "EnrollResult": "enrollment.people",
    "add_faces": "enrollment.people",
    "add_person": "enrollment.people",
    "CaptureRefused": "enrollment.capture",
    "enrol_from_camera": "enrollment.capture",
    "PersonDetail": "enrollment.roster",
    "PersonSummary": "enrollment.roster",
    "TemplateInfo": "enrollment.roster",
    "list_people": "enrollment.roster",
    "remove_person": "enrollment.roster",
    "show_person": "enrollment.roster",
    "PhotoOutcome": "enrollment.photos",
    "ReembedResult": "enrollment.reembed",
    "reembed_all": "enrollment.reembed",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'enrollment' has no attribute {name!r}")
    return getattr(importlib.import_module(_API[name]), name)
