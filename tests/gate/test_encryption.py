"""Templates, crops, event faces and the index file encrypted at rest: sealed bytes only on disk, one-line errors,
and every file holding them owner-only."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from facegate_process import facegate_command
from sqlalchemy import LargeBinary, column, select, table, text, type_coerce

from gate.config import GallerySettings, Settings
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.runtime.parts import open_database
from gate.store.database import Database
from gate.store.encryption import (
    OVERHEAD,
    PREFIX,
    Cipher,
    is_sealed,
    load_cipher,
    new_key_text,
    parse_key,
    sealed_clause,
    write_key_file,
)
from gate.store.events import AccessEventRecord
from gate.store.schema import Person, Template

DIM = 64


def _unit(seed: int, n: int = 1) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _enroll(db: Database, employee_id: str, vectors: np.ndarray, crops: list[bytes]) -> None:
    with db.session() as session:
        person = Person(employee_id=employee_id, name=f"Name {employee_id}")
        person.templates = [
            Template(embedding=v.tobytes(), embedding_size=DIM, model_id="m", image_sha256=f"{employee_id}{i}",
                     quality=1.0, source="x.jpg", crop=crop)
            for i, (v, crop) in enumerate(zip(vectors, crops, strict=True))
        ]  # fmt: skip
        session.add(person)


def _crop(seed: int) -> bytes:
    return b"RIFF" + np.random.default_rng(seed).bytes(4000)


def _single_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(os.urandom(32), "encryption.key_file test.key")


def test_seal_round_trips_with_a_fresh_nonce_and_a_recognisable_prefix(cipher: Cipher) -> None:
    plain = _unit(1).tobytes()
    first, second = cipher.seal(plain), cipher.seal(plain)
    assert first != second and first.startswith(PREFIX) and len(first) == len(plain) + OVERHEAD
    assert cipher.unseal(first) == plain and cipher.unseal(second) == plain
    assert plain not in first
    assert is_sealed(first, 4) and not is_sealed(plain, 4) and not is_sealed(_crop(1))
    text = new_key_text()
    shown = repr(parse_key(text, "encryption.key_env K"))
    assert text not in shown and text[:12] not in shown and shown == "Cipher(source='encryption.key_env K')"


def test_another_key_or_an_altered_blob_is_one_line_never_garbage(cipher: Cipher) -> None:
    sealed = cipher.seal(b"face data")
    with pytest.raises(FaceGateError) as error:
        Cipher(os.urandom(32), "encryption.key_file other.key").unseal(sealed)
    assert "encrypted with another key" in _single_line(error) and "check encryption.key_file" in str(error.value)
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(FaceGateError, match="another key"):
        cipher.unseal(altered)


def test_a_key_file_is_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "site.key"
    previous = os.umask(0o022)
    try:
        write_key_file(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    with pytest.raises(FaceGateError, match="never overwritten") as error:
        write_key_file(path)
    _single_line(error)
    assert path.read_bytes() == before
    settings = Settings(encryption={"key_file": "keys/site.key"}, base_dir=tmp_path)
    loaded = load_cipher(settings)
    assert loaded is not None and loaded.unseal(loaded.seal(b"x")) == b"x"


def test_no_key_configured_means_no_encryption() -> None:
    assert load_cipher(Settings()) is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "encryption.key_file .*missing.key: no such file"),
        ("folder", "cannot read encryption.key_file .*missing.key"),
        ("not a key at all", "encryption.key_file .*missing.key: not a valid key"),
        (new_key_text()[:20], "encryption.key_file .*missing.key: not a valid key"),
    ],
)
def test_a_bad_key_file_is_one_line_naming_the_key(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "missing.key"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(FaceGateError, match=expected) as error:
        load_cipher(Settings(encryption={"key_file": str(path)}))
    assert content is None or content == "folder" or content not in _single_line(error)  # no key text echoed


def test_an_unset_empty_or_bad_key_variable_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(encryption={"key_env": "FACEGATE_TEST_KEY"})
    monkeypatch.delenv("FACEGATE_TEST_KEY", raising=False)
    with pytest.raises(FaceGateError, match="encryption.key_env FACEGATE_TEST_KEY: .* not set"):
        load_cipher(settings)
    monkeypatch.setenv("FACEGATE_TEST_KEY", "  ")
    with pytest.raises(FaceGateError, match="FACEGATE_TEST_KEY: .* empty"):
        load_cipher(settings)
    monkeypatch.setenv("FACEGATE_TEST_KEY", "abc")
    with pytest.raises(FaceGateError, match="FACEGATE_TEST_KEY: not a valid key"):
        load_cipher(settings)
    monkeypatch.setenv("FACEGATE_TEST_KEY", new_key_text())
    assert load_cipher(settings) is not None
    both = Settings(encryption={"key_env": "FACEGATE_TEST_KEY", "key_file": "k"})
    with pytest.raises(FaceGateError, match="key_file or encryption.key_env, not both"):
        load_cipher(both)


def test_with_a_key_the_database_file_holds_no_plain_embedding_or_crop(tmp_path: Path, cipher: Cipher) -> None:
    path = tmp_path / "gate.db"
    db = Database(f"sqlite:///{path}", cipher=cipher)
    vectors, crops = _unit(2, 3), [_crop(i) for i in range(3)]
    _enroll(db, "E1", vectors, crops)
    ids, _, read = db.all_templates("m")
    assert np.array_equal(read, vectors)
    with db.session() as session:
        assert [t.crop for t in session.scalars(select(Template).order_by(Template.id))] == crops
    db.close()
    data = path.read_bytes()
    for vector, crop in zip(vectors, crops, strict=True):
        assert vector.tobytes() not in data and vector.tobytes()[:16] not in data and crop[4:100] not in data


def test_sealed_rows_without_a_key_or_with_another_are_one_line(tmp_path: Path, cipher: Cipher) -> None:
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    _enroll(Database(url, cipher=cipher), "E1", _unit(3), [_crop(3)])
    with pytest.raises(FaceGateError) as error:
        Database(url).all_templates("m")
    assert _single_line(error) == "templates are encrypted: set encryption.key_file or key_env"
    with pytest.raises(FaceGateError, match="encrypted with another key .*check encryption.key_file other.key"):
        Database(url, cipher=Cipher(os.urandom(32), "encryption.key_file other.key")).all_templates("m")


def test_plain_and_sealed_rows_read_together_with_the_key(tmp_path: Path, cipher: Cipher) -> None:
    """A site turning encryption on: rows written before stay readable next to the sealed ones."""
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    plain, sealed = _unit(4), _unit(5)
    _enroll(Database(url), "E1", plain, [_crop(4)])
    db = Database(url, cipher=cipher)
    _enroll(db, "E2", sealed, [_crop(5)])
    _, _, read = db.all_templates("m")
    assert np.array_equal(read, np.concatenate([plain, sealed]))
    with db.session() as session:
        assert [t.crop for t in session.scalars(select(Template).order_by(Template.id))] == [_crop(4), _crop(5)]


def test_open_database_seals_with_the_configured_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEGATE_TEST_KEY", new_key_text())
    settings = Settings(database={"url": "sqlite:///gate.db"}, encryption={"key_env": "FACEGATE_TEST_KEY"},
                        base_dir=tmp_path)  # fmt: skip
    db = open_database(settings)
    assert db.cipher is not None and db.cipher.source == "encryption.key_env FACEGATE_TEST_KEY"
    _enroll(db, "E1", _unit(6), [_crop(6)])
    db.close()
    assert _unit(6).tobytes() not in (tmp_path / "gate.db").read_bytes()


def _gallery(db: Database, index: Path) -> Gallery:
    return Gallery.open(db, GallerySettings(), index, "m", DIM)


def test_the_index_file_is_sealed_and_loads_without_a_rebuild(
    tmp_path: Path, cipher: Cipher, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gate.db'}", cipher=cipher)
    vectors = _unit(7, 4)
    _enroll(db, "E1", vectors, [_crop(i) for i in range(4)])
    index = tmp_path / "gallery.faiss"
    _gallery(db, index)
    data = index.read_bytes()
    assert data.startswith(PREFIX) and not any(v.tobytes()[:16] in data for v in vectors)
    with caplog.at_level(logging.INFO, logger="gate.matching.gallery"):
        again = _gallery(db, index)
    assert "rebuilding" not in caplog.text
    match = again.search(vectors[:1])[0]
    assert match is not None and match.employee_id == "E1" and match.score == pytest.approx(1.0, abs=1e-5)


def test_an_index_sealed_with_another_key_is_rebuilt_with_a_warning(
    tmp_path: Path, cipher: Cipher, caplog: pytest.LogCaptureFixture
) -> None:
    """Another site's sealed index copied over ours: it cannot be unsealed, so it is rebuilt from our database."""
    ours = Database(f"sqlite:///{tmp_path / 'ours.db'}", cipher=cipher)
    theirs = Database(f"sqlite:///{tmp_path / 'theirs.db'}", cipher=Cipher(os.urandom(32), "theirs"))
    _enroll(ours, "E1", _unit(8), [_crop(8)])
    _enroll(theirs, "E1", _unit(9), [_crop(9)])
    _gallery(ours, tmp_path / "ours.faiss")
    _gallery(theirs, tmp_path / "theirs.faiss")
    shutil.copy(tmp_path / "theirs.faiss", tmp_path / "ours.faiss")
    shutil.copy(tmp_path / "theirs.faiss.json", tmp_path / "ours.faiss.json")
    with caplog.at_level(logging.WARNING, logger="gate.matching.gallery"):
        gallery = _gallery(ours, tmp_path / "ours.faiss")
    assert "encrypted with another key" in caplog.text
    assert gallery.search(_unit(8))[0].score == pytest.approx(1.0, abs=1e-5)  # type: ignore[union-attr]
    assert cipher.unseal((tmp_path / "ours.faiss").read_bytes())  # saved again, with our key


def test_a_plain_index_is_rewritten_sealed_once_a_key_is_configured(tmp_path: Path, cipher: Cipher) -> None:
    url, index = f"sqlite:///{tmp_path / 'gate.db'}", tmp_path / "gallery.faiss"
    vectors = _unit(10, 2)
    _enroll(Database(url), "E1", vectors, [_crop(1), _crop(2)])
    _gallery(Database(url), index)
    assert vectors[0].tobytes() in index.read_bytes()  # no key: FAISS's own file, as before
    gallery = _gallery(Database(url, cipher=cipher), index)
    assert index.read_bytes().startswith(PREFIX) and vectors[0].tobytes() not in index.read_bytes()
    assert gallery.search(vectors[1:])[0].employee_id == "E1"  # type: ignore[union-attr]


def _raw_event_faces(path: Path) -> list[bytes]:
    """The access events' face column as the SQLite file holds it, read without FaceGate's column type."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT crop FROM access_events WHERE crop IS NOT NULL ORDER BY id").fetchall()
    connection.close()
    return [row[0] for row in rows]


def test_a_new_event_face_is_sealed_as_it_is_written(tmp_path: Path, cipher: Cipher) -> None:
    """What the gate records with a key set: the raw column holds the face sealed, the file no byte of it."""
    path = tmp_path / "gate.db"
    db = Database(f"sqlite:///{path}", cipher=cipher)
    face = _crop(11)
    record = AccessEventRecord(datetime.now(UTC), "door", "E1", 0.9, "granted", "GRANTED", event_uid="u1", crop=face)
    db.record_event(record)
    assert db.event_face("u1") == face
    db.close()
    [stored] = _raw_event_faces(path)
    assert stored.startswith(PREFIX) and cipher.unseal(stored) == face and face[4:64] not in path.read_bytes()
    with pytest.raises(FaceGateError) as error:
        Database(f"sqlite:///{path}").event_face("u1")
    assert _single_line(error) == "event faces are encrypted: set encryption.key_file or key_env"
    with pytest.raises(FaceGateError, match="stored event faces: encrypted with another key .*check other.key"):
        Database(f"sqlite:///{path}", cipher=Cipher(os.urandom(32), "other.key")).event_face("u1")


def test_the_sql_form_of_is_sealed_agrees_with_it(tmp_path: Path, cipher: Cipher) -> None:
    """sealed_clause counts in the database what is_sealed says in Python, for vectors (multiple of 4) and crops."""
    vector = _unit(12).tobytes()
    blobs = [vector, cipher.seal(vector), _crop(12), cipher.seal(_crop(12)), PREFIX + bytes(63), PREFIX + bytes(3)]
    db = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    with db.engine.begin() as connection:
        connection.execute(text("CREATE TABLE blobs (data BLOB)"))
        connection.execute(text("INSERT INTO blobs VALUES (:data)"), [{"data": blob} for blob in blobs])
        for multiple in (1, 4):
            stored = type_coerce(column("data"), LargeBinary)
            query = select(stored).select_from(table("blobs")).where(sealed_clause(stored, multiple))
            assert list(connection.scalars(query)) == [blob for blob in blobs if is_sealed(blob, multiple)]


@pytest.mark.parametrize("mode", [0o644, 0o660, 0o604, 0o700, 0o444])
def test_a_database_file_others_could_read_is_made_owner_only_with_one_warning(
    tmp_path: Path, mode: int, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gate.db"
    Database(f"sqlite:///{path}").close()
    os.chmod(path, mode)
    with caplog.at_level(logging.WARNING):
        Database(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == mode & 0o600  # a read-only file stays read-only, for its owner
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning == f"database {path} could be read by other users (mode {mode:o}): made it {mode & 0o600:o}"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        Database(f"sqlite:///{path}").close()
    assert not caplog.records


def test_an_index_and_its_sidecar_others_could_read_are_made_owner_only(
    tmp_path: Path, cipher: Cipher, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gate.db'}", cipher=cipher)
    _enroll(db, "E1", _unit(13), [_crop(13)])
    index = tmp_path / "gallery.faiss"
    _gallery(db, index)
    sidecar = tmp_path / "gallery.faiss.json"
    for path in (index, sidecar):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # written owner-only
        os.chmod(path, 0o644)
    with caplog.at_level(logging.INFO):
        _gallery(db, index)
    assert [stat.S_IMODE(path.stat().st_mode) for path in (index, sidecar)] == [0o600, 0o600]
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [f"gallery index {path} could be read by other users (mode 644): made it 600" for path in
                        (index, sidecar)]  # fmt: skip
    assert "rebuilding" not in caplog.text  # the index itself was fine: loaded, not rebuilt


def test_a_key_file_others_could_read_is_made_owner_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "site.key"
    write_key_file(path)
    os.chmod(path, 0o640)
    with caplog.at_level(logging.WARNING):
        assert load_cipher(Settings(encryption={"key_file": str(path)})) is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"encryption.key_file {path} could be read by other users (mode 640): made it 600" in caplog.text


NOT_OWNER = """
import logging, os, sys
from pathlib import Path
from gate.store.encryption import ensure_private
if os.geteuid() == 0:
    os.setuid(65534)  # nobody: not the file's owner
logging.basicConfig(format="%(levelname)s %(message)s")
ensure_private(Path(sys.argv[1]), "database")
"""


@pytest.mark.slow  # starts a Python subprocess that drops to another user
def test_a_file_of_another_owner_keeps_its_mode_with_a_warning() -> None:
    """In a process that does not own the file (root drops to nobody; others try a system file): chmod fails."""
    if os.geteuid() == 0:
        folder = Path(tempfile.mkdtemp())
        os.chmod(folder, 0o755)
        path = folder / "gate.db"
        path.write_bytes(b"")
        os.chmod(path, 0o644)
    else:
        folder, path = None, Path("/etc/passwd")
    mode = stat.S_IMODE(path.stat().st_mode)
    try:
        done = subprocess.run([sys.executable, "-c", NOT_OWNER, str(path)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert stat.S_IMODE(path.stat().st_mode) == mode
        assert done.stderr == (
            f"WARNING database {path} can be read by other users (mode {mode:o}) and cannot be made 600 "
            "(Operation not permitted): chmod 600 it as its owner\n"
        )
    finally:
        if folder is not None:
            shutil.rmtree(folder)


@pytest.mark.slow  # starts the real `facegate` command in a subprocess
def test_enroll_list_on_a_database_others_could_read_fixes_it_and_says_so(tmp_path: Path) -> None:
    """The real command, as a user runs it: one warning line on stderr naming the file, then the listing."""
    path = tmp_path / "gate.db"
    Database(f"sqlite:///{path}").close()
    os.chmod(path, 0o644)
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{path}"\n[logging]\nlevel = "WARNING"\n', encoding="utf-8")
    done = subprocess.run(facegate_command("--config", config, "enroll", "list"), capture_output=True, text=True)
    assert done.returncode == 0 and "nobody is enrolled yet" in done.stdout, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.rstrip().endswith(
        f"WARNING gate.store.encryption: database {path} could be read by other users (mode 644): made it 600"
    ), done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
