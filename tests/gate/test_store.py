"""The database: schema through Alembic, refusal of bad files and URLs, events, templates of active people."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from gate.errors import FaceGateError
from gate.store.database import MIGRATIONS, SCHEMA_HEAD, Database
from gate.store.events import AccessEventRecord
from gate.store.gate_status import HEARTBEAT_S, OFFLINE_AFTER_S, Heartbeat
from gate.store.schema import Person, Template


def _db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'sub' / 'gate.db'}")


def _person(db: Database, employee_id: str, vectors: np.ndarray, model_id: str = "m1", active: bool = True) -> int:
    with db.session() as session:
        person = Person(employee_id=employee_id, name=employee_id.title(), active=active)
        for i, vector in enumerate(vectors):
            person.templates.append(
                Template(
                    embedding=vector.astype(np.float32).tobytes(),
                    embedding_size=len(vector),
                    model_id=model_id,
                    image_sha256=f"{employee_id}-{i}",
                    quality=0.99,
                    source=f"{i}.jpg",
                )
            )
        session.add(person)
        session.flush()
        return person.id


def test_database_new_sqlite_file_creates_folder_and_schema(tmp_path: Path) -> None:
    db = _db(tmp_path)
    assert (tmp_path / "sub" / "gate.db").is_file()
    assert {"people", "templates", "access_events", "alembic_version"} <= set(inspect(db.engine).get_table_names())


def test_schema_head_is_alembics_newest_migration() -> None:
    """A database at SCHEMA_HEAD opens without Alembic: the constant must follow every new migration."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA_HEAD]


def test_database_reopen_keeps_data(tmp_path: Path) -> None:
    _person(_db(tmp_path), "e1", np.eye(4)[:2])
    ids, people, vectors = _db(tmp_path).all_templates("m1")
    assert len(ids) == 2 and vectors.shape == (2, 4)


def test_database_not_sqlite_file_raises_and_leaves_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n")
    with pytest.raises(FaceGateError, match="not a SQLite database"):
        Database(f"sqlite:///{path}")
    assert path.read_bytes() == b"these are my notes, not a database\n"


@pytest.mark.parametrize("url", ["no-url-at-all", "nosuchdialect://host/db", "postgresql://u:secret@127.0.0.1:1/x"])
def test_database_bad_url_raises_one_line_without_password(url: str) -> None:
    with pytest.raises(FaceGateError) as caught:
        Database(url)
    assert "\n" not in str(caught.value) and "secret" not in str(caught.value)


def test_database_newer_schema_raises(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(FaceGateError, match="newer than this FaceGate"):
        _db(tmp_path)


def test_database_session_error_rolls_back(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with pytest.raises(RuntimeError), db.session() as session:
        session.add(Person(employee_id="e1", name="E1"))
        session.flush()
        raise RuntimeError("boom")
    with db.session() as session:
        assert session.scalars(select(Person)).all() == []


def test_record_event_roundtrip_newest_first_in_utc(tmp_path: Path) -> None:
    db = _db(tmp_path)
    start = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    db.record_event(AccessEventRecord(start, "front", "e1", 0.8, "granted", "MATCH"))
    db.record_event(AccessEventRecord(start + timedelta(seconds=5), "front", None, None, "denied", "UNKNOWN"))
    events = db.events(limit=10)
    assert [e.decision for e in events] == ["denied", "granted"]
    assert events[1] == AccessEventRecord(start, "front", "e1", pytest.approx(0.8), "granted", "MATCH")
    assert events[0].time.tzinfo is not None
    assert len(db.events(limit=1)) == 1


def test_record_event_bad_decision_raises(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with pytest.raises(ValueError):
        db.record_event(AccessEventRecord(datetime.now(UTC), "g", None, None, "maybe", "X"))  # type: ignore[arg-type]


def test_all_templates_inactive_and_other_model_excluded(tmp_path: Path) -> None:
    db = _db(tmp_path)
    rng = np.random.default_rng(0)
    kept = _person(db, "e1", rng.normal(size=(2, 8)))
    _person(db, "e2", rng.normal(size=(1, 8)), active=False)
    _person(db, "e3", rng.normal(size=(1, 8)), model_id="m2")
    ids, people, vectors = db.all_templates("m1")
    assert people.tolist() == [kept, kept] and vectors.dtype == np.float32 and vectors.shape == (2, 8)
    assert set(db.template_owners("m1")) == set(ids.tolist())
    assert db.model_counts() == {"m1": 3, "m2": 1}


def test_all_templates_unknown_model_empty(tmp_path: Path) -> None:
    ids, people, vectors = _db(tmp_path).all_templates("none")
    assert len(ids) == 0 and vectors.shape[0] == 0


def test_delete_person_cascades_templates_keeps_events(tmp_path: Path) -> None:
    db = _db(tmp_path)
    _person(db, "e1", np.eye(4)[:3])
    db.record_event(AccessEventRecord(datetime.now(UTC), "g", "e1", 0.9, "granted", "MATCH"))
    with db.session() as session:
        session.delete(session.scalars(select(Person)).one())
    with db.session() as session:
        assert session.scalars(select(Template)).all() == []
    assert db.events()[0].employee_id == "e1"


def test_template_owners_chunked_lookup_finds_all(tmp_path: Path) -> None:
    db = _db(tmp_path)
    _person(db, "e1", np.random.default_rng(1).normal(size=(1203, 4)))
    ids, _, _ = db.all_templates("m1")
    owners = db.template_owners("m1", ids.tolist())
    assert len(owners) == 1203 and {o.employee_id for o in owners.values()} == {"e1"}


def test_a_new_database_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    """The database (embeddings and face crops) was created 0644, readable by every local user."""
    previous = os.umask(0o022)
    try:
        Database(f"sqlite:///{tmp_path / 'site' / 'gate.db'}").close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "site" / "gate.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "site").stat().st_mode) == 0o700


def test_a_removed_persons_face_data_leaves_the_database_file(tmp_path: Path) -> None:
    """With secure delete on, a removed person's embedding and crop bytes are not left behind in free
    pages of the file. (This machine's SQLite build already zeroes freed content by default; the pragma makes it
    so on builds that do not, and this test guards it.)"""
    path = tmp_path / "gate.db"
    db = Database(f"sqlite:///{path}")
    embedding = np.random.default_rng(5).normal(size=128).astype(np.float32).tobytes()
    crop = b"FACE-CROP-" + bytes(range(256)) * 8
    with db.session() as session:
        person = Person(employee_id="E9", name="Gone")
        person.templates = [
            Template(embedding=embedding, embedding_size=128, model_id="m", image_sha256="x", quality=1.0,
                     source="x.jpg", crop=crop)
        ]  # fmt: skip
        session.add(person)
    assert embedding in path.read_bytes() and crop in path.read_bytes()
    with db.session() as session:
        session.delete(session.scalars(select(Person)).one())
    db.close()
    data = path.read_bytes()
    assert embedding not in data and crop not in data


def test_a_database_that_cannot_take_an_event_is_refused_in_one_line(tmp_path: Path) -> None:
    """With the database unwritable the gate started, opened the door and lost the event. The check
    the gate now runs at start, on a SQLite file opened read-only (this machine's root may write any file)."""
    path = tmp_path / "gate.db"
    Database(f"sqlite:///{path}").close()
    Database(f"sqlite:///{path}").check_writable()  # a writable one passes
    read_only = Database(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(FaceGateError, match="cannot record access events in .*readonly") as error:
        read_only.check_writable()
    assert "\n" not in str(error.value) and read_only.events() == []


def test_a_gates_heartbeat_is_replaced_and_read_back_online_until_it_stops(tmp_path: Path) -> None:
    """Each gate writes a heartbeat; one not seen for OFFLINE_AFTER_S is offline."""
    db = _db(tmp_path)
    start = datetime(2026, 11, 29, 8, tzinfo=UTC)
    db.beat(Heartbeat("front", "host-a", start, start, 0, 0.0))
    later = start + timedelta(seconds=HEARTBEAT_S)
    db.beat(Heartbeat("front", "host-a", start, later, 75, 15.0, "granted", later))
    db.beat(Heartbeat("back", "host-b", start, start, 10, 12.0))
    statuses = {s.gate_id: s for s in db.gate_statuses()}
    assert statuses["front"] == Heartbeat("front", "host-a", start, later, 75, 15.0, "granted", later)
    now = later + timedelta(seconds=OFFLINE_AFTER_S)
    assert statuses["front"].online(now) and not statuses["back"].online(now)


def test_event_faces_are_kept_with_events_and_forgotten_by_age_or_by_person(tmp_path: Path) -> None:
    """Each decision keeps its face; retention and a removal delete those faces, not the events."""
    db = _db(tmp_path)
    old, new = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    rows = [
        AccessEventRecord(old, "g", "E1", 0.9, "granted", "GRANTED", event_uid="a" * 32, crop=b"face-a"),
        AccessEventRecord(new, "g", None, 0.5, "denied", "BELOW_THRESHOLD", "E1", "b" * 32, crop=b"face-b"),
        AccessEventRecord(new, "g", None, None, "denied", "CLAIM_EXPIRED", "E1", "c" * 32, claimed_id="E1", crop=b"c"),
        AccessEventRecord(new, "g", "E2", 0.9, "granted", "GRANTED", event_uid="d" * 32, crop=b"face-d"),
    ]
    db.record_events(rows, [])
    assert db.event_face("a" * 32) == b"face-a" and db.events()[0].crop is None  # listings do not load faces
    assert db.forget_event_faces(before=datetime(2026, 6, 1, tzinfo=UTC)) == 1
    assert db.forget_event_faces(employee_id="E1") == 2  # as the nearest candidate and as the claimed badge
    assert [db.event_face(uid * 32) for uid in "abcd"] == [None, None, None, b"face-d"]
    assert len(db.events()) == 4
