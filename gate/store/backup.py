"""A consistent copy of the FaceGate database taken while gates run, and its restore into an empty database.

A backup is one owner-only tar file: manifest.json (the backend, the schema revision, when, how many people,
templates and access events, and the fingerprint of the key its face data is sealed with) and the database:
SQLite copied through its online backup API (in one step, so a snapshot even while another connection writes),
PostgreSQL dumped by its own pg_dump inside the snapshot the counts were taken in. The key is never in it: a
backup says which key it needs and a restore refuses another. The FAISS index is not in it either: it is a cache,
rebuilt from the database. A restore goes only into an empty database (nothing is changed otherwise).
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, cast

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, create_engine, func, inspect, literal, select, table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gate.config import validated
from gate.errors import FaceGateError
from gate.store.database import SCHEMA_HEAD, Database, database_error
from gate.store.encryption import PRIVATE_MODE, Cipher, new_private_file
from gate.store.schema import AccessEvent, Base, Person, Template
from gate.store.sealed import prove_key, sealed_samples

log = logging.getLogger(__name__)

BACKUP_FORMAT: Final = "facegate-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 64 * 1024  # FaceGate's is a few hundred bytes
Backend = Literal["sqlite", "postgresql"]  # a backup restores into a database of the same kind
MEMBERS: dict[Backend, str] = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}  # its file in the tar
POSTGRES_TOOLS = Path("/usr/lib/postgresql")  # Debian's versioned client tools, when pg_dump is not on PATH
BOOKKEEPING = {"alembic_version", "gallery_version"}  # rows in them do not make a database hold anything
OURS = {table.name for table in Base.metadata.sorted_tables} | BOOKKEEPING


class Manifest(BaseModel):
    """What a backup holds and needs (manifest.json): read strictly (extra keys, other types refused), so that any
    manifest not written by FaceGate is one FaceGateError, not a traceback."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_by_name=True)

    backend: Backend
    revision: str = Field(alias="schema", pattern=r"^[0-9]{1,8}$")  # the Alembic revision it was taken at
    created: str = Field(max_length=40)  # ISO 8601, UTC
    key_fingerprint: str | None = Field(pattern=r"^[0-9a-f]{16}$")  # the key its face data is sealed with
    # (Cipher.fingerprint); None: nothing sealed
    people: int = Field(ge=0)
    templates: int = Field(ge=0)
    events: int = Field(ge=0)
    format: Literal["facegate-backup"] = BACKUP_FORMAT
    version: int = Field(default=FORMAT_VERSION, ge=1, le=FORMAT_VERSION)

    @property
    def member(self) -> str:
        return MEMBERS[self.backend]

    def counts(self) -> str:
        return f"{self.people} people, {self.templates} templates, {self.events} access events"


@dataclass(frozen=True)
class BackupContents:
    """What the database copy holds, read inside the transaction (the snapshot) it was taken in."""

    schema: str
    people: int
    templates: int
    events: int
    sealed: list[tuple[str, bytes]]  # one sealed row of each kind of face data that has one


def _backend(url: URL) -> Backend:
    name = url.get_backend_name()
    if name not in MEMBERS:
        raise FaceGateError(f"cannot back up a {name} database: SQLite and PostgreSQL only")
    return cast(Backend, name)


def read_contents(connection: Connection) -> BackupContents:
    """The schema revision, the counts and sealed samples as `connection` (inside its transaction) sees them."""
    schema = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    count = [connection.execute(select(func.count()).select_from(model)).scalar_one() for model in (Person, Template)]
    events = connection.execute(select(func.count()).select_from(AccessEvent)).scalar_one()
    with Session(bind=connection) as session:  # joins the connection's transaction: the same snapshot
        sealed = sealed_samples(session)
    return BackupContents(schema, count[0], count[1], events, sealed)


def _fingerprint(contents: BackupContents, cipher: Cipher | None) -> str | None:
    """The fingerprint of the key the copy's face data is sealed with (proven on a row of each kind); None when
    nothing is sealed. A FaceGateError when the key is missing or is not the one."""
    if not contents.sealed:
        return None
    if cipher is None:
        raise FaceGateError("the stored face data is encrypted but no key is configured: configure it ([encryption])")
    prove_key(cipher, contents.sealed)
    return cipher.fingerprint


def _copy_sqlite(source: Path, target: Path) -> None:
    """The whole database in one step of SQLite's online backup: a consistent copy while others write."""
    with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(target)) as copy:
        live.backup(copy)


def _dump_sqlite(database: Database, target: Path) -> BackupContents:
    source = Path(database.engine.url.database or "")
    try:
        _copy_sqlite(source, target)
    except sqlite3.Error as error:
        raise FaceGateError(f"cannot copy {database.url}: {error}") from None
    copy = create_engine(f"sqlite:///{target}")
    try:
        with copy.connect() as connection:
            return read_contents(connection)
    finally:
        copy.dispose()


def postgres_tool(name: str) -> Path:
    """pg_dump or pg_restore: on PATH, else the newest of Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return Path(found)
    versions = sorted(POSTGRES_TOOLS.glob(f"*/bin/{name}"), key=lambda path: int(path.parents[1].name))
    if not versions:
        raise FaceGateError(f"{name} not found: install PostgreSQL's client tools (apt-get install postgresql-client)")
    return versions[-1]


def _conninfo_value(value: object) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq_target(url: URL) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy PostgreSQL URL as libpq's connection string for pg_dump and pg_restore, and their
    environment: the password goes in PGPASSWORD, never on a command line others can list."""
    parts = {"host": url.host, "port": url.port, "user": url.username, "dbname": url.database}
    parts.update({key: value for key, value in url.query.items() if isinstance(value, str)})
    conninfo = " ".join(f"{key}={_conninfo_value(value)}" for key, value in parts.items() if value)
    environment = dict(os.environ)
    if url.password:
        environment["PGPASSWORD"] = str(url.password)
    return conninfo, environment


def _run_tool(name: str, url: URL, *arguments: str) -> None:
    conninfo, environment = libpq_target(url)
    command = [str(postgres_tool(name)), *arguments, "--dbname", conninfo]
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()] or [f"exit status {done.returncode}"]
        raise FaceGateError(f"{name} failed: {lines[-1].strip()}")


def _dump_postgres(database: Database, target: Path) -> BackupContents:
    """pg_dump inside a snapshot exported from the transaction the counts are read in: the same moment."""
    repeatable = database.engine.connect().execution_options(isolation_level="REPEATABLE READ")
    with repeatable as connection, connection.begin():
        snapshot_id = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        contents = read_contents(connection)
        arguments = ["--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot_id}"]
        _run_tool("pg_dump", database.engine.url, *arguments, "--file", str(target))
    return contents


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), PRIVATE_MODE, int(datetime.now(UTC).timestamp())
    archive.addfile(info, io.BytesIO(data))


def _private(info: tarfile.TarInfo) -> tarfile.TarInfo:
    return info.replace(mode=PRIVATE_MODE, deep=False)


def _never_overwritten(out: Path) -> FaceGateError:
    return FaceGateError(f"{out} exists: a backup is never overwritten (give a new name)")


def _write_archive(out: Path, manifest: Manifest, member: Path, work: Path) -> None:
    """The tar (gzip) at `out`, owner-only from its first byte, written whole or not at all: written and fsynced
    as a new file in the folder `work` (beside `out`), then linked at `out`, which fails if anything is there (a
    file made since `out` was checked is never overwritten)."""
    partial = work / (out.name + ".partial")
    fd = new_private_file(partial)
    try:
        with os.fdopen(fd, "wb") as handle:
            with tarfile.open(fileobj=handle, mode="w:gz", compresslevel=1) as archive:
                _add_bytes(archive, MANIFEST, (manifest.model_dump_json(by_alias=True, indent=2) + "\n").encode())
                archive.add(member, arcname=manifest.member, filter=_private)
            handle.flush()
            os.fsync(handle.fileno())
        _link_new(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _link_new(partial: Path, out: Path) -> None:
    """`partial` at `out` as well, refused when `out` exists (a link never replaces one); on a file system without
    links (FAT, some network shares) copied into a file created there exclusively."""
    try:
        os.link(partial, out, follow_symlinks=False)
        return
    except FileExistsError:
        raise _never_overwritten(out) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
    try:
        fd = new_private_file(out)
    except FileExistsError:
        raise _never_overwritten(out) from None
    try:
        with os.fdopen(fd, "wb") as handle, partial.open("rb") as source:
            shutil.copyfileobj(source, handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def backup(database: Database, out: Path) -> Manifest:
    """Copy the database (consistent while gates write) into a new owner-only backup file `out`; the key stays
    apart, its fingerprint goes in the manifest. A FaceGateError, and no file, when it cannot."""
    out = Path(out)
    backend = _backend(database.engine.url)
    if out.exists():
        raise _never_overwritten(out)
    if not out.parent.is_dir():
        raise FaceGateError(f"cannot write {out}: folder {out.parent} does not exist")
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".facegate-backup-") as work:
        member = Path(work) / MEMBERS[backend]
        dump = _dump_sqlite if backend == "sqlite" else _dump_postgres
        contents = dump(database, member)
        manifest = Manifest(
            backend=backend, revision=contents.schema, created=datetime.now(UTC).isoformat(timespec="seconds"),
            key_fingerprint=_fingerprint(contents, database.cipher), people=contents.people,
            templates=contents.templates, events=contents.events,
        )  # fmt: skip
        _write_archive(out, manifest, member, Path(work))
    log.debug("backed up %s (%s) to %s", database.url, manifest.counts(), out)
    return manifest


def read_manifest(path: Path) -> Manifest:
    """A backup's manifest; a one-line FaceGateError when `path` is no FaceGate backup (its manifest.json missing, not
    JSON, or not what FaceGate writes: the first offending key named), or one of a newer format."""
    try:
        with tarfile.open(path, "r:*") as archive:
            member = archive.extractfile(MANIFEST)
            data = json.loads(member.read(MAX_MANIFEST_BYTES)) if member is not None else None
    except FileNotFoundError:
        raise FaceGateError(f"backup {path} not found") from None
    except (OSError, tarfile.TarError, KeyError, ValueError):
        raise FaceGateError(f"{path} is not a FaceGate backup") from None
    if not isinstance(data, dict) or data.get("format") != BACKUP_FORMAT:
        raise FaceGateError(f"{path} is not a FaceGate backup")
    version = data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise FaceGateError(f"{path} was written by a newer FaceGate (backup format {version}): upgrade")
    return validated(Manifest, data, f"{path} is not a FaceGate backup: {MANIFEST}")


def check_key_fits(manifest: Manifest, cipher: Cipher | None) -> None:
    """Refuse, in one line, a configured key that is not the one the backup's face data is sealed with."""
    needed = manifest.key_fingerprint
    if needed is None:
        return
    if cipher is None:
        raise FaceGateError(
            f"this backup's face data is encrypted with the key of fingerprint {needed}: configure that key "
            "([encryption] key_file or key_env) before restoring"
        )
    if cipher.fingerprint != needed:
        raise FaceGateError(
            f"{cipher.source} (fingerprint {cipher.fingerprint}) does not fit this backup: it needs the key of "
            f"fingerprint {needed}"
        )


def _holdings(connection: Connection) -> tuple[list[str], list[str]]:
    """(tables FaceGate does not know, FaceGate's tables that hold rows) in the database behind `connection`."""
    names = inspect(connection).get_table_names()
    foreign = sorted(set(names) - OURS)
    held = [
        name
        for name in sorted(set(names) - BOOKKEEPING - set(foreign))
        if connection.execute(select(literal(1)).select_from(table(name)).limit(1)).first() is not None
    ]
    return foreign, held


@contextmanager
def _plain_engine(url: str) -> Iterator[Connection]:
    """A connection that changes nothing on open (no migration; a SQLite file is not made: check it exists)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def shown_url(url: str) -> str:
    """A database URL as it may be shown: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def check_empty(url: str) -> None:
    """Refuse, in one line and changing nothing, a database that holds anything (or tables not FaceGate's)."""
    parsed = make_url(url)
    where = shown_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        return  # made by the restore
    try:
        with _plain_engine(url) as connection:
            foreign, held = _holdings(connection)
    except SQLAlchemyError as error:
        raise FaceGateError(f"cannot open database {where}: {database_error(error)}") from None
    if foreign:
        others = ", ".join(foreign)
        raise FaceGateError(f"{where} holds tables that are not FaceGate's ({others}): restore into an empty database")
    if held:
        rows = ", ".join(held)
        raise FaceGateError(f"{where} is not empty ({rows} hold rows): a backup restores only into an empty database")


def _unpack(path: Path, manifest: Manifest, folder: Path) -> Path:
    target = folder / manifest.member
    with tarfile.open(path, "r:*") as archive:
        member = archive.extractfile(manifest.member)
        if member is None:
            raise FaceGateError(f"{path} is not a FaceGate backup (no {manifest.member})")
        with target.open("wb") as handle:
            shutil.copyfileobj(member, handle)
    return target


def _drop_empty_tables(url: str) -> None:
    """Drop FaceGate's tables from a PostgreSQL database checked empty (a new database's schema, made by a first
    command), so the dump's schema, of its own revision, replaces them."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            names = [name for name in inspect(connection).get_table_names() if name in OURS]
            if names:
                connection.execute(text("DROP TABLE " + ", ".join(f'"{name}"' for name in names) + " CASCADE"))
    finally:
        engine.dispose()


def _load(url: str, manifest: Manifest, member: Path) -> None:
    if manifest.backend == "postgresql":
        _drop_empty_tables(url)
        arguments = ["--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error"]
        _run_tool("pg_restore", make_url(url), *arguments, str(member))
        return
    Database(url).close()  # the file made owner-only, as a new database is; the copy replaces its pages
    with closing(sqlite3.connect(member)) as saved, closing(sqlite3.connect(make_url(url).database or "")) as target:
        saved.backup(target)


def restore(url: str, cipher: Cipher | None, path: Path) -> Manifest:
    """Load backup `path` into the empty database at `url`, whose configured key is `cipher`. Refused in one line,
    changing nothing, when the database is not empty, of another kind, or the key does not fit; after, the
    database is opened as a gate opens it (migrated when the backup is older) and the counts checked."""
    manifest = read_manifest(path)
    backend = _backend(make_url(url))
    if manifest.backend != backend:
        raise FaceGateError(f"{path} is a {manifest.backend} backup: it restores into a {manifest.backend} database")
    if int(manifest.revision) > int(SCHEMA_HEAD):  # revisions are numbered 0001, 0002, ...
        raise FaceGateError(f"{path} was taken at schema {manifest.revision}, newer than this FaceGate's: upgrade it")
    check_key_fits(manifest, cipher)
    check_empty(url)
    with tempfile.TemporaryDirectory(prefix="facegate-restore-") as work:
        _load(url, manifest, _unpack(path, manifest, Path(work)))
    database = Database(url, cipher)
    try:
        with database.engine.connect() as connection:
            found = read_contents(connection)
    finally:
        database.close()
    if (found.people, found.templates, found.events) != (manifest.people, manifest.templates, manifest.events):
        raise FaceGateError(f"restored {database.url}, but its counts are not the backup's ({manifest.counts()})")
    log.debug("restored %s (%s) into %s", path, manifest.counts(), database.url)
    return manifest
