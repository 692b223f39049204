"""/api/people: list, show, enrol from uploaded photos, remove; through the enrolment code the CLI uses."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from enrollment.audit import acting_as
from enrollment.people import EnrollmentRefused, EnrollResult, add_person
from enrollment.photos import PhotoOutcome
from enrollment.roster import PersonSummary, list_people, person_face, remove_person, set_active, show_person
from service.accounts import Principal
from service.auth import admin, parts_of, principal
from service.faces import FACE_RESPONSE, face_response
from service.params import api_employee_id, path_employee_id
from service.parts import ServiceParts
from service.person import audit_lines, strength_entry, strengths
from service.responses import (
    EnrolmentDone,
    PeoplePage,
    PersonDetails,
    PersonEntry,
    RefusedEnrolment,
    RemovedPerson,
    UploadOutcome,
    refusals,
)
from service.uploads import remove_folder, save_photos

router = APIRouter(prefix="/api/people", tags=["people"], responses=refusals(401, 422))

MAX_PAGE = 1000
BYTES_PER_MB = 1 << 20
PathId = Annotated[str, Depends(path_employee_id)]
# what lifts a refusal (EnrollmentRefused.override), in the API's terms: the form fields of POST /api/people
OVERRIDE_ADVICE = {
    "force": "if they are different people, send force=true",
    "accept_unmatched": "if it is them, send accept_unmatched=true",
    "name": "send their name in the name field",
}


def person_entry(person: PersonSummary) -> PersonEntry:
    return PersonEntry.model_validate(person, from_attributes=True)


def outcome_out(outcome: PhotoOutcome) -> UploadOutcome:
    return UploadOutcome(photo=outcome.path.name, status=outcome.status, reason=outcome.reason)


def refusal_message(refused: EnrollmentRefused) -> str:
    """A refused enrolment's message with the advice an API client can follow (no command-line options)."""
    advice = OVERRIDE_ADVICE.get(refused.override or "")
    return f"{refused.what}; {advice}" if advice else refused.what


def _matches(person: PersonSummary, search: str) -> bool:
    needle = search.strip().casefold()
    return needle in person.employee_id.casefold() or needle in person.name.casefold()


@router.get("")
def people(
    request: Request,
    _caller: Annotated[Principal, Depends(principal)],
    search: Annotated[str, Query(max_length=200, description="part of the employee id or name")] = "",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> PeoplePage:
    """Everyone enrolled, by employee id: those whose id or name contains `search`, one page."""
    everyone = list_people(parts_of(request).database)
    found = [person for person in everyone if _matches(person, search)] if search.strip() else everyone
    page = found[offset : offset + limit]
    strong = strengths(parts_of(request))
    entries = [person_entry(p).model_copy(update={"strength": strength_entry(strong.get(p.employee_id))}) for p in page]
    return PeoplePage(total=len(found), offset=offset, limit=limit, people=entries)


@router.get("/{employee_id}", responses=refusals(404))
def person(request: Request, _caller: Annotated[Principal, Depends(principal)], employee_id: PathId) -> PersonDetails:
    """One person, their templates (model, source photo, quality, date, origin), their enrolment strength and
    their latest audit entries."""
    parts = parts_of(request)
    detail = show_person(parts.database, employee_id)
    strength = strength_entry(strengths(parts).get(detail.person.employee_id))
    fields = asdict(detail.person) | {"templates": detail.templates, "strength": strength}
    fields["audit"] = audit_lines(parts, detail.person.employee_id)
    return PersonDetails.model_validate(fields, from_attributes=True)


@router.get("/{employee_id}/face", response_class=Response, responses={**FACE_RESPONSE, **refusals(404)})
def face(request: Request, _caller: Annotated[Principal, Depends(principal)], employee_id: PathId) -> Response:
    """The aligned face of the person's best enrolment photo (WebP), for a thumbnail; 404 when none is kept."""
    found = person_face(parts_of(request).database, employee_id)
    if found is None:
        raise HTTPException(404, f"no enrolment face is kept for {employee_id!r}")
    return face_response(found)


def _enrolment(result: EnrollResult) -> EnrolmentDone:
    outcomes = [outcome_out(o) for o in result.outcomes]
    return EnrolmentDone(employee_id=result.employee_id, created=result.created, added=result.added, outcomes=outcomes)


ENROL_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["employee_id", "photos"],
                    "properties": {
                        "employee_id": {"type": "string"},
                        "name": {"type": "string", "description": "required for a new person"},
                        "photos": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "force": {"type": "boolean", "description": "enrol even if a photo matches another person"},
                        "accept_unmatched": {"type": "boolean", "description": "add photos unlike the person's own"},
                    },
                }
            }
        },
    }
}
TRUE_WORDS = ("1", "true", "yes", "on")


def _text(form: FormData, key: str) -> str | None:
    value = form.get(key)
    if value is not None and not isinstance(value, str):
        raise HTTPException(422, f"{key} must be a text field, not a file")
    return value


def _enrol(parts: ServiceParts, form: FormData, folder: Path, caller: Principal) -> EnrollResult:
    raw_id = _text(form, "employee_id")
    if raw_id is None:
        raise HTTPException(422, "employee_id: a form field is required")
    employee_id = api_employee_id(raw_id)
    photos = [item for item in form.getlist("photos") if isinstance(item, UploadFile)]
    force, unmatched = ((_text(form, key) or "").lower() in TRUE_WORDS for key in ("force", "accept_unmatched"))
    paths = save_photos(photos, folder, int(parts.settings.service.max_upload_mb * BYTES_PER_MB))
    name = _text(form, "name")
    with parts.lock, acting_as(f"api:{caller.name}"):
        runtime = parts.runtime
        parts.current_gallery()
        return add_person(runtime, employee_id, name, paths, force=force, accept_unmatched=unmatched)


@router.post(
    "",
    openapi_extra=ENROL_FORM,
    responses={**refusals(400, 403, 413, 415), **refusals(422, model=RefusedEnrolment)},
)
async def enrol(request: Request, caller: Annotated[Principal, Depends(admin)]) -> EnrolmentDone:
    """Enrol a person from photos, or add photos to an enrolled one: one outcome per photo with its reason.
    Refused as a whole (nothing stored) as `facegate enroll add` refuses: 422 with the outcomes. The caller's
    rights are checked before the upload is read."""
    folder = Path(tempfile.mkdtemp(prefix="facegate-upload-"))
    try:
        async with request.form() as form:
            result = await run_in_threadpool(_enrol, parts_of(request), form, folder, caller)
    finally:
        remove_folder(folder)
    return _enrolment(result)


@router.delete("/{employee_id}", responses=refusals(403, 404))
def remove(request: Request, caller: Annotated[Principal, Depends(admin)], employee_id: PathId) -> RemovedPerson:
    """Delete a person, their templates and gallery entries (their access events keep the employee id)."""
    parts = parts_of(request)
    with parts.lock, acting_as(f"api:{caller.name}"):
        removed = remove_person(parts.database, parts.current_gallery(), employee_id)
    return RemovedPerson(removed=removed.employee_id, name=removed.name, templates=removed.templates)


def _set_active(request: Request, employee_id: str, caller: Principal, active: bool) -> PersonEntry:
    parts = parts_of(request)
    with parts.lock, acting_as(f"api:{caller.name}"):
        person = set_active(parts.database, parts.current_gallery(), employee_id, active)
    return person_entry(person)


@router.post("/{employee_id}/deactivate", responses=refusals(403, 404))
def deactivate(request: Request, caller: Annotated[Principal, Depends(admin)], employee_id: PathId) -> PersonEntry:
    """Stop letting a person in at every gate, keeping their templates."""
    return _set_active(request, employee_id, caller, False)


@router.post("/{employee_id}/reactivate", responses=refusals(403, 404))
def reactivate(request: Request, caller: Annotated[Principal, Depends(admin)], employee_id: PathId) -> PersonEntry:
    """Let a deactivated person in again."""
    return _set_active(request, employee_id, caller, True)
