"""No decision without a record: access events go to the database, or, while it cannot take them, to a local
append-only journal (each line fsynced) that is replayed into the database once it is back.

The journal is JSON lines: {"event": {...}} for a decision, {"door": {...}} for what the door did afterwards; with
an encryption key, each line is {"sealed": "<base64>"} instead, the same JSON sealed (a journalled face is
biometric data like any other). Events carry a unique `event_uid`, so a replay interrupted after its commit (the
journal not yet emptied) adds nothing twice.

A line is written whole or not at all: a short write is continued, a failed one cut back to the last line end, and
a tail torn by a crash is cut off before the next append, so one damaged line never swallows the next. Beside the
journal lies a reserve, a preallocated file released when the disk fills, so that what the door did after a
decision can still be written; while it is gone, the gate opens no door (gate.runtime.recorder).
"""

from __future__ import annotations

import base64
import enum
import errno
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from gate.errors import FaceGateError
from gate.store.database import Database, database_error
from gate.store.encryption import Cipher, ensure_private
from gate.store.events import AccessEventRecord, DoorReport

log = logging.getLogger(__name__)

RESERVE_BYTES = 64 * 1024  # the room kept for records that must follow a decision (a door report is ~150 bytes)
TAIL_CHUNK = 4096  # how far back at a time a torn tail is searched for the last line end


class Stored(enum.Enum):
    """Where a record went."""

    DATABASE = "database"
    JOURNAL = "journal"


def _encode(item: AccessEventRecord | DoorReport, cipher: Cipher | None) -> bytes:
    fields = asdict(item)
    kind = "door"
    if isinstance(item, AccessEventRecord):
        kind = "event"
        fields["time"] = item.time.isoformat()
        fields["crop"] = None if item.crop is None else base64.b64encode(item.crop).decode("ascii")
    text = json.dumps({kind: fields}, sort_keys=True)
    if cipher is not None:
        text = json.dumps({"sealed": base64.b64encode(cipher.seal(text.encode())).decode("ascii")})
    return (text + "\n").encode()


def _decode(line: bytes, cipher: Cipher | None, where: str) -> AccessEventRecord | DoorReport:
    """One journal line; ValueError/TypeError/KeyError when damaged, FaceGateError when sealed with no key or
    another one."""
    entry = json.loads(line)
    if "sealed" in entry:
        if cipher is None:
            raise FaceGateError(f"{where} is encrypted: configure the key it was written with ([encryption])")
        entry = json.loads(cipher.unseal(base64.b64decode(entry["sealed"], validate=True), where))
    if "event" in entry:
        fields = entry["event"]
        crop = base64.b64decode(fields["crop"]) if fields.get("crop") else None
        return AccessEventRecord(**{**fields, "time": datetime.fromisoformat(fields["time"]), "crop": crop})
    return DoorReport(**entry["door"])


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data` (os.write may write fewer than asked: on a nearly full disk, say)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def _last_line_end(fd: int, size: int) -> int:
    """The offset just after the last newline before `size` (0 when there is none)."""
    end = size
    while end > 0:
        start = max(0, end - TAIL_CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


class Journal:
    """The append-only file of records the database did not take yet (owner-only, 0600), and its reserve."""

    def __init__(self, path: Path, cipher: Cipher | None = None) -> None:
        self.path = path
        self.reserve_path = path.with_name(path.name + ".reserve")
        self.damaged_path = path.with_name(path.name + ".damaged")
        self.cipher = cipher

    @contextmanager
    def _locked(self, flags: int) -> Iterator[int]:
        """The journal opened and exclusively locked (two processes never interleave a write and a replay)."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, flags | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # closing releases the lock

    def _cut_torn_tail(self, fd: int) -> int:
        """Cut a last line left without its newline (a crash mid-write) so the next line starts clean; returns
        the journal's size after."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        end = _last_line_end(fd, size)
        os.ftruncate(fd, end)
        log.warning("%s: a record torn by a crash (%d bytes, never reported written) cut off", self.path, size - end)
        return end

    def append(self, item: AccessEventRecord | DoorReport) -> None:
        """Write one whole line and fsync it: when this returns, the record survives a crash or a power cut.
        Raises OSError when it could not, leaving the journal as it was before."""
        line = _encode(item, self.cipher)
        with self._locked(os.O_RDWR | os.O_APPEND) as fd:
            end = self._cut_torn_tail(fd)
            try:
                _write_all(fd, line)
                os.fsync(fd)
            except OSError:
                self._cut_back(fd, end)
                raise

    def _cut_back(self, fd: int, end: int) -> None:
        try:
            os.ftruncate(fd, end)
            os.fsync(fd)
        except OSError as error:  # the torn tail is then cut before the next append, or skipped by the replay
            log.error("%s: a partly written record could not be cut back (%s)", self.path, error.strerror)

    def check_writable(self) -> None:
        """Prove at start that a record can be journalled and that the reserve is in place; one-line
        FaceGateError when not."""
        try:
            with self._locked(os.O_RDWR | os.O_APPEND) as fd:
                self._cut_torn_tail(fd)
            ensure_private(self.path, "the journal")  # it holds access records and their faces
            self.make_reserve()
        except OSError as error:
            raise FaceGateError(
                f"cannot journal access records at {self.path} ([database] journal_path): {error.strerror}"
            ) from None

    def make_reserve(self) -> None:
        """Preallocate the reserve (RESERVE_BYTES on disk); OSError when the disk has not that much room."""
        if self.has_reserve():
            return
        fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
            os.fsync(fd)
        except OSError:
            os.close(fd)
            self.reserve_path.unlink(missing_ok=True)
            raise
        os.close(fd)

    def has_reserve(self) -> bool:
        try:
            return self.reserve_path.stat().st_size >= RESERVE_BYTES
        except OSError:
            return False

    def release_reserve(self) -> bool:
        """Give the reserve's room back to the disk; False when there was none."""
        if not self.reserve_path.exists():
            return False
        self.reserve_path.unlink()
        return True

    def pending(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def waiting(self) -> int:
        """How many records wait in the journal."""
        try:
            with self.path.open("rb") as handle:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        except FileNotFoundError:
            return 0

    def entries(self, raw: bytes) -> tuple[list[AccessEventRecord | DoorReport], list[bytes]]:
        """The journal's records, and its damaged lines (JSON cut or altered). FaceGateError when a sealed line
        cannot be unsealed (the journal is then kept as it is)."""
        items, damaged = [], []
        for number, line in enumerate(raw.splitlines(keepends=True), start=1):
            try:
                items.append(_decode(line, self.cipher, f"{self.path} line {number}"))
            except (ValueError, TypeError, KeyError):
                log.warning("%s line %d is damaged: set aside in %s", self.path, number, self.damaged_path)
                damaged.append(line if line.endswith(b"\n") else line + b"\n")
        return items, damaged

    def _set_aside(self, damaged: list[bytes]) -> None:
        """Keep damaged lines in the .damaged file for a person to look at: never dropped."""
        if damaged:
            with self.damaged_path.open("ab") as handle:
                handle.write(b"".join(damaged))
                os.fsync(handle.fileno())

    def replay(self, database: Database) -> int:
        """Move every journalled record into the database in one transaction, then empty the journal; returns
        the events added. Raises SQLAlchemyError (the journal kept whole) when the database still refuses."""
        if not self.pending():
            return 0
        with self._locked(os.O_RDWR) as fd:
            raw = b"".join(iter(lambda: os.read(fd, 1 << 20), b""))
            items, damaged = self.entries(raw)
            records = [item for item in items if isinstance(item, AccessEventRecord)]
            reports = [item for item in items if isinstance(item, DoorReport)]
            added = database.record_events(records, reports)
            self._set_aside(damaged)
            os.ftruncate(fd, 0)
            os.fsync(fd)
        log.info("journal %s replayed: %d events added to the database", self.path, added)
        return added


class EventLog:
    """Records decisions and door reports: in the database when it can take them, else in the journal.

    While the journal holds anything, new records go there too (their order is kept), until `replay()`
    moves it all into the database.
    """

    def __init__(self, database: Database, journal_path: Path) -> None:
        self.database = database
        self.journal = Journal(journal_path, database.cipher)
        self.journalled = 0  # records written to the journal since start
        self.replayed = 0  # events moved from the journal into the database since start
        self.lost = 0  # records neither the database nor the journal took

    def record(self, item: AccessEventRecord | DoorReport, use_reserve: bool = False) -> Stored | None:
        """Make `item` durable; where it went, or None when neither the database nor the journal took it.
        `use_reserve`: when the disk is full, release the reserve to make room for this record."""
        if not self.journal.pending():
            try:
                if isinstance(item, AccessEventRecord):
                    self.database.record_events([item], [])
                else:
                    self.database.record_events([], [item])
                return Stored.DATABASE
            except SQLAlchemyError as error:
                log.error(
                    "database refused an access record (%s); kept in %s", database_error(error), self.journal.path
                )
        if not self._journal(item, use_reserve):
            self.lost += 1
            return None
        self.journalled += 1
        return Stored.JOURNAL

    def _journal(self, item: AccessEventRecord | DoorReport, use_reserve: bool) -> bool:
        try:
            self.journal.append(item)
            return True
        except OSError as error:
            if use_reserve and self.journal.release_reserve():
                log.critical(
                    "%s: no room (%s): the journal's reserve released for this record",
                    self.journal.path,
                    error.strerror,
                )
                return self._journal(item, use_reserve=False)
            log.critical(
                "access record lost: database and journal %s both refused (%s)", self.journal.path, error.strerror
            )
            return False

    def room_for_door_report(self) -> bool:
        """Whether the journal's reserve is in place (made again when room has come back)."""
        try:
            self.journal.make_reserve()
            return True
        except OSError:
            return False

    def replay(self) -> int:
        """Try to move the journal into the database; returns the events added (0 while it still refuses)."""
        try:
            added = self.journal.replay(self.database)
        except SQLAlchemyError as error:
            log.debug("journal replay deferred: %s", database_error(error))
            return 0
        except FaceGateError as error:
            log.error("journal replay refused: %s", error)
            return 0
        except OSError as error:  # the journal or its .damaged file on a full disk: tried again later
            log.error("journal replay deferred: %s (%s)", error.strerror, self.journal.path)
            return 0
        self.replayed += added
        return added
