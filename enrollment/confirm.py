"""Confirm a door event's face: an admin says who a denied event showed, and its kept face becomes one of that
person's templates, only when the face passes the quality gate again and matches them, and no one else, well
enough; and undo it. The gate learns from the faces it actually sees at the door."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from enrollment import audit
from enrollment.door_faces import check_event_id, recheck
from enrollment.roster import PersonNotFound, TemplateInfo, clean_id, remove_template
from enrollment.sync import IndexChange, write_with_index
from gate.errors import FaceGateError, NotFound
from gate.matching.gallery import Gallery
from gate.matching.search import Match
from gate.runtime.parts import Runtime
from gate.store import people
from gate.store.database import Database
from gate.store.events import find_event
from gate.store.people import NewTemplate, Owner
from gate.store.schema import AccessEvent, Person
from gate.vision.alignment import ARCHIVE, realign
from gate.vision.imageio import decode_crop, encode_crop

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfirmedEvent:
    """A door event's face added to a person: the template made, its score for them and the review threshold it
    met, and the best match among other people (None: no one else enrolled)."""

    event_id: int
    employee_id: str
    name: str
    template_id: int
    score: float
    review_threshold: float
    review_far: str
    nearest_other: Match | None


@dataclass(frozen=True)
class UndoneConfirmation:
    """A confirmation taken back: whose templates were removed."""

    event_id: int
    employee_id: str
    templates: list[TemplateInfo]


def _confirmed_as(session: Session, event_id: int) -> str | None:
    found = people.event_templates(session, [event_id])
    return found[0].employee_id if found else None


def _face_of(session: Session, event_id: int) -> bytes:
    """The kept face of a denied, unconfirmed event, or a one-line refusal naming the rule it fails."""
    event: AccessEvent | None = find_event(session, check_event_id(event_id))
    if event is None:
        raise NotFound(f"no access event {event_id} (see `facegate events`)")
    if event.decision != "denied":
        raise FaceGateError(f"event {event_id} was {event.decision}: only a denied event's face can be confirmed")
    if (already := _confirmed_as(session, event_id)) is not None:
        raise FaceGateError(f"event {event_id} is already confirmed as {already}: undo that first")
    if event.crop is None:
        raise FaceGateError(f"event {event_id} keeps no face (older than [events] keep_days, or removed)")
    return event.crop


def _check_quality(runtime: Runtime, event_id: int, crop: np.ndarray) -> float:
    """door_faces.recheck, refused in one line; the detector's confidence."""
    found = recheck(runtime, crop)
    if isinstance(found, str):
        raise FaceGateError(f"event {event_id}'s face {found}")
    return found


def review_threshold(runtime: Runtime) -> float:
    """The score a door face must reach for the person an admin names ([enrollment] review_far on the card; a FAR
    the card lacks is refused in one line)."""
    return runtime.embedder.card.threshold(runtime.settings.enrollment.review_far)


def _check_match(runtime: Runtime, event_id: int, person: Person, vector: np.ndarray) -> tuple[float, Match | None]:
    """The face's score for `person` (at or above the review threshold) and its best match among others (below
    that score and below the gate's threshold), or a one-line refusal with the scores."""
    gallery, settings = runtime.gallery, runtime.settings.enrollment
    review = review_threshold(runtime)
    own = gallery.verify(vector[None], person.employee_id)[0]
    who = f"{person.employee_id} ({person.name})"
    if own is None:
        raise FaceGateError(
            f"{who} has no active templates of model {gallery.model_id} to compare event {event_id}"
            " with (deactivated, or enrolled under another model)"
        )
    if own.score < review:
        raise FaceGateError(
            f"event {event_id}'s face does not look like {who}: score {own.score:.3f} < review threshold"
            f" {review:.3f} (FAR {settings.review_far})"
        )
    others = [m for m in gallery.candidates(vector[None], top=2)[0] if m.employee_id != person.employee_id]
    nearest = others[0] if others else None
    if nearest is not None and (nearest.score >= own.score or nearest.score >= runtime.threshold):
        rule = f"{own.score:.3f} for {person.employee_id}" if nearest.score >= own.score else "the gate's threshold"
        raise FaceGateError(
            f"event {event_id}'s face looks like {nearest.employee_id} ({nearest.name}): score {nearest.score:.3f}"
            f" >= {rule} ({runtime.threshold:.3f} at the gate)"
        )
    return own.score, nearest


def _person(session: Session, employee_id: str) -> Person:
    person = people.find_person(session, clean_id(employee_id))
    if person is None:
        raise PersonNotFound(employee_id)
    return person


def confirm_event(runtime: Runtime, event_id: int, employee_id: str) -> ConfirmedEvent:
    """Add a denied access event's kept face to `employee_id`'s templates (origin "event"), in one transaction
    with the gallery, audited as "confirm_event" with the event and the score. Refused in one line, nothing
    written, when the event does not exist, was granted, is confirmed already or keeps no face; when its face fails
    the quality gate again (_check_quality); or when it scores below the review threshold
    ([enrollment] review_far) for the person, or another person scores as high or at the gate's threshold."""
    database, gallery, embedder = runtime.database, runtime.gallery, runtime.embedder
    with database.session() as session:
        data, person = _face_of(session, event_id), _person(session, employee_id)
        employee_id = person.employee_id
    crop = decode_crop(data)
    prob = _check_quality(runtime, event_id, crop)
    vector = embedder.embed(crop[None])[0]
    done: list[ConfirmedEvent] = []

    def write(session: Session) -> IndexChange:
        _face_of(session, event_id)  # still denied and unconfirmed, now, inside the transaction
        person = _person(session, employee_id)
        score, nearest = _check_match(runtime, event_id, person, vector)
        archive = encode_crop(realign(crop, embedder.template, ARCHIVE))  # what re-embedding cuts any model from
        digest = hashlib.sha256(data).hexdigest()
        new = NewTemplate(person.id, embedder.model_id, vector, digest, prob, f"event {event_id}", archive)
        template_id = people.add_templates(session, [new.from_origin("event", event_id)])[0]
        far = runtime.settings.enrollment.review_far
        review = embedder.card.threshold(far)
        detail = {"event": event_id, "score": round(score, 4), "review_far": far, "review_threshold": round(review, 4)}
        audit.record(session, "confirm_event", employee_id, **detail, template=template_id)
        done.append(ConfirmedEvent(event_id, employee_id, person.name, template_id, score, review, far, nearest))
        owner = Owner(person.id, person.employee_id, person.name)
        return IndexChange(add_ids=[template_id], add_vectors=[vector], add_owners=[owner])

    write_with_index(database, gallery, write)
    log.info("event %d confirmed as %s (score %.3f)", event_id, employee_id, done[0].score)
    return done[0]


def undo_confirm(database: Database, gallery: Gallery, event_id: int) -> UndoneConfirmation:
    """Remove the template(s) a confirmation made from this event's face (one per model, after a re-embedding),
    each audited as "undo_confirm"; NotFound when the event was not confirmed."""
    with database.session() as session:
        made = people.event_templates(session, [check_event_id(event_id)])
    if not made:
        raise NotFound(f"event {event_id} was not confirmed as anyone: nothing to undo")
    removed = [remove_template(database, gallery, t.employee_id, t.template_id, action="undo_confirm") for t in made]
    log.info("confirmation of event %d undone (%d templates)", event_id, len(removed))
    return UndoneConfirmation(event_id, made[0].employee_id, removed)
