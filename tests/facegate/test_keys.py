"""`facegate keys`: a new key file, a plain database sealed in place (no plain byte left in the file), the state."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from enrollment.audit import audit_trail
from facegate.cli import app
from gate.config import GallerySettings, load_settings
from gate.encryption import PREFIX, new_key_text
from gate.errors import FaceGateError
from gate.gallery import Gallery
from gate.imageio import decode_crop
from gate.runtime import open_database
from gate.store import Database, Person, Template

MODEL_ID, DIM = "untrained-test", 128  # the untrained_card fixture's model


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
    Gallery.open(database, GallerySettings(), tmp_path / "gallery.faiss", MODEL_ID, DIM)
    database.close()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "gate.db"}"\n[model]\npath = "{untrained_card}"\n'
        f'[gallery]\nindex_path = "{tmp_path / "gallery.faiss"}"\n',
        encoding="utf-8",
    )
    return config, vectors, crops


def test_keys_new_writes_an_owner_only_key_and_prints_its_config_lines(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    output = run(config, "new", str(tmp_path / "site.key"))
    assert stat.S_IMODE((tmp_path / "site.key").stat().st_mode) == 0o600
    lines = output[output.index("[encryption]") :].split("\n\n")[0]
    config.write_text(lines + "\n", encoding="utf-8")
    assert load_settings(config).encryption.key_file == str((tmp_path / "site.key").resolve())
    with pytest.raises(FaceGateError, match="exists: a key file is never overwritten"):
        run(config, "new", str(tmp_path / "site.key"))


def test_keys_encrypt_seals_a_plain_database_in_place(site: tuple[Path, np.ndarray, list[bytes]]) -> None:
    config, vectors, crops = site
    folder = config.parent
    before = (folder / "gate.db").read_bytes()
    assert all(v.tobytes() in before for v in vectors) and all(c in before for c in crops)
    assert "key:        none configured" in run(config, "status")
    with pytest.raises(FaceGateError, match="no key configured: set encryption.key_file"):
        run(config, "encrypt")

    output = run(config, "new", str(folder / "site.key"))
    config.write_text(config.read_text() + output[output.index("[encryption]") :].split("\n\n")[0] + "\n")
    status = run(config, "status")
    assert "embeddings: 0 sealed, 3 plain" in status and "index:      plain" in status and "keys encrypt" in status
    assert run(config, "encrypt").strip() == "sealed 3 embeddings and 3 crops of 2 people"

    after = (folder / "gate.db").read_bytes()
    for vector, crop in zip(vectors, crops, strict=True):
        assert vector.tobytes()[:16] not in after and crop[4:64] not in after
    index = (folder / "gallery.faiss").read_bytes()
    assert index.startswith(PREFIX) and not any(v.tobytes()[:16] in index for v in vectors)
    status = run(config, "status")
    assert "embeddings: 3 sealed, 0 plain" in status and "crops:      3 sealed, 0 plain" in status
    assert "index:      sealed" in status
    assert run(config, "encrypt").strip() == "sealed 0 embeddings and 0 crops of 0 people"

    database = open_database(load_settings(config))
    gallery = Gallery.open(database, GallerySettings(), folder / "gallery.faiss", MODEL_ID, DIM)
    assert [m.employee_id for m in gallery.search(vectors) if m] == ["E1", "E1", "E2"]
    assert [(e.action, e.employee_id) for e in audit_trail(database) if e.action == "encrypt"] == [
        ("encrypt", "E1"),
        ("encrypt", "E2"),
    ]
    with pytest.raises(FaceGateError, match="templates are encrypted: set encryption.key_file or key_env"):
        Database(database.url).all_templates(MODEL_ID)


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
    assert "embeddings: 3 sealed, 0 plain" in run(config, "status")
    monkeypatch.delenv("FACEGATE_TEST_KEY")
    with pytest.raises(FaceGateError, match="encryption.key_env FACEGATE_TEST_KEY: the environment variable is not"):
        run(config, "status")
