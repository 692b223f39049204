"""Encryption at rest turned on for a site: seal the templates, crops, event faces and gate snapshots stored before,
count what is sealed, and prove that the configured key opens it.

With a key configured every new template and event face is sealed as it is written (gate/store/schema.py); the rows
written before stay plain until `seal_stored` seals them: the templates in one transaction, audited per person,
then the access events' faces in batches of their own transaction each (a process killed mid-way leaves every
face either plain or sealed, and the next run seals the rest). SQLite's secure_delete overwrites the old plain
bytes and a VACUUM afterwards leaves no copy in free pages; the index is rebuilt sealed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tqdm import tqdm

from enrollment import audit
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.store import sealed
from gate.store.database import Database
from gate.store.people import people_by_id
from gate.store.sealed import SealingCounts

log = logging.getLogger(__name__)

BATCH = 200  # rows read (and, for event faces, sealed and committed) at a time: crops are kilobytes each
NO_KEY = "no key configured: set encryption.key_file (`facegate keys new PATH` writes one) or encryption.key_env"


@dataclass(frozen=True)
class SealResult:
    embeddings: int  # plain embeddings sealed now
    crops: int  # plain template crops sealed now
    people: int  # people whose templates were touched (one audit entry each)
    event_faces: int = 0  # plain faces of access events sealed now
    snapshots: int = 0  # plain gate snapshots sealed now


def sealing_counts(database: Database) -> SealingCounts:
    """How many stored embeddings, template crops, event faces and gate snapshots are sealed and how many plain (no
    key needed)."""
    with database.session() as session:
        return sealed.sealing_counts(session)


def prove_key(database: Database) -> list[str]:
    """Unseal one sealed row of each kind with the database's key: the kinds it opened (empty: nothing is sealed
    yet). A key that does not open them is one FaceGateError naming the key; no key configured is one too."""
    cipher = database.cipher
    if cipher is None:
        raise FaceGateError(NO_KEY)
    with database.session() as session:
        samples = sealed.sealed_samples(session)
    return sealed.prove_key(cipher, samples)


def _seal_templates(database: Database) -> SealResult:
    """Seal every plain embedding and template crop in one transaction, one audit entry per person touched."""
    with database.session() as session:
        touched = sealed.seal_plain_templates(session, BATCH)
        everyone = people_by_id(session)
        for person_id, (embeddings, crops) in sorted(touched.items()):
            audit.record(session, "encrypt", everyone[person_id].employee_id, embeddings=embeddings, crops=crops)
    return SealResult(sum(n for n, _ in touched.values()), sum(n for _, n in touched.values()), len(touched))


def _seal_event_face_batch(database: Database, after: int) -> tuple[int, int] | None:
    """Seal the next BATCH plain event faces after event id `after` in a transaction of their own: (last id, how
    many sealed), or None when none is left."""
    with database.session() as session:
        return sealed.seal_event_face_batch(session, after, BATCH)


def _seal_event_faces(database: Database) -> int:
    """Seal every plain event face, BATCH at a time, each batch committed on its own; returns how many."""
    plain = sealing_counts(database).event_faces_plain
    sealed, after = 0, 0
    with tqdm(total=plain, desc="sealing event faces", unit="face", disable=None) as bar:
        while (batch := _seal_event_face_batch(database, after)) is not None:
            after, count = batch
            sealed += count
            bar.update(count)
            log.debug("sealed %d event faces so far (event id %d)", sealed, after)
    return sealed


def _vacuum(database: Database) -> None:
    """Rewrite the SQLite file so that no page of the old plain rows survives (others: a warning)."""
    if not sealed.rewrite_file(database):
        log.warning("%s may keep old plain rows until it rewrites the table (PostgreSQL: VACUUM FULL)", database.url)


def seal_stored(database: Database, gallery: Gallery) -> SealResult:
    """Seal every plain embedding, template crop, event face and gate snapshot with the database's key (templates
    in one transaction, event faces in batches, snapshots in one), VACUUM the file, then rebuild and save the
    gallery's index (sealed)."""
    if database.cipher is None:
        raise FaceGateError(NO_KEY)
    templates = _seal_templates(database)
    event_faces = _seal_event_faces(database)
    with database.session() as session:
        snapshots = sealed.seal_plain_snapshots(session)
    _vacuum(database)
    gallery.rebuild()
    gallery.save()
    result = SealResult(templates.embeddings, templates.crops, templates.people, event_faces, snapshots)
    log.info(
        "sealed %d embeddings and %d crops of %d people, %d event faces, %d gate snapshots",
        result.embeddings, result.crops, result.people, result.event_faces, result.snapshots,
    )  # fmt: skip
    return result
