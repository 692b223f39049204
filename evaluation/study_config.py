"""The study's settings (`facegate study --set name=value`) and the names of the systems it compares, validated like
the gate's: bounds, unknown keys refused, a wrong value named in one line. Below the study, its walk-ups
(evaluation/study_frames.py), its metrics and its typed results, which all read it."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field

from gate.config import SettingsModel

System = Literal["two-stage", "end-to-end", "middle"]  # the systems compared
SYSTEMS: tuple[System, ...] = get_args(System)
TWO_STAGE, END_TO_END, MIDDLE = SYSTEMS
DEFAULT_KS = (1, 2, 5, 10, 20, 50)
People = Literal["pins", "lfw"]  # where the employees and strangers come from


class StudyConfig(SettingsModel):
    """Everything that shapes the study's numbers (the cache keys are made from it)."""

    ks: tuple[Annotated[int, Field(ge=1)], ...] = Field(DEFAULT_KS, min_length=1)  # photos per employee
    employees: int = Field(30, ge=2)
    strangers: int = Field(10, ge=2)  # split by person: the first half calibrates thresholds, the second tests them
    test_photos: int = Field(10, ge=1)  # per employee: held-out walk-ups
    stranger_photos: int = Field(40, ge=1)  # per stranger: walk-ups
    # moments of the walk taken as frames (0 far away, 1 at the camera)
    walk_t: tuple[Annotated[float, Field(ge=0.0, le=1.0)], ...] = Field((0.4, 0.7, 1.0), min_length=1)
    frame_width: int = Field(160, ge=32)  # whole frames are downscaled to this for the end-to-end classifier
    frame_height: int = Field(120, ge=32)
    pool_frames: int = Field(3000, ge=1)  # training frames rendered per k for the end-to-end classifier (then flipped)
    samples: int = Field(4000, ge=1)  # training images seen at k = 1; samples_for(k) grows it with log2(k)
    target_far: float = Field(0.05, ge=0.0, lt=1.0)  # per walk, on calibration strangers
    match: Literal["best", "mean"] = "best"  # two-stage: score a person by their best template or their mean one
    seed: int = 0
    allow_seen: bool = False
    systems: tuple[System, ...] = Field(SYSTEMS, min_length=1)
    # pins: the card's held-out Pins people; lfw: LFW people with enough photos, when the card says LFW is unseen
    people: People = "pins"
