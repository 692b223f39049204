"""Opening the FaceGate database: the URL checked, a new SQLite file made owner-only, the schema created or
upgraded through Alembic, one transaction per session; the Database class, whose methods each read or write in a
transaction of their own through the store's job modules (events, people, gate_status, snapshots)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from gate.errors import FaceGateError
from gate.store import events, gate_status, people, snapshots
from gate.store.encryption import PRIVATE_MODE, Cipher, ensure_private
from gate.store.events import AccessEventRecord, DoorReport, EventFilter, EventMark
from gate.store.gate_status import Heartbeat
from gate.store.people import Owner
from gate.store.schema import CIPHER_ATTRIBUTE, AccessEvent, GalleryVersion, utcnow
from gate.store.snapshots import Snapshot

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA_HEAD = "0010"  # the newest migration (a test checks it is Alembic's head): a database already there opens
# without importing Alembic, which costs a command half a second of its start
SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_COMPANIONS = ("-journal", "-wal", "-shm")  # files beside the database that hold its pages too


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
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_MODE))  # SQLite takes an empty file as new
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
        if current:  # an upgrade of what a site has stored is worth a line; making a new database is not
            log.info("database schema: upgrading %s to %s", ", ".join(current), ", ".join(heads))
        else:
            log.debug("database schema: new database, created at %s", ", ".join(heads))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


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
        with self.session() as session:
            return events.record_events(session, records, reports)

    def events(self, limit: int = 100, where: EventFilter | None = None) -> list[AccessEventRecord]:
        """The latest access events, newest first, optionally only those `where` selects."""
        with self.session() as session:
            return events.latest_events(session, limit, where)

    def event_face(self, event_uid: str) -> bytes | None:
        """The face crop kept with an access event (WebP bytes), or None."""
        with self.session() as session:
            return events.event_face(session, event_uid)

    def event_marks(self, event_uids: Sequence[str]) -> dict[str, EventMark]:
        """event_uid -> the event's number and whom its face was confirmed as (enrollment.confirm)."""
        with self.session() as session:
            return events.event_marks(session, event_uids)

    def events_with_faces(self, event_uids: Sequence[str]) -> set[str]:
        """Which of these events still keep their face crop."""
        with self.session() as session:
            return events.events_with_faces(session, event_uids)

    def forget_event_faces(self, before: datetime | None = None, employee_id: str | None = None) -> int:
        """Delete the face crops of events older than `before`, or of every event naming `employee_id`; returns
        how many were deleted (the events stay)."""
        with self.session() as session:
            return events.forget_event_faces(session, before, employee_id)

    def all_templates(self, model_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Active people's templates of one model: (template ids (N,), person ids (N,), (N, D) float32)."""
        with self.session() as session:
            return people.all_templates(session, model_id)

    def template_owners(self, model_id: str, template_ids: Iterable[int] | None = None) -> dict[int, Owner]:
        """Template id -> owner, for active people's templates of one model (all, or only those listed)."""
        with self.session() as session:
            return people.template_owners(session, model_id, template_ids)

    def model_counts(self) -> dict[str, int]:
        """How many templates each model id has (all people)."""
        with self.session() as session:
            return people.model_counts(session)

    def gallery_version(self) -> int:
        """The enrolment change counter (GalleryVersion): when it moves, some gallery is out of date."""
        with self.engine.connect() as connection:
            return int(connection.execute(select(GalleryVersion.version).where(GalleryVersion.id == 1)).scalar_one())

    def beat(self, heartbeat: Heartbeat) -> None:
        """Write (or replace) a gate's heartbeat."""
        with self.session() as session:
            gate_status.write_heartbeat(session, heartbeat)

    def gate_statuses(self) -> list[Heartbeat]:
        """Every gate's latest heartbeat, by gate id."""
        with self.session() as session:
            return gate_status.gate_statuses(session)

    def put_snapshot(self, snapshot: Snapshot) -> None:
        """Write (or replace) a gate's camera snapshot (gate.store.snapshots)."""
        with self.session() as session:
            snapshots.write_snapshot(session, snapshot)

    def snapshot(self, gate_id: str) -> Snapshot | None:
        """A gate's latest camera snapshot, or None."""
        with self.session() as session:
            return snapshots.gate_snapshot(session, gate_id)

    def snapshot_times(self) -> dict[str, datetime]:
        """When each gate that has a camera snapshot stored took it, by gate id."""
        with self.session() as session:
            return snapshots.snapshot_times(session)

    def forget_snapshot(self, gate_id: str) -> bool:
        """Delete a gate's camera snapshot; whether there was one."""
        with self.session() as session:
            return snapshots.forget_snapshot(session, gate_id)
