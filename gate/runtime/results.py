"""What a gate run comes to: each face track's report, the tally of decisions at the door and on the record, and
the run's summary."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from gate.decision.policy import Decision


@dataclass
class TrackReport:
    """What happened to one face track: when it was seen, how many frames were usable, its decision."""

    track_id: int
    first_frame: int
    last_frame: int
    frames_seen: int = 0  # processed frames in which the face was detected
    usable_frames: int = 0  # ... and passed the quality gate
    rejects: Counter[str] = field(default_factory=Counter)  # quality reason -> frames
    best_score: float | None = None
    decision: Decision | None = None
    decision_frame: int | None = None

    @property
    def frames_to_decision(self) -> int | None:
        """Video frames from the track's first sighting to its decision, both included."""
        return None if self.decision_frame is None else self.decision_frame - self.first_frame + 1


@dataclass
class RecordTally:
    """What the run's decisions came to at the door and on the record."""

    granted: int = 0  # the door opened
    denied: int = 0  # turned away by the policy (or a badge claim)
    door_failed: int = 0  # granted, but the actuator did not open the door
    kept_shut: int = 0  # granted, but the door kept shut: the decision, or what the door would do, had no room
    lost: int = 0  # records (decisions or door reports) neither the database nor the journal took
    waiting: int = 0  # records still in the journal at the end, for the database when it is back
    claims_refused: int = 0  # badge claims refused as not coming from a configured reader (card + face)

    @property
    def complete(self) -> bool:
        """Every decision recorded and every grant acted on with its record."""
        return self.lost == 0 and self.kept_shut == 0

    def describe(self) -> str:
        parts = [f"{self.granted} granted", f"{self.denied} denied"]
        if self.door_failed:
            parts.append(f"{self.door_failed} door failed")
        if self.kept_shut:
            parts.append(f"{self.kept_shut} kept shut for want of a record")
        if self.lost:
            parts.append(f"{self.lost} records LOST")
        if self.waiting:
            parts.append(f"{self.waiting} records waiting in the journal")
        if self.claims_refused:
            parts.append(f"{self.claims_refused} badge claims refused")
        return ", ".join(parts)


@dataclass
class GateSummary:
    """The result of a run: frames read and processed, decisions in order, every track, what they came to."""

    frames: int
    processed: int
    decisions: list[Decision]
    tracks: list[TrackReport]
    stopped_by_signal: bool
    tally: RecordTally = field(default_factory=RecordTally)
    camera_gave_up: bool = False  # the frames ended with the camera away ([camera] max_reconnects): not a clean stop
    # a live camera's frames: seconds from capture to the end of their processing (gate.runtime.cameras keeps them)
    frame_ages_s: list[float] = field(default_factory=list)
