"""On the record, then at the door: each decision made durable (database or journal) before a grant opens the door,
what the door did recorded after (the journal's reserve kept for it), every final access event published; the
tally of what the run's decisions came to."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from uuid import uuid4

from gate.decision.policy import Decision, Verdict, denied
from gate.door.requests import Actuator, DoorOutcome, DoorRequest
from gate.runtime.results import RecordTally
from gate.store.event_log import EventLog, Stored
from gate.store.events import AccessEventRecord, DoorReport
from gate.store.heartbeat import HeartbeatWriter

log = logging.getLogger(__name__)

DOOR_FAILED = "DOOR_FAILED"  # the access event's reason when the person was recognised but the actuator failed


class EventPublisher(Protocol):
    """Hears every decision's final access event (gate.door.mqtt_events's publisher); must neither raise nor wait."""

    def publish(self, record: AccessEventRecord) -> None: ...


class Recorder:
    """One gate's records and door: `act(decision)` records it and, for a recorded grant, opens the door."""

    def __init__(
        self,
        events: EventLog,
        heartbeat: HeartbeatWriter,
        actuator: Actuator,
        gate_id: str,
        publisher: EventPublisher | None = None,
    ) -> None:
        self.events, self.heartbeat, self.actuator = events, heartbeat, actuator
        self.gate_id, self.publisher = gate_id, publisher
        self.tally = RecordTally()

    def event(self, **fields: Any) -> AccessEventRecord:
        """An access event of this gate, stamped now, with a fresh event_uid."""
        return AccessEventRecord(time=datetime.now(UTC), gate_id=self.gate_id, event_uid=uuid4().hex, **fields)

    def record(self, event: AccessEventRecord) -> Stored | None:
        """Make the decision durable (database or journal) and note it for the heartbeat; None if it is lost."""
        stored = self.events.record(event)
        self.heartbeat.decided(event.decision)
        return stored

    def publish(self, record: AccessEventRecord) -> None:
        if self.publisher is not None:
            self.publisher.publish(record)

    def deny(self, counted: bool = True, **fields: Any) -> None:
        """Record and publish a denial that no track's decision made (a badge claim's); `counted` in the tally."""
        event = self.event(employee_id=None, score=None, decision="denied", **fields)
        self.record(event)
        if counted:
            self.tally.denied += 1
        self.publish(event)

    def _room_for(self, decision: Decision) -> Decision:
        """The decision, or NO_ROOM for a grant whose door report could not be recorded (the door keeps shut)."""
        if not decision.granted or self.events.room_for_door_report():
            return decision
        log.critical("door %s kept shut for %s: no room to record what it would do", self.gate_id, decision.employee_id)
        self.tally.kept_shut += 1
        return denied(decision, Verdict.NO_ROOM)

    def act(self, decision: Decision, claimed_id: str | None, crop: bytes | None) -> Decision:
        """Record the decision before the door opens, then record what the door did. A grant opens the door only
        when both can be recorded: else it is kept shut (NO_ROOM, or its record lost). Returns the decision as it
        now stands (a grant with no room to record the door is a NO_ROOM denial)."""
        decision = self._room_for(decision)
        opens = decision.granted and decision.employee_id is not None
        record = self.event(
            employee_id=decision.employee_id,
            score=decision.score,
            decision=decision.decision,
            reason=str(decision.verdict),
            candidate_id=decision.nearest,
            door="pending" if opens else None,
            claimed_id=claimed_id,
            crop=crop,
        )
        stored = self.record(record)
        if not opens:
            if decision.verdict is not Verdict.NO_ROOM:
                self.tally.denied += 1
            self.publish(record)
        elif stored is None:
            log.critical(
                "door %s kept shut for %s: the decision could not be recorded", self.gate_id, decision.employee_id
            )
            self.tally.kept_shut += 1
        else:
            self._open_door(decision, record)
        return decision

    def _open_door(self, decision: Decision, record: AccessEventRecord) -> None:
        """Open the door for a recorded grant, then record (the journal's reserve kept for it) what it did."""
        request = DoorRequest(self.gate_id, decision.employee_id or "", decision.name or "", decision.score or 0.0)
        door = self.actuator.open(request)
        final: tuple[Literal["granted", "denied"], str]
        final = ("granted", record.reason) if door is DoorOutcome.OPENED else ("denied", DOOR_FAILED)
        if door is DoorOutcome.OPENED:
            self.tally.granted += 1
        else:  # a door that did not open is not a grant, on the record either
            log.error("door %s did not open for %s: the actuator %s", self.gate_id, decision.employee_id, door)
            self.tally.door_failed += 1
        self.events.record(DoorReport(record.event_uid or "", str(door), *final), use_reserve=True)
        self.publish(replace(record, decision=final[0], reason=final[1], door=str(door)))
