"""The enrolment audit: every change to who can open the door is written, in the same transaction as the change,
with who made it (the OS user), from which host and when."""

from __future__ import annotations

import getpass
import json
import socket

from sqlalchemy import select
from sqlalchemy.orm import Session

from gate.store import AuditEntry, Database

ACTIONS = ("enrol", "photos_added", "remove", "reembed", "encrypt")


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "unknown"


def record(session: Session, action: str, employee_id: str, **detail: object) -> None:
    """Add one audit entry to the session's transaction (it commits, or rolls back, with the change itself)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    session.add(
        AuditEntry(
            actor=_actor(),
            host=socket.gethostname(),
            action=action,
            employee_id=employee_id,
            detail=json.dumps(detail, sort_keys=True, default=str),
        )
    )


def audit_trail(database: Database, employee_id: str | None = None) -> list[AuditEntry]:
    """The audit entries, oldest first, all or one person's."""
    query = select(AuditEntry).order_by(AuditEntry.id)
    if employee_id is not None:
        query = query.where(AuditEntry.employee_id == employee_id)
    with database.session() as session:
        return list(session.scalars(query))
