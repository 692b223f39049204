"""No decision without a record: access events go to the database, or, while it cannot take them, to a local
append-only journal (each line fsynced) that is replayed into the database once it is back.

The journal is JSON lines: {"event": {...}} for a decision, {"door": {...}} for what the door did afterwards.
Events carry a unique `event_uid`, so a replay interrupted after its commit (the journal not yet emptied) adds
nothing twice. A line cut short by a crash (the last one) is skipped with a warning.
"""

from __future__ import annotations

import base64
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

from gate.store import AccessEventRecord, Database, DoorReport, database_error

log = logging.getLogger(__name__)


def _encode(kind: str, item: AccessEventRecord | DoorReport) -> bytes:
    fields = asdict(item)
    if isinstance(item, AccessEventRecord):
        fields["time"] = item.time.isoformat()
        fields["crop"] = None if item.crop is None else base64.b64encode(item.crop).decode("ascii")
    return (json.dumps({kind: fields}, sort_keys=True) + "\n").encode()


def _decode(line: bytes) -> AccessEventRecord | DoorReport:
    entry = json.loads(line)
    if "event" in entry:
        fields = entry["event"]
        crop = base64.b64decode(fields["crop"]) if fields.get("crop") else None
        return AccessEventRecord(**{**fields, "time": datetime.fromisoformat(fields["time"]), "crop": crop})
    return DoorReport(**entry["door"])


class Journal:
    """The append-only file of records the database did not take yet (owner-only, 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

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

    def append(self, item: AccessEventRecord | DoorReport) -> None:
        """Write one line and fsync it: when this returns, the record survives a crash or a power cut."""
        with self._locked(os.O_WRONLY | os.O_APPEND) as fd:
            os.write(fd, _encode("event" if isinstance(item, AccessEventRecord) else "door", item))
            os.fsync(fd)

    def pending(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def entries(self, raw: bytes) -> list[AccessEventRecord | DoorReport]:
        items = []
        for number, line in enumerate(raw.splitlines(), start=1):
            try:
                items.append(_decode(line))
            except (ValueError, TypeError, KeyError):
                log.warning("%s line %d is damaged (cut short by a crash?): skipped", self.path, number)
        return items

    def replay(self, database: Database) -> int:
        """Move every journalled record into the database in one transaction, then empty the journal; returns
        the events added. Raises SQLAlchemyError (the journal kept whole) when the database still refuses."""
        if not self.pending():
            return 0
        with self._locked(os.O_RDWR) as fd:
            raw = b"".join(iter(lambda: os.read(fd, 1 << 20), b""))
            items = self.entries(raw)
            records = [item for item in items if isinstance(item, AccessEventRecord)]
            reports = [item for item in items if isinstance(item, DoorReport)]
            added = database.record_events(records, reports)
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
        self.journal = Journal(journal_path)
        self.journalled = 0  # records written to the journal since start
        self.replayed = 0  # events moved from the journal into the database since start

    def record(self, item: AccessEventRecord | DoorReport) -> bool:
        """Make `item` durable; False only when neither the database nor the journal could take it."""
        if not self.journal.pending():
            try:
                if isinstance(item, AccessEventRecord):
                    self.database.record_events([item], [])
                else:
                    self.database.record_events([], [item])
                return True
            except SQLAlchemyError as error:
                log.error(
                    "database refused an access record (%s); kept in %s", database_error(error), self.journal.path
                )
        try:
            self.journal.append(item)
        except OSError as error:
            log.critical("access record lost: database and journal %s both refused (%s)", self.journal.path, error)
            return False
        self.journalled += 1
        return True

    def replay(self) -> int:
        """Try to move the journal into the database; returns the events added (0 while it still refuses)."""
        try:
            added = self.journal.replay(self.database)
        except SQLAlchemyError as error:
            log.debug("journal replay deferred: %s", database_error(error))
            return 0
        self.replayed += added
        return added
