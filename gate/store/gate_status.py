"""Gates' heartbeats as stored (the gate_status table): what a running gate reports about itself, written (or
replaced) every HEARTBEAT_S and read back for `facegate gates` and the admin page. Each function joins the
caller's session (Database's methods give each its own transaction)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gate.store.schema import GateStatus

HEARTBEAT_S = 5.0  # a running gate writes its heartbeat this often ...
OFFLINE_AFTER_S = 3 * HEARTBEAT_S  # ... and is shown offline when none came for this long


@dataclass(frozen=True)
class Heartbeat:
    """What a running gate reports about itself (GateStatus's columns)."""

    gate_id: str
    host: str
    started_at: datetime
    last_seen: datetime
    frames: int
    fps: float
    last_decision: str | None = None
    last_decision_at: datetime | None = None

    def online(self, now: datetime, max_age_s: float = OFFLINE_AFTER_S) -> bool:
        """Seen within `max_age_s` of `now`: a gate that stopped, crashed or lost its database goes offline."""
        return (now - self.last_seen).total_seconds() <= max_age_s


def write_heartbeat(session: Session, heartbeat: Heartbeat) -> None:
    """Write (or replace) a gate's heartbeat."""
    session.merge(GateStatus(**asdict(heartbeat)))


def gate_statuses(session: Session) -> list[Heartbeat]:
    """Every gate's latest heartbeat, by gate id."""
    rows = session.scalars(select(GateStatus).order_by(GateStatus.gate_id))
    return [Heartbeat(**{name: getattr(row, name) for name in Heartbeat.__dataclass_fields__}) for row in rows]
