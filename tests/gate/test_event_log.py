"""The access record's durability: database first, else an fsynced journal replayed when the database is back.

Real SQLite throughout; "unavailable" is a SQLite file opened read-only, so SQLite itself refuses the write.
"""

from __future__ import annotations

import base64
import resource
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.errors import FaceGateError
from gate.store.database import Database
from gate.store.encryption import new_key_text, parse_key
from gate.store.event_log import RESERVE_BYTES, EventLog, Journal, Stored
from gate.store.events import AccessEventRecord, DoorReport


def event(uid: str, employee: str | None = "e1", decision: str = "granted") -> AccessEventRecord:
    return AccessEventRecord(
        datetime.now(UTC), "front", employee, 0.9, decision, decision.upper(), event_uid=uid * 32, door="pending"
    )


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'gate.db'}")


@pytest.fixture
def read_only(database: Database, tmp_path: Path) -> Database:
    return Database(f"sqlite:///file:{tmp_path / 'gate.db'}?mode=ro&uri=true")


def test_a_writable_database_takes_the_record_and_no_journal_is_written(database: Database, tmp_path: Path) -> None:
    log = EventLog(database, tmp_path / "events.journal")
    assert log.record(event("a"))
    assert log.record(DoorReport("a" * 32, "opened", "granted", "GRANTED"))
    assert [(e.event_uid, e.door) for e in database.events()] == [("a" * 32, "opened")]
    assert not log.journal.pending() and log.journalled == 0


def test_an_unwritable_database_sends_records_to_an_owner_only_journal(
    database: Database, read_only: Database, tmp_path: Path
) -> None:
    log = EventLog(read_only, tmp_path / "events.journal")
    assert log.record(event("a")) and log.record(DoorReport("a" * 32, "failed", "denied", "DOOR_FAILED"))
    assert log.journalled == 2 and log.journal.pending() and database.events() == []
    assert stat.S_IMODE((tmp_path / "events.journal").stat().st_mode) == 0o600
    assert log.replay() == 0 and log.journal.pending()  # still refused: the journal is kept whole
    log.database = database
    assert log.replay() == 1 and not log.journal.pending()
    assert [(e.decision, e.reason, e.door) for e in database.events()] == [("denied", "DOOR_FAILED", "failed")]


def test_while_the_journal_holds_records_new_ones_join_it_in_order(
    database: Database, read_only: Database, tmp_path: Path
) -> None:
    log = EventLog(read_only, tmp_path / "events.journal")
    log.record(event("a"))
    log.database = database
    log.record(DoorReport("a" * 32, "opened", "granted", "GRANTED"))  # its event is still in the journal
    assert log.journalled == 2 and database.events() == []
    log.replay()
    assert [e.door for e in database.events()] == ["opened"]


def test_a_replay_cut_off_before_the_journal_was_emptied_adds_nothing_twice(database: Database, tmp_path: Path) -> None:
    journal_path = tmp_path / "events.journal"
    log = EventLog(database, journal_path)
    log.journal.append(event("a"))
    log.journal.append(event("b", employee=None, decision="denied"))
    saved = journal_path.read_bytes()
    assert log.replay() == 2
    journal_path.write_bytes(saved)  # as if killed after the commit, before the truncation
    assert log.replay() == 0 and len(database.events()) == 2


def test_a_line_cut_short_by_a_crash_is_skipped_and_the_rest_replayed(database: Database, tmp_path: Path) -> None:
    journal_path = tmp_path / "events.journal"
    log = EventLog(database, journal_path)
    log.journal.append(event("a"))
    with journal_path.open("ab") as handle:
        handle.write(b'{"event": {"decision": "gran')  # the process died mid-write
    assert log.replay() == 1 and [e.event_uid for e in database.events()] == ["a" * 32]
    assert log.journal.damaged_path.read_bytes() == b'{"event": {"decision": "gran\n'  # set aside, not dropped


def test_when_neither_the_database_nor_the_journal_can_take_it_the_record_is_reported_lost(
    read_only: Database, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    log = EventLog(read_only, tmp_path / "a-file" / "events.journal")  # a journal below a file cannot exist
    assert log.record(event("a")) is None and log.lost == 1


def test_a_journalled_event_keeps_its_face_through_the_replay(
    database: Database, read_only: Database, tmp_path: Path
) -> None:
    log = EventLog(read_only, tmp_path / "events.journal")
    face = bytes(range(256)) * 4
    assert log.record(
        AccessEventRecord(datetime.now(UTC), "front", "e1", 0.9, "granted", "GRANTED", event_uid="f" * 32, crop=face)
    )
    log.database = database
    assert log.replay() == 1 and database.event_face("f" * 32) == face


# --- a record is whole or it is not written ---------------------------------------------------------------------


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """RLIMIT_FSIZE for this process: a write past `limit` bytes of any file is cut short, then refused (EFBIG),
    as on a disk with that much room left. Python ignores SIGXFSZ, so the write returns instead of killing us."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def event_with_face(uid: str, face_bytes: int = 3000) -> AccessEventRecord:
    face = (bytes(range(256)) * (face_bytes // 256 + 1))[:face_bytes]
    return AccessEventRecord(
        datetime.now(UTC), "front", "E001", 0.9, "granted", "GRANTED", event_uid=uid * 32, door="pending", crop=face
    )


def test_a_record_cut_short_by_a_full_disk_is_refused_and_leaves_the_journal_as_it_was(tmp_path: Path) -> None:
    """Before, a 4,243-byte line with 4,096 bytes of room was written in part and `append` returned normally;
    the next append joined onto the fragment and the replay skipped both records as one damaged line."""
    journal = Journal(tmp_path / "events.journal")
    journal.append(event_with_face("a"))
    before = journal.path.read_bytes()
    assert len(before) > 4096  # the line does not fit in the room left
    with file_size_limit(len(before) + 4096), pytest.raises(OSError):
        journal.append(event_with_face("b"))  # ~4.2 kB: 4,096 bytes fit, the rest does not
    assert journal.path.read_bytes() == before  # cut back to the last whole line
    journal.append(event_with_face("c"))  # room is back
    items, damaged = journal.entries(journal.path.read_bytes())
    assert [item.event_uid for item in items] == ["a" * 32, "c" * 32] and damaged == []


def test_a_torn_tail_left_by_a_crash_is_cut_before_the_next_append(database: Database, tmp_path: Path) -> None:
    log = EventLog(database, tmp_path / "events.journal")
    log.journal.append(event("a"))
    with log.journal.path.open("ab") as handle:
        handle.write(b'{"event": {"decision": "gran')  # killed mid-write: the append never returned
    log.journal.append(event("b"))
    assert log.replay() == 2 and sorted(e.event_uid for e in database.events()) == ["a" * 32, "b" * 32]
    assert not log.journal.damaged_path.exists()


def test_a_damaged_line_in_the_middle_is_set_aside_and_the_rest_replayed(database: Database, tmp_path: Path) -> None:
    log = EventLog(database, tmp_path / "events.journal")
    log.journal.append(event("a"))
    with log.journal.path.open("ab") as handle:
        handle.write(b'{"event": garbage}\n')
    log.journal.append(event("b"))
    assert log.replay() == 2 and log.journal.damaged_path.read_bytes() == b'{"event": garbage}\n'


def test_the_journal_proves_at_start_it_can_take_a_record_and_keeps_a_reserve(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "data" / "events.journal")
    journal.check_writable()
    assert journal.has_reserve() and journal.reserve_path.stat().st_blocks * 512 >= RESERVE_BYTES
    (tmp_path / "a-file").write_text("")
    below_a_file = Journal(tmp_path / "a-file" / "events.journal")
    with pytest.raises(FaceGateError, match=r"cannot journal access records at .*a-file/events.journal"):
        below_a_file.check_writable()


def test_a_door_report_may_use_the_reserve_but_then_no_door_may_open(read_only: Database, tmp_path: Path) -> None:
    log = EventLog(read_only, tmp_path / "events.journal")  # the database refuses: everything is journalled
    log.journal.check_writable()
    size = log.journal.path.stat().st_size
    with file_size_limit(size + 10):  # no room for any record
        assert log.record(event("a")) is None  # a decision does not use the reserve
        assert log.record(DoorReport("a" * 32, "opened", "granted", "GRANTED"), use_reserve=True) is None
    # with RLIMIT_FSIZE the reserve frees no room (the limit is per file); on a full disk it does: tests/gate/
    # test_full_disk.py. Either way it is gone, and so is the room promised to the next door report:
    assert not log.journal.has_reserve() and log.lost == 2
    assert log.room_for_door_report() and log.journal.has_reserve()  # room came back: made again


# --- sealed with the site's key -----------------------------------------------------------------------------------


def test_with_a_key_journal_lines_are_sealed_and_replay_with_it(tmp_path: Path) -> None:
    key = parse_key(new_key_text(), "test key")
    Database(f"sqlite:///{tmp_path / 'gate.db'}", cipher=key)  # creates it
    read_only = Database(f"sqlite:///file:{tmp_path / 'gate.db'}?mode=ro&uri=true", cipher=key)
    log = EventLog(read_only, tmp_path / "events.journal")
    record = event_with_face("f")
    assert log.record(record) is Stored.JOURNAL
    raw = log.journal.path.read_bytes()
    assert b"E001" not in raw and base64.b64encode(record.crop or b"")[:40] not in raw and b'"sealed"' in raw
    for wrong in (None, parse_key(new_key_text(), "another key")):
        other = EventLog(Database(f"sqlite:///{tmp_path / 'gate.db'}", cipher=wrong), log.journal.path)
        assert other.replay() == 0 and log.journal.path.read_bytes() == raw  # refused, kept whole
    log.database = Database(f"sqlite:///{tmp_path / 'gate.db'}", cipher=key)
    assert log.replay() == 1 and log.database.event_face("f" * 32) == record.crop


def test_a_replay_that_cannot_set_damaged_lines_aside_keeps_the_journal_and_does_not_raise(
    database: Database, tmp_path: Path
) -> None:
    log = EventLog(database, tmp_path / "events.journal")
    log.journal.append(event("a"))
    with log.journal.path.open("ab") as handle:
        handle.write(b'{"event": garbage}\n')
    log.journal.damaged_path.mkdir()  # where the damaged line would go cannot be written (as on a full disk)
    assert log.replay() == 0 and log.journal.waiting() == 2  # kept whole; tried again at the next tick
    log.journal.damaged_path.rmdir()
    assert log.replay() == 0 and not log.journal.pending()  # its event was committed the first time: not twice
    assert [e.event_uid for e in database.events()] == ["a" * 32]
