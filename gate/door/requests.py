"""What passes between the decision and the door: the request to open it, the outcome, the actuator's shape."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class DoorRequest:
    """Who is to be let in, where: the fields an actuator may pass on."""

    gate_id: str
    person_id: str
    name: str
    score: float


class DoorOutcome(StrEnum):
    """What the actuator reported; the access event keeps it (only OPENED is a grant)."""

    OPENED = "opened"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


class Actuator(Protocol):
    def open(self, request: DoorRequest) -> DoorOutcome:
        """Open the door and say what happened."""
        ...

    def close(self) -> None:
        """Release what the actuator holds (a broker connection); the gate calls it once, when it stops."""
        ...
