"""Access events as stored: the record a gate writes and the door report that follows it, the filter that reads
them, and their queries (record without duplicates, list, the faces kept with them and forgotten). Each function
joins the caller's session (Database's methods give each its own transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update

from gate.errors import FaceGateError
from gate.store.people import event_templates
from gate.store.schema import AccessEvent, in_chunks

Decision = Literal["granted", "denied"]


@dataclass(frozen=True)
class AccessEventRecord:
    """One door decision, as the daemon records it and `events()` returns it."""

    time: datetime
    gate_id: str
    employee_id: str | None
    score: float | None
    decision: Decision
    reason: str
    candidate_id: str | None = None  # a denial's nearest enrolled person (`score` is theirs)
    event_uid: str | None = None  # unique per decision (the gate sets it; older events have none)
    door: str | None = None  # the actuator's report: "pending", "opened", "failed", "timed_out"; None: no door
    claimed_id: str | None = None  # card + face: who the badge said it was
    crop: bytes | None = field(default=None, repr=False, compare=False)  # the deciding face (WebP); not listed

    def to_json(self) -> dict:
        """The event's fields for JSON (the log export, MQTT): the time in ISO 8601, no face crop."""
        return {name: getattr(self, name) for name in EVENT_FIELDS} | {"time": self.time.isoformat()}


EVENT_FIELDS = tuple(name for name in AccessEventRecord.__dataclass_fields__ if name != "crop")  # what is listed


def parse_moment(text: str | None, name: str) -> datetime | None:
    """An event filter's ISO date or time (UTC unless it says otherwise), or None; `name` is the option's."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FaceGateError(
            f"{name} {text!r}: expected an ISO date or time, e.g. 2026-11-29 or 2026-11-29T08:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class DoorReport:
    """What the door did after a decision was recorded: the event's final decision, reason and door state."""

    event_uid: str
    door: str
    decision: Decision
    reason: str


@dataclass(frozen=True)
class EventFilter:
    """Which access events to read: any of gate, person, decision and a time range (UTC, `since` inclusive)."""

    gate_id: str | None = None
    employee_id: str | None = None
    decision: Decision | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list:
        conditions = []
        if self.gate_id is not None:
            conditions.append(AccessEvent.gate_id == self.gate_id)
        if self.employee_id is not None:
            conditions.append(AccessEvent.employee_id == self.employee_id)
        if self.decision is not None:
            conditions.append(AccessEvent.decision == self.decision)
        if self.since is not None:
            conditions.append(AccessEvent.time >= self.since)
        if self.until is not None:
            conditions.append(AccessEvent.time < self.until)
        return conditions


def record_events(session: Session, records: Sequence[AccessEventRecord], reports: Sequence[DoorReport]) -> int:
    """Add the events not already recorded (by event_uid), then apply the door reports; returns how many events
    were added."""
    for record in records:
        if record.decision not in ("granted", "denied"):
            raise ValueError(f"decision must be 'granted' or 'denied', got {record.decision!r}")
    uids = [record.event_uid for record in records if record.event_uid is not None]
    known: set[str | None] = set()
    for wanted in in_chunks(uids):
        known |= set(session.scalars(select(AccessEvent.event_uid).where(AccessEvent.event_uid.in_(wanted))))
    new = [record for record in records if record.event_uid is None or record.event_uid not in known]
    session.add_all(AccessEvent(**asdict(record)) for record in new)
    session.flush()
    for report in reports:
        session.execute(
            update(AccessEvent)
            .where(AccessEvent.event_uid == report.event_uid)
            .values(door=report.door, decision=report.decision, reason=report.reason)
        )
    return len(new)


def latest_events(session: Session, limit: int = 100, where: EventFilter | None = None) -> list[AccessEventRecord]:
    """The latest access events, newest first, optionally only those `where` selects (without their faces)."""
    query = select(AccessEvent).order_by(AccessEvent.time.desc(), AccessEvent.id.desc()).limit(limit)
    for condition in (where or EventFilter()).conditions():
        query = query.where(condition)
    return [AccessEventRecord(**{name: getattr(e, name) for name in EVENT_FIELDS}) for e in session.scalars(query)]


def event_face(session: Session, event_uid: str) -> bytes | None:
    """The face crop kept with an access event (WebP bytes), or None."""
    return session.scalar(select(AccessEvent.crop).where(AccessEvent.event_uid == event_uid))


def events_with_faces(session: Session, event_uids: Sequence[str]) -> set[str]:
    """Which of these events still keep their face crop."""
    found: set[str] = set()
    for wanted in in_chunks(event_uids):
        query = select(AccessEvent.event_uid).where(AccessEvent.event_uid.in_(wanted), AccessEvent.crop.is_not(None))
        found.update(uid for uid in session.scalars(query) if uid is not None)
    return found


def _forget_faces(before: datetime | None = None, employee_id: str | None = None) -> Update:
    """The statement deleting the face crops of events older than `before`, or of every event naming `employee_id`
    (as the person, the nearest candidate or the claimed badge); the events themselves stay."""
    query = update(AccessEvent).where(AccessEvent.crop.is_not(None)).values(crop=None)
    if before is not None:
        query = query.where(AccessEvent.time < before)
    if employee_id is not None:
        named = (AccessEvent.employee_id, AccessEvent.candidate_id, AccessEvent.claimed_id)
        query = query.where(or_(*(column == employee_id for column in named)))
    return query


def forget_event_faces(session: Session, before: datetime | None = None, employee_id: str | None = None) -> int:
    """Delete event face crops (_forget_faces); returns how many were deleted."""
    return cast(CursorResult, session.execute(_forget_faces(before, employee_id))).rowcount


def event_numbers(session: Session) -> list[int]:
    """Every access event's number (access_events.id), oldest first."""
    return list(session.scalars(select(AccessEvent.id).order_by(AccessEvent.id)))


def find_event(session: Session, event_id: int) -> AccessEvent | None:
    """The access event with this number (access_events.id), or None; its face is read when first asked for."""
    return session.get(AccessEvent, event_id)


@dataclass(frozen=True)
class EventMark:
    """An access event's number (access_events.id), and whom its face was confirmed as (None: not confirmed)."""

    event_id: int
    confirmed_as: str | None


def event_marks(session: Session, event_uids: Sequence[str]) -> dict[str, EventMark]:
    """event_uid -> the event's number and whom its face was confirmed as, for those recorded."""
    numbers: dict[str, int] = {}
    for wanted in in_chunks(event_uids):
        query = select(AccessEvent.event_uid, AccessEvent.id).where(AccessEvent.event_uid.in_(wanted))
        numbers.update({uid: number for uid, number in session.execute(query) if uid is not None})
    confirmed = {t.event_id: t.employee_id for t in event_templates(session, list(numbers.values()))}
    return {uid: EventMark(number, confirmed.get(number)) for uid, number in numbers.items()}
