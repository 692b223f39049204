"""`facegate keys`: a new key file, a plain database sealed in place (no plain byte left in the file), the state."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from facegate_process import facegate_command
from sqlalchemy import select
from typer.testing import CliRunner

from enrollment.audit import audit_trail
from enrollment.sealing import BATCH, SealingCounts, SealResult, prove_key, seal_stored, sealing_counts
from facegate.cli import app
from facegate.config_file import template_text
from gate.config import GallerySettings, load_settings
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.runtime.parts import open_database
from gate.store.database import Database
from gate.store.encryption import PREFIX, Cipher, load_cipher, new_key_text, parse_key, write_key_file
from gate.store.events import AccessEventRecord
from gate.store.schema import Person, Template
from gate.store.snapshots import Snapshot
from gate.vision.imageio import decode_crop

MODEL_ID, DIM = "untrained-test", 128  # the untrained_card fixture's model
EVENT_FACES = 4  # the site's access events that keep a face (a fifth keeps none)
SNAPSHOT = b"\xff\xd8\xff\xe0" + np.random.default_rng(9).bytes(2000)  # the site's one gate snapshot (JPEG-like)


def run(config: Path, *args: str) -> str:
    outcome = CliRunner().invoke(app, ["--config", str(config), "keys", *args])
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        raise outcome.exception
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


@pytest.fixture
def site(tmp_path: Path, untrained_card: Path) -> tuple[Path, np.ndarray, list[bytes]]:
    """A site enrolled before encryption: plain templates and crops in the database, a plain index file."""
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    crops = [b"RIFF" + rng.bytes(3000) for _ in range(3)]
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    with database.session() as session:
        for employee_id, rows in (("E1", [0, 1]), ("E2", [2])):
            person = Person(employee_id=employee_id, name=f"Name {employee_id}")
            person.templates = [
                Template(embedding=vectors[i].tobytes(), embedding_size=DIM, model_id=MODEL_ID,
                         image_sha256=f"sha{i}", quality=1.0, source=f"{i}.jpg", crop=crops[i])
                for i in rows
            ]  # fmt: skip
            session.add(person)
    _record_event_faces(database, [b"RIFF" + rng.bytes(2000) for _ in range(EVENT_FACES)] + [None])
    database.put_snapshot(Snapshot("front", datetime.now(UTC), SNAPSHOT))  # a gate's camera frame, stored plain
    Gallery.open(database, GallerySettings(), tmp_path / "gallery.faiss", MODEL_ID, DIM)
    database.close()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "gate.db"}"\n[model]\npath = "{untrained_card}"\n'
        f'[gallery]\nindex_path = "{tmp_path / "gallery.faiss"}"\n',
        encoding="utf-8",
    )
    return config, vectors, crops


def _record_event_faces(database: Database, faces: list[bytes | None]) -> None:
    """Access events keeping these faces (None: an event without one), with uids e0, e1, ..."""
    now = datetime.now(UTC)
    records = [
        AccessEventRecord(now, "door", None, 0.5, "denied", "BELOW_THRESHOLD", event_uid=f"e{n}", crop=face)
        for n, face in enumerate(faces)
    ]
    database.record_events(records, [])


def _raw_event_faces(path: Path) -> dict[str, bytes]:
    """event uid -> the face column's bytes as the SQLite file holds them (no FaceGate code in between)."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT event_uid, crop FROM access_events WHERE crop IS NOT NULL").fetchall()
    connection.close()
    return dict(rows)


def _add_key(config: Path) -> Cipher:
    """`keys new` beside the config, which it names there; the key's cipher."""
    key = config.parent / "site.key"
    run(config, "new", str(key))
    return parse_key(key.read_text(), "test")


def test_keys_new_names_the_key_in_the_shipped_config_which_then_loads_and_decrypts(tmp_path: Path) -> None:
    """The shipped config.toml already has an [encryption] table: the key_file is set in it (comments kept), not
    a second [encryption] appended (which TOML refuses)."""
    config = tmp_path / "config.toml"
    config.write_text(template_text(), encoding="utf-8")
    output = run(config, "new", str(tmp_path / "site.key"))
    assert f"set as [encryption] key_file in {config}" in output
    assert stat.S_IMODE((tmp_path / "site.key").stat().st_mode) == 0o600
    text = config.read_text(encoding="utf-8")
    assert text.splitlines().count("[encryption]") == 1 and text.count("\n") == template_text().count("\n")
    line = next(line for line in text.splitlines() if line.startswith("key_file ="))
    shipped = next(line for line in template_text().splitlines() if line.startswith("key_file ="))
    assert line.startswith('key_file = "site.key"   ') and line.index("#") == shipped.index("#")  # comment kept
    assert [line for line in text.splitlines() if "key_file" not in line] == [
        line for line in template_text().splitlines() if "key_file" not in line
    ]
    settings = load_settings(config)
    assert settings.encryption.key_file == "site.key"  # beside the config: relative, the two move together
    cipher = load_cipher(settings)
    sealed = parse_key((tmp_path / "site.key").read_text(), "the file").seal(b"a face")
    assert cipher is not None and cipher.unseal(sealed) == b"a face"


def test_keys_new_refuses_a_second_key_before_making_it(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[encryption]\nkey_env = "SITE_KEY"\n', encoding="utf-8")
    with pytest.raises(FaceGateError, match="already names a key \\(encryption.key_env = 'SITE_KEY'\\)"):
        run(config, "new", str(tmp_path / "site.key"))
    assert not (tmp_path / "site.key").exists()
    config.write_text("", encoding="utf-8")
    run(config, "new", str(tmp_path / "site.key"))
    with pytest.raises(FaceGateError, match="exists: a key file is never overwritten"):
        run(config, "new", "--print", str(tmp_path / "site.key"))


def test_keys_new_print_and_no_config_print_the_line_to_add(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_config_anywhere: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(template_text(), encoding="utf-8")
    output = run(config, "new", "--print", str(tmp_path / "keys" / "site.key"))
    assert "Put this line under [encryption] in" in output and '\nkey_file = "keys/site.key"\n' in output
    assert config.read_text(encoding="utf-8") == template_text()
    outcome = CliRunner().invoke(app, ["keys", "new", "elsewhere.key"])  # in a folder with no config at all
    assert outcome.exit_code == 0, outcome.output
    assert f'key_file = "{no_config_anywhere / "elsewhere.key"}"' in outcome.output
    assert "your config.toml" in outcome.output and not (no_config_anywhere / "config.toml").exists()


def test_keys_encrypt_seals_a_plain_database_in_place(site: tuple[Path, np.ndarray, list[bytes]]) -> None:
    config, vectors, crops = site
    folder = config.parent
    before = (folder / "gate.db").read_bytes()
    faces = _raw_event_faces(folder / "gate.db")
    assert all(v.tobytes() in before for v in vectors) and all(c in before for c in crops)
    assert len(faces) == EVENT_FACES and all(face.startswith(b"RIFF") and face in before for face in faces.values())
    assert "key:         none configured\n" in run(config, "status")
    with pytest.raises(FaceGateError, match="no key configured: set encryption.key_file"):
        run(config, "encrypt")

    cipher = _add_key(config)
    status = run(config, "status")
    assert "embeddings:  0 sealed, 3 plain" in status and "index:       plain" in status and "keys encrypt" in status
    assert "event faces: 0 sealed, 4 plain" in status and "nothing is sealed yet to prove it against" in status
    assert "snapshots:   0 sealed, 1 plain" in status
    assert run(config, "encrypt").strip() == (
        "sealed 3 embeddings and 3 crops of 2 people, 4 event faces, 1 gate snapshots"
    )

    after = (folder / "gate.db").read_bytes()
    for vector, crop in zip(vectors, crops, strict=True):
        assert vector.tobytes()[:16] not in after and crop[4:64] not in after
    sealed_faces = _raw_event_faces(folder / "gate.db")
    assert sealed_faces.keys() == faces.keys()
    for uid, face in faces.items():  # the raw column holds the face sealed, the file no plain byte of it
        assert sealed_faces[uid].startswith(PREFIX) and cipher.unseal(sealed_faces[uid]) == face
        assert face[4:64] not in after
    assert SNAPSHOT[4:64] not in after
    index = (folder / "gallery.faiss").read_bytes()
    assert index.startswith(PREFIX) and not any(v.tobytes()[:16] in index for v in vectors)
    status = run(config, "status")
    assert "embeddings:  3 sealed, 0 plain" in status and "crops:       3 sealed, 0 plain" in status
    assert "event faces: 4 sealed, 0 plain" in status and "keys encrypt" not in status
    assert "snapshots:   1 sealed, 0 plain" in status
    assert "(opens the sealed template embeddings, template crops, event faces, gate snapshots)" in status
    assert "index:       sealed, opened by the key" in status
    assert run(config, "encrypt").strip() == (
        "sealed 0 embeddings and 0 crops of 0 people, 0 event faces, 0 gate snapshots"
    )

    database = open_database(load_settings(config))
    assert database.event_face("e1") == faces["e1"] and database.event_face("e4") is None
    assert database.snapshot("front") == Snapshot("front", database.snapshot_times()["front"], SNAPSHOT)
    gallery = Gallery.open(database, GallerySettings(), folder / "gallery.faiss", MODEL_ID, DIM)
    assert [m.employee_id for m in gallery.search(vectors) if m] == ["E1", "E1", "E2"]
    assert [(e.action, e.employee_id) for e in audit_trail(database) if e.action == "encrypt"] == [
        ("encrypt", "E1"),
        ("encrypt", "E2"),
    ]
    with pytest.raises(FaceGateError, match="templates are encrypted: set encryption.key_file or key_env"):
        Database(database.url).all_templates(MODEL_ID)
    with pytest.raises(FaceGateError, match="event faces are encrypted: set encryption.key_file or key_env"):
        Database(database.url).event_face("e1")


@pytest.mark.slow  # starts the real `facegate` command in a subprocess
def test_keys_status_with_a_wrong_key_is_one_line_and_exit_2(site: tuple[Path, np.ndarray, list[bytes]]) -> None:
    """The real command: a key that does not open the sealed rows is refused before anything is counted."""
    config, _, _ = site
    _add_key(config)
    run(config, "encrypt")
    before = (config.parent / "gate.db").read_bytes()
    (config.parent / "site.key").unlink()
    write_key_file(config.parent / "site.key")  # another key, where the config says
    done = subprocess.run(
        facegate_command("--config", config, "keys", "status"), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stdout == "", done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(
        f"error: encryption.key_file {config.parent / 'site.key'} is not the key of this database: a stored "
        "template embedding: encrypted with "
        f"another key (or altered): check encryption.key_file {config.parent / 'site.key'}"
    ), done.stderr
    assert (config.parent / "gate.db").read_bytes() == before


@pytest.mark.slow  # starts the real `facegate` command in a subprocess
def test_keys_encrypt_killed_mid_way_loses_no_face_and_a_second_run_seals_the_rest(
    site: tuple[Path, np.ndarray, list[bytes]],
) -> None:
    """kill -9 of a real `facegate keys encrypt` while it seals event faces batch by batch: every face is still
    there, plain or sealed (none lost, none torn); run again, all are sealed and open to what they were."""
    config, _, _ = site
    path = config.parent / "gate.db"
    rng = np.random.default_rng(1)
    faces = [b"RIFF" + rng.bytes(2000) for _ in range(5 * BATCH)]
    database = Database(f"sqlite:///{path}")
    _record_event_faces(database, faces)  # uids e0... replace the site's own: their faces are ignored as known
    database.close()
    wanted = _raw_event_faces(path)
    cipher = _add_key(config)
    config.write_text(config.read_text() + '[logging]\nlevel = "DEBUG"\n')
    command = facegate_command("--config", config, "keys", "encrypt")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    for line in process.stderr:  # the second batch committed: kill it during the next ones
        if f"sealed {2 * BATCH} event faces so far" in line:
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    stored = _raw_event_faces(path)
    sealed = {uid for uid, face in stored.items() if face.startswith(PREFIX)}
    assert stored.keys() == wanted.keys() and 2 * BATCH <= len(sealed) < len(wanted)  # killed mid-way
    assert all((cipher.unseal(stored[uid]) if uid in sealed else stored[uid]) == wanted[uid] for uid in stored)
    status = run(config, "status")  # the database opens: no lock or torn journal left in the way
    assert "embeddings:  3 sealed, 0 plain" in status  # the templates' one transaction came first, whole
    assert f"event faces: {len(sealed)} sealed, {len(wanted) - len(sealed)} plain" in status

    assert run(config, "encrypt").strip().endswith(f", {len(wanted) - len(sealed)} event faces, 1 gate snapshots")
    stored = _raw_event_faces(path)
    assert stored.keys() == wanted.keys() and all(cipher.unseal(stored[uid]) == wanted[uid] for uid in stored)


def test_keys_status_says_when_nothing_sealed_can_be_read_without_a_key(
    site: tuple[Path, np.ndarray, list[bytes]],
) -> None:
    config, _, _ = site
    plain = config.read_text()
    _add_key(config)
    run(config, "encrypt")
    config.write_text(plain)
    status = run(config, "status")
    assert "key:         none configured (11 sealed rows cannot be read without it)" in status
    assert "index:       sealed (" in status


def test_enrolment_with_a_key_from_the_environment_stores_only_sealed_face_data(
    tmp_path: Path, untrained_card: Path, lfw_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real path: `enroll add` (photos, MTCNN, crops, embeddings) with the key in an environment variable."""
    monkeypatch.setenv("FACEGATE_TEST_KEY", new_key_text())
    config = tmp_path / "config.toml"
    config.write_text(
        f'[model]\npath = "{untrained_card}"\n[database]\nurl = "sqlite:///gate.db"\n'
        '[gallery]\nindex_path = "gallery.faiss"\n[encryption]\nkey_env = "FACEGATE_TEST_KEY"\n',
        encoding="utf-8",
    )
    photos = [str(lfw_root / "Tony_Blair" / f"Tony_Blair_{n:04d}.jpg") for n in (1, 2, 3)]
    for args in (["--name", "Tony Blair", *photos[:2]], [photos[2]]):  # the second matches E1's sealed templates
        outcome = CliRunner().invoke(app, ["--config", str(config), "enroll", "add", "E1", *args])
        assert outcome.exit_code == 0, outcome.output
    database = open_database(load_settings(config))
    with database.session() as session:
        stored = [(t.embedding, t.crop) for t in session.scalars(select(Template))]
    data, index = (tmp_path / "gate.db").read_bytes(), (tmp_path / "gallery.faiss").read_bytes()
    assert len(stored) == 3 and index.startswith(PREFIX)
    for embedding, crop in stored:
        assert crop is not None and decode_crop(crop).ndim == 3  # a real WebP crop again
        assert embedding[:16] not in data and embedding[:16] not in index and crop[:64] not in data
    assert "embeddings:  3 sealed, 0 plain" in run(config, "status")
    monkeypatch.delenv("FACEGATE_TEST_KEY")
    with pytest.raises(FaceGateError, match="encryption.key_env FACEGATE_TEST_KEY: the environment variable is not"):
        run(config, "status")


@pytest.mark.slow  # starts a PostgreSQL server (a few seconds, once per session)
def test_sealing_counts_seals_and_proves_the_key_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    """The counts and the batch selection are SQL (substr and length over bytea there): the same on PostgreSQL."""
    rng = np.random.default_rng(2)
    plain = Database(postgres_url)
    vector = rng.normal(size=DIM).astype(np.float32)
    with plain.session() as session:
        template = Template(embedding=vector.tobytes(), embedding_size=DIM, model_id=MODEL_ID, image_sha256="s",
                            quality=1.0, source="0.jpg", crop=b"RIFF" + rng.bytes(500))  # fmt: skip
        session.add(Person(employee_id="E1", name="Name E1", templates=[template]))
    faces = [b"RIFF" + rng.bytes(500) for _ in range(3)]
    _record_event_faces(plain, [*faces, None])
    assert sealing_counts(plain) == SealingCounts(0, 1, 0, 1, 0, 3)
    cipher = parse_key(new_key_text(), "encryption.key_env K")
    database = Database(postgres_url, cipher=cipher)
    assert prove_key(database) == []
    gallery = Gallery.open(database, GallerySettings(), tmp_path / "gallery.faiss", MODEL_ID, DIM)
    assert seal_stored(database, gallery) == SealResult(1, 1, 1, 3, 0)
    assert (tmp_path / "gallery.faiss").read_bytes().startswith(PREFIX)
    assert sealing_counts(plain) == SealingCounts(1, 0, 1, 0, 3, 0)
    assert prove_key(database) == ["template embedding", "template crop", "event face"]
    assert [database.event_face(f"e{n}") for n in range(4)] == [*faces, None]
    with pytest.raises(FaceGateError, match="encryption.key_env K is not the key of this database"):
        prove_key(Database(postgres_url, cipher=parse_key(new_key_text(), "encryption.key_env K")))
