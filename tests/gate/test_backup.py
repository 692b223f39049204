"""Backup and restore of the database (gate/store/backup.py), on real SQLite files and the test PostgreSQL: a
round trip into an empty database gives the same people, templates and events; a backup taken while another
connection writes is a consistent snapshot; the key is never in the backup and a key that does not fit, or a
database that is not empty, is refused in one line with nothing changed."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import stat
import tarfile
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from gate.errors import FaceGateError
from gate.store.backup import MANIFEST, Manifest, _write_archive, backup, read_manifest, restore
from gate.store.database import Database
from gate.store.encryption import Cipher, new_key_text, parse_key
from gate.store.events import AccessEventRecord
from gate.store.schema import Person, Template
from gate.store.snapshots import Snapshot

MODEL_ID, DIM = "test-model", 16
PEOPLE = 3


def new_cipher(name: str = "site.key") -> tuple[Cipher, str]:
    text = new_key_text()
    return parse_key(text, name), text


def populate(database: Database, seed: int = 0) -> None:
    """PEOPLE people with two templates each (embedding and crop) and access events, some keeping a face."""
    rng = np.random.default_rng(seed)
    with database.session() as session:
        for n in range(PEOPLE):
            person = Person(employee_id=f"E{n}", name=f"Person {n}", active=n != 2)
            person.templates = [
                Template(embedding=rng.normal(size=DIM).astype(np.float32).tobytes(), embedding_size=DIM,
                         model_id=MODEL_ID, image_sha256=f"{n}{k}" * 8, quality=0.9, source=f"{n}-{k}.jpg",
                         crop=b"RIFF" + rng.bytes(300))
                for k in range(2)
            ]  # fmt: skip
            session.add(person)
    start = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    events = [
        AccessEventRecord(start + timedelta(minutes=n), "front-door", f"E{n % PEOPLE}" if n % 2 else None,
                          0.5 + n / 100, "granted" if n % 2 else "denied", "GRANTED" if n % 2 else "BELOW_THRESHOLD",
                          event_uid=f"ev{n}", crop=b"RIFF" + rng.bytes(100) if n % 3 else None)
        for n in range(7)
    ]  # fmt: skip
    database.record_events(events, [])


def contents(database: Database) -> tuple[list, list, list]:
    """People, templates (unsealed) and events (with their faces) as plain comparable rows."""
    with database.session() as session:
        found = session.scalars(select(Person).order_by(Person.employee_id))
        people = [(person.employee_id, person.name, person.active) for person in found]
        templates = [
            (t.person.employee_id, t.model_id, t.source, t.embedding, t.crop)
            for t in session.scalars(select(Template).order_by(Template.source))
        ]
    events = [(e, database.event_face(e.event_uid or "")) for e in database.events(limit=1000)]
    return people, templates, events


def sqlite_url(folder: Path, name: str = "gate.db") -> str:
    return f"sqlite:///{folder / name}"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Database, str]]:
    """A populated SQLite site whose face data is sealed with its key (the key's text is returned too)."""
    cipher, key_text = new_cipher()
    database = Database(sqlite_url(tmp_path / "site"), cipher)
    populate(database)
    yield database, key_text
    database.close()


def test_sqlite_round_trip_same_people_templates_events(site: tuple[Database, str], tmp_path: Path) -> None:
    database, key_text = site
    out = tmp_path / "site.fgbackup"
    manifest = backup(database, out)
    assert (manifest.people, manifest.templates, manifest.events) == (PEOPLE, 2 * PEOPLE, 7)
    assert manifest.key_fingerprint == database.cipher.fingerprint and manifest.backend == "sqlite"
    target_url = sqlite_url(tmp_path / "new-site")
    assert restore(target_url, parse_key(key_text, "copied key"), out) == read_manifest(out)
    restored = Database(target_url, parse_key(key_text, "copied key"))
    assert contents(restored) == contents(database)
    assert contents(database)[1][0][3] == database.all_templates(MODEL_ID)[2][0].tobytes()  # compared unsealed
    assert stat.S_IMODE(Path(restored.engine.url.database).stat().st_mode) == 0o600
    restored.close()


def test_backup_file_is_owner_only_and_never_holds_the_key(site: tuple[Database, str], tmp_path: Path) -> None:
    database, key_text = site
    out = tmp_path / "site.fgbackup"
    backup(database, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    raw = gzip.decompress(out.read_bytes())
    key = parse_key(key_text, "k")
    assert key_text.strip().encode() not in raw and key.fingerprint.encode() in raw
    with tarfile.open(out) as archive:
        assert sorted(archive.getnames()) == ["database.sqlite3", MANIFEST]  # no index, no key
        assert all(member.mode == 0o600 for member in archive.getmembers())
    with pytest.raises(FaceGateError, match="exists: a backup is never overwritten"):
        backup(database, out)


def test_restore_refuses_a_key_that_does_not_fit_and_makes_nothing(site: tuple[Database, str], tmp_path: Path) -> None:
    database, _ = site
    out = tmp_path / "site.fgbackup"
    backup(database, out)
    target = tmp_path / "new-site" / "gate.db"
    other, _ = new_cipher("other.key")
    with pytest.raises(FaceGateError, match=f"other.key .fingerprint {other.fingerprint}. does not fit this backup"):
        restore(sqlite_url(target.parent), other, out)
    with pytest.raises(FaceGateError, match=f"encrypted with the key of fingerprint {database.cipher.fingerprint}"):
        restore(sqlite_url(target.parent), None, out)
    assert not target.exists()


def test_restore_into_a_database_that_is_not_empty_refuses_and_changes_nothing(
    site: tuple[Database, str], tmp_path: Path
) -> None:
    database, key_text = site
    out = tmp_path / "site.fgbackup"
    backup(database, out)
    other = Database(sqlite_url(tmp_path / "other"))
    with other.session() as session:
        session.add(Person(employee_id="X1", name="Someone else"))
    other.close()
    target = tmp_path / "other" / "gate.db"
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    with pytest.raises(FaceGateError, match=r"is not empty \(people hold rows\): a backup restores only into an empty"):
        restore(sqlite_url(target.parent), parse_key(key_text, "k"), out)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before


def test_restore_into_a_new_database_a_first_command_made(site: tuple[Database, str], tmp_path: Path) -> None:
    """A database made and migrated by a first command (facegate doctor, say), still empty, takes the backup."""
    database, key_text = site
    out = tmp_path / "site.fgbackup"
    backup(database, out)
    Database(sqlite_url(tmp_path / "new-site")).close()
    restore(sqlite_url(tmp_path / "new-site"), parse_key(key_text, "k"), out)
    restored = Database(sqlite_url(tmp_path / "new-site"), parse_key(key_text, "k"))
    assert contents(restored) == contents(database)
    restored.close()


def test_restore_refuses_what_is_not_a_backup_or_another_kind_of_database(
    site: tuple[Database, str], tmp_path: Path
) -> None:
    database, _ = site
    notes = tmp_path / "notes.txt"
    notes.write_text("not a backup")
    with pytest.raises(FaceGateError, match="notes.txt is not a FaceGate backup"):
        restore(sqlite_url(tmp_path / "new-site"), None, notes)
    out = tmp_path / "site.fgbackup"
    backup(database, out)
    with pytest.raises(FaceGateError, match="is a sqlite backup: it restores into a sqlite database"):
        restore("postgresql+psycopg://gate@127.0.0.1:1/facegate", database.cipher, out)


def test_a_sealed_gate_snapshot_is_face_data_the_backup_needs_the_key_of(tmp_path: Path) -> None:
    cipher, _ = new_cipher()
    database = Database(sqlite_url(tmp_path / "site"), cipher)
    database.put_snapshot(Snapshot("front", datetime.now(UTC), b"\xff\xd8 a camera frame"))  # nothing else sealed
    assert backup(database, tmp_path / "one.fgbackup").key_fingerprint == cipher.fingerprint
    with pytest.raises(FaceGateError, match="encrypted but no key is configured"):
        backup(Database(database.url), tmp_path / "two.fgbackup")
    other, _ = new_cipher("other.key")
    with pytest.raises(FaceGateError, match="other.key is not the key of this database: a stored gate snapshot"):
        backup(Database(database.url, other), tmp_path / "three.fgbackup")
    database.close()


MANIFEST_FIELDS = {
    "backend": "sqlite", "schema": "0007", "created": "2026-11-02T08:00:00+00:00", "key_fingerprint": None,
    "people": 3, "templates": 6, "events": 7, "format": "facegate-backup", "version": 1,
}  # fmt: skip


def crafted_backup(folder: Path, manifest: object) -> Path:
    """A tar holding `manifest` as its manifest.json (and an empty database file): what a tool, or a hand, made."""
    path = folder / "crafted.fgbackup"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in ((MANIFEST, json.dumps(manifest).encode()), ("database.sqlite3", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_crafted_manifest_as_written_reads(tmp_path: Path) -> None:
    manifest = read_manifest(crafted_backup(tmp_path, MANIFEST_FIELDS))
    assert (manifest.revision, manifest.people, manifest.key_fingerprint) == ("0007", 3, None)


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        ({"version": "2"}, "manifest.json: version: Input should be a valid integer"),
        ({"version": 2}, r"written by a newer FaceGate \(backup format 2\): upgrade"),
        ({"people": "3"}, "manifest.json: people: Input should be a valid integer"),
        ({"events": -1}, "manifest.json: events: Input should be greater than or equal to 0"),
        ({"templates": 6.0}, "manifest.json: templates: Input should be a valid integer"),
        ({"key_fingerprint": 5}, "manifest.json: key_fingerprint: Input should be a valid string"),
        ({"key_fingerprint": "../../etc"}, "manifest.json: key_fingerprint: String should match pattern"),
        ({"schema": "0007; DROP"}, "manifest.json: schema: String should match pattern"),
        ({"schema": 7}, "manifest.json: schema: Input should be a valid string"),
        ({"backend": "mysql"}, "manifest.json: backend: Input should be 'sqlite' or 'postgresql'"),
        ({"owner": "root"}, "manifest.json: owner: unknown key"),
        ({"format": "other-backup"}, r"crafted.fgbackup is not a FaceGate backup$"),
        ({"people": None}, "manifest.json: people: Input should be a valid integer"),
    ],
)
def test_a_bad_manifest_is_one_line(tmp_path: Path, changed: dict, message: str) -> None:
    with pytest.raises(FaceGateError, match=message) as refused:
        read_manifest(crafted_backup(tmp_path, MANIFEST_FIELDS | changed))
    assert "\n" not in str(refused.value) and str(refused.value).startswith(str(tmp_path / "crafted.fgbackup"))


@pytest.mark.parametrize(
    "manifest", [[1, 2], "facegate-backup", None, {k: v for k, v in MANIFEST_FIELDS.items() if k != "people"}]
)
def test_a_manifest_of_another_shape_is_one_line(tmp_path: Path, manifest: object) -> None:
    with pytest.raises(FaceGateError, match="crafted.fgbackup is not a FaceGate backup") as refused:
        read_manifest(crafted_backup(tmp_path, manifest))
    assert "\n" not in str(refused.value)


def test_a_file_made_while_the_backup_ran_is_never_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "site.fgbackup"
    out.write_text("made after backup() checked the name")
    work = tmp_path / "work"
    work.mkdir()
    member = work / "database.sqlite3"
    member.write_bytes(b"")
    manifest = Manifest.model_validate(MANIFEST_FIELDS)
    with pytest.raises(FaceGateError, match="site.fgbackup exists: a backup is never overwritten"):
        _write_archive(out, manifest, member, work)
    assert out.read_text() == "made after backup() checked the name"
    assert list(work.iterdir()) == [member]  # the partial is gone
    out.unlink()
    out.symlink_to(tmp_path / "elsewhere")  # a link there is not followed nor replaced
    with pytest.raises(FaceGateError, match="exists: a backup is never overwritten"):
        _write_archive(out, manifest, member, work)
    assert out.is_symlink() and not (tmp_path / "elsewhere").exists()
    out.unlink()
    _write_archive(out, manifest, member, work)
    assert read_manifest(out) == manifest and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert list(work.iterdir()) == [member]


class Writer:
    """Another connection writing access events two at a time, each pair in one transaction, until stopped: a
    copy that caught half a transaction would hold an odd number of them."""

    def __init__(self, url: str, cipher: Cipher | None) -> None:
        self.database = Database(url, cipher)
        self.pairs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        while not self._stop.is_set():
            now = datetime.now(UTC)
            pair = [
                AccessEventRecord(now, "busy-door", None, 0.1, "denied", "BELOW_THRESHOLD",
                                  event_uid=uuid.uuid4().hex, crop=b"RIFF" + bytes(50))
                for _ in range(2)
            ]  # fmt: skip
            self.database.record_events(pair, [])
            self.pairs += 1

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.database.close()


def backups_while_writing(database: Database, url: str, folder: Path, targets: list[str]) -> list[Manifest]:
    """Three backups taken while a Writer writes; each restored (into `targets`) and checked against its manifest."""
    manifests = []
    with Writer(url, database.cipher) as writer:
        for n in range(3):
            while writer.pairs < 3 * (n + 1):
                threading.Event().wait(0.01)
            manifests.append(backup(database, folder / f"busy-{n}.fgbackup"))
    for n, (manifest, target) in enumerate(zip(manifests, targets, strict=True)):
        restore(target, database.cipher, folder / f"busy-{n}.fgbackup")
        restored = Database(target, database.cipher)
        busy = [e for e in restored.events(limit=100_000) if e.gate_id == "busy-door"]
        assert len(busy) % 2 == 0 and len(busy) + 7 == manifest.events  # whole transactions, as counted
        restored.close()
    assert manifests[0].events < manifests[-1].events  # the writer was writing between them
    return manifests


def test_sqlite_backup_while_another_connection_writes_is_consistent(
    site: tuple[Database, str], tmp_path: Path
) -> None:
    database, _ = site
    targets = [sqlite_url(tmp_path, f"restored-{n}.db") for n in range(3)]
    backups_while_writing(database, database.engine.url.render_as_string(hide_password=False), tmp_path, targets)


@pytest.mark.slow
def test_postgres_round_trip_and_backup_while_writing(postgres, tmp_path: Path) -> None:  # noqa: ANN001
    """The test PostgreSQL: pg_dump inside the counts' snapshot, pg_restore into an empty database (one made and
    migrated by a first command too), and a consistent backup while another connection writes."""
    cipher, _ = new_cipher()
    source = Database(postgres.new_database(), cipher)
    populate(source)
    out = tmp_path / "pg.fgbackup"
    manifest = backup(source, out)
    assert manifest.backend == "postgresql" and manifest.events == 7
    target_url = postgres.new_database()
    Database(target_url).close()  # made and migrated, still empty
    restore(target_url, cipher, out)
    restored = Database(target_url, cipher)
    assert contents(restored) == contents(source)
    with pytest.raises(FaceGateError, match="is not empty"):
        restore(target_url, cipher, out)
    restored.close()
    targets = [postgres.new_database() for _ in range(3)]
    backups_while_writing(source, source.engine.url.render_as_string(hide_password=False), tmp_path, targets)
    source.close()
