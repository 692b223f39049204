"""`facegate backup` and `facegate restore` as a site runs them: a site's database into a backup file, restored into
another site's empty database with the same key; a second restore, or another key, refused in one line (exit 2)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from facegate_process import facegate_command

from gate.store.database import Database
from gate.store.encryption import parse_key, write_key_file
from gate.store.events import AccessEventRecord
from gate.store.schema import Person, Template

pytestmark = pytest.mark.slow  # each step starts the real `facegate` command in a subprocess (~2 s)


def site_config(folder: Path, key: str = "site.key") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///data/gate.db"\njournal_path = "data/events.journal"\n'
        f'[gallery]\nindex_path = "data/gallery.faiss"\n[encryption]\nkey_file = "{key}"\n',
        encoding="utf-8",
    )
    return path


def facegate(config: Path, *args: str | Path) -> subprocess.CompletedProcess:
    command = facegate_command("--config", config, *args)
    return subprocess.run(command, cwd=config.parent, capture_output=True, text=True, timeout=120)


def test_backup_then_restore_into_another_sites_empty_database(tmp_path: Path) -> None:
    old = site_config(tmp_path / "old")
    write_key_file(tmp_path / "old" / "site.key")
    cipher = parse_key((tmp_path / "old" / "site.key").read_text(), "site.key")
    database = Database(f"sqlite:///{tmp_path / 'old' / 'data' / 'gate.db'}", cipher)
    with database.session() as session:
        for n in range(2):
            person = Person(employee_id=f"E{n}", name=f"Person {n}")
            embedding = np.ones(8, np.float32).tobytes()
            person.templates.append(
                Template(embedding=embedding, embedding_size=8, model_id="m", image_sha256="0" * 64, quality=0.9,
                         source=f"{n}.jpg")
            )  # fmt: skip
            session.add(person)
    database.record_event(AccessEventRecord(datetime.now(UTC), "front-door", "E1", 0.95, "granted", "GRANTED"))
    database.close()

    out = tmp_path / "backups" / "old-site.fgbackup"
    out.parent.mkdir()
    done = facegate(old, "backup", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("backed up 2 people, 2 templates, 1 access events (sqlite, schema ")
    assert f"needs the key of fingerprint {cipher.fingerprint}" in done.stdout

    new = site_config(tmp_path / "new")
    shutil.copy(tmp_path / "old" / "site.key", tmp_path / "new" / "site.key")  # the key travels apart
    done = facegate(new, "restore", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("restored 2 people, 2 templates, 1 access events")
    listed = facegate(new, "enroll", "list")
    assert "E0" in listed.stdout and "Person 1" in listed.stdout

    again = facegate(new, "restore", out)
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert again.stderr.startswith("error: ") and "is not empty" in again.stderr

    other = site_config(tmp_path / "other")
    write_key_file(tmp_path / "other" / "site.key")
    refused = facegate(other, "restore", out)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert f"does not fit this backup: it needs the key of fingerprint {cipher.fingerprint}" in refused.stderr
    assert not (tmp_path / "other" / "data" / "gate.db").exists()
