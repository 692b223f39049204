"""/api/events/{event_id}/confirm: an admin says who a denied event's face showed (POST), and the face becomes one of
their templates when enrollment.confirm's rules allow; DELETE takes it back. The same functions as `facegate events
confirm` and `undo-confirm`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from enrollment.audit import acting_as
from enrollment.confirm import confirm_event, undo_confirm
from enrollment.door_faces import MAX_EVENT_ID
from gate.store.identifiers import MAX_ID_LENGTH
from service.accounts import Principal
from service.auth import admin, parts_of
from service.params import api_employee_id
from service.responses import refusals

router = APIRouter(prefix="/api/events", tags=["events"], responses=refusals(401, 403, 404, 422))

EventId = Annotated[int, Path(ge=1, le=MAX_EVENT_ID, description="the event's number (`id` in GET /api/events)")]


class ConfirmAs(BaseModel):
    """Who a denied event's face showed."""

    employee_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)


class OtherMatch(BaseModel):
    """The best match among the other people enrolled."""

    employee_id: str
    name: str
    score: float


class ConfirmedFace(BaseModel):
    """A denied event's face added to a person's templates."""

    event_id: int
    employee_id: str
    name: str
    template_id: int = Field(description="the template made from the face")
    score: float = Field(description="the face's score for the person")
    review_threshold: float = Field(description="the card's threshold at [enrollment] review_far, which it met")
    review_far: str
    nearest_other: OtherMatch | None = Field(description="the best match among everyone else; null: no one else")


class UndoneConfirmation(BaseModel):
    """A confirmation taken back."""

    event_id: int
    employee_id: str = Field(description="whose template it was")
    template_ids: list[int] = Field(description="the templates removed (one; one per model after a re-embedding)")


@router.post("/{event_id}/confirm", responses=refusals(400))
def confirm(
    request: Request, caller: Annotated[Principal, Depends(admin)], event_id: EventId, body: ConfirmAs
) -> ConfirmedFace:
    """Add a denied event's kept face to a person's templates: 400 (one line, the rule and the scores, nothing
    written) when the event was granted or is confirmed already, its face fails the quality gate again, scores
    below the review threshold for the person, or matches someone else as well; 404 when the event or the
    person does not exist."""
    employee_id = api_employee_id(body.employee_id)
    parts = parts_of(request)
    with parts.lock, acting_as(f"api:{caller.name}"):
        runtime = parts.runtime
        parts.current_gallery()
        done = confirm_event(runtime, event_id, employee_id)
    nearest = (
        None if done.nearest_other is None else OtherMatch.model_validate(done.nearest_other, from_attributes=True)
    )
    fields = {name: getattr(done, name) for name in ConfirmedFace.model_fields if name != "nearest_other"}
    return ConfirmedFace(**fields, nearest_other=nearest)


@router.delete("/{event_id}/confirm", responses=refusals(400))
def undo(request: Request, caller: Annotated[Principal, Depends(admin)], event_id: EventId) -> UndoneConfirmation:
    """Take back a confirmation: the template made from the event's face is removed (audited); 404 when the event
    was not confirmed."""
    parts = parts_of(request)
    with parts.lock, acting_as(f"api:{caller.name}"):
        undone = undo_confirm(parts.database, parts.current_gallery(), event_id)
    ids = [t.id for t in undone.templates]
    return UndoneConfirmation(event_id=event_id, employee_id=undone.employee_id, template_ids=ids)
