"""Deactivating and reactivating a person: kept with their templates, out of every gallery, back in; audited."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from enrollment.audit import audit_trail
from enrollment.roster import list_people, remove_template, set_active, show_person
from gate.config import GallerySettings
from gate.errors import FaceGateError, NotFound
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


def test_one_template_is_removed_from_the_database_and_every_gallery_and_the_last_one_stays(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    vectors = np.eye(DIM, dtype=np.float32)[:2]
    enrol(database, "e1", vectors)
    enrol(database, "e2", np.eye(DIM, dtype=np.float32)[2:3])
    admin = Gallery.open(database, GallerySettings(), tmp_path / "admin" / "gallery.faiss", "m1", DIM)
    gate = Gallery.open(database, GallerySettings(), tmp_path / "gate" / "gallery.faiss", "m1", DIM)
    first, second = (t.id for t in show_person(database, "e1").templates)
    removed = remove_template(database, admin, "e1", first)
    assert (removed.id, removed.origin, removed.source) == (first, "photo", "0.jpg")
    assert [t.id for t in show_person(database, "e1").templates] == [second]
    assert gate.refresh() and len(gate) == 2 and gate.search(vectors)[1].employee_id == "e1"
    assert gate.search(vectors[:1])[0].score < 0.5  # the removed face matches nobody now
    entry = audit_trail(database, "e1")[-1]
    assert entry.action == "remove_template" and f'"template": {first}' in entry.detail
    with pytest.raises(NotFound, match="no template"):
        remove_template(database, admin, "e2", second)  # another person's template: theirs to remove, not e2's
    with pytest.raises(FaceGateError, match="last one"):
        remove_template(database, admin, "e1", second)
    assert len(admin) == 2 and len(show_person(database, "e1").templates) == 1
