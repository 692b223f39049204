"""Encryption at rest turned on for a site: seal the templates and crops stored before, and count what is sealed.

With a key configured every new template is sealed as it is written (gate/store.py); the rows written before stay
plain until `seal_stored_templates` seals them, in one transaction, audited per person. SQLite's secure_delete
overwrites the old plain bytes and a VACUUM afterwards leaves no copy in free pages; the index is rebuilt sealed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import LargeBinary, Row, select, text, type_coerce, update
from sqlalchemy.orm import Session

from enrollment import audit
from gate.encryption import is_sealed
from gate.errors import FaceGateError
from gate.gallery import Gallery
from gate.store import Database, Person, Template

log = logging.getLogger(__name__)

BATCH = 200  # templates read at a time (crops are tens of kilobytes each)
FLOAT32_BYTES = 4


@dataclass(frozen=True)
class SealingCounts:
    """Stored embeddings and crops, sealed and plain (templates without a crop count in neither crop column)."""

    embeddings_sealed: int = 0
    embeddings_plain: int = 0
    crops_sealed: int = 0
    crops_plain: int = 0


@dataclass(frozen=True)
class SealResult:
    embeddings: int  # plain embeddings sealed now
    crops: int  # plain crops sealed now
    people: int  # people whose templates were touched (one audit entry each)


def _stored_rows(session: Session) -> Iterator[list[Row]]:
    """(id, person_id, embedding, crop) as stored, sealed or not, in batches by template id."""
    after = 0
    while True:
        query = (
            select(
                Template.id,
                Template.person_id,
                type_coerce(Template.embedding, LargeBinary).label("embedding"),  # the stored bytes, not unsealed
                type_coerce(Template.crop, LargeBinary).label("crop"),
            )
            .where(Template.id > after)
            .order_by(Template.id)
            .limit(BATCH)
        )
        rows = session.execute(query).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


def sealing_counts(database: Database) -> SealingCounts:
    """How many stored embeddings and crops are sealed and how many are plain (no key needed)."""
    counts = {"embeddings_sealed": 0, "embeddings_plain": 0, "crops_sealed": 0, "crops_plain": 0}
    with database.session() as session:
        for rows in _stored_rows(session):
            for row in rows:
                counts["embeddings_sealed" if is_sealed(row.embedding, FLOAT32_BYTES) else "embeddings_plain"] += 1
                if row.crop is not None:
                    counts["crops_sealed" if is_sealed(row.crop) else "crops_plain"] += 1
    return SealingCounts(**counts)


def _seal_batch(session: Session, rows: list[Row], touched: dict[int, list[int]]) -> None:
    """Rewrite this batch's plain embeddings and crops (the column type seals them); count them per person."""
    embeddings = [{"id": r.id, "embedding": r.embedding} for r in rows if not is_sealed(r.embedding, FLOAT32_BYTES)]
    crops = [{"id": r.id, "crop": r.crop} for r in rows if r.crop is not None and not is_sealed(r.crop)]
    person_of = {r.id: r.person_id for r in rows}
    for values, column in ((embeddings, 0), (crops, 1)):
        if values:
            session.execute(update(Template), values)
        for value in values:
            touched.setdefault(person_of[value["id"]], [0, 0])[column] += 1


def _vacuum(database: Database) -> None:
    """Rewrite the SQLite file so that no page of the old plain rows survives (others: a warning)."""
    if database.engine.dialect.name != "sqlite":
        log.warning("%s may keep old plain rows until it rewrites the table (PostgreSQL: VACUUM FULL)", database.url)
        return
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM"))


def seal_stored_templates(database: Database, gallery: Gallery) -> SealResult:
    """Seal every plain embedding and crop with the database's key in one transaction (one audit entry per person
    touched), VACUUM the file, then rebuild and save the gallery's index (sealed)."""
    if database.cipher is None:
        raise FaceGateError(
            "no key configured: set encryption.key_file (`facegate keys new PATH` writes one) or encryption.key_env"
        )
    touched: dict[int, list[int]] = {}
    with database.session() as session:
        for rows in _stored_rows(session):
            _seal_batch(session, rows, touched)
        employee_ids = {row.id: row.employee_id for row in session.execute(select(Person.id, Person.employee_id))}
        for person_id, (embeddings, crops) in sorted(touched.items()):
            audit.record(session, "encrypt", employee_ids[person_id], embeddings=embeddings, crops=crops)
    _vacuum(database)
    gallery.rebuild()
    gallery.save()
    result = SealResult(sum(n for n, _ in touched.values()), sum(n for _, n in touched.values()), len(touched))
    log.info("sealed %d embeddings and %d crops of %d people", result.embeddings, result.crops, result.people)
    return result
