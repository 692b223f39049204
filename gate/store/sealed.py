"""Face data at rest, as stored: the columns that hold it, counted sealed and plain by the database, a sealed
sample of each to prove a key (prove_key), plain rows rewritten sealed (the column types seal what is bound) and
the SQLite file rewritten so that no old plain page survives. Functions taking a Session join the caller's
transaction."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement, LargeBinary, Row, Table, bindparam, func, not_, select, text, type_coerce, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from gate.errors import FaceGateError
from gate.store.database import Database
from gate.store.encryption import Cipher, is_sealed, sealed_clause
from gate.store.schema import AccessEvent, GateSnapshot, Template

FLOAT32_BYTES = 4


@dataclass(frozen=True)
class SealingCounts:
    """Stored embeddings, template crops, event faces and gate snapshots, sealed and plain (rows without a crop or
    face count in neither of that column's numbers); in SEALED_COLUMNS' order."""

    embeddings_sealed: int = 0
    embeddings_plain: int = 0
    crops_sealed: int = 0
    crops_plain: int = 0
    event_faces_sealed: int = 0
    event_faces_plain: int = 0
    snapshots_sealed: int = 0
    snapshots_plain: int = 0

    @property
    def sealed(self) -> int:
        return self.embeddings_sealed + self.crops_sealed + self.event_faces_sealed + self.snapshots_sealed

    @property
    def plain(self) -> int:
        return self.embeddings_plain + self.crops_plain + self.event_faces_plain + self.snapshots_plain


# Each column that holds face data, what it is called, and its plain content's length multiple (is_sealed).
SEALED_COLUMNS: tuple[tuple[InstrumentedAttribute, str, int], ...] = (
    (Template.embedding, "template embedding", FLOAT32_BYTES),
    (Template.crop, "template crop", 1),
    (AccessEvent.crop, "event face", 1),
    (GateSnapshot.image, "gate snapshot", 1),  # a camera frame: the faces of whoever passed
)


def _stored(column: InstrumentedAttribute) -> ColumnElement[bytes]:
    """The column's bytes as stored, sealed or not (its type would unseal them)."""
    return type_coerce(column, LargeBinary)


def _counts(session: Session, column: InstrumentedAttribute, plain_multiple: int) -> tuple[int, int]:
    """(sealed, plain) rows of one column, counted by the database (no row is read into Python)."""
    stored = select(func.count()).select_from(column.class_).where(column.is_not(None))
    total = session.scalar(stored) or 0
    sealed = session.scalar(stored.where(sealed_clause(_stored(column), plain_multiple))) or 0
    return sealed, total - sealed


def sealing_counts(session: Session) -> SealingCounts:
    """How many stored embeddings, template crops, event faces and gate snapshots are sealed and how many plain (no
    key needed)."""
    return SealingCounts(*(n for column, _, m in SEALED_COLUMNS for n in _counts(session, column, m)))


def sealed_samples(session: Session) -> list[tuple[str, bytes]]:
    """(kind, bytes as stored) of one sealed row of each kind of face data that has one."""
    samples = []
    for column, kind, plain_multiple in SEALED_COLUMNS:
        stored = _stored(column)
        blob = session.scalar(select(stored).where(sealed_clause(stored, plain_multiple)).limit(1))
        if blob is not None:
            samples.append((kind, blob))
    return samples


def prove_key(cipher: Cipher, samples: list[tuple[str, bytes]]) -> list[str]:
    """Unseal each (kind, bytes as stored) sample (sealed_samples) with `cipher`: the kinds it opened (empty: nothing
    sealed to prove it against). One that it does not open is one FaceGateError naming the key."""
    for kind, blob in samples:
        try:
            cipher.unseal(blob, f"a stored {kind}")
        except FaceGateError as error:
            raise FaceGateError(f"{cipher.source} is not the key of this database: {error}") from None
    return [kind for kind, _ in samples]


def _stored_template_rows(session: Session, batch: int) -> Iterator[list[Row]]:
    """(id, person_id, embedding, crop) as stored, sealed or not, `batch` rows at a time by template id."""
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
            .limit(batch)
        )
        rows = list(session.execute(query).all())
        if not rows:
            return
        yield rows
        after = rows[-1].id


def _seal_template_rows(session: Session, rows: list[Row], touched: dict[int, list[int]]) -> None:
    """Rewrite these rows' plain embeddings and crops (the column type seals them); count them per person."""
    embeddings = [{"id": r.id, "embedding": r.embedding} for r in rows if not is_sealed(r.embedding, FLOAT32_BYTES)]
    crops = [{"id": r.id, "crop": r.crop} for r in rows if r.crop is not None and not is_sealed(r.crop)]
    person_of = {r.id: r.person_id for r in rows}
    for values, column in ((embeddings, 0), (crops, 1)):
        if values:
            session.execute(update(Template), values)
        for value in values:
            touched.setdefault(person_of[value["id"]], [0, 0])[column] += 1


def seal_plain_templates(session: Session, batch: int) -> dict[int, tuple[int, int]]:
    """Seal every plain embedding and template crop, read `batch` rows at a time; person id -> (embeddings, crops)
    sealed, for the people touched."""
    touched: dict[int, list[int]] = {}
    for rows in _stored_template_rows(session, batch):
        _seal_template_rows(session, rows, touched)
    return {person_id: (embeddings, crops) for person_id, (embeddings, crops) in touched.items()}


def seal_event_face_batch(session: Session, after: int, batch: int) -> tuple[int, int] | None:
    """Seal the next `batch` plain event faces after event id `after`: (last id, how many sealed), or None when
    none is left. A face deleted meanwhile (retention, a removal) is not brought back."""
    table = cast(Table, AccessEvent.__table__)
    stored = _stored(AccessEvent.crop)
    query = (
        select(AccessEvent.id, stored.label("crop"))
        .where(AccessEvent.id > after, AccessEvent.crop.is_not(None), not_(sealed_clause(stored)))
        .order_by(AccessEvent.id)
        .limit(batch)
    )
    seal = (
        table.update()  # the column's type seals the bound plain bytes
        .where(table.c.id == bindparam("event_id"), table.c.crop.is_not(None))
        .values(crop=bindparam("plain_face"))
    )
    rows = session.execute(query).all()
    if not rows:
        return None
    faces = [{"event_id": row.id, "plain_face": row.crop} for row in rows]  # the query left sealed ones out
    session.execute(seal, faces)
    return rows[-1].id, len(faces)


def seal_plain_snapshots(session: Session) -> int:
    """Seal every plain gate snapshot (one row per gate at most): how many."""
    table = cast(Table, GateSnapshot.__table__)
    stored = _stored(GateSnapshot.image)
    rows = session.execute(select(GateSnapshot.gate_id, stored.label("image")).where(not_(sealed_clause(stored))))
    plain = [{"snapshot_gate": row.gate_id, "plain_image": row.image} for row in rows]
    if plain:
        seal = (
            table.update().where(table.c.gate_id == bindparam("snapshot_gate")).values(image=bindparam("plain_image"))
        )
        session.execute(seal, plain)  # the column's type seals the bound plain bytes
    return len(plain)


def rewrite_file(database: Database) -> bool:
    """VACUUM a SQLite database, so that no page of deleted or overwritten rows survives; False (nothing done) on
    other backends."""
    if database.engine.dialect.name != "sqlite":
        return False
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM"))
    return True
