"""The store and the decision journal on a real PostgreSQL server (started by the tests; SQLite stays the
default): an upgrade in place from an older schema, and every decision kept while the server is down (the schema
of new and upgraded databases is compared on PostgreSQL too, in test_schema).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, text

from gate.store.database import MIGRATIONS, Database
from gate.store.event_log import EventLog
from gate.store.events import AccessEventRecord, DoorReport, EventFilter
from gate.store.schema import Person, Template

pytestmark = pytest.mark.slow  # starts a PostgreSQL server (a few seconds, once per session)


def event(uid: str, employee: str | None = "E1", decision: str = "granted") -> AccessEventRecord:
    return AccessEventRecord(
        datetime.now(UTC), "front", employee, 0.9, decision, decision.upper(), event_uid=uid * 32, door="pending"
    )


def test_a_database_of_an_older_schema_is_upgraded_in_place_keeping_its_events(postgres_url: str) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")  # the schema before the journal's columns
        connection.execute(
            text(
                "INSERT INTO access_events (time, gate_id, employee_id, score, decision, reason) "
                "VALUES (now(), 'front', 'E7', 0.97, 'granted', 'GRANTED')"
            )
        )
    engine.dispose()
    database = Database(postgres_url)  # upgrades to the newest schema on open
    [old] = database.events()
    assert (old.employee_id, old.decision, old.event_uid, old.door) == ("E7", "granted", None, None)
    database.record_event(event("a"))
    assert len(database.events()) == 2


def test_people_templates_and_events_round_trip_on_postgresql(postgres_url: str) -> None:
    database = Database(postgres_url)
    vector = np.arange(128, dtype=np.float32) / 128
    with database.session() as session:
        person = Person(employee_id="E1", name="Ada")
        person.templates.append(
            Template(
                embedding=vector.tobytes(),
                embedding_size=128,
                model_id="m",
                image_sha256="0" * 64,
                quality=0.99,
                source="a.jpg",
            )
        )
        session.add(person)
    ids, people, vectors = database.all_templates("m")
    assert len(ids) == 1 and np.array_equal(vectors[0], vector)
    database.record_events(
        [event("a"), event("b", None, "denied")], [DoorReport("a" * 32, "opened", "granted", "GRANTED")]
    )
    assert [e.door for e in database.events(where=EventFilter(decision="granted"))] == ["opened"]


def test_decisions_while_the_server_is_stopped_reach_it_after_its_restart(postgres, tmp_path: Path) -> None:
    """The journal with a real server stopped and restarted: every decision reaches the database."""
    url = postgres.new_database()
    log = EventLog(Database(url), tmp_path / "events.journal")
    assert log.record(event("a")) and log.journalled == 0
    postgres.stop()
    try:
        assert log.record(event("b", None, "denied"))  # connection refused: into the journal, fsynced
        assert log.record(event("c")) and log.record(DoorReport("c" * 32, "failed", "denied", "DOOR_FAILED"))
        assert log.journalled == 3 and log.replay() == 0 and log.journal.pending()
    finally:
        postgres.start()
    assert log.replay() == 2 and not log.journal.pending()
    events = {e.event_uid[0]: (e.decision, e.reason, e.door) for e in Database(url).events()}
    assert events == {
        "a": ("granted", "GRANTED", "pending"),
        "b": ("denied", "DENIED", "pending"),
        "c": ("denied", "DOOR_FAILED", "failed"),
    }
