"""The access record's durability: database first, else an fsynced journal replayed when the database is back.

Real SQLite throughout; "unavailable" is a SQLite file opened read-only, so SQLite itself refuses the write.
"""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.event_log import EventLog
from gate.store import AccessEventRecord, Database, DoorReport


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


def test_when_neither_the_database_nor_the_journal_can_take_it_the_record_is_reported_lost(
    read_only: Database, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    log = EventLog(read_only, tmp_path / "a-file" / "events.journal")  # a journal below a file cannot exist
    assert log.record(event("a")) is False


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
