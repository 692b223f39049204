"""Enroll people from photos, or add photos to an enrolled person: one transaction per person, the gallery kept
in step (listing, showing and removing are in enrollment.roster)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session
from tqdm import tqdm

from enrollment import audit
from enrollment.photos import PhotoOutcome, UsableFace, expand_photos, read_face
from enrollment.sync import IndexChange, write_with_index
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.matching.rule import person_scores
from gate.runtime.parts import Runtime
from gate.store import people
from gate.store.database import Database
from gate.store.identifiers import employee_id as valid_employee_id
from gate.store.people import NewTemplate, Owner
from gate.store.schema import Person
from gate.vision.faces import FacePipeline
from gate.vision.imageio import encode_crop

log = logging.getLogger(__name__)

MAX_REASONS_SHOWN = 5


class EnrollmentRefused(FaceGateError):
    """Enrollment refused as a whole; `outcomes` says what happened to each photo. `what` is the refusal without
    advice; `override` names add_person's argument that lifts it ("force", "accept_unmatched", "name"), if any."""

    def __init__(
        self, message: str, outcomes: Sequence[PhotoOutcome], override: str | None = None, what: str | None = None
    ) -> None:
        super().__init__(message)
        self.outcomes = list(outcomes)
        self.override, self.what = override, what or message


def _refused(what: str, advice: str, override: str, photo: Path | None = None) -> EnrollmentRefused:
    """A refusal `override` lifts; the message advises the command's option. `photo` is the photo refused."""
    outcomes = [] if photo is None else [PhotoOutcome(photo, "rejected", what.removeprefix(f"{photo.name} "))]
    return EnrollmentRefused(f"{what}; {advice}", outcomes, override, what)


@dataclass(frozen=True)
class EnrollResult:
    employee_id: str
    name: str
    created: bool  # a new person (False: photos added to an enrolled one)
    outcomes: list[PhotoOutcome]

    @property
    def added(self) -> int:
        return sum(outcome.status == "added" for outcome in self.outcomes)


def _read_photos(pipeline: FacePipeline, files: list[Path]) -> tuple[list[UsableFace], dict[Path, PhotoOutcome]]:
    faces: list[UsableFace] = []
    rejected: dict[Path, PhotoOutcome] = {}
    for path in tqdm(files, desc="reading photos", unit="photo", disable=None):
        found = read_face(pipeline, path)
        if isinstance(found, UsableFace):
            faces.append(found)
        else:
            rejected[path] = PhotoOutcome(path, "rejected", str(found))
            log.info("%s: rejected (%s)", path, found)
    return faces, rejected


def _describe(outcomes: Sequence[PhotoOutcome]) -> str:
    shown = [f"{o.path.name}: {o.reason}" for o in outcomes[:MAX_REASONS_SHOWN]]
    more = len(outcomes) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _check_not_someone_else(
    gallery: Gallery, faces: list[UsableFace], vectors: np.ndarray, employee_id: str, threshold: float
) -> None:
    for face, match in zip(faces, gallery.search(vectors), strict=True):
        if match is not None and match.employee_id != employee_id and match.score >= threshold:
            what = (
                f"{face.path.name} looks like enrolled {match.employee_id} ({match.name}): score"
                f" {match.score:.3f} >= threshold {threshold:.3f}"
            )
            raise _refused(what, "if they are different people, add --force", "force", face.path)


def _check_is_them(
    session: Session, person: Person, faces: list[UsableFace], vectors: np.ndarray, runtime: Runtime
) -> None:
    """New photos of an enrolled person must match their own templates at the gate's threshold: otherwise anyone's
    face could be added to their record (and open their door)."""
    own = people.person_vectors(session, person.id, runtime.embedder.model_id)
    if not own:
        return  # nothing of this model to compare with yet (a new person, or templates of another model only)
    templates = np.stack(list(own.values()))
    scores = person_scores(vectors, [templates], "best", runtime.embedder.scorer)[:, 0]
    for face, score in zip(faces, scores, strict=True):
        if score < runtime.threshold:
            what = (
                f"{face.path.name} does not look like {person.employee_id} ({person.name})'s own photos: score"
                f" {score:.3f} < threshold {runtime.threshold:.3f}"
            )
            raise _refused(what, "if it is them, add --accept-unmatched", "accept_unmatched", face.path)


def check_person(session: Session, employee_id: str, name: str | None) -> Person | None:
    """The enrolled person `employee_id` names, or None for a new one; refused (nothing written) when a new person
    has no name, or an enrolled one is given another name. Capture asks before it watches the camera."""
    person = people.find_person(session, employee_id)
    if person is None and not (name and name.strip()):
        what = f"{employee_id} is not enrolled yet"
        raise EnrollmentRefused(f"{what}: give their name (--name)", [], "name", what)
    if person is not None and name and name.strip() != person.name:
        raise EnrollmentRefused(f"{employee_id} is enrolled as {person.name!r}, not {name.strip()!r}", [])
    return person


def _person_for(session: Session, employee_id: str, name: str | None) -> tuple[Person, bool]:
    person = check_person(session, employee_id, name)
    if person is None:
        return people.add_person(session, employee_id, (name or "").strip()), True
    return person, False


def _new_templates(
    session: Session,
    person: Person,
    faces: list[UsableFace],
    vectors: np.ndarray,
    model_id: str,
    origin: str,
    event_ids: Sequence[int | None],
) -> list[int]:
    """Store a template per face (its aligned crop kept for re-embedding, the access event it came from if any);
    their ids."""
    new = [
        NewTemplate(
            person.id, model_id, vector, face.sha256, face.quality, face.path.name, encode_crop(face.archive_crop)
        ).from_origin(origin, event_id)
        for face, vector, event_id in zip(faces, vectors, event_ids, strict=True)
    ]
    return people.add_templates(session, new)


def _fresh(faces: list[UsableFace], known: set[str], outcomes: dict[Path, PhotoOutcome]) -> list[int]:
    """Indices of the faces whose photo is not enrolled yet; the others are marked as duplicates."""
    fresh: list[int] = []
    for i, face in enumerate(faces):
        if face.sha256 in known:
            outcomes[face.path] = PhotoOutcome(face.path, "duplicate", "this photo is already enrolled")
        else:
            known.add(face.sha256)
            fresh.append(i)
    return fresh


def every_outcome(
    files: Sequence[Path], outcomes: dict[Path, PhotoOutcome], refused: Sequence[PhotoOutcome]
) -> list[PhotoOutcome]:
    """Each photo's outcome (once each) when the enrolment is refused: the refused photo's, the others' as they
    were."""
    known = outcomes | {outcome.path: outcome for outcome in refused}
    left_out = "not added: the enrolment was refused"  # a usable photo, refused with the rest
    return [known.get(path, PhotoOutcome(path, "rejected", left_out)) for path in dict.fromkeys(files)]


def _write_or_refuse(
    database: Database,
    gallery: Gallery,
    write: Callable[[Session], IndexChange],
    files: Sequence[Path],
    outcomes: dict[Path, PhotoOutcome],
) -> None:
    """write_with_index; a refusal raised by `write` leaves with every photo's outcome."""
    try:
        write_with_index(database, gallery, write)
    except EnrollmentRefused as refused:
        refused.outcomes = every_outcome(files, outcomes, refused.outcomes)
        raise


def add_person(
    runtime: Runtime,
    employee_id: str,
    name: str | None,
    photos: Sequence[Path],
    force: bool = False,
    threshold: float | None = None,
    accept_unmatched: bool = False,
) -> EnrollResult:
    """Enroll a person from photos (files or folders), or add photos to an enrolled one.

    Each photo must show exactly one face that passes the quality gate; the others are reported with their
    reason. The usable faces then go through add_faces (its checks and its one transaction).
    """
    employee_id = valid_employee_id(employee_id)  # refused before any photo is read
    files = expand_photos(photos)
    faces, outcomes = _read_photos(runtime.pipeline, files)
    return add_faces(
        runtime, employee_id, name, OfferedFaces(faces, files, outcomes), force, threshold, accept_unmatched
    )


@dataclass
class OfferedFaces:
    """Faces offered for enrolment: `faces` the usable ones; `labels` every face offered, in order, usable or not
    (a photo's path, a captured frame's label); `rejected` the outcomes of those refused already; `source` where
    they came from, for the audit entry (e.g. "capture:camera 0"; None: photos); `origin` what each template
    records of it (gate.store.schema.TEMPLATE_ORIGINS)."""

    faces: list[UsableFace]
    labels: Sequence[Path]
    rejected: dict[Path, PhotoOutcome] = field(default_factory=dict)
    source: str | None = None
    origin: str = "photo"
    # origin "event": the access event each face of `faces` came from (templates.event_id), in the same order
    event_ids: Sequence[int] | None = None
    # a check of the faces' embeddings together before anything is written (capture: all of one person)
    check: Callable[[np.ndarray], None] | None = None

    def events_of(self, chosen: Sequence[int]) -> list[int | None]:
        """The access events of the faces numbered `chosen` (None each, for faces not from an event)."""
        return [None if self.event_ids is None else self.event_ids[i] for i in chosen]


def add_faces(
    runtime: Runtime,
    employee_id: str,
    name: str | None,
    offered: OfferedFaces,
    force: bool = False,
    threshold: float | None = None,
    accept_unmatched: bool = False,
) -> EnrollResult:
    """Enroll a person from usable faces (read from photos, or captured from a camera), or add them to an
    enrolled one: the one rule of enrolment, whatever the faces came from.

    Refused as a whole (nothing written) when no face is usable, when a
    face matches another enrolled person at or above `threshold` (default: the gate's decision threshold) unless
    force, or when a face added to an enrolled person does not match their own templates at the gate's threshold
    unless accept_unmatched. Faces already enrolled for this person and model (same sha256) are skipped.
    """
    database, gallery, embedder = runtime.database, runtime.gallery, runtime.embedder
    threshold = runtime.threshold if threshold is None else threshold
    employee_id = valid_employee_id(employee_id)  # the one rule for a new id (gate.store.identifiers)
    if gallery.model_id != embedder.model_id:
        raise ValueError(f"gallery of model {gallery.model_id} cannot take embeddings of {embedder.model_id}")
    faces, labels, outcomes = offered.faces, offered.labels, dict(offered.rejected)
    if not faces:
        refused = list(outcomes.values())
        raise EnrollmentRefused(f"no usable photo for {employee_id}: {_describe(refused)}", refused)
    vectors = embedder.embed(np.stack([face.crop for face in faces]))
    if offered.check is not None:
        offered.check(vectors)
    created = False
    where: dict[str, object] = {} if offered.source is None else {"source": offered.source}

    def write(session: Session) -> IndexChange:
        nonlocal created
        person, created = _person_for(session, employee_id, name)  # a new person is flushed: it has its id
        fresh = _fresh(faces, people.photo_digests(session, person.id, embedder.model_id), outcomes)
        if fresh and not force:
            _check_not_someone_else(gallery, [faces[i] for i in fresh], vectors[fresh], employee_id, threshold)
        if fresh and not created and not accept_unmatched:
            _check_is_them(session, person, [faces[i] for i in fresh], vectors[fresh], runtime)
        chosen = [faces[i] for i in fresh]
        events = offered.events_of(fresh)
        ids = _new_templates(session, person, chosen, vectors[fresh], embedder.model_id, offered.origin, events)
        outcomes.update({faces[i].path: PhotoOutcome(faces[i].path, "added") for i in fresh})
        if fresh or created:
            photos = [faces[i].path.name for i in fresh]
            overrides = {"force": force, "accept_unmatched": accept_unmatched}
            action = "enrol" if created else "photos_added"
            detail = where | ({} if offered.event_ids is None else {"events": events})  # which door events
            audit.record(session, action, employee_id, photos=photos, **overrides, **detail)
        if not person.active:
            return IndexChange()
        owner = Owner(person.id, person.employee_id, person.name)
        return IndexChange(add_ids=ids, add_vectors=list(vectors[fresh]), add_owners=[owner] * len(fresh))

    _write_or_refuse(database, gallery, write, labels, outcomes)
    result = EnrollResult(employee_id, name or "", created, [outcomes[label] for label in dict.fromkeys(labels)])
    skipped = len(labels) - result.added
    log.info("enrolled %s: %d faces added, %d refused or skipped", employee_id, result.added, skipped)
    return result
