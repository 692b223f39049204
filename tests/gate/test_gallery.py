"""The gallery: FAISS search over templates, saved with a sidecar, rebuilt from the database when stale."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from gate.config import GallerySettings
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.store.database import Database
from gate.store.schema import Person, Template

DIM = 32


def _unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _person(employee_id: str, vectors: np.ndarray, model_id: str) -> Person:
    person = Person(employee_id=employee_id, name=f"Name {employee_id}")
    person.templates = [
        Template(
            embedding=v.tobytes(),
            embedding_size=len(v),
            model_id=model_id,
            image_sha256=f"{employee_id}{i}",
            quality=1.0,
            source="x.jpg",
        )
        for i, v in enumerate(vectors)
    ]
    return person


def _enroll(db: Database, employee_id: str, vectors: np.ndarray, model_id: str = "m1") -> list[int]:
    with db.session() as session:
        person = _person(employee_id, vectors, model_id)
        session.add(person)
        session.flush()
        return [t.id for t in person.templates]


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'gate.db'}")


def _open(db: Database, tmp_path: Path, kind: str = "exact", model_id: str = "m1") -> Gallery:
    return Gallery.open(db, GallerySettings(kind=kind), tmp_path / "idx" / "gallery.faiss", model_id, DIM)


def test_gallery_open_empty_database_warns_and_searches_none(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        gallery = _open(db, tmp_path)
    assert len(gallery) == 0 and "no templates of model m1" in caplog.text
    assert gallery.search(_unit(np.random.default_rng(0), 2)) == [None, None]


def test_gallery_open_other_model_only_warns_reembed(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _enroll(db, "e1", _unit(np.random.default_rng(0), 2), model_id="old")
    with caplog.at_level(logging.WARNING):
        _open(db, tmp_path, model_id="new")
    assert "reembed" in caplog.text and "old" in caplog.text


def test_gallery_search_finds_enrolled_person(db: Database, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    people = {f"e{i}": _unit(rng, 3) for i in range(10)}
    for employee_id, vectors in people.items():
        _enroll(db, employee_id, vectors)
    gallery = _open(db, tmp_path)
    matches = gallery.search(np.stack([people["e4"][1], people["e7"][0]]))
    assert [m.employee_id for m in matches] == ["e4", "e7"]  # type: ignore[union-attr]
    assert matches[0].name == "Name e4" and matches[0].score == pytest.approx(1.0, abs=1e-5)  # type: ignore[union-attr]


def test_gallery_candidates_several_templates_best_per_person(db: Database, tmp_path: Path) -> None:
    query = np.zeros(DIM, np.float32)
    query[0] = 1
    near = np.zeros((3, DIM), np.float32)
    near[:, 0] = [0.9, 0.8, 0.7]
    near[:, 1] = np.sqrt(1 - near[:, 0] ** 2)
    other = np.zeros((1, DIM), np.float32)
    other[0, 0], other[0, 2] = 0.85, np.sqrt(1 - 0.85**2)
    _enroll(db, "many", near)
    _enroll(db, "one", other)
    found = _open(db, tmp_path).candidates(query[None], top=5)[0]
    assert [(m.employee_id, round(m.score, 3)) for m in found] == [("many", 0.9), ("one", 0.85)]


def test_gallery_reopen_loads_saved_index_without_rebuild(
    db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _enroll(db, "e1", _unit(np.random.default_rng(2), 4))
    _open(db, tmp_path)
    with caplog.at_level(logging.INFO, logger="gate.matching.gallery"):
        gallery = _open(db, tmp_path)
    assert len(gallery) == 4 and "rebuilding" not in caplog.text


def test_gallery_database_changed_behind_index_rebuilds(db: Database, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    _enroll(db, "e1", _unit(rng, 2))
    _open(db, tmp_path)
    new = _unit(rng, 1)
    _enroll(db, "e2", new)  # written without the gallery: the saved index is stale
    gallery = _open(db, tmp_path)
    assert len(gallery) == 3 and gallery.search(new)[0].employee_id == "e2"  # type: ignore[union-attr]


def test_gallery_sidecar_other_model_rebuilds(db: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _enroll(db, "e1", _unit(np.random.default_rng(4), 2))
    gallery = _open(db, tmp_path)
    sidecar = json.loads(gallery.sidecar_path.read_text())
    gallery.sidecar_path.write_text(json.dumps({**sidecar, "model_id": "other"}))
    with caplog.at_level(logging.INFO, logger="gate.matching.gallery"):
        assert len(_open(db, tmp_path)) == 2
    assert "rebuilding" in caplog.text and "other settings" in caplog.text
    assert json.loads(gallery.sidecar_path.read_text())["model_id"] == "m1"


def test_gallery_corrupt_index_file_rebuilds(db: Database, tmp_path: Path) -> None:
    _enroll(db, "e1", _unit(np.random.default_rng(5), 2))
    gallery = _open(db, tmp_path)
    gallery.index_path.write_bytes(b"garbage" * 10)
    assert len(_open(db, tmp_path)) == 2


def test_gallery_index_swapped_under_sidecar_rebuilds(db: Database, tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    _enroll(db, "e1", _unit(rng, 2))
    gallery = _open(db, tmp_path)
    gallery.remove(np.array([gallery.templates.ids()[0]]))
    gallery.save()
    sidecar = gallery.sidecar_path.read_text()
    gallery.rebuild()  # back to 2 in memory; write only the index, keep the old sidecar (a crash in between)
    gallery.save()
    gallery.sidecar_path.write_text(sidecar)
    assert len(_open(db, tmp_path)) == 2


def test_gallery_remove_templates_no_longer_found(db: Database, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    a, b = _unit(rng, 2), _unit(rng, 1)
    ids_a = _enroll(db, "a", a)
    _enroll(db, "b", b)
    gallery = _open(db, tmp_path)
    gallery.remove(np.array(ids_a))
    assert len(gallery) == 1
    assert {m.employee_id for m in gallery.search(a)} == {"b"}  # type: ignore[union-attr]


def test_gallery_add_then_save_reopens_same(db: Database, tmp_path: Path) -> None:
    gallery = _open(db, tmp_path)
    vectors = _unit(np.random.default_rng(8), 3)
    ids = _enroll(db, "late", vectors)
    gallery.add(np.array(ids), vectors)  # owners read from the database
    gallery.save()
    reopened = _open(db, tmp_path)
    assert len(reopened) == 3 and reopened.search(vectors[:1])[0].employee_id == "late"  # type: ignore[union-attr]


def test_gallery_add_unknown_or_repeated_ids_raises(db: Database, tmp_path: Path) -> None:
    vectors = _unit(np.random.default_rng(9), 1)
    ids = _enroll(db, "e1", vectors)
    gallery = _open(db, tmp_path)
    with pytest.raises(ValueError):
        gallery.add(np.array(ids), vectors)
    with pytest.raises(ValueError):
        gallery.add(np.array([12345]), vectors)
    assert len(gallery) == 1


def test_gallery_inactive_person_not_indexed(db: Database, tmp_path: Path) -> None:
    vectors = _unit(np.random.default_rng(10), 2)
    _enroll(db, "gone", vectors)
    with db.session() as session:
        session.scalars(select(Person)).one().active = False
    assert len(_open(db, tmp_path)) == 0


def test_gallery_save_blocked_index_path_raises_keeps_sidecar_no_temp(db: Database, tmp_path: Path) -> None:
    _enroll(db, "e1", _unit(np.random.default_rng(11), 2))
    gallery = _open(db, tmp_path)
    sidecar = gallery.sidecar_path.read_text()
    gallery.index_path.unlink()
    gallery.index_path.mkdir()  # a folder where the index goes: moving the temporary file there fails
    gallery.remove(gallery.templates.ids()[:1])
    with pytest.raises(FaceGateError, match="cannot write the gallery index"):
        gallery.save()
    assert gallery.sidecar_path.read_text() == sidecar
    assert sorted(p.name for p in gallery.index_path.parent.iterdir()) == [
        "gallery.faiss",
        "gallery.faiss.json",
    ]


def test_gallery_open_unwritable_location_works_from_memory(db: Database, tmp_path: Path) -> None:
    _enroll(db, "e1", _unit(np.random.default_rng(12), 2))
    (tmp_path / "file").write_text("not a folder")
    gallery = Gallery.open(db, GallerySettings(), tmp_path / "file" / "gallery.faiss", "m1", DIM)
    assert len(gallery) == 2


def test_gallery_wrong_embedding_size_in_database_raises(db: Database, tmp_path: Path) -> None:
    _enroll(db, "e1", _unit(np.random.default_rng(13), 1, dim=DIM * 2))
    with pytest.raises(FaceGateError, match="reembed"):
        _open(db, tmp_path)


def test_gallery_hnsw_recall_close_to_exact(db: Database, tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    vectors = _unit(rng, 1500)
    with db.session() as session:
        session.add_all(_person(f"p{start}", vectors[start : start + 3], "m1") for start in range(0, 1500, 3))
    queries = vectors[::7] + rng.normal(scale=0.05, size=vectors[::7].shape).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = [m.employee_id for m in _open(db, tmp_path / "e").search(queries)]  # type: ignore[union-attr]
    hnsw_gallery = _open(db, tmp_path / "h", kind="hnsw")
    approx = [m.employee_id for m in hnsw_gallery.search(queries)]  # type: ignore[union-attr]
    assert np.mean(np.array(exact) == np.array(approx)) >= 0.95
    reopened = _open(db, tmp_path / "h", kind="hnsw")
    assert [m.employee_id for m in reopened.search(queries[:20])] == approx[:20]  # type: ignore[union-attr]


def test_gallery_hnsw_remove_drops_only_those(db: Database, tmp_path: Path) -> None:
    rng = np.random.default_rng(15)
    a, b = _unit(rng, 3), _unit(rng, 3)
    ids_a = _enroll(db, "a", a)
    _enroll(db, "b", b)
    gallery = _open(db, tmp_path, kind="hnsw")
    gallery.remove(np.array(ids_a[:2]))
    assert len(gallery) == 4
    assert [m.employee_id for m in gallery.search(np.stack([a[2], b[0]]))] == ["a", "b"]  # type: ignore[union-attr]


def test_gallery_refresh_sees_what_another_process_saved(db: Database, tmp_path: Path) -> None:
    running = _open(db, tmp_path)  # the gate daemon
    assert running.refresh() is False
    enroller = _open(db, tmp_path)  # `facegate enroll` in another process
    vectors = _unit(np.random.default_rng(5), 3)
    enroller.add(np.array(_enroll(db, "E7", vectors)), vectors)
    enroller.save()
    assert running.search(vectors[:1])[0] is None
    assert running.refresh() is True
    assert running.search(vectors[:1])[0].employee_id == "E7"  # type: ignore[union-attr]
    assert running.refresh() is False


def test_gallery_match_mean_scores_person_by_mean_template(db: Database, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    a1, a2, b1 = _unit(rng, 3)
    gallery = Gallery.open(db, GallerySettings(match="mean"), tmp_path / "m.faiss", "m1", DIM)
    a_ids = _enroll(db, "A", np.stack([a1, a2]))
    gallery.add(np.array(a_ids), np.stack([a1, a2]))
    mean = (a1 + a2) / np.linalg.norm(a1 + a2)
    match = gallery.search(a1[None])[0]
    assert match.employee_id == "A" and match.score == pytest.approx(float(a1 @ mean), abs=1e-5)  # type: ignore[union-attr]
    gallery.add(np.array(_enroll(db, "B", b1[None])), b1[None])  # the means follow additions ...
    assert gallery.search(b1[None])[0].score == pytest.approx(1.0, abs=1e-5)  # type: ignore[union-attr]
    gallery.remove(np.array(a_ids[:1]))  # ... and removals: A is left with a2 alone
    assert gallery.search(a2[None])[0].score == pytest.approx(1.0, abs=1e-5)  # type: ignore[union-attr]
    best = Gallery.open(db, GallerySettings(), tmp_path / "b.faiss", "m1", DIM)
    assert [m.employee_id for m in best.candidates(b1[None], top=2)[0]] == [
        m.employee_id for m in gallery.candidates(b1[None], top=2)[0]
    ]


def test_an_index_from_another_database_with_the_same_ids_is_rebuilt_and_the_stranger_denied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another site's index (same template ids 1-4, other faces) copied over ours, with its sidecar.
    Checked by ids alone it was loaded, and its stranger matched our employee at 1.0; now its vectors are compared
    with the database's templates and it is rebuilt."""
    rng = np.random.default_rng(7)
    ours, theirs = _unit(rng, 4), _unit(rng, 4)
    site = {name: Database(f"sqlite:///{tmp_path / f'{name}.db'}") for name in ("ours", "theirs")}
    assert _enroll(site["ours"], "E001", ours) == _enroll(site["theirs"], "E001", theirs) == [1, 2, 3, 4]
    Gallery.open(site["theirs"], GallerySettings(), tmp_path / "theirs" / "gallery.faiss", "m1", DIM)
    (tmp_path / "ours").mkdir()
    for name in ("gallery.faiss", "gallery.faiss.json"):  # the foreign files, where our gate looks for its own
        (tmp_path / "ours" / name).write_bytes((tmp_path / "theirs" / name).read_bytes())
    with caplog.at_level(logging.INFO, logger="gate.matching.gallery"):
        gallery = Gallery.open(site["ours"], GallerySettings(), tmp_path / "ours" / "gallery.faiss", "m1", DIM)
    assert "index vectors differ from the database's templates" in caplog.text
    stranger = gallery.search(theirs[:1])[0]  # their employee, a stranger here
    assert stranger is not None and stranger.score < 0.9
    assert gallery.search(ours[:1])[0].score == pytest.approx(1.0, abs=1e-5)
    reopened = Gallery.open(site["ours"], GallerySettings(), tmp_path / "ours" / "gallery.faiss", "m1", DIM)
    assert reopened.search(theirs[:1])[0].score == pytest.approx(stranger.score, abs=1e-6)  # the rebuilt one saved


def test_temp_files_left_by_a_crash_are_removed_on_open_but_not_a_write_in_progress(
    db: Database, tmp_path: Path
) -> None:
    """Leftover `*.tmp` files after a crash were never cleaned."""
    folder = tmp_path / "idx"
    folder.mkdir()
    stale, fresh = folder / "gallery.faiss.abc123.tmp", folder / "gallery.faiss.json.def456.tmp"
    for temp in (stale, fresh):
        temp.write_bytes(b"half-written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    _open(db, tmp_path)
    assert not stale.exists() and fresh.exists()  # a recent one may belong to another process still writing


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_gallery_verify_scores_the_claimed_person_only(db: Database, tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(5)
    alice, bob = _unit(rng, 2), _unit(rng, 2)
    _enroll(db, "alice", alice)
    _enroll(db, "bob", bob)
    gallery = _open(db, tmp_path, kind)
    query = bob[:1]  # bob's own template: 1:N names bob, 1:1 against alice gives alice's (low) score
    assert gallery.search(query)[0].employee_id == "bob"
    [claimed] = gallery.verify(query, "alice")
    assert claimed.employee_id == "alice" and claimed.score == pytest.approx(float((alice @ query[0]).max()), abs=1e-5)
    assert gallery.verify(query, "carol") == [None] and gallery.has_person("bob") and not gallery.has_person("carol")


def _two_gates_see_changes_through_the_database(db: Database, tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    ada = _unit(rng, 2)
    gates = [Gallery.open(db, GallerySettings(), tmp_path / f"gate{i}" / "gallery.faiss", "m1", DIM) for i in (1, 2)]
    assert [gate.refresh() for gate in gates] == [False, False]  # nothing changed: no reload
    _enroll(db, "ada", ada)  # enrolled elsewhere (another machine, the web page): no index file of theirs moved
    assert [gate.refresh() for gate in gates] == [True, True]
    assert all(gate.search(ada[:1])[0].employee_id == "ada" for gate in gates)
    with db.session() as session:
        session.delete(session.scalars(select(Person).where(Person.employee_id == "ada")).one())
    assert [gate.refresh() for gate in gates] == [True, True]
    assert all(gate.search(ada[:1]) == [None] for gate in gates)


def test_gates_on_one_database_see_an_enrolment_and_a_removal_made_elsewhere(db: Database, tmp_path: Path) -> None:
    """A gate learnt of changes from its index file's sidecar, which only works on one machine."""
    _two_gates_see_changes_through_the_database(db, tmp_path)


@pytest.mark.slow
def test_gates_on_one_postgresql_database_see_changes_and_survive_its_outage(postgres, tmp_path: Path) -> None:
    db = Database(postgres.new_database())
    _two_gates_see_changes_through_the_database(db, tmp_path)
    gate = Gallery.open(db, GallerySettings(), tmp_path / "gate3" / "gallery.faiss", "m1", DIM)
    postgres.stop()
    try:
        assert gate.refresh() is False  # the server is down: the gallery is kept, the gate goes on
    finally:
        postgres.start()
    _enroll(db, "bob", _unit(np.random.default_rng(10), 1))
    assert gate.refresh() is True and len(gate) == 1
