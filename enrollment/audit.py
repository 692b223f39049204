"""The enrolment audit: every change to who can open the door is written, in the same transaction as the change,
with who made it (the OS user, or the API account: `acting_as`), from which host and when."""

from __future__ import annotations

import getpass
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy.orm import Session

from gate.store.audit import AuditNote, add_audit_entry, audit_entries
from gate.store.database import Database
from gate.store.schema import AuditEntry

ACTIONS = (
    "enrol",
    "photos_added",
    "remove",
    "reembed",
    "encrypt",
    "deactivate",
    "reactivate",
    "confirm_event",  # a door event's face added to the person it showed
    "undo_confirm",  # that template removed again
    "remove_template",  # one template removed
    "rename",  # the person's name changed
)


_ACTING_AS: ContextVar[str | None] = ContextVar("facegate_audit_actor", default=None)


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Audit entries written inside are signed `actor` (an API account or token) instead of the OS user."""
    token = _ACTING_AS.set(actor)
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


def _actor() -> str:
    explicit = _ACTING_AS.get()
    if explicit is not None:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "unknown"


def record(session: Session, action: str, employee_id: str, **detail: object) -> None:
    """Add one audit entry to the session's transaction (it commits, or rolls back, with the change itself)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    text = json.dumps(detail, sort_keys=True, default=str)
    add_audit_entry(session, AuditNote(_actor(), socket.gethostname(), action, employee_id, text))


def audit_trail(database: Database, employee_id: str | None = None) -> list[AuditEntry]:
    """The audit entries, oldest first, all or one person's."""
    with database.session() as session:
        return audit_entries(session, employee_id)
