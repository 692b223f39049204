"""Gates' camera snapshots as stored (the gate_snapshots table): one row per gate, its latest annotated frame as
JPEG, overwritten while it runs and deleted when it stops cleanly; sealed at rest by the column's type when the
database has a key. Each function joins the caller's session (Database's methods give each its own transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from gate.store.schema import GateSnapshot

MAX_SNAPSHOT_BYTES = 2_000_000  # a snapshot larger than this is not stored (a 1920 px JPEG is a few hundred kB)


@dataclass(frozen=True)
class Snapshot:
    """A gate's latest annotated camera frame: JPEG bytes and when it was taken."""

    gate_id: str
    taken_at: datetime
    jpeg: bytes


def write_snapshot(session: Session, snapshot: Snapshot) -> None:
    """Write (or replace) a gate's snapshot; a larger one than MAX_SNAPSHOT_BYTES is a programming error. The old
    row is deleted unread (a merge would read it: one sealed with another key could then never be replaced)."""
    if len(snapshot.jpeg) > MAX_SNAPSHOT_BYTES:
        raise ValueError(f"a snapshot of {len(snapshot.jpeg)} bytes is over MAX_SNAPSHOT_BYTES")
    session.execute(delete(GateSnapshot).where(GateSnapshot.gate_id == snapshot.gate_id))
    session.add(GateSnapshot(gate_id=snapshot.gate_id, taken_at=snapshot.taken_at, image=snapshot.jpeg))


def gate_snapshot(session: Session, gate_id: str) -> Snapshot | None:
    """A gate's latest snapshot, or None."""
    row = session.get(GateSnapshot, gate_id)
    return None if row is None else Snapshot(row.gate_id, row.taken_at, row.image)


def snapshot_times(session: Session) -> dict[str, datetime]:
    """When each gate that has a snapshot stored took it, by gate id."""
    return {
        gate_id: taken_at for gate_id, taken_at in session.execute(select(GateSnapshot.gate_id, GateSnapshot.taken_at))
    }


def forget_snapshot(session: Session, gate_id: str) -> bool:
    """Delete a gate's snapshot; whether there was one."""
    deleted = session.execute(delete(GateSnapshot).where(GateSnapshot.gate_id == gate_id))
    return bool(cast(CursorResult, deleted).rowcount)
