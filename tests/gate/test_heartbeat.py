"""A running gate's heartbeat: written when due, with its pace and last decision; a refusing database is skipped."""

from __future__ import annotations

from pathlib import Path

from gate.store.database import Database
from gate.store.gate_status import HEARTBEAT_S
from gate.store.heartbeat import HeartbeatWriter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_beat_is_written_at_once_then_every_heartbeat_s_with_the_pace_between(tmp_path: Path) -> None:
    database, clock = Database(f"sqlite:///{tmp_path / 'gate.db'}"), Clock()
    writer = HeartbeatWriter(database, "front", clock)
    writer.tick(frames=0)
    clock.now += HEARTBEAT_S / 2
    writer.tick(frames=30)  # not due yet
    assert writer.written == 1 and database.gate_statuses()[0].frames == 0
    writer.decided("granted")
    clock.now += HEARTBEAT_S / 2
    writer.tick(frames=75)
    [status] = database.gate_statuses()
    assert writer.written == 2 and (status.frames, status.fps, status.last_decision) == (75, 15.0, "granted")


def test_a_database_that_refuses_the_beat_does_not_stop_the_gate(tmp_path: Path) -> None:
    Database(f"sqlite:///{tmp_path / 'gate.db'}")
    read_only = Database(f"sqlite:///file:{tmp_path / 'gate.db'}?mode=ro&uri=true")
    writer = HeartbeatWriter(read_only, "front", Clock())
    writer.tick(frames=10)
    writer.tick(frames=20, force=True)
    assert writer.written == 0
