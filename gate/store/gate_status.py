"""Gates' heartbeats as stored (the gate_status table): what a running gate reports about itself, written (or
replaced) every HEARTBEAT_S and read back for `facegate gates` and the admin page. A gate that stops cleanly says
so in its last beat ("stopped"); one that went silent while "running" (crashed, killed, its host or network gone)
reads "lost". Each function joins the caller's session (Database's methods give each its own transaction)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from gate.store.schema import GateStatus
from gate.vision.camera_state import CameraState

HEARTBEAT_S = 5.0  # a running gate writes its heartbeat this often ...
OFFLINE_AFTER_S = 3 * HEARTBEAT_S  # ... and is read as lost when none came for this long

StoredState = Literal["running", "stopped"]  # what a gate writes of itself
GateState = Literal["running", "stopped", "lost"]  # what a reader makes of it ("lost": a running gate gone silent)


@dataclass(frozen=True)
class Heartbeat:
    """What a running gate reports about itself (GateStatus's columns). `camera`: its frame source's state
    (gate.vision.camera_state.CameraState: waiting, streaming, lost, ended), None when it has none to report."""

    gate_id: str
    host: str
    started_at: datetime
    last_seen: datetime
    frames: int
    fps: float
    last_decision: str | None = None
    last_decision_at: datetime | None = None
    state: StoredState = "running"
    camera: str | None = None

    def status(self, now: datetime, max_age_s: float = OFFLINE_AFTER_S) -> GateState:
        """The gate's state at `now`: "stopped" when its last beat said so; "lost" when a running gate's last beat
        is older than `max_age_s` (crashed, killed, its host or its database out of reach); else "running"."""
        if self.state == "stopped":
            return "stopped"
        return "running" if (now - self.last_seen).total_seconds() <= max_age_s else "lost"

    def camera_now(self, now: datetime) -> CameraState | None:
        """The camera's state as `facegate gates` and the admin page show it: "off" for a stopped gate's (it closed
        its camera; a recording's "ended" stays), else what the last beat said (None: not reported)."""
        if self.status(now) == "stopped" and self.camera not in ("ended", "off"):
            return "off"
        return cast("CameraState | None", self.camera)

    def online(self, now: datetime, max_age_s: float = OFFLINE_AFTER_S) -> bool:
        """Running and seen within `max_age_s` of `now`."""
        return self.status(now, max_age_s) == "running"


def write_heartbeat(session: Session, heartbeat: Heartbeat) -> None:
    """Write (or replace) a gate's heartbeat."""
    session.merge(GateStatus(**asdict(heartbeat)))


def gate_statuses(session: Session) -> list[Heartbeat]:
    """Every gate's latest heartbeat, by gate id."""
    rows = session.scalars(select(GateStatus).order_by(GateStatus.gate_id))
    return [Heartbeat(**{name: getattr(row, name) for name in Heartbeat.__dataclass_fields__}) for row in rows]
