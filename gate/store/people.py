"""People and their face templates as stored: who owns a template, the templates a gallery is built from, and the
reads and writes of enrolment (find, add and delete a person; add a person's templates; count, list and choose
them). Each function joins the caller's session, so that one enrolment stays one transaction; Database's methods
give the gallery's reads their own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gate.store.schema import Person, Template, in_chunks

MAX_SOURCE = 255  # characters of a template's source (the photo's file name) kept


@dataclass(frozen=True)
class Owner:
    """Whom a template belongs to."""

    person_id: int
    employee_id: str
    name: str


@dataclass(frozen=True)
class NewTemplate:
    """A template to store: one photo's embedding by one model, with the aligned face (WebP) kept for re-embedding
    (None: none kept). `image_sha256` is the photo file's digest; `source` its name; `quality` the detector's
    probability of the face; `origin` where the face came from (schema.TEMPLATE_ORIGINS), `event_id` the access
    event confirmed, for origin "event"."""

    person_id: int
    model_id: str
    vector: np.ndarray
    image_sha256: str
    quality: float
    source: str
    crop: bytes | None
    origin: str = "photo"
    event_id: int | None = None

    def from_origin(self, origin: str, event_id: int | None = None) -> NewTemplate:
        """This template, saying where its face came from."""
        return replace(self, origin=origin, event_id=event_id)


def all_templates(session: Session, model_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Active people's templates of one model: (template ids (N,), person ids (N,), (N, D) float32)."""
    query = (
        select(Template.id, Template.person_id, Template.embedding)
        .join(Person)
        .where(Person.active, Template.model_id == model_id)
        .order_by(Template.id)
    )
    rows = session.execute(query).all()
    ids = np.array([row[0] for row in rows], dtype=np.int64)
    people = np.array([row[1] for row in rows], dtype=np.int64)
    if not rows:
        return ids, people, np.zeros((0, 0), dtype=np.float32)
    return ids, people, np.stack([np.frombuffer(row[2], dtype=np.float32) for row in rows])


def model_templates(session: Session, model_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Everyone's templates of one model, active or not: (template ids (N,), person ids (N,), (N, D) float32)."""
    query = select(Template.id, Template.person_id, Template.embedding).where(Template.model_id == model_id)
    rows = session.execute(query.order_by(Template.person_id, Template.id)).all()
    ids = np.array([row[0] for row in rows], dtype=np.int64)
    people = np.array([row[1] for row in rows], dtype=np.int64)
    if not rows:
        return ids, people, np.zeros((0, 0), dtype=np.float32)
    return ids, people, np.stack([np.frombuffer(row[2], dtype=np.float32) for row in rows])


def template_owners(session: Session, model_id: str, template_ids: Iterable[int] | None = None) -> dict[int, Owner]:
    """Template id -> owner, for active people's templates of one model (all, or only those listed)."""
    base = (
        select(Template.id, Person.id, Person.employee_id, Person.name)
        .join(Person)
        .where(Person.active, Template.model_id == model_id)
    )
    if template_ids is None:
        queries = [base]
    else:
        queries = [base.where(Template.id.in_(chunk)) for chunk in in_chunks([int(i) for i in template_ids])]
    owners: dict[int, Owner] = {}
    for query in queries:
        for template_id, person_id, employee_id, name in session.execute(query):
            owners[template_id] = Owner(person_id, employee_id, name)
    return owners


def model_counts(session: Session) -> dict[str, int]:
    """How many templates each model id has (all people)."""
    query = select(Template.model_id, func.count()).group_by(Template.model_id)
    return {model_id: count for model_id, count in session.execute(query)}


def find_person(session: Session, employee_id: str) -> Person | None:
    return session.scalar(select(Person).where(Person.employee_id == employee_id))


def add_person(session: Session, employee_id: str, name: str) -> Person:
    """A new active person, flushed (it has its id)."""
    person = Person(employee_id=employee_id, name=name, active=True)
    session.add(person)
    session.flush()
    return person


def delete_person(session: Session, person: Person) -> None:
    """Delete a person and (the database cascades) their templates; access events keep the employee id."""
    session.delete(person)
    session.flush()


def delete_templates(session: Session, templates: Sequence[Template]) -> None:
    """Delete these templates (the person stays), flushed."""
    for template in templates:
        session.delete(template)
    session.flush()


def all_people(session: Session) -> list[Person]:
    """Everyone enrolled, by employee id."""
    return list(session.scalars(select(Person).order_by(Person.employee_id)))


def people_by_id(session: Session) -> dict[int, Person]:
    """Person id -> person, everyone."""
    return {person.id: person for person in session.scalars(select(Person))}


def template_counts(session: Session, person_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Person id -> {model id: how many templates}, for each person listed (an empty dict: none)."""
    counts: dict[int, dict[str, int]] = {person_id: {} for person_id in person_ids}
    for chunk in in_chunks(person_ids):
        query = (
            select(Template.person_id, Template.model_id, func.count())
            .where(Template.person_id.in_(chunk))
            .group_by(Template.person_id, Template.model_id)
        )
        for person_id, model_id, count in session.execute(query):
            counts[person_id][model_id] = count
    return counts


def person_templates(session: Session, person_id: int) -> list[Template]:
    """A person's templates, every model, oldest first."""
    return list(session.scalars(select(Template).where(Template.person_id == person_id).order_by(Template.id)))


def person_vectors(session: Session, person_id: int, model_id: str) -> dict[int, np.ndarray]:
    """A person's templates of one model: template id -> float32 vector, oldest first."""
    query = (
        select(Template.id, Template.embedding)
        .where(Template.person_id == person_id, Template.model_id == model_id)
        .order_by(Template.id)
    )
    return {template_id: np.frombuffer(blob, dtype=np.float32) for template_id, blob in session.execute(query)}


def photo_digests(session: Session, person_id: int, model_id: str) -> set[str]:
    """The sha256 of every photo already enrolled for this person and model."""
    query = select(Template.image_sha256).where(Template.person_id == person_id, Template.model_id == model_id)
    return set(session.scalars(query))


def best_crop(session: Session, person_id: int) -> bytes | None:
    """The aligned face of a person's best photo (the template the detector was surest of; WebP bytes), or None
    when no template kept its crop."""
    query = (
        select(Template.crop)
        .where(Template.person_id == person_id, Template.crop.is_not(None))
        .order_by(Template.quality.desc(), Template.id)
        .limit(1)
    )
    return session.scalar(query)


def add_templates(session: Session, new: Sequence[NewTemplate]) -> list[int]:
    """Store the templates (vectors as float32 bytes), flushed; their ids, in order."""
    templates = [
        Template(
            person_id=item.person_id,
            embedding=np.ascontiguousarray(item.vector, dtype=np.float32).tobytes(),
            embedding_size=len(item.vector),
            model_id=item.model_id,
            image_sha256=item.image_sha256,
            quality=float(item.quality),
            source=item.source[:MAX_SOURCE],
            crop=item.crop,
            origin=item.origin,
            event_id=item.event_id,
        )
        for item in new
    ]
    session.add_all(templates)
    session.flush()
    return [template.id for template in templates]


def photos_of_model(session: Session, model_id: str) -> set[tuple[int, str]]:
    """(person id, photo sha256) of every template of one model."""
    query = select(Template.person_id, Template.image_sha256).where(Template.model_id == model_id)
    return {(person_id, sha) for person_id, sha in session.execute(query)}


def templates_of_other_models(session: Session, model_id: str) -> list[Template]:
    """Every template of a model other than `model_id`, newest first."""
    return list(session.scalars(select(Template).where(Template.model_id != model_id).order_by(Template.id.desc())))


@dataclass(frozen=True)
class EventTemplate:
    """A template made from a confirmed access event's face, and whose it is."""

    event_id: int
    template_id: int
    model_id: str
    employee_id: str


def event_templates(session: Session, event_ids: Sequence[int]) -> list[EventTemplate]:
    """The templates made from these access events' faces (templates.event_id), oldest first."""
    found: list[EventTemplate] = []
    for chunk in in_chunks([int(i) for i in event_ids]):
        query = (
            select(Template.event_id, Template.id, Template.model_id, Person.employee_id)
            .join(Person)
            .where(Template.event_id.in_(chunk))
            .order_by(Template.id)
        )
        for event, template, model, employee in session.execute(query):
            found.append(EventTemplate(int(event or 0), template, model, employee))  # event_id IN (...): never None
    return sorted(found, key=lambda t: t.template_id)
