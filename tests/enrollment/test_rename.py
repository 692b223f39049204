"""Renaming a person: audited with the old and new name, the gallery's owners renamed here at once and at another
gate after its refresh; names refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from enrollment.audit import audit_trail
from enrollment.roster import MAX_NAME_LENGTH, rename_person, set_active, show_person
from gate.config import GallerySettings
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.store.database import Database
from tests.enrollment.test_roster import DIM, enrol


def galleries(database: Database, tmp_path: Path, *names: str) -> list[Gallery]:
    return [Gallery.open(database, GallerySettings(), tmp_path / n / "gallery.faiss", "m1", DIM) for n in names]


def test_rename_is_audited_and_every_gate_matches_the_new_name(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    vectors = np.eye(DIM, dtype=np.float32)[:2]
    enrol(database, "e1", vectors)
    admin, gate = galleries(database, tmp_path, "admin", "gate")
    assert gate.search(vectors[:1])[0].name == "E1"
    summary = rename_person(database, admin, "e1", "  Ada Lovelace ")
    assert (summary.employee_id, summary.name, summary.templates) == ("e1", "Ada Lovelace", 2)
    assert show_person(database, "e1").person.name == "Ada Lovelace"
    assert admin.search(vectors[:1])[0].name == "Ada Lovelace" and len(admin) == 2  # here at once
    assert gate.refresh() and gate.search(vectors[1:])[0].name == "Ada Lovelace"  # another gate on refresh
    assert gate.verify(vectors[:1], "e1")[0].name == "Ada Lovelace"
    entry = audit_trail(database, "e1")[-1]
    assert entry.action == "rename" and '"old": "E1"' in entry.detail and '"new": "Ada Lovelace"' in entry.detail
    rename_person(database, admin, "e1", "Ada Lovelace")  # the same name: nothing recorded
    assert [e.action for e in audit_trail(database, "e1")] == ["rename"]


def test_rename_of_an_inactive_person_keeps_them_out_of_the_gallery(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    vectors = np.eye(DIM, dtype=np.float32)[:2]
    enrol(database, "e1", vectors)
    (admin,) = galleries(database, tmp_path, "admin")
    set_active(database, admin, "e1", False)
    rename_person(database, admin, "e1", "Grace")
    assert len(admin) == 0 and len(galleries(database, tmp_path, "fresh")[0]) == 0
    set_active(database, admin, "e1", True)
    assert admin.search(vectors[:1])[0].name == "Grace"


@pytest.mark.parametrize("name", ["", "   ", "x" * (MAX_NAME_LENGTH + 1), "Ada\nLovelace", "A\u200bda"])
def test_rename_refuses_names_out_of_the_rule_and_changes_nothing(tmp_path: Path, name: str) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    enrol(database, "e1", np.eye(DIM, dtype=np.float32)[:1])
    (admin,) = galleries(database, tmp_path, "admin")
    with pytest.raises(FaceGateError, match="a name must be 1 to 200 printable characters"):
        rename_person(database, admin, "e1", name)
    assert show_person(database, "e1").person.name == "E1" and audit_trail(database, "e1") == []
    with pytest.raises(FaceGateError, match="no person"):
        rename_person(database, admin, "nobody", "Someone")
