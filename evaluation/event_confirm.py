"""A denied door event's face confirmed as a person, minimally, for the second-visit evaluation: the rules of
`enrollment.confirm.confirm_event` (quality gate again, the person's score at or above the card's review threshold,
no one else as close or at the gate's threshold), written here until that module is merged; the evaluation then
calls it instead (evaluation.second_visit.DEFAULT_CONFIRM, one line)."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
from sqlalchemy.orm import Session

from enrollment import audit
from enrollment.sync import IndexChange, write_with_index
from gate.errors import FaceGateError
from gate.runtime.parts import Runtime
from gate.store import people
from gate.store.people import NewTemplate, Owner
from gate.store.schema import AccessEvent, Person
from gate.vision.alignment import ARCHIVE, realign
from gate.vision.imageio import decode_crop, encode_crop
from gate.vision.quality import Reason

REVIEW_FAR = "0.01"  # the card's threshold at this FAR: a face a person confirms must score at least that
PADDING = 0.5  # the aligned face is padded by this share of its side so the detector finds it again
MIN_BRIGHTNESS, MAX_BRIGHTNESS = 30.0, 225.0  # the face's mean grey level (0-255)


def _event_face(session: Session, event_id: int) -> bytes:
    event = session.get(AccessEvent, event_id)
    if event is None:
        raise FaceGateError(f"no access event {event_id}")
    if event.decision != "denied":
        raise FaceGateError(f"event {event_id} was {event.decision}: only a denied event's face can be confirmed")
    if event.crop is None:
        raise FaceGateError(f"event {event_id} keeps no face")
    return event.crop


def _quality(runtime: Runtime, event_id: int, crop: np.ndarray) -> float:
    """The quality gate again on the event's aligned face (padded, found again as one usable face); its prob."""
    brightness = float(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).mean())
    if not MIN_BRIGHTNESS <= brightness <= MAX_BRIGHTNESS:
        raise FaceGateError(f"event {event_id}'s face is too {'dark' if brightness < MIN_BRIGHTNESS else 'bright'}")
    pad = round(crop.shape[0] * PADDING)
    found = runtime.pipeline.one_face(cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REPLICATE))
    if isinstance(found, Reason):
        raise FaceGateError(f"event {event_id}'s face fails the quality gate again: {found}")
    return float(found.face.prob)


def _match(runtime: Runtime, event_id: int, employee_id: str, vector: np.ndarray) -> float:
    """The face's score for the person, at or above the review threshold, with no one else as close or at the
    gate's threshold; else a one-line refusal."""
    review = runtime.embedder.card.threshold(REVIEW_FAR)
    own = runtime.gallery.verify(vector[None], employee_id)[0]
    if own is None:
        raise FaceGateError(f"{employee_id} has no templates to compare event {event_id} with")
    if own.score < review:
        raise FaceGateError(
            f"event {event_id}'s face does not look like {employee_id}: score {own.score:.3f} < review threshold"
            f" {review:.3f} (FAR {REVIEW_FAR})"
        )
    others = [m for m in runtime.gallery.candidates(vector[None], top=2)[0] if m.employee_id != employee_id]
    if others and (others[0].score >= own.score or others[0].score >= runtime.threshold):
        raise FaceGateError(
            f"event {event_id}'s face looks like {others[0].employee_id}: score {others[0].score:.3f}"
            f" (vs {own.score:.3f} for {employee_id}, {runtime.threshold:.3f} at the gate)"
        )
    return own.score


def confirm_event(runtime: Runtime, event_id: int, employee_id: str) -> float:
    """Add a denied event's kept face to `employee_id`'s templates (origin "event"), with the gallery, audited;
    refused in one line (FaceGateError) by the rules above. Returns the face's score for them."""
    embedder = runtime.embedder
    with runtime.database.session() as session:
        data = _event_face(session, event_id)
    crop = decode_crop(data)
    prob = _quality(runtime, event_id, crop)
    vector = embedder.embed(crop[None])[0]
    score = _match(runtime, event_id, employee_id, vector)

    def write(session: Session) -> IndexChange:
        person: Person | None = people.find_person(session, employee_id)
        if person is None:
            raise FaceGateError(f"no enrolled person {employee_id}")
        archive = encode_crop(realign(crop, embedder.template, ARCHIVE))
        digest = hashlib.sha256(data).hexdigest()
        new = NewTemplate(person.id, embedder.model_id, vector, digest, prob, f"event {event_id}", archive)
        template_id = people.add_templates(session, [new.from_origin("event", event_id)])[0]
        audit.record(session, "confirm_event", employee_id, event=event_id, score=round(score, 4), template=template_id)
        owner = Owner(person.id, person.employee_id, person.name)
        return IndexChange(add_ids=[template_id], add_vectors=[vector], add_owners=[owner])

    write_with_index(runtime.database, runtime.gallery, write)
    return score
