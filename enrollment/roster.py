"""Who is enrolled: list, show and remove people, and the id rules they share with enrolment; no network is
loaded here (these commands start fast)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from enrollment import audit
from enrollment.sync import IndexChange, write_with_index
from gate.errors import FaceGateError, NotFound
from gate.matching.gallery import Gallery
from gate.store import people
from gate.store.database import Database
from gate.store.events import forget_event_faces
from gate.store.identifiers import MAX_ID_LENGTH
from gate.store.people import Owner, find_person
from gate.store.schema import Person, Template

log = logging.getLogger(__name__)
MAX_NAME_LENGTH = 200  # characters of a person's name: the database's people.name column


@dataclass(frozen=True)
class PersonSummary:
    employee_id: str
    name: str
    active: bool
    templates: int
    model_ids: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True)
class TemplateInfo:
    id: int
    model_id: str
    source: str
    quality: float
    image_sha256: str
    has_crop: bool
    created_at: datetime
    origin: str  # where the face came from: "photo", "capture" or "event" (gate.store.schema.TEMPLATE_ORIGINS)
    event_id: int | None  # the access event confirmed, for origin "event"


@dataclass(frozen=True)
class PersonDetail:
    person: PersonSummary
    templates: list[TemplateInfo] = field(default_factory=list)


def clean_id(employee_id: str) -> str:
    """An employee id to look up: stripped, of a length the database holds (ids enrolled before the rule of
    gate.store.identifiers can still be shown and removed; new ones follow that rule)."""
    cleaned = employee_id.strip()
    if not cleaned or len(cleaned) > MAX_ID_LENGTH:
        raise FaceGateError(f"employee id must be 1 to {MAX_ID_LENGTH} characters, got {employee_id!r}")
    return cleaned


def clean_name(name: str) -> str:
    """A person's name to store: stripped, 1 to MAX_NAME_LENGTH printable characters (one-line FaceGateError)."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH or not cleaned.isprintable():
        raise FaceGateError(f"a name must be 1 to {MAX_NAME_LENGTH} printable characters, got {ascii(name)[:80]}")
    return cleaned


def _summaries(session: Session, persons: Sequence[Person]) -> list[PersonSummary]:
    counts = people.template_counts(session, [person.id for person in persons])
    return [
        PersonSummary(
            employee_id=person.employee_id,
            name=person.name,
            active=person.active,
            templates=sum(counts[person.id].values()),
            model_ids=tuple(sorted(counts[person.id])),
            created_at=person.created_at,
        )
        for person in persons
    ]


def list_people(database: Database) -> list[PersonSummary]:
    """Everyone enrolled, by employee id."""
    with database.session() as session:
        return _summaries(session, people.all_people(session))


class PersonNotFound(NotFound):
    """No person has this employee id."""

    def __init__(self, employee_id: str) -> None:
        super().__init__(f"no person with employee id {employee_id!r} (see `facegate enroll list`)")
        self.employee_id = employee_id


def _require(session: Session, employee_id: str) -> Person:
    person = find_person(session, clean_id(employee_id))
    if person is None:
        raise PersonNotFound(employee_id)
    return person


def _template_info(t: Template) -> TemplateInfo:
    return TemplateInfo(
        t.id, t.model_id, t.source, t.quality, t.image_sha256, t.crop is not None, t.created_at, t.origin, t.event_id
    )


def show_person(database: Database, employee_id: str) -> PersonDetail:
    """One person with their templates (model, source photo, quality, date)."""
    with database.session() as session:
        person = _require(session, employee_id)
        infos = [_template_info(t) for t in people.person_templates(session, person.id)]
        return PersonDetail(_summaries(session, [person])[0], infos)


def person_face(database: Database, employee_id: str) -> bytes | None:
    """The aligned face of a person's best enrolment photo (the template the detector was surest of; WebP bytes),
    or None when no template kept its crop."""
    with database.session() as session:
        return people.best_crop(session, _require(session, employee_id).id)


def template_face(database: Database, employee_id: str, template_id: int) -> bytes | None:
    """The aligned face one of a person's templates was made from (WebP bytes), or None when it kept none;
    NotFound when the person has no such template."""
    with database.session() as session:
        person = _require(session, employee_id)
        template = session.get(Template, template_id)
        if template is None or template.person_id != person.id:
            raise NotFound(f"{person.employee_id} has no template {template_id}")
        return template.crop


def remove_person(database: Database, gallery: Gallery, employee_id: str) -> PersonSummary:
    """Delete a person, their templates and their gallery entries; access events keep the employee id."""
    removed: list[PersonSummary] = []

    def write(session: Session) -> IndexChange:
        person = _require(session, employee_id)
        removed.append(_summaries(session, [person])[0])
        vectors = people.person_vectors(session, person.id, gallery.model_id)
        owner = Owner(person.id, person.employee_id, person.name)
        faces = forget_event_faces(session, employee_id=person.employee_id)  # their faces in the log
        audit.record(session, "remove", person.employee_id, name=person.name, templates=len(vectors), event_faces=faces)
        people.delete_person(session, person)
        return IndexChange.removing(gallery, vectors, owner)

    write_with_index(database, gallery, write)
    log.info("removed %s (%d templates)", removed[0].employee_id, removed[0].templates)
    return removed[0]


def set_active(database: Database, gallery: Gallery, employee_id: str, active: bool) -> PersonSummary:
    """Deactivate a person (kept with their templates, but no gate lets them in) or reactivate them; audited, the
    gallery in step. Doing what is already so changes nothing and records nothing."""
    changed: list[PersonSummary] = []

    def write(session: Session) -> IndexChange:
        person = _require(session, employee_id)
        if person.active == active:
            changed.append(_summaries(session, [person])[0])
            return IndexChange()
        own = people.person_vectors(session, person.id, gallery.model_id)
        person.active = active
        audit.record(session, "reactivate" if active else "deactivate", person.employee_id, templates=len(own))
        session.flush()
        changed.append(_summaries(session, [person])[0])
        owner = Owner(person.id, person.employee_id, person.name)
        ids, vectors = list(own), list(own.values())
        if active:
            return IndexChange(add_ids=ids, add_vectors=vectors, add_owners=[owner] * len(ids))
        return IndexChange.removing(gallery, own, owner)

    write_with_index(database, gallery, write)
    log.info("%s %s", changed[0].employee_id, "reactivated" if active else "deactivated")
    return changed[0]


def remove_template(
    database: Database, gallery: Gallery, employee_id: str, template_id: int, action: str = "remove_template"
) -> TemplateInfo:
    """Delete one of a person's templates (any model) and its gallery entry, audited as `action` (e.g.
    "undo_confirm" for a confirmed door event's face); NotFound when the person has no such template. A person's
    last template of the gallery's model cannot go: remove the person instead."""
    removed: list[TemplateInfo] = []

    def write(session: Session) -> IndexChange:
        person = _require(session, employee_id)
        template = next((t for t in people.person_templates(session, person.id) if t.id == template_id), None)
        if template is None:
            raise NotFound(f"{person.employee_id} has no template {template_id}")
        own = people.person_vectors(session, person.id, gallery.model_id)
        if list(own) == [template_id]:
            raise FaceGateError(f"template {template_id} is {person.employee_id}'s last one; remove the person instead")
        removed.append(_template_info(template))
        detail = {"template": template_id, "model_id": template.model_id, "source": template.source}
        audit.record(session, action, person.employee_id, **detail, origin=template.origin, event=template.event_id)
        people.delete_templates(session, [template])
        vectors = {template_id: own[template_id]} if template_id in own else {}
        return IndexChange.removing(gallery, vectors, Owner(person.id, person.employee_id, person.name))

    write_with_index(database, gallery, write)
    log.info("removed template %d of %s", template_id, employee_id)
    return removed[0]


def rename_person(database: Database, gallery: Gallery, employee_id: str, name: str) -> PersonSummary:
    """Change a person's name, audited ("rename", old and new); the gallery's owners carry the new name at once
    here and, through the database's change counter, at every other gate on its next refresh. The same name
    changes nothing and records nothing."""
    new_name = clean_name(name)
    renamed: list[PersonSummary] = []

    def write(session: Session) -> IndexChange:
        person = _require(session, employee_id)
        if person.name == new_name:
            renamed.append(_summaries(session, [person])[0])
            return IndexChange()
        old = Owner(person.id, person.employee_id, person.name)
        audit.record(session, "rename", person.employee_id, old=person.name, new=new_name)
        person.name = new_name
        session.flush()
        renamed.append(_summaries(session, [person])[0])
        held = IndexChange.removing(gallery, people.person_vectors(session, person.id, gallery.model_id), old)
        new = Owner(person.id, person.employee_id, new_name)  # the same templates, put back under the new name
        held.add_ids, held.add_vectors = list(held.remove_ids), list(held.remove_vectors)
        held.add_owners = [new] * len(held.add_ids)
        return held

    write_with_index(database, gallery, write)
    log.info("renamed %s to %r", renamed[0].employee_id, renamed[0].name)
    return renamed[0]
