"""/api/people/{id}: one person's page: a template's face, removing one template, renaming; and everyone's
enrolment strength (computed once per change of who is enrolled, for the list and the person)."""

from __future__ import annotations

import threading
import weakref
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from enrollment.audit import acting_as, audit_trail
from enrollment.roster import MAX_NAME_LENGTH, TemplateInfo, remove_template, rename_person, template_face
from enrollment.strength import Strength, configured_strengths
from service.accounts import Principal
from service.auth import admin, parts_of, principal
from service.faces import FACE_RESPONSE, face_response
from service.params import path_employee_id
from service.parts import ServiceParts
from service.responses import AuditLine, PersonEntry, StrengthEntry, TemplateEntry, refusals

router = APIRouter(prefix="/api/people", tags=["people"], responses=refusals(401, 422))

PathId = Annotated[str, Depends(path_employee_id)]
TemplateId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the template's id (GET /api/people/{id})")]
MAX_AUDIT = 200  # a person's latest audit entries shown with them

_strengths: weakref.WeakKeyDictionary[ServiceParts, tuple[int, dict[str, Strength]]] = weakref.WeakKeyDictionary()
_strengths_lock = threading.Lock()


def strengths(parts: ServiceParts) -> dict[str, Strength]:
    """Everyone's enrolment strength, computed again only when who is enrolled has changed (the database's
    change counter moved): one pass over every template per change, not per request."""
    with _strengths_lock:
        version = parts.database.gallery_version()
        held = _strengths.get(parts)
        if held is None or held[0] != version:
            held = (version, configured_strengths(parts.database, parts.settings))
            _strengths[parts] = held
        return held[1]


def strength_entry(strength: Strength | None) -> StrengthEntry | None:
    return None if strength is None else StrengthEntry.model_validate(strength, from_attributes=True)


def audit_lines(parts: ServiceParts, employee_id: str) -> list[AuditLine]:
    """A person's latest MAX_AUDIT audit entries, oldest first."""
    entries = audit_trail(parts.database, employee_id)[-MAX_AUDIT:]
    return [AuditLine.model_validate(entry, from_attributes=True) for entry in entries]


class Rename(BaseModel):
    """A person's new name."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)


class RemovedTemplate(BaseModel):
    """One template removed; the person keeps the rest."""

    employee_id: str
    template: TemplateEntry


@router.get(
    "/{employee_id}/templates/{template_id}/face",
    response_class=Response,
    responses={**FACE_RESPONSE, **refusals(404)},
)
def template_image(
    request: Request, _caller: Annotated[Principal, Depends(principal)], employee_id: PathId, template_id: TemplateId
) -> Response:
    """The aligned face one of the person's templates was made from (WebP); 404 when none is kept."""
    found = template_face(parts_of(request).database, employee_id, template_id)
    if found is None:
        raise HTTPException(404, f"template {template_id} of {employee_id!r} keeps no face")
    return face_response(found)


def _entry(template: TemplateInfo) -> TemplateEntry:
    return TemplateEntry.model_validate(template, from_attributes=True)


@router.delete("/{employee_id}/templates/{template_id}", responses=refusals(400, 403, 404))
def delete_template(
    request: Request, caller: Annotated[Principal, Depends(admin)], employee_id: PathId, template_id: TemplateId
) -> RemovedTemplate:
    """Remove one of the person's templates from the database and every gate's gallery (audited); never their
    last one of the gate's model (400: remove the person instead)."""
    parts = parts_of(request)
    with parts.lock, acting_as(f"api:{caller.name}"):
        removed = remove_template(parts.database, parts.current_gallery(), employee_id, template_id)
    return RemovedTemplate(employee_id=employee_id, template=_entry(removed))


@router.patch("/{employee_id}", responses=refusals(400, 403, 404))
def rename(
    request: Request, caller: Annotated[Principal, Depends(admin)], employee_id: PathId, change: Rename
) -> PersonEntry:
    """Change the person's name (audited); every gate shows it after its next refresh."""
    parts = parts_of(request)
    with parts.lock, acting_as(f"api:{caller.name}"):
        person = rename_person(parts.database, parts.current_gallery(), employee_id, change.name)
    return PersonEntry.model_validate(person, from_attributes=True)
