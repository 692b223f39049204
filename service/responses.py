"""The shapes of the API's JSON answers (pydantic models the routes declare, so /docs shows them), and of its
refusals: every 4xx is {"error": "<one line>"}, a refused enrolment adds each photo's outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from enrollment.photos import Status
from gate.store.gate_status import GateState
from gate.vision.camera_state import CameraState
from service.accounts import Role

# a time as the API has always written it: datetime.isoformat(), with its UTC offset ("+00:00")
Moment = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

Templates = TypeVar("Templates")


class Caller(BaseModel):
    """Who is asking, and how they are signed in."""

    name: str
    role: Role
    kind: Literal["session", "token"] = Field(description="a signed-in account (session) or an API token (token)")


class SessionStarted(BaseModel):
    """A sign-in: the session cookie is set beside it."""

    name: str
    role: Role
    csrf_token: str = Field(description="send it back as the X-CSRF-Token header of every change")
    expires_at: Moment


class SignedOut(BaseModel):
    signed_out: str = Field(description="the name whose session ended")


class StrengthEntry(BaseModel):
    """How strong a person's enrolment is for the gate's model (docs/guide/enrolling.md, Enrolment strength)."""

    weak: bool
    reasons: list[str] = Field(description="why weak; empty when strong")
    templates: int = Field(description="their templates of the gate's model")
    own_worst: float | None = Field(description="the lowest score between two of their templates")
    own_median: float | None
    nearest_id: str | None = Field(description="the other active person closest to one of their templates")
    nearest_score: float | None


class AuditLine(BaseModel):
    """One change to a person's enrolment: who, from where, when; detail is JSON."""

    time: Moment
    actor: str
    host: str
    action: str
    detail: str


class _Person(BaseModel, Generic[Templates]):
    """A person's fields, in the order the API has always sent them; `templates` a count or the list."""

    employee_id: str
    name: str
    active: bool = Field(description="false: deactivated, no gate lets them in")
    templates: Templates
    model_ids: list[str] = Field(description="the models the person has templates of")
    created_at: Moment


class PersonEntry(_Person[int]):
    """A person as listed; `templates`: how many, of every model."""

    strength: StrengthEntry | None = None


class PeoplePage(BaseModel):
    """One page of the people whose id or name matched."""

    total: int = Field(description="how many matched, on every page")
    offset: int
    limit: int
    people: list[PersonEntry]


class TemplateEntry(BaseModel):
    """One enrolment photo's template."""

    id: int
    model_id: str
    source: str = Field(description="the photo's file name")
    quality: float = Field(description="the detector's confidence in the face")
    image_sha256: str
    has_crop: bool = Field(description="its aligned face is kept (for a re-embedding and the thumbnail)")
    created_at: Moment
    origin: str = Field(description='where the face came from: "photo", "capture" (camera) or "event" (confirmed)')
    event_id: int | None = Field(description="the access event whose face was confirmed, for origin event")


class PersonDetails(_Person[list[TemplateEntry]]):
    """A person with their templates, enrolment strength and (latest) audit trail, oldest first."""

    strength: StrengthEntry | None = None
    audit: list[AuditLine] = Field(default_factory=list)


class UploadOutcome(BaseModel):
    """What enrolment did with one uploaded photo."""

    photo: str = Field(description="the upload's file name")
    status: Status
    reason: str = Field(description="why it was rejected or skipped; empty when added")


class EnrolmentDone(BaseModel):
    """An enrolment that stored something: one outcome per photo, in upload order."""

    employee_id: str
    created: bool = Field(description="a new person (false: photos added to an enrolled one)")
    added: int = Field(description="how many photos became templates")
    outcomes: list[UploadOutcome]


class RemovedPerson(BaseModel):
    removed: str = Field(description="the employee id removed")
    name: str
    templates: int = Field(description="how many templates were deleted")


class EventEntry(BaseModel):
    """One door decision."""

    time: Moment
    gate_id: str
    employee_id: str | None = Field(description="who was let in or refused; null: nobody recognised")
    score: float | None = Field(description="the match score of employee_id, or of candidate_id on a denial")
    decision: Literal["granted", "denied"]
    reason: str = Field(description="why, e.g. GRANTED, BELOW_THRESHOLD, NOT_LIVE")
    candidate_id: str | None = Field(description="a denial's nearest enrolled person")
    event_uid: str | None = Field(description="unique per decision; older events have none")
    door: str | None = Field(description="the door's report: pending, opened, failed, timed_out; null: no door")
    claimed_id: str | None = Field(description="card and face: who the badge said it was")
    face: bool = Field(description="its deciding face is kept: GET /api/events/{event_uid}/face")
    id: int | None = Field(None, description="the event's number: POST /api/events/{id}/confirm; null: no event_uid")
    confirmed_as: str | None = Field(None, description="whom an admin confirmed its face as; null: not confirmed")


class EventsPage(BaseModel):
    """One page of access events, newest first."""

    offset: int
    limit: int
    events: list[EventEntry]


class GateHeartbeat(BaseModel):
    """A gate's last heartbeat."""

    gate_id: str
    host: str
    started_at: Moment
    last_seen: Moment
    frames: int
    fps: float = Field(description="frames read per second since the heartbeat before")
    last_decision: str | None
    last_decision_at: Moment | None
    online: bool = Field(description="running: a heartbeat came within the last 15 s")
    state: GateState = Field(
        description="running; stopped: it stopped cleanly (a signal, the end of a recording); lost: it was running "
        "and no heartbeat came for 15 s (crashed, killed, its host or network gone)"
    )
    camera: CameraState | None = Field(
        description="what its camera was doing at the last heartbeat: waiting (not reached yet), streaming, lost "
        "(being reconnected), ended; off: the gate stopped (a recording's end stays ended); null: not reported"
    )
    snapshot_at: Moment | None = Field(
        description="when its camera snapshot was taken: GET /api/gates/{gate_id}/snapshot; null: none (the "
        "[snapshot] setting is off, or the gate is not running)"
    )


class Gates(BaseModel):
    gates: list[GateHeartbeat]


class ModelInUse(BaseModel):
    """The model the gates run and the threshold they decide with."""

    model_id: str
    architecture: str
    embedding_size: int
    thresholds: dict[str, float] = Field(description="the card's calibrated thresholds by target false-accept rate")
    target_far: str
    threshold: float
    threshold_source: Literal["card", "config"] = Field(description="config: [decision] threshold overrides the card")


class Refusal(BaseModel):
    """Every 4xx answer."""

    error: str = Field(description="what is wrong and what to do, in one line")


class RefusedEnrolment(Refusal):
    """A refused enrolment: nothing was stored."""

    outcomes: list[UploadOutcome] | None = Field(None, description="each photo's outcome, when photos were read")


REFUSALS = {
    400: "a value the server cannot use",
    401: "not signed in: no valid session cookie or API token",
    403: "signed in without the right: a viewer changing something, or a change without its X-CSRF-Token",
    404: "nothing with that id",
    413: "the request is larger than the server takes",
    415: "an upload that is not an image",
    422: "a parameter or field the API refuses",
    429: "too many attempts: wait for Retry-After seconds",
}


def refusals(*statuses: int, model: type[Refusal] = Refusal) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route that refuses with these statuses (REFUSALS says what each means)."""
    return {status: {"model": model, "description": REFUSALS[status]} for status in statuses}
