"""Encryption at rest turned on for a site: seal the templates, crops and event faces stored before, count what is
sealed, and prove that the configured key opens it.

With a key configured every new template and event face is sealed as it is written (gate/store/database.py); the rows
written before stay plain until `seal_stored` seals them: the templates in one transaction, audited per person,
then the access events' faces in batches of their own transaction each (a process killed mid-way leaves every
face either plain or sealed, and the next run seals the rest). SQLite's secure_delete overwrites the old plain
bytes and a VACUUM afterwards leaves no copy in free pages; the index is rebuilt sealed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import LargeBinary, Row, bindparam, func, not_, select, text, type_coerce, update
from sqlalchemy.orm import InstrumentedAttribute, Session
from tqdm import tqdm

from enrollment import audit
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.store.database import AccessEvent, Database, Person, Template
from gate.store.encryption import Cipher, is_sealed, sealed_clause

log = logging.getLogger(__name__)

BATCH = 200  # rows read (and, for event faces, sealed and committed) at a time: crops are kilobytes each
FLOAT32_BYTES = 4
NO_KEY = "no key configured: set encryption.key_file (`facegate keys new PATH` writes one) or encryption.key_env"


@dataclass(frozen=True)
class SealingCounts:
    """Stored embeddings, template crops and event faces, sealed and plain (rows without a crop or face count in
    neither of that column's numbers)."""

    embeddings_sealed: int = 0
    embeddings_plain: int = 0
    crops_sealed: int = 0
    crops_plain: int = 0
    event_faces_sealed: int = 0
    event_faces_plain: int = 0

    @property
    def sealed(self) -> int:
        return self.embeddings_sealed + self.crops_sealed + self.event_faces_sealed

    @property
    def plain(self) -> int:
        return self.embeddings_plain + self.crops_plain + self.event_faces_plain


@dataclass(frozen=True)
class SealResult:
    embeddings: int  # plain embeddings sealed now
    crops: int  # plain template crops sealed now
    people: int  # people whose templates were touched (one audit entry each)
    event_faces: int = 0  # plain faces of access events sealed now


# Each column that holds face data, what it is called, and its plain content's length multiple (is_sealed).
SEALED_COLUMNS: tuple[tuple[InstrumentedAttribute, str, int], ...] = (
    (Template.embedding, "template embedding", FLOAT32_BYTES),
    (Template.crop, "template crop", 1),
    (AccessEvent.crop, "event face", 1),
)


def _stored(column: InstrumentedAttribute) -> object:
    """The column's bytes as stored, sealed or not (its type would unseal them)."""
    return type_coerce(column, LargeBinary)


def _counts(session: Session, column: InstrumentedAttribute, plain_multiple: int) -> tuple[int, int]:
    """(sealed, plain) rows of one column, counted by the database (no row is read into Python)."""
    stored = select(func.count()).select_from(column.class_).where(column.is_not(None))
    total = session.scalar(stored) or 0
    sealed = session.scalar(stored.where(sealed_clause(_stored(column), plain_multiple))) or 0
    return sealed, total - sealed


def sealing_counts(database: Database) -> SealingCounts:
    """How many stored embeddings, template crops and event faces are sealed and how many plain (no key needed)."""
    with database.session() as session:
        (es, ep), (cs, cp), (fs, fp) = (_counts(session, column, m) for column, _, m in SEALED_COLUMNS)
    return SealingCounts(es, ep, cs, cp, fs, fp)


def prove_key(database: Database) -> list[str]:
    """Unseal one sealed row of each kind with the database's key: the kinds it opened (empty: nothing is sealed
    yet). A key that does not open them is one FaceGateError naming the key; no key configured is one too."""
    cipher = database.cipher
    if cipher is None:
        raise FaceGateError(NO_KEY)
    proven = []
    with database.session() as session:
        for column, kind, plain_multiple in SEALED_COLUMNS:
            stored = _stored(column)
            blob = session.scalar(select(stored).where(sealed_clause(stored, plain_multiple)).limit(1))
            if blob is not None:
                _unseal_sample(cipher, blob, kind)
                proven.append(kind)
    return proven


def _unseal_sample(cipher: Cipher, blob: bytes, kind: str) -> None:
    try:
        cipher.unseal(blob, f"a stored {kind}")
    except FaceGateError as error:
        raise FaceGateError(f"the configured key does not open what is sealed: {error}") from None


def _stored_rows(session: Session) -> Iterator[list[Row]]:
    """(id, person_id, embedding, crop) as stored, sealed or not, in batches by template id."""
    after = 0
    while True:
        query = (
            select(
                Template.id,
                Template.person_id,
                _stored(Template.embedding).label("embedding"),
                _stored(Template.crop).label("crop"),
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


def _seal_templates(database: Database) -> SealResult:
    """Seal every plain embedding and template crop in one transaction, one audit entry per person touched."""
    touched: dict[int, list[int]] = {}
    with database.session() as session:
        for rows in _stored_rows(session):
            _seal_batch(session, rows, touched)
        employee_ids = {row.id: row.employee_id for row in session.execute(select(Person.id, Person.employee_id))}
        for person_id, (embeddings, crops) in sorted(touched.items()):
            audit.record(session, "encrypt", employee_ids[person_id], embeddings=embeddings, crops=crops)
    return SealResult(sum(n for n, _ in touched.values()), sum(n for _, n in touched.values()), len(touched))


def _seal_event_face_batch(database: Database, after: int) -> tuple[int, int] | None:
    """Seal the next BATCH plain event faces after event id `after` in one transaction: (last id, how many
    sealed), or None when none is left. A face deleted meanwhile (retention, a removal) is not brought back."""
    table = AccessEvent.__table__
    stored = _stored(AccessEvent.crop)
    query = (
        select(AccessEvent.id, stored.label("crop"))
        .where(AccessEvent.id > after, AccessEvent.crop.is_not(None), not_(sealed_clause(stored)))
        .order_by(AccessEvent.id)
        .limit(BATCH)
    )
    seal = (
        table.update()  # the column's type seals the bound plain bytes
        .where(table.c.id == bindparam("event_id"), table.c.crop.is_not(None))
        .values(crop=bindparam("plain_face"))
    )
    with database.session() as session:
        rows = session.execute(query).all()
        if not rows:
            return None
        faces = [{"event_id": row.id, "plain_face": row.crop} for row in rows if not is_sealed(row.crop)]
        if faces:
            session.execute(seal, faces)
    return rows[-1].id, len(faces)


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
    if database.engine.dialect.name != "sqlite":
        log.warning("%s may keep old plain rows until it rewrites the table (PostgreSQL: VACUUM FULL)", database.url)
        return
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM"))


def seal_stored(database: Database, gallery: Gallery) -> SealResult:
    """Seal every plain embedding, template crop and event face with the database's key (templates in one
    transaction, event faces in batches), VACUUM the file, then rebuild and save the gallery's index (sealed)."""
    if database.cipher is None:
        raise FaceGateError(NO_KEY)
    templates = _seal_templates(database)
    event_faces = _seal_event_faces(database)
    _vacuum(database)
    gallery.rebuild()
    gallery.save()
    result = SealResult(templates.embeddings, templates.crops, templates.people, event_faces)
    log.info(
        "sealed %d embeddings and %d crops of %d people, %d event faces",
        result.embeddings, result.crops, result.people, result.event_faces,
    )  # fmt: skip
    return result
