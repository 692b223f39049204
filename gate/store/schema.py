"""The one schema: every table of the FaceGate database on one metadata (Base), with the column types that keep
times in UTC and seal face data at rest, and the gallery version bumped by any change to people or templates."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    event,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from gate.errors import FaceGateError
from gate.store.encryption import Cipher, is_sealed

CIPHER_ATTRIBUTE = "facegate_cipher"  # set on each Database's engine dialect: the key travels with the database
ROLE_CHECK = "role IN ('admin', 'viewer')"  # an account's or a token's role: "admin" changes, "viewer" only reads
GATE_STATE_CHECK = "state IN ('running', 'stopped')"  # what a gate writes of itself in its heartbeat
TEMPLATE_ORIGINS = ("photo", "capture", "event")  # a photo file, a capture at a camera, a confirmed door event
TEMPLATE_ORIGIN_CHECK = "origin IN ('photo', 'capture', 'event')"
MAX_ACCOUNT_NAME = 100  # characters of an account's or a token's name
IN_CHUNK = 500  # values per IN (...) clause: SQLite caps the number of bound parameters
T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


def in_chunks(values: Sequence[T]) -> Iterator[list[T]]:
    """`values` IN_CHUNK at a time, for IN (...) clauses."""
    for start in range(0, len(values), IN_CHUNK):
        yield list(values[start : start + IN_CHUNK])


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
    """One embedding of one photo by one model; `crop` keeps the aligned face for re-embedding; `origin` says where
    the face came from (TEMPLATE_ORIGINS) and `event_id` which access event, for a confirmed door event."""

    __tablename__ = "templates"
    __table_args__ = (CheckConstraint(TEMPLATE_ORIGIN_CHECK, name="ck_templates_origin"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    embedding: Mapped[bytes] = mapped_column(SealedBytes(plain_multiple=4))  # float32, native little-endian
    embedding_size: Mapped[int]
    model_id: Mapped[str] = mapped_column(String(100), index=True)
    image_sha256: Mapped[str] = mapped_column(String(64))
    quality: Mapped[float] = mapped_column(Float)  # detector probability of the face
    source: Mapped[str] = mapped_column(String(255))  # the photo's file name, the frame's or the event's label
    crop: Mapped[bytes | None] = mapped_column(SealedBytes())  # aligned crop, lossless WebP bytes
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    origin: Mapped[str] = mapped_column(String(16), server_default="photo")
    # a plain id, not a foreign key: retention may remove the event, the template stays
    event_id: Mapped[int | None] = mapped_column(index=True)
    person: Mapped[Person] = relationship(back_populates="templates")


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
    # when an admin dismissed this unmatched face from the unknown visitors (None: not dismissed)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


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
    """A gate's heartbeat, written every few seconds while it runs; its last one says "stopped" after a clean
    stop (a running gate's beat gone stale reads as lost: gate.store.gate_status)."""

    __tablename__ = "gate_status"
    __table_args__ = (CheckConstraint(GATE_STATE_CHECK, name="ck_gate_status_state"),)

    gate_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    frames: Mapped[int] = mapped_column(BigInteger)
    fps: Mapped[float] = mapped_column(Float)  # frames read per second since the previous heartbeat
    last_decision: Mapped[str | None] = mapped_column(String(16))
    last_decision_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16), server_default="running")  # "running" or "stopped"
    camera: Mapped[str | None] = mapped_column(String(16))  # its frame source's: waiting, streaming, lost, ended


class GateSnapshot(Base):
    """A running gate's latest annotated camera frame (JPEG), one row per gate, overwritten every few seconds and
    deleted on a clean stop; only with [snapshot] enabled. People's faces: sealed like templates."""

    __tablename__ = "gate_snapshots"

    gate_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    image: Mapped[bytes] = mapped_column(SealedBytes(what="gate snapshots"))


class AdminAccount(Base):
    """A person who signs in to the API or the page; only the argon2 hash of the password is kept."""

    __tablename__ = "admin_accounts"
    __table_args__ = (CheckConstraint(ROLE_CHECK, name="ck_admin_accounts_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_ACCOUNT_NAME), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    disabled: Mapped[bool] = mapped_column(default=False)


class ApiToken(Base):
    """A machine's bearer token; the token itself is shown once at creation, only its sha256 is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint(ROLE_CHECK, name="ck_api_tokens_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_ACCOUNT_NAME), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AdminSession(Base):
    """One signed-in browser: the sha256 of its session id and of its CSRF token, until it expires."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_sha256: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[int] = mapped_column(ForeignKey("admin_accounts.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


@event.listens_for(Session, "before_flush")
def _bump_gallery_version(session: Session, _context: object, _instances: object) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(item, Person | Template) for item in changed):
        session.execute(update(GalleryVersion).where(GalleryVersion.id == 1).values(version=GalleryVersion.version + 1))
