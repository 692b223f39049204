"""The enrolment audit as stored: one entry per change to who can open the door, added in the session of the change
itself (it commits or rolls back with it), and read back oldest first. Who acts and why is enrollment.audit's."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from gate.store.schema import AuditEntry


@dataclass(frozen=True)
class AuditNote:
    """What one audit entry says: who (`actor`, from `host`) did `action` to `employee_id`; `detail` is JSON."""

    actor: str
    host: str
    action: str
    employee_id: str
    detail: str


def add_audit_entry(session: Session, note: AuditNote) -> None:
    """Add the entry to the session's transaction (its time is now)."""
    session.add(
        AuditEntry(
            actor=note.actor, host=note.host, action=note.action, employee_id=note.employee_id, detail=note.detail
        )
    )


def audit_entries(session: Session, employee_id: str | None = None) -> list[AuditEntry]:
    """The audit entries, oldest first, all or one person's."""
    query = select(AuditEntry).order_by(AuditEntry.id)
    if employee_id is not None:
        query = query.where(AuditEntry.employee_id == employee_id)
    return list(session.scalars(query))
