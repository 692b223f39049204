"""/api/visitors: the door's unknown visitors, grouped by who they look like (GET), dismissed or enrolled as a new
person (POST); admins only, since they are strangers' faces. The same functions as `facegate events visitors`,
`dismiss` and `enrol-visitor`; the faces themselves through GET /api/events/{event_uid}/face."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from enrollment.audit import acting_as
from enrollment.door_faces import MAX_EVENT_ID
from enrollment.visitors import (
    MAX_DAYS,
    MAX_EVENT_IDS,
    MAX_FACES,
    VisitorGroup,
    dismiss_visitors,
    enrol_visitor,
    group_threshold,
    visitor_groups,
)
from gate.store.identifiers import MAX_ID_LENGTH
from service.accounts import Principal
from service.auth import admin, parts_of, principal
from service.params import api_employee_id
from service.responses import EnrolmentDone, RefusedEnrolment, refusals

router = APIRouter(prefix="/api/visitors", tags=["visitors"], responses=refusals(401, 403, 422))

MAX_NAME = 200  # characters of a new person's name
EventIds = Annotated[
    list[Annotated[int, Field(ge=1, le=MAX_EVENT_ID)]],
    Field(min_length=1, max_length=MAX_EVENT_IDS, description="event numbers (a group's `event_ids`)"),
]


def admin_viewer(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """A reader who must have the admin role: the unknown visitors are strangers' faces, no viewer's business."""
    if caller.role != "admin":
        raise HTTPException(403, f"{caller.name} has the {caller.role} role: only an admin sees the unknown visitors")
    return caller


class VisitorGroupEntry(BaseModel):
    """Unmatched faces that all look like one another, newest first."""

    size: int
    event_ids: list[int] = Field(description="the events' numbers, newest first")
    event_uids: list[str | None] = Field(description="their uids: GET /api/events/{event_uid}/face is each face")
    times: list[datetime]
    gates: list[str] = Field(description="the gate of each event")
    representative: int = Field(description="the event whose face is the most central of the group")
    representative_uid: str | None
    first_seen: datetime
    last_seen: datetime


class VisitorGroups(BaseModel):
    """The unknown visitors: groups, the largest first, then the most recently seen."""

    days: int = Field(description="of the last this many days")
    group_threshold: float = Field(description="every two faces of a group score at least this")
    groups: list[VisitorGroupEntry]


def _entry(group: VisitorGroup) -> VisitorGroupEntry:
    fields = {name: getattr(group, name) for name in VisitorGroupEntry.model_fields}
    return VisitorGroupEntry.model_validate(fields)


@router.get("", responses=refusals(400))
def visitors(
    request: Request,
    _caller: Annotated[Principal, Depends(admin_viewer)],
    days: Annotated[int | None, Query(ge=1, le=MAX_DAYS, description="default: [visitors] days")] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_FACES, description="faces; default [visitors] max_faces")] = None,
    min_size: Annotated[int, Query(ge=1, le=MAX_FACES)] = 1,
) -> VisitorGroups:
    """Recent denied faces that matched nobody enrolled, neither dismissed nor confirmed, grouped so that every two
    faces of a group score at least the card's threshold at [visitors] group_far."""
    parts = parts_of(request)
    with parts.lock:
        runtime = parts.runtime
        parts.current_gallery()
        groups = visitor_groups(runtime, days, limit, min_size)
        threshold = group_threshold(runtime)
    days = parts.settings.visitors.days if days is None else days
    return VisitorGroups(days=days, group_threshold=threshold, groups=[_entry(g) for g in groups])


class Dismissal(BaseModel):
    event_ids: EventIds


class Dismissed(BaseModel):
    dismissed: int = Field(description="events dismissed now (those dismissed already, or granted, are not counted)")


@router.post("/dismiss", responses=refusals(400))
def dismiss(request: Request, _caller: Annotated[Principal, Depends(admin)], body: Dismissal) -> Dismissed:
    """Dismiss unknown visitors' faces: they leave the unknown visitors, the events stay in the access log."""
    parts = parts_of(request)
    with parts.lock:
        return Dismissed(dismissed=dismiss_visitors(parts.database, body.event_ids))


class VisitorEnrolment(BaseModel):
    """Who an unknown visitor is: a new person."""

    event_ids: EventIds
    employee_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    name: str = Field(min_length=1, max_length=MAX_NAME)
    force: bool = Field(False, description="enrol even if a face matches another enrolled person")


@router.post("/enrol", responses={**refusals(400, 404), **refusals(422, model=RefusedEnrolment)})
def enrol(request: Request, caller: Annotated[Principal, Depends(admin)], body: VisitorEnrolment) -> EnrolmentDone:
    """Enrol a new person from an unknown visitor's faces at the door, as photos are enrolled (422 with each
    face's outcome when refused, nothing stored): each face passes the quality gate again, none looks like someone
    enrolled (unless force), and every two look alike; each template records its event; audited."""
    employee_id = api_employee_id(body.employee_id)
    parts = parts_of(request)
    with parts.lock, acting_as(f"api:{caller.name}"):
        runtime = parts.runtime
        parts.current_gallery()
        result = enrol_visitor(runtime, body.event_ids, employee_id, body.name, force=body.force)
    outcomes = [{"photo": o.path.name, "status": o.status, "reason": o.reason} for o in result.outcomes]
    return EnrolmentDone.model_validate(
        {"employee_id": result.employee_id, "created": result.created, "added": result.added, "outcomes": outcomes}
    )
