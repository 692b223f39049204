"""Deactivating and reactivating a person: kept with their templates, out of every gallery, back in; audited."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from enrollment.audit import audit_trail
from enrollment.roster import list_people, set_active
from gate.config import GallerySettings
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.store.database import Database
from gate.store.schema import Person, Template

DIM = 16


def enrol(database: Database, employee_id: str, vectors: np.ndarray) -> None:
    with database.session() as session:
        person = Person(employee_id=employee_id, name=employee_id.title())
        for i, vector in enumerate(vectors):
            person.templates.append(
                Template(
                    embedding=vector.astype(np.float32).tobytes(),
                    embedding_size=DIM,
                    model_id="m1",
                    image_sha256=f"{employee_id}{i}",
                    quality=0.99,
                    source=f"{i}.jpg",
                )
            )
        session.add(person)


def test_a_deactivated_person_is_kept_but_matched_by_no_gate_until_reactivated(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    vectors = np.eye(DIM, dtype=np.float32)[:2]
    enrol(database, "e1", vectors)
    gate = Gallery.open(database, GallerySettings(), tmp_path / "gate" / "gallery.faiss", "m1", DIM)
    other = Gallery.open(database, GallerySettings(), tmp_path / "other" / "gallery.faiss", "m1", DIM)
    admin = Gallery.open(database, GallerySettings(), tmp_path / "admin" / "gallery.faiss", "m1", DIM)
    summary = set_active(database, admin, "e1", False)
    assert not summary.active and summary.templates == 2 and len(admin) == 0
    assert other.refresh() and other.search(vectors[:1]) == [None]  # another gate learns of it too
    assert [p.active for p in list_people(database)] == [False]
    assert set_active(database, admin, "e1", False).active is False  # already so: nothing recorded
    set_active(database, admin, "e1", True)
    assert gate.refresh() and gate.search(vectors[:1])[0].employee_id == "e1" and len(admin) == 2
    assert [entry.action for entry in audit_trail(database, "e1")] == ["deactivate", "reactivate"]
    with pytest.raises(FaceGateError, match="no person"):
        set_active(database, admin, "nobody", False)
