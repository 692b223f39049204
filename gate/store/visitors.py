"""The door's unknown visitors as stored: denied access events whose face matched nobody enrolled, kept, neither
dismissed by an admin (access_events.dismissed_at) nor confirmed as someone (templates.event_id); and their
dismissal. Each function joins the caller's session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm import Session

from gate.store.schema import AccessEvent, Template, in_chunks

# a denial for want of anyone enrolled close enough: nobody scored at the threshold (a stranger, or someone the
# gallery does not know yet). Not NO_AGREEMENT, NOT_LIVE, COOLDOWN or a badge's refusal: someone matched there.
# gate.decision.policy.Verdict's names, as access_events.reason keeps them (the store comes after the decision)
UNMATCHED_REASONS = ("UNKNOWN_FACE", "BELOW_THRESHOLD")


@dataclass(frozen=True)
class UnmatchedFace:
    """One unknown visitor's walk-up: the event's number (access_events.id) and uid (its face's address in the
    API), when, at which gate, and the face the gate kept (its aligned crop for the model then in use, WebP)."""

    event_id: int
    event_uid: str | None
    time: datetime
    gate_id: str
    crop: bytes = field(repr=False)


def unmatched_faces(
    session: Session,
    limit: int,
    since: datetime | None = None,
    event_ids: Sequence[int] | None = None,
    near: float | None = None,
) -> list[UnmatchedFace]:
    """The latest unmatched faces (UNMATCHED_REASONS, face kept, not dismissed, not confirmed), newest first, at
    most `limit`: those from `since` on, or only those numbered in `event_ids`; with `near`, not those whose nearest
    enrolled person scored that or more (someone enrolled, turned away: theirs to confirm, not a visitor)."""
    confirmed = select(Template.event_id).where(Template.event_id.is_not(None))
    query = (
        select(AccessEvent.id, AccessEvent.event_uid, AccessEvent.time, AccessEvent.gate_id, AccessEvent.crop)
        .where(AccessEvent.decision == "denied", AccessEvent.reason.in_(UNMATCHED_REASONS))
        .where(AccessEvent.crop.is_not(None), AccessEvent.dismissed_at.is_(None))
        .where(AccessEvent.id.not_in(confirmed))
        .order_by(AccessEvent.time.desc(), AccessEvent.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(AccessEvent.time >= since)
    if event_ids is not None:
        query = query.where(AccessEvent.id.in_([int(i) for i in event_ids]))
    if near is not None:
        query = query.where(or_(AccessEvent.score.is_(None), AccessEvent.score < near))
    rows = session.execute(query)
    return [UnmatchedFace(number, uid, time, gate, crop or b"") for number, uid, time, gate, crop in rows]


def dismiss_events(session: Session, event_ids: Sequence[int], when: datetime) -> int:
    """Mark these denied events dismissed from the unknown visitors at `when` (those dismissed already keep their
    time); returns how many were marked now."""
    marked = 0
    for chunk in in_chunks([int(i) for i in event_ids]):
        query = (
            update(AccessEvent)
            .where(AccessEvent.id.in_(chunk), AccessEvent.decision == "denied", AccessEvent.dismissed_at.is_(None))
            .values(dismissed_at=when)
        )
        marked += cast(CursorResult, session.execute(query)).rowcount
    return marked
