"""The door's unknown visitors: recent denied faces that matched nobody enrolled, grouped by who they look like, so
that a stranger who keeps coming back is enrolled as a new person, or dismissed, in one step.

Grouping is complete-linkage hierarchical clustering (scipy.cluster.hierarchy) on the model's own pair scores, cut
at the card's threshold at [visitors] group_far: every two faces of a group score at least that, so a group is one
person as surely as that threshold says. Single linkage (connected components of a FAISS range search) would chain
two strangers through one blurred face in between, and a chained group enrolled as one person would let both in.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from enrollment.confirm import review_threshold
from enrollment.door_faces import check_event_id, recheck
from enrollment.people import EnrollResult, OfferedFaces, add_faces
from enrollment.photos import PhotoOutcome, UsableFace
from gate.errors import FaceGateError
from gate.runtime.parts import Runtime
from gate.store import people
from gate.store.database import Database
from gate.store.identifiers import employee_id as valid_employee_id
from gate.store.visitors import UnmatchedFace, dismiss_events, unmatched_faces
from gate.vision.alignment import ARCHIVE, realign
from gate.vision.imageio import decode_crop

log = logging.getLogger(__name__)

MAX_DAYS = 366  # [visitors] days and max_faces bound what a caller may ask for too
MAX_FACES = 2000
MAX_EVENT_IDS = 200  # events one dismissal or enrolment takes
BATCH = 64  # crops embedded at once


@dataclass(frozen=True)
class VisitorGroup:
    """Unmatched faces that all look like one another: their events (newest first), when and at which gate each
    was seen, and the most central face (the one scoring highest with the others on average) to show for them."""

    event_ids: list[int]
    event_uids: list[str | None]
    times: list[datetime]
    gates: list[str]
    representative: int  # an event number of event_ids

    @property
    def size(self) -> int:
        return len(self.event_ids)

    @property
    def first_seen(self) -> datetime:
        return min(self.times)

    @property
    def last_seen(self) -> datetime:
        return max(self.times)

    @property
    def representative_uid(self) -> str | None:
        return self.event_uids[self.event_ids.index(self.representative)]

    @property
    def gate_ids(self) -> list[str]:
        """The gates it was seen at, each once, sorted."""
        return sorted(set(self.gates))


def check_event_ids(event_ids: Sequence[int]) -> list[int]:
    """Event numbers as given (each once, in order), or a one-line refusal: none, too many, or out of range."""
    unique = list(dict.fromkeys(int(i) for i in event_ids))
    if not unique:
        raise FaceGateError("give at least one event number (see `facegate events visitors`)")
    if len(unique) > MAX_EVENT_IDS:
        raise FaceGateError(f"at most {MAX_EVENT_IDS} events at once, got {len(unique)}")
    return [check_event_id(i) for i in unique]


def _crops(runtime: Runtime, found: list[UnmatchedFace]) -> tuple[list[UnmatchedFace], list[np.ndarray]]:
    """The faces cut for the model in use, decoded; faces kept for another model (before a model change: the
    gate kept each model's own crop) or damaged are left out, logged."""
    size = runtime.embedder.template.size
    kept: list[UnmatchedFace] = []
    crops: list[np.ndarray] = []
    for face in found:
        try:
            crop = decode_crop(face.crop)
        except FaceGateError as error:
            log.warning("event %d: %s", face.event_id, error)
            continue
        if crop.shape[:2] != (size, size):
            log.info("event %d: its face was cut for another model (%d px), left out", face.event_id, crop.shape[0])
            continue
        kept.append(face)
        crops.append(crop)
    return kept, crops


def _embed(runtime: Runtime, crops: list[np.ndarray]) -> np.ndarray:
    """(N, D) embeddings of the crops by the model in use."""
    out = np.empty((len(crops), runtime.embedder.card.embedding_size), dtype=np.float32)
    for start in range(0, len(crops), BATCH):
        batch = np.stack(crops[start : start + BATCH])
        out[start : start + len(batch)] = runtime.embedder.embed(batch)
    return out


def cluster(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Group labels (N,) from an (N, N) symmetric score matrix: complete linkage cut so that every two members of
    a group score at least `threshold` (scores turned into distances `top - score`, which keeps their order)."""
    if len(scores) < 2:
        return np.zeros(len(scores), dtype=np.int64)
    top = float(scores.max())
    distances = np.clip(top - (scores + scores.T) / 2.0, 0.0, None)
    np.fill_diagonal(distances, 0.0)
    tree = linkage(squareform(distances, checks=False), method="complete")
    return fcluster(tree, t=top - threshold, criterion="distance").astype(np.int64)


def _group(members: list[UnmatchedFace], scores: np.ndarray) -> VisitorGroup:
    """One group from its faces (newest first) and their (M, M) scores; the representative scores highest with
    the others on average."""
    central = int(np.argmax(scores.mean(axis=1))) if len(members) > 1 else 0
    return VisitorGroup(
        [m.event_id for m in members], [m.event_uid for m in members], [m.time for m in members],
        [m.gate_id for m in members], members[central].event_id,
    )  # fmt: skip


def group_threshold(runtime: Runtime) -> float:
    """The score two faces of one group reach at least: the card's at [visitors] group_far, never stricter than
    the door's own threshold."""
    return min(runtime.embedder.card.threshold(runtime.settings.visitors.group_far), runtime.threshold)


def visitor_groups(
    runtime: Runtime,
    days: int | None = None,
    limit: int | None = None,
    min_size: int = 1,
    now: datetime | None = None,
) -> list[VisitorGroup]:
    """The unknown visitors of the last `days` ([visitors] days): the latest `limit` ([visitors] max_faces)
    unmatched faces (gate.store.visitors), embedded again by the model in use and grouped (`cluster`, at
    group_threshold); groups of at least `min_size`, the largest first, then the most recently seen. A face whose
    nearest enrolled person scored the review threshold is left out: an enrolled person turned away is confirmed
    on the Events page, not enrolled again as someone new."""
    settings = runtime.settings.visitors
    days, limit = settings.days if days is None else days, settings.max_faces if limit is None else limit
    if not 1 <= days <= MAX_DAYS:
        raise FaceGateError(f"days must be 1 to {MAX_DAYS}, got {days}")
    if not 1 <= limit <= MAX_FACES:
        raise FaceGateError(f"at most 1 to {MAX_FACES} faces, got {limit}")
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    with runtime.database.session() as session:
        found = unmatched_faces(session, limit, since=since, near=review_threshold(runtime))
    faces, crops = _crops(runtime, found)
    if not faces:
        return []
    vectors = _embed(runtime, crops)
    scores = runtime.embedder.scorer.matrix(vectors, vectors)
    labels = cluster(scores, group_threshold(runtime))
    groups = []
    for label in np.unique(labels):
        chosen = np.flatnonzero(labels == label)
        if len(chosen) >= min_size:
            groups.append(_group([faces[i] for i in chosen], scores[np.ix_(chosen, chosen)]))
    groups.sort(key=lambda g: (g.size, g.last_seen), reverse=True)
    log.info("%d unmatched faces of the last %d days in %d groups", len(faces), days, len(groups))
    return groups


def dismiss_visitors(database: Database, event_ids: Sequence[int]) -> int:
    """Dismiss these denied events from the unknown visitors (they stay in the access log); how many were."""
    wanted = check_event_ids(event_ids)
    with database.session() as session:
        marked = dismiss_events(session, wanted, datetime.now(UTC))
    log.info("%d of %d events dismissed from the unknown visitors", marked, len(wanted))
    return marked


def _usable(runtime: Runtime, face: UnmatchedFace, crop: np.ndarray) -> UsableFace | str:
    """An event's face as enrolment takes a photo's: found again by the detector (padded) as one face passing the
    quality gate, the archive crop cut from it; or why not."""
    found = recheck(runtime, crop)
    if isinstance(found, str):
        return found
    archive = realign(crop, runtime.embedder.template, ARCHIVE)  # what re-embedding cuts any model's crop from
    digest = hashlib.sha256(face.crop).hexdigest()
    return UsableFace(_label(face.event_id), digest, crop, archive, found)


def _label(event_id: int) -> Path:
    return Path(f"event {event_id}")


def _offered(runtime: Runtime, wanted: list[int]) -> OfferedFaces:
    """The faces of these unknown-visitor events as enrolment takes them (those failing the quality gate again
    reported as rejected); a one-line refusal naming an event that is not (any more) an unknown visitor's."""
    with runtime.database.session() as session:
        found = unmatched_faces(session, len(wanted), event_ids=wanted)
    if missing := sorted(set(wanted) - {face.event_id for face in found}):
        raise FaceGateError(
            f"event {missing[0]} is not an unknown visitor with a face (no such denied event, its face is gone, or it"
            " was dismissed or confirmed already)"
        )
    faces, crops = _crops(runtime, found)
    unusable = "its face was cut for another model, or is damaged"
    rejected = {_label(f.event_id): PhotoOutcome(_label(f.event_id), "rejected", unusable) for f in found}
    usable: list[UsableFace] = []
    event_ids: list[int] = []
    for face, crop in zip(faces, crops, strict=True):
        label = _label(face.event_id)
        made = _usable(runtime, face, crop)
        if isinstance(made, UsableFace):
            usable.append(made)
            event_ids.append(face.event_id)
            del rejected[label]
        else:
            rejected[label] = PhotoOutcome(label, "rejected", made)
    return OfferedFaces(
        usable, [_label(i) for i in wanted], rejected, source="visitors", origin="event", event_ids=event_ids,
        check=lambda vectors: _all_of_one_person(runtime, vectors),
    )  # fmt: skip


def _all_of_one_person(runtime: Runtime, vectors: np.ndarray) -> None:
    """The faces must all be of one person: every two score at least group_threshold (as in every group of
    visitor_groups); else two strangers chosen together would be enrolled as one."""
    worst, threshold = float(runtime.embedder.scorer.matrix(vectors, vectors).min()), group_threshold(runtime)
    if worst < threshold:
        raise FaceGateError(
            f"these faces are not all of one person (two score {worst:.3f} < {threshold:.3f}, the threshold at"
            f" FAR {runtime.settings.visitors.group_far}): enrol one group's faces, leave out the others"
        )


def enrol_visitor(
    runtime: Runtime, event_ids: Sequence[int], employee_id: str, name: str, force: bool = False
) -> EnrollResult:
    """Enrol a NEW person from an unknown visitor's faces (their events' kept faces) in one step, through
    add_faces: the same rules as photos (each face passes the quality gate again; none looks like someone else
    enrolled, unless force), and every two faces score at least group_threshold. Each template records its
    event (origin "event"); the audit entry lists the events. Refused when `employee_id` is enrolled already."""
    wanted, employee_id = check_event_ids(event_ids), valid_employee_id(employee_id)
    if not name.strip():
        raise FaceGateError("give the new person's name")
    with runtime.database.session() as session:
        if people.find_person(session, employee_id) is not None:
            raise FaceGateError(f"{employee_id} is enrolled already: an unknown visitor is enrolled as a new person")
    return add_faces(runtime, employee_id, name.strip(), _offered(runtime, wanted), force=force)
