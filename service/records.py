"""What the gates did and what they run: /api/events (JSON and CSV), /api/gates (and each gate's camera snapshot),
/api/model."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from gate.decision.policy import threshold_for
from gate.errors import FaceGateError
from gate.store.csv_cells import csv_text
from gate.store.database import Database
from gate.store.events import EVENT_FIELDS, AccessEventRecord, EventFilter, EventMark, parse_moment
from gate.store.gate_status import Heartbeat
from service.accounts import Principal
from service.auth import parts_of, principal
from service.faces import FACE_RESPONSE, face_response
from service.params import api_employee_id
from service.responses import EventEntry, EventsPage, GateHeartbeat, Gates, ModelInUse, refusals

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", responses=refusals(401, 422))  # each route names its tag: events, gates or model

MAX_PAGE = 1000
MAX_CSV_ROWS = 100_000
MAX_GATE_ID = 100  # characters of a gate id (gate_status.gate_id)


def event_filter(
    gate: Annotated[str | None, Query(description="only this gate's events")] = None,
    person: Annotated[str | None, Query(description="only this employee id's events")] = None,
    decision: Annotated[Literal["granted", "denied"] | None, Query()] = None,
    since: Annotated[str | None, Query(description="from this ISO date/time on (UTC unless given)")] = None,
    until: Annotated[str | None, Query(description="before this ISO date/time")] = None,
) -> EventFilter:
    employee_id = api_employee_id(person) if person else None
    return EventFilter(gate or None, employee_id, decision, parse_moment(since, "since"), parse_moment(until, "until"))


def _access_event(event: AccessEventRecord, face: bool, mark: EventMark | None) -> EventEntry:
    marked = {} if mark is None else {"id": mark.event_id, "confirmed_as": mark.confirmed_as}
    return EventEntry.model_validate({name: getattr(event, name) for name in EVENT_FIELDS} | {"face": face} | marked)


@router.get("/events", tags=["events"], responses=refusals(400))
def events(
    request: Request,
    _caller: Annotated[Principal, Depends(principal)],
    where: Annotated[EventFilter, Depends(event_filter)],
    offset: Annotated[int, Query(ge=0, le=MAX_CSV_ROWS)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> EventsPage:
    """Access events, newest first, filtered by gate, person, decision and time; one page."""
    database = parts_of(request).database
    found = database.events(offset + limit, where)[offset:]
    uids = [e.event_uid for e in found if e.event_uid]
    with_faces, marks = database.events_with_faces(uids), database.event_marks(uids)
    listed = [_access_event(e, e.event_uid in with_faces, marks.get(e.event_uid or "")) for e in found]
    return EventsPage(offset=offset, limit=limit, events=listed)


@router.get(
    "/events/{event_uid}/face", tags=["events"], response_class=Response, responses={**FACE_RESPONSE, **refusals(404)}
)
def event_face(request: Request, event_uid: str, _caller: Annotated[Principal, Depends(principal)]) -> Response:
    """The aligned face of the frame that decided the event (WebP); 404 when none is kept (an older event, one
    past `[events] keep_days`, or a removed person's)."""
    face = parts_of(request).database.event_face(event_uid)
    if face is None:
        raise HTTPException(404, f"no face is kept for event {event_uid!r}")
    return face_response(face)


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "one row per event, a header first", "content": {"text/csv": {}}}
}


@router.get("/events.csv", tags=["events"], response_class=Response, responses={**CSV_RESPONSE, **refusals(400)})
def events_csv(
    request: Request,
    _caller: Annotated[Principal, Depends(principal)],
    where: Annotated[EventFilter, Depends(event_filter)],
    limit: Annotated[int, Query(ge=1, le=MAX_CSV_ROWS)] = 10_000,
) -> Response:
    """The same events as CSV (newest first), for a spreadsheet: a cell that would start a formula (=, +, -, @)
    is written with a leading apostrophe."""
    events = parts_of(request).database.events(limit, where)
    text = csv_text(EVENT_FIELDS, (e.to_json() for e in events))
    headers = {"Content-Disposition": 'attachment; filename="facegate-events.csv"'}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)


def _running_snapshots(database: Database, now: datetime) -> tuple[list[Heartbeat], dict[str, datetime]]:
    """Every gate's heartbeat, and when each gate running at `now` took its snapshot (a stopped or lost gate's
    last picture is not what its camera sees now: it is not shown)."""
    statuses = database.gate_statuses()
    running = {status.gate_id for status in statuses if status.status(now) == "running"}
    return statuses, {gate: taken for gate, taken in database.snapshot_times().items() if gate in running}


@router.get("/gates", tags=["gates"])
def gates(request: Request, _caller: Annotated[Principal, Depends(principal)]) -> Gates:
    """Each gate's last heartbeat: running, stopped (cleanly) or lost (no heartbeat for 15 s), what its camera is
    doing, and when its camera snapshot was taken ([snapshot] enabled)."""
    now = datetime.now(UTC)
    statuses, snapshots = _running_snapshots(parts_of(request).database, now)
    return Gates(
        gates=[
            GateHeartbeat.model_validate(
                vars(s)
                | {"online": s.online(now), "state": s.status(now), "camera": s.camera_now(now)}
                | {"snapshot_at": snapshots.get(s.gate_id)}
            )
            for s in statuses
        ]
    )


SNAPSHOT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the gate's latest camera frame with its faces' boxes, names and scores, a JPEG image",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.get(
    "/gates/{gate_id}/snapshot",
    tags=["gates"],
    response_class=Response,
    responses={**SNAPSHOT_RESPONSE, **refusals(404)},
)
def gate_snapshot(
    request: Request,
    gate_id: Annotated[str, Path(max_length=MAX_GATE_ID)],
    _caller: Annotated[Principal, Depends(principal)],
) -> Response:
    """What a running gate's camera saw a few seconds ago, annotated (JPEG). People's faces: signed-in callers
    only, as for events' faces, and never cached. 404 when the gate keeps none ([snapshot] off), is not running,
    or its snapshot cannot be opened with this server's key (sealed with another: it is replaced at the gate's next
    snapshot)."""
    database, now = parts_of(request).database, datetime.now(UTC)
    running = any(s.gate_id == gate_id and s.status(now) == "running" for s in database.gate_statuses())
    try:
        snapshot = database.snapshot(gate_id) if running else None  # None too when the gate keeps none
    except FaceGateError as error:  # the column's unsealing: another key, or none configured here
        log.warning("gate %s's snapshot cannot be opened: %s", gate_id, error)
        raise HTTPException(404, f"gate {gate_id!r}'s snapshot cannot be opened with this server's key") from None
    if snapshot is None:
        raise HTTPException(404, f"no snapshot of gate {gate_id!r}: [snapshot] is off there, or it is not running")
    return Response(snapshot.jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/model", tags=["model"])
def model(request: Request, _caller: Annotated[Principal, Depends(principal)]) -> ModelInUse:
    """The model in use, its thresholds by target false-accept rate and the threshold the gates decide with."""
    settings = parts_of(request).settings
    card = parts_of(request).card
    return ModelInUse(
        model_id=card.model_id,
        architecture=card.architecture,
        embedding_size=card.embedding_size,
        thresholds=card.thresholds,
        target_far=settings.decision.target_far,
        threshold=threshold_for(settings.decision, card),
        threshold_source="card" if settings.decision.threshold is None else "config",
    )
