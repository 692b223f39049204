"""The database, source of truth: people, face templates, access events (SQLAlchemy 2, Alembic schema)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.dml import Update

from gate.errors import FaceGateError
from gate.store.encryption import Cipher, ensure_private, is_sealed

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA_HEAD = "0008"  # the newest migration (a test checks it is Alembic's head): a database already there opens
# without importing Alembic, which costs a command half a second of its start
SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_COMPANIONS = ("-journal", "-wal", "-shm")  # files beside the database that hold its pages too
IN_CHUNK = 500  # ids per IN (...) clause: SQLite caps the number of bound parameters
Decision = Literal["granted", "denied"]
CIPHER_ATTRIBUTE = "facegate_cipher"  # set on each Database's engine dialect: the key travels with the database


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive, in UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("store times as timezone-aware datetimes (e.g. datetime.now(UTC))")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class SealedBytes(TypeDecorator):
    """Bytes sealed at rest when the Database has a cipher; plain rows still read (a site turning encryption on),
    sealed rows without a key are one FaceGateError. plain_multiple: plain content's length is a multiple of it;
    what: what the column holds, plural, for errors."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, plain_multiple: int = 1, what: str = "templates") -> None:
        super().__init__()
        self.plain_multiple = plain_multiple
        self.what = what

    def process_bind_param(self, value: bytes | None, dialect: object) -> bytes | None:
        cipher: Cipher | None = getattr(dialect, CIPHER_ATTRIBUTE, None)
        if value is None or cipher is None:
            return value
        return cipher.seal(value)

    def process_result_value(self, value: bytes | None, dialect: object) -> bytes | None:
        if value is None or not is_sealed(value, self.plain_multiple):
            return value
        cipher: Cipher | None = getattr(dialect, CIPHER_ATTRIBUTE, None)
        if cipher is None:
            raise FaceGateError(f"{self.what} are encrypted: set encryption.key_file or key_env")
        return cipher.unseal(value, f"stored {self.what}")


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    templates: Mapped[list[Template]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )


class Template(Base):
    """One embedding of one photo by one model; `crop` keeps the aligned face for re-embedding."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    embedding: Mapped[bytes] = mapped_column(SealedBytes(plain_multiple=4))  # float32, native little-endian
    embedding_size: Mapped[int]
    model_id: Mapped[str] = mapped_column(String(100), index=True)
    image_sha256: Mapped[str] = mapped_column(String(64))
    quality: Mapped[float] = mapped_column(Float)  # detector probability of the face
    source: Mapped[str] = mapped_column(String(255))  # the photo's file name
    crop: Mapped[bytes | None] = mapped_column(SealedBytes())  # aligned crop, lossless WebP bytes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    person: Mapped[Person] = relationship(back_populates="templates")

    def vector(self) -> np.ndarray:
        return np.frombuffer(self.embedding, dtype=np.float32)


class AccessEvent(Base):
    __tablename__ = "access_events"
    __table_args__ = (CheckConstraint("decision IN ('granted', 'denied')", name="ck_access_events_decision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    gate_id: Mapped[str] = mapped_column(String(100))
    # A plain string, not a foreign key: the event keeps the employee id after the person is removed.
    employee_id: Mapped[str | None] = mapped_column(String(64), index=True)
    score: Mapped[float | None] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(100))
    # a denial's nearest enrolled person (its best-scoring match), for audits; None for grants and unknown faces
    candidate_id: Mapped[str | None] = mapped_column(String(64))
    # unique per decision: a journal replayed twice (a crash between commit and truncation) adds nothing twice
    event_uid: Mapped[str | None] = mapped_column(String(32), unique=True, index=True)
    door: Mapped[str | None] = mapped_column(String(16))  # what the actuator reported; "pending" until it has
    claimed_id: Mapped[str | None] = mapped_column(String(64))  # card + face: the identity the badge claimed
    # the deciding frame's aligned face (lossy WebP), sealed like templates; removed with the person, by retention
    crop: Mapped[bytes | None] = mapped_column(SealedBytes(what="event faces"), deferred=True)


class AuditEntry(Base):
    """One change to who can open the door (enrolment, photos added, removal, re-embedding, an override), with
    who made it (the OS user), from which host and when; kept after the person is removed."""

    __tablename__ = "enrolment_audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))
    employee_id: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(Text)


class GalleryVersion(Base):
    """One row: how many times the enrolled faces changed. Bumped in the same transaction as the change (any
    person or template added, altered or deleted through a session); gates poll it to reload their gallery."""

    __tablename__ = "gallery_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class GateStatus(Base):
    """A gate's heartbeat, written every few seconds while it runs."""

    __tablename__ = "gate_status"

    gate_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    frames: Mapped[int] = mapped_column(BigInteger)
    fps: Mapped[float] = mapped_column(Float)  # frames read per second since the previous heartbeat
    last_decision: Mapped[str | None] = mapped_column(String(16))
    last_decision_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


HEARTBEAT_S = 5.0  # a running gate writes its heartbeat this often ...
OFFLINE_AFTER_S = 3 * HEARTBEAT_S  # ... and is shown offline when none came for this long


@dataclass(frozen=True)
class Heartbeat:
    """What a running gate reports about itself (GateStatus's columns)."""

    gate_id: str
    host: str
    started_at: datetime
    last_seen: datetime
    frames: int
    fps: float
    last_decision: str | None = None
    last_decision_at: datetime | None = None

    def online(self, now: datetime, max_age_s: float = OFFLINE_AFTER_S) -> bool:
        """Seen within `max_age_s` of `now`: a gate that stopped, crashed or lost its database goes offline."""
        return (now - self.last_seen).total_seconds() <= max_age_s


@event.listens_for(Session, "before_flush")
def _bump_gallery_version(session: Session, _context: object, _instances: object) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(item, Person | Template) for item in changed):
        session.execute(update(GalleryVersion).where(GalleryVersion.id == 1).values(version=GalleryVersion.version + 1))


@dataclass(frozen=True)
class AccessEventRecord:
    """One door decision, as the daemon records it and `events()` returns it."""

    time: datetime
    gate_id: str
    employee_id: str | None
    score: float | None
    decision: Decision
    reason: str
    candidate_id: str | None = None  # a denial's nearest enrolled person (`score` is theirs)
    event_uid: str | None = None  # unique per decision (the gate sets it; older events have none)
    door: str | None = None  # the actuator's report: "pending", "opened", "failed", "timed_out"; None: no door
    claimed_id: str | None = None  # card + face: who the badge said it was
    crop: bytes | None = field(default=None, repr=False, compare=False)  # the deciding face (WebP); not listed

    def to_json(self) -> dict:
        """The event's fields for JSON (the log export, MQTT): the time in ISO 8601, no face crop."""
        return {name: getattr(self, name) for name in EVENT_FIELDS} | {"time": self.time.isoformat()}


EVENT_FIELDS = tuple(name for name in AccessEventRecord.__dataclass_fields__ if name != "crop")  # what is listed


@dataclass(frozen=True)
class DoorReport:
    """What the door did after a decision was recorded: the event's final decision, reason and door state."""

    event_uid: str
    door: str
    decision: Decision
    reason: str


@dataclass(frozen=True)
class EventFilter:
    """Which access events to read: any of gate, person, decision and a time range (UTC, `since` inclusive)."""

    gate_id: str | None = None
    employee_id: str | None = None
    decision: Decision | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list:
        conditions = []
        if self.gate_id is not None:
            conditions.append(AccessEvent.gate_id == self.gate_id)
        if self.employee_id is not None:
            conditions.append(AccessEvent.employee_id == self.employee_id)
        if self.decision is not None:
            conditions.append(AccessEvent.decision == self.decision)
        if self.since is not None:
            conditions.append(AccessEvent.time >= self.since)
        if self.until is not None:
            conditions.append(AccessEvent.time < self.until)
        return conditions


@dataclass(frozen=True)
class Owner:
    """Whom a template belongs to."""

    person_id: int
    employee_id: str
    name: str


def database_error(error: Exception) -> str:
    """A database error in one line: the driver's own message when there is one (SQLAlchemy wraps it)."""
    return str(getattr(error, "orig", None) or error).splitlines()[0]


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):  # a SQLite URI (mode=ro...): SQLite opens it as it says, we create nothing
        return None
    return Path(parsed.database)


def _check_sqlite_file(path: Path) -> None:
    """Refuse an existing file that is not SQLite before SQLite touches it."""
    if path.is_dir():
        raise FaceGateError(f"database {path} is a folder; set database.url to a file path")
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise FaceGateError(f"{path} is not a SQLite database; set database.url to another file")


def _create_private(path: Path) -> None:
    """A new SQLite file (and its folder) readable by its owner only: it will hold embeddings and face crops."""
    if path.exists():
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # SQLite takes an empty file as new
    except FileExistsError:
        pass  # another process made it first
    except OSError as error:
        raise FaceGateError(f"cannot create database {path}: {error.strerror}") from None


def _enable_sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA secure_delete=ON")  # a removed person's rows are overwritten, not left in free pages
    cursor.close()


def _build_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database in (None, "", ":memory:"):
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        engine = create_engine(url)
    event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def _current_revisions(connection: Connection) -> set[str]:
    """The schema revisions recorded in the database (read directly: alembic logs at INFO when asked)."""
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (`alembic upgrade head` on this engine's connection)."""
    with engine.connect() as connection:
        if _current_revisions(connection) == {SCHEMA_HEAD}:
            return
    from alembic.util.exc import CommandError

    try:
        _upgrade(engine)
    except CommandError as error:
        where = engine.url.render_as_string(hide_password=True)
        raise FaceGateError(f"cannot open database {where}: {str(error).splitlines()[0]}") from None


def _upgrade(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    with engine.begin() as connection:
        current = _current_revisions(connection)
        heads = set(script.get_heads())
        if current == heads:
            return
        unknown = current - {revision.revision for revision in script.walk_revisions()}
        if unknown:
            raise FaceGateError(f"database schema {min(unknown)} is newer than this FaceGate; upgrade FaceGate")
        log.info("database schema: upgrading %s to %s", ", ".join(current) or "(empty)", ", ".join(heads))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def forget_faces(before: datetime | None = None, employee_id: str | None = None) -> Update:
    """The statement deleting the face crops of events older than `before`, or of every event naming `employee_id`
    (as the person, the nearest candidate or the claimed badge); the events themselves stay."""
    query = update(AccessEvent).where(AccessEvent.crop.is_not(None)).values(crop=None)
    if before is not None:
        query = query.where(AccessEvent.time < before)
    if employee_id is not None:
        named = (AccessEvent.employee_id, AccessEvent.candidate_id, AccessEvent.claimed_id)
        query = query.where(or_(*(column == employee_id for column in named)))
    return query


class Database:
    """Sessions over any SQLAlchemy URL; the schema is created or upgraded through Alembic on open. With a
    cipher, templates' embeddings and crops and events' faces are sealed on write and unsealed on read
    (gate/store/encryption.py). A SQLite file others could read is made owner-only on open, with a warning."""

    def __init__(self, url: str, cipher: Cipher | None = None) -> None:
        self.cipher = cipher
        try:
            self.url = make_url(url).render_as_string(hide_password=True)
        except ArgumentError:
            raise FaceGateError(f"database.url {url!r} is not a SQLAlchemy URL (e.g. sqlite:///data/gate.db)") from None
        path = _sqlite_file(url)
        if path is not None:
            _check_sqlite_file(path)
            _create_private(path)
            for companion in (path, *(path.with_name(path.name + end) for end in SQLITE_COMPANIONS)):
                ensure_private(companion, "database")
        try:
            self.engine = _build_engine(url)
            setattr(self.engine.dialect, CIPHER_ATTRIBUTE, cipher)  # read by SealedBytes; one key per database
            migrate(self.engine)
        except (SQLAlchemyError, ImportError) as error:
            raise FaceGateError(f"cannot open database {self.url}: {database_error(error)}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        log.debug("database %s ready", self.url)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def check_writable(self) -> None:
        """Refuse in one line when an access event could not be written (a read-only file or server, a full
        disk...): an insert is tried and rolled back."""
        probe = AccessEvent(time=utcnow(), gate_id="-", employee_id=None, score=None, decision="denied", reason="-")
        try:
            with self.engine.connect() as connection, Session(connection) as session:
                session.add(probe)
                session.flush()
                session.rollback()
        except SQLAlchemyError as error:
            raise FaceGateError(f"cannot record access events in {self.url}: {database_error(error)}") from None

    def record_event(self, record: AccessEventRecord) -> None:
        self.record_events([record], [])

    def record_events(self, records: Sequence[AccessEventRecord], reports: Sequence[DoorReport]) -> int:
        """Add the events not already recorded (by event_uid), then apply the door reports, in one transaction;
        returns how many events were added."""
        for record in records:
            if record.decision not in ("granted", "denied"):
                raise ValueError(f"decision must be 'granted' or 'denied', got {record.decision!r}")
        uids = [record.event_uid for record in records if record.event_uid is not None]
        with self.session() as session:
            known = set()
            for chunk in range(0, len(uids), IN_CHUNK):
                wanted = uids[chunk : chunk + IN_CHUNK]
                known |= set(session.scalars(select(AccessEvent.event_uid).where(AccessEvent.event_uid.in_(wanted))))
            new = [record for record in records if record.event_uid is None or record.event_uid not in known]
            session.add_all(AccessEvent(**asdict(record)) for record in new)
            session.flush()
            for report in reports:
                session.execute(
                    update(AccessEvent)
                    .where(AccessEvent.event_uid == report.event_uid)
                    .values(door=report.door, decision=report.decision, reason=report.reason)
                )
        return len(new)

    def events(self, limit: int = 100, where: EventFilter | None = None) -> list[AccessEventRecord]:
        """The latest access events, newest first, optionally only those `where` selects."""
        query = select(AccessEvent).order_by(AccessEvent.time.desc(), AccessEvent.id.desc()).limit(limit)
        for condition in (where or EventFilter()).conditions():
            query = query.where(condition)
        with self.session() as session:
            return [
                AccessEventRecord(
                    e.time,
                    e.gate_id,
                    e.employee_id,
                    e.score,
                    e.decision,  # type: ignore[arg-type]
                    e.reason,
                    e.candidate_id,
                    e.event_uid,
                    e.door,
                    e.claimed_id,
                )
                for e in session.scalars(query)
            ]

    def all_templates(self, model_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Active people's templates of one model: (template ids (N,), person ids (N,), (N, D) float32)."""
        query = (
            select(Template.id, Template.person_id, Template.embedding)
            .join(Person)
            .where(Person.active, Template.model_id == model_id)
            .order_by(Template.id)
        )
        with self.session() as session:
            rows = session.execute(query).all()
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        people = np.array([row[1] for row in rows], dtype=np.int64)
        if not rows:
            return ids, people, np.zeros((0, 0), dtype=np.float32)
        return ids, people, np.stack([np.frombuffer(row[2], dtype=np.float32) for row in rows])

    def template_owners(self, model_id: str, template_ids: Iterable[int] | None = None) -> dict[int, Owner]:
        """Template id -> owner, for active people's templates of one model (all, or only those listed)."""
        base = (
            select(Template.id, Person.id, Person.employee_id, Person.name)
            .join(Person)
            .where(Person.active, Template.model_id == model_id)
        )
        if template_ids is None:
            queries = [base]
        else:
            wanted = [int(i) for i in template_ids]
            chunks = [wanted[i : i + IN_CHUNK] for i in range(0, len(wanted), IN_CHUNK)]
            queries = [base.where(Template.id.in_(chunk)) for chunk in chunks]
        owners: dict[int, Owner] = {}
        with self.session() as session:
            for query in queries:
                for template_id, person_id, employee_id, name in session.execute(query):
                    owners[template_id] = Owner(person_id, employee_id, name)
        return owners

    def beat(self, heartbeat: Heartbeat) -> None:
        """Write (or replace) a gate's heartbeat."""
        with self.session() as session:
            session.merge(GateStatus(**asdict(heartbeat)))

    def gate_statuses(self) -> list[Heartbeat]:
        """Every gate's latest heartbeat, by gate id."""
        with self.session() as session:
            rows = session.scalars(select(GateStatus).order_by(GateStatus.gate_id))
            return [Heartbeat(**{name: getattr(row, name) for name in Heartbeat.__dataclass_fields__}) for row in rows]

    def event_face(self, event_uid: str) -> bytes | None:
        """The face crop kept with an access event (WebP bytes), or None."""
        with self.session() as session:
            return session.scalar(select(AccessEvent.crop).where(AccessEvent.event_uid == event_uid))

    def events_with_faces(self, event_uids: Sequence[str]) -> set[str]:
        """Which of these events still keep their face crop."""
        found: set[str] = set()
        with self.session() as session:
            for chunk in range(0, len(event_uids), IN_CHUNK):
                wanted = list(event_uids[chunk : chunk + IN_CHUNK])
                query = select(AccessEvent.event_uid).where(
                    AccessEvent.event_uid.in_(wanted), AccessEvent.crop.is_not(None)
                )
                found.update(session.scalars(query))
        return found

    def forget_event_faces(self, before: datetime | None = None, employee_id: str | None = None) -> int:
        """Delete event face crops (forget_faces); returns how many were deleted."""
        with self.session() as session:
            return session.execute(forget_faces(before, employee_id)).rowcount

    def gallery_version(self) -> int:
        """The enrolment change counter (GalleryVersion): when it moves, some gallery is out of date."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(GalleryVersion.version).where(GalleryVersion.id == 1)).scalar_one())

    def model_counts(self) -> dict[str, int]:
        """How many templates each model id has (all people)."""
        query = select(Template.model_id, func.count()).group_by(Template.model_id)
        with self.session() as session:
            return {model_id: count for model_id, count in session.execute(query)}
