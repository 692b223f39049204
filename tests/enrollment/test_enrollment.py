"""Enrollment on real LFW faces (an untrained model: mechanics, not accuracy) and the `enroll` CLI."""

from __future__ import annotations

import getpass
import json
import logging
import shutil
import socket
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from enrollment import EnrollmentRefused, add_person, list_people, reembed_all, remove_person, show_person
from enrollment.audit import audit_trail
from enrollment.photos import decode_crop
from facegate.cli import app
from gate.config import GallerySettings, Settings
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.model.dlib_resnet import CROP_TEMPLATE as DLIB_150
from gate.model.embedder import Embedder
from gate.runtime.parts import Runtime
from gate.store.database import Database
from gate.store.events import AccessEventRecord
from gate.store.schema import Template
from gate.vision.alignment import ARCFACE_112, arcface_template
from gate.vision.faces import FacePipeline
from gate.vision.imageio import encode_crop

THRESHOLD = 1.01  # above any cosine: no photo ever "looks like" someone else unless a test lowers it


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    return FacePipeline()


@pytest.fixture(scope="module")
def embedder(untrained_card: Path) -> Embedder:
    return Embedder(untrained_card)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'gate.db'}")


def _gallery(db: Database, tmp_path: Path, embedder: Embedder) -> Gallery:
    return Gallery.open(db, GallerySettings(), tmp_path / "gallery.faiss", embedder.model_id, 128)


@pytest.fixture
def gallery(db: Database, tmp_path: Path, embedder: Embedder) -> Gallery:
    return _gallery(db, tmp_path, embedder)


def _photos(lfw_root: Path, person: str, *numbers: int) -> list[Path]:
    return [lfw_root / person / f"{person}_{n:04d}.jpg" for n in numbers]


def _add(db, gallery, pipeline, embedder, employee_id, name, photos, threshold=THRESHOLD, force=False, unmatched=False):  # noqa: ANN001, ANN202, E501
    runtime = Runtime(Settings(), embedder, pipeline, db, gallery)
    return add_person(runtime, employee_id, name, photos, force=force, threshold=threshold, accept_unmatched=unmatched)


def _side_by_side(a: Path, b: Path, out: Path) -> Path:
    left, right = Image.open(a), Image.open(b)
    canvas = Image.new("RGB", (left.width + right.width, max(left.height, right.height)))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    canvas.save(out)
    return out


def _template_count(db: Database) -> int:
    with db.session() as session:
        return len(session.scalars(select(Template.id)).all())


def test_encode_crop_roundtrip_exact_and_resized() -> None:
    crop = np.random.default_rng(0).integers(0, 256, size=(112, 112, 3), dtype=np.uint8)
    data = encode_crop(crop)
    assert np.array_equal(decode_crop(data, ARCFACE_112), crop)  # a crop stored before the archive template
    assert decode_crop(data, arcface_template(160)).shape == (160, 160, 3)
    archived = encode_crop(np.zeros((224, 224, 3), np.uint8))  # the archive template, cut for dlib's chip
    assert decode_crop(archived, DLIB_150).shape == (150, 150, 3)


def test_add_person_good_photos_templates_and_index(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, lfw_root: Path, tmp_path: Path
) -> None:
    photos = _photos(lfw_root, "George_W_Bush", 1, 2)
    result = _add(db, gallery, pipeline, embedder, "E1", "George Bush", photos)
    assert result.created and result.added == 2 and [o.status for o in result.outcomes] == ["added", "added"]
    with db.session() as session:
        templates = session.scalars(select(Template)).all()
        assert {t.model_id for t in templates} == {"untrained-test"} and all(t.crop for t in templates)
        crop = decode_crop(templates[0].crop or b"", embedder.template)
    assert gallery.search(embedder.embed(crop[None]))[0].employee_id == "E1"  # type: ignore[union-attr]
    assert len(_gallery(db, tmp_path, embedder)) == 2  # the saved index agrees with the database


def test_add_person_bad_photos_reasons_good_one_added(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, lfw_root: Path, tmp_path: Path
) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), (128, 128, 128)).save(blank)
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    pair = _side_by_side(*_photos(lfw_root, "Colin_Powell", 1, 2), tmp_path / "two.jpg")
    good = _photos(lfw_root, "Tony_Blair", 1)[0]
    result = _add(db, gallery, pipeline, embedder, "E2", "Tony", [blank, text, pair, good])
    reasons = {o.path.name: (o.status, o.reason) for o in result.outcomes}
    assert reasons["blank.png"] == ("rejected", "NO_FACE")
    assert reasons["two.jpg"] == ("rejected", "SEVERAL_FACES")
    assert reasons["notes.jpg"][0] == "rejected" and "not an image" in reasons["notes.jpg"][1]
    assert reasons[good.name] == ("added", "")
    assert len(gallery) == 1


def test_add_person_no_usable_photo_refused_nothing_written(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, tmp_path: Path
) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 120)).save(blank)
    with pytest.raises(EnrollmentRefused, match="no usable photo") as refused:
        _add(db, gallery, pipeline, embedder, "E3", "Nobody", [blank, tmp_path / "missing.jpg"])
    assert [o.reason for o in refused.value.outcomes][0] == "NO_FACE"
    assert list_people(db) == [] and len(gallery) == 0


def test_add_person_folder_and_duplicates_skipped(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, lfw_root: Path, tmp_path: Path
) -> None:
    first, second = _photos(lfw_root, "Colin_Powell", 1, 2)
    _add(db, gallery, pipeline, embedder, "E4", "Colin", [first])
    folder = tmp_path / "more"
    folder.mkdir()
    shutil.copy(first, folder / "again.jpg")  # same bytes, other name: still a duplicate
    shutil.copy(second, folder / "new.jpg")
    # the untrained test model cannot tell Colin from anyone: the identity check is tested with the real model below
    result = _add(db, gallery, pipeline, embedder, "E4", None, [folder, second], unmatched=True)
    statuses = {o.path.name: o.status for o in result.outcomes}
    assert not result.created
    assert statuses == {"again.jpg": "duplicate", "new.jpg": "added", second.name: "duplicate"}
    assert _template_count(db) == 2 and len(gallery) == 2


def test_add_person_matches_other_person_refused_unless_forced(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, lfw_root: Path
) -> None:
    _add(db, gallery, pipeline, embedder, "GWB", "George", _photos(lfw_root, "George_W_Bush", 1))
    impostor = _photos(lfw_root, "George_W_Bush", 3)
    with pytest.raises(FaceGateError, match="looks like enrolled GWB"):
        _add(db, gallery, pipeline, embedder, "E5", "Twin", impostor, threshold=-1.0)
    assert [p.employee_id for p in list_people(db)] == ["GWB"] and len(gallery) == 1
    result = _add(db, gallery, pipeline, embedder, "E5", "Twin", impostor, threshold=-1.0, force=True)
    assert result.added == 1 and len(gallery) == 2


def test_add_person_existing_id_other_name_refused(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, lfw_root: Path
) -> None:
    _add(db, gallery, pipeline, embedder, "E6", "Tony Blair", _photos(lfw_root, "Tony_Blair", 1))
    with pytest.raises(FaceGateError, match="enrolled as 'Tony Blair'"):
        _add(db, gallery, pipeline, embedder, "E6", "Someone Else", _photos(lfw_root, "Tony_Blair", 2))
    assert _template_count(db) == 1


def test_add_person_index_write_fails_database_and_index_unchanged(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, lfw_root: Path, tmp_path: Path
) -> None:
    _add(db, gallery, pipeline, embedder, "E7", "Colin", _photos(lfw_root, "Colin_Powell", 1))
    saved = gallery.index_path.read_bytes()
    sidecar = gallery.sidecar_path.read_text()
    gallery.index_path.unlink()
    gallery.index_path.mkdir()  # the index cannot be replaced: saving fails
    with pytest.raises(FaceGateError, match="cannot write the gallery index"):
        _add(db, gallery, pipeline, embedder, "E8", "Tony", _photos(lfw_root, "Tony_Blair", 1, 2))
    assert [p.employee_id for p in list_people(db)] == ["E7"] and _template_count(db) == 1
    assert len(gallery) == 1 and gallery.sidecar_path.read_text() == sidecar
    gallery.index_path.rmdir()
    gallery.index_path.write_bytes(saved)
    assert len(_gallery(db, tmp_path, embedder)) == 1


def test_remove_person_deletes_templates_index_keeps_events(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, lfw_root: Path, tmp_path: Path
) -> None:
    _add(db, gallery, pipeline, embedder, "E9", "Colin", _photos(lfw_root, "Colin_Powell", 1, 2))
    _add(db, gallery, pipeline, embedder, "E10", "Tony", _photos(lfw_root, "Tony_Blair", 1))
    now = datetime.now(UTC)
    db.record_event(AccessEventRecord(now, "front", "E9", 0.9, "granted", "MATCH", event_uid="9" * 32, crop=b"E9"))
    db.record_event(AccessEventRecord(now, "front", "E10", 0.9, "granted", "MATCH", event_uid="a" * 32, crop=b"E10"))
    removed = remove_person(db, gallery, "E9")
    assert removed.templates == 2 and [p.employee_id for p in list_people(db)] == ["E10"]
    assert _template_count(db) == 1 and len(gallery) == 1
    assert sorted(e.employee_id for e in db.events()) == ["E10", "E9"]  # the log keeps the id ...
    assert db.event_face("9" * 32) is None and db.event_face("a" * 32) == b"E10"  # ... not the removed face
    assert len(_gallery(db, tmp_path, embedder)) == 1
    with pytest.raises(FaceGateError, match="no person"):
        remove_person(db, gallery, "E9")


def test_show_person_templates_and_models(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, lfw_root: Path
) -> None:
    _add(db, gallery, pipeline, embedder, "E11", "Tony", _photos(lfw_root, "Tony_Blair", 1, 2))
    detail = show_person(db, "E11")
    assert detail.person.templates == 2 and detail.person.model_ids == ("untrained-test",)
    assert [t.source for t in detail.templates] == ["Tony_Blair_0001.jpg", "Tony_Blair_0002.jpg"]
    with pytest.raises(FaceGateError):
        show_person(db, "nobody")


def _copy_card(card: Path, out: Path, model_id: str) -> Path:
    """The same weights under another model id: re-embedding must reproduce the same vectors."""
    data = json.loads(card.read_text())
    shutil.copy(card.parent / data["weights_file"], out / data["weights_file"])
    (out / "copy.json").write_text(json.dumps({**data, "model_id": model_id}))
    return out / "copy.json"


def test_reembed_all_new_model_reproduces_templates_from_crops(
    db: Database,
    gallery: Gallery,
    pipeline: FacePipeline,
    embedder: Embedder,
    lfw_root: Path,
    tmp_path: Path,
    untrained_card: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _add(db, gallery, pipeline, embedder, "E12", "Colin", _photos(lfw_root, "Colin_Powell", 1, 2))
    _, _, old = db.all_templates(embedder.model_id)
    new_embedder = Embedder(_copy_card(untrained_card, tmp_path, "copy-model"))
    with caplog.at_level(logging.WARNING):
        new_gallery = Gallery.open(db, GallerySettings(), tmp_path / "new.faiss", "copy-model", 128)
    assert len(new_gallery) == 0 and "reembed" in caplog.text
    result = reembed_all(db, new_gallery, new_embedder)
    assert (result.added, result.already, result.without_crop) == (2, 0, 0)
    _, _, new = db.all_templates("copy-model")
    # the stored archive crop is cut again for the model: one more interpolation than the live crop
    assert (new * old).sum(axis=1).min() > 0.98
    assert (
        len(new_gallery) == 2
        and len(Gallery.open(db, GallerySettings(), tmp_path / "new.faiss", "copy-model", 128)) == 2
    )
    again = reembed_all(db, new_gallery, new_embedder)
    assert (again.added, again.already) == (0, 2)
    reembedded = [e for e in audit_trail(db, "E12") if e.action == "reembed"]  # one entry: the second run added none
    assert len(reembedded) == 1 and json.loads(reembedded[0].detail) == {"model_id": "copy-model", "templates": 2}


def _config(tmp_path: Path, card: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[model]\npath = "{card}"\n[database]\nurl = "sqlite:///data/gate.db"\n'
        '[gallery]\nindex_path = "data/gallery.faiss"\n[logging]\nlevel = "WARNING"\n'
    )
    return path


def test_cli_enroll_add_list_show_remove(tmp_path: Path, untrained_card: Path, lfw_root: Path) -> None:
    config = str(_config(tmp_path, untrained_card))
    runner = CliRunner()
    photos = [str(p) for p in _photos(lfw_root, "Tony_Blair", 1, 2)]
    added = runner.invoke(app, ["--config", config, "enroll", "add", "E1", "--name", "Tony Blair", *photos])
    assert added.exit_code == 0, added.output
    assert "enrolled E1: 2 of 2 photos added" in added.output
    assert (tmp_path / "data" / "gate.db").is_file() and (tmp_path / "data" / "gallery.faiss").is_file()
    listed = runner.invoke(app, ["--config", config, "enroll", "list"])
    assert "E1" in listed.output and "Tony Blair" in listed.output
    shown = runner.invoke(app, ["--config", config, "enroll", "show", "E1"])
    assert "Tony_Blair_0002.jpg" in shown.output
    kept = runner.invoke(app, ["--config", config, "enroll", "remove", "E1"], input="n\n")
    assert kept.exit_code != 0 and "E1" in runner.invoke(app, ["--config", config, "enroll", "list"]).output
    gone = runner.invoke(app, ["--config", config, "enroll", "remove", "E1", "--yes"])
    assert gone.exit_code == 0 and "removed E1" in gone.output
    assert "nobody is enrolled" in runner.invoke(app, ["--config", config, "enroll", "list"]).output
    trail = runner.invoke(app, ["--config", config, "enroll", "audit", "E1"]).output.splitlines()
    assert [line.split()[4] for line in trail] == ["enrol", "remove"] and "Tony_Blair_0001.jpg" in trail[0]


def test_cli_enroll_add_no_face_prints_reasons_and_fails(tmp_path: Path, untrained_card: Path) -> None:
    config = str(_config(tmp_path, untrained_card))
    blank = tmp_path / "blank.png"
    Image.new("RGB", (100, 100)).save(blank)
    result = CliRunner().invoke(app, ["--config", config, "enroll", "add", "E1", "--name", "X", str(blank)])
    assert isinstance(result.exception, FaceGateError) and "NO_FACE" in result.output


def test_cli_enroll_reembed_nothing_to_do(tmp_path: Path, untrained_card: Path) -> None:
    config = str(_config(tmp_path, untrained_card))
    result = CliRunner().invoke(app, ["--config", config, "enroll", "reembed"])
    assert result.exit_code == 0 and "0 templates added" in result.output


def test_add_person_tiny_bystander_ignored_tiny_subject_too_small(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, lfw_root: Path, tmp_path: Path
) -> None:
    subject = Image.open(_photos(lfw_root, "Tony_Blair", 2)[0])
    bystander = Image.open(_photos(lfw_root, "Colin_Powell", 3)[0]).resize((70, 70))
    canvas = Image.new("RGB", (420, 300), (90, 90, 90))
    canvas.paste(subject, (0, 25))
    canvas.paste(bystander, (330, 20))  # a face far behind: eyes about 12 px apart, under the quality minimum
    canvas.save(tmp_path / "with_bystander.jpg")
    canvas.resize((105, 75)).save(tmp_path / "far_away.jpg")  # the subject alone, too small to enrol
    result = _add(
        db, gallery, pipeline, embedder, "E9", "Tony", [tmp_path / "with_bystander.jpg", tmp_path / "far_away.jpg"]
    )
    reasons = {o.path.name: (o.status, o.reason) for o in result.outcomes}
    assert reasons["with_bystander.jpg"] == ("added", "")
    assert reasons["far_away.jpg"][0] == "rejected" and reasons["far_away.jpg"][1] in ("TOO_SMALL", "NO_FACE")


def test_photos_added_to_an_enrolled_person_must_be_them(db: Database, tmp_path: Path, lfw_root: Path) -> None:
    """`enroll add` to an existing id took anyone's photos ("updated E001: 2 of 2 photos added").
    With the shipped model: Tony Blair's photo on Colin Powell's record is refused with its score (nothing
    written); another photo of Colin is added; an explicit --accept-unmatched takes the stranger's."""
    embedder = Embedder()
    pipeline = FacePipeline(template=embedder.template)
    gallery = Gallery.open(db, GallerySettings(), tmp_path / "g.faiss", embedder.model_id, 128, embedder.scorer)
    runtime = Runtime(Settings(), embedder, pipeline, db, gallery)
    add_person(runtime, "E001", "Colin Powell", _photos(lfw_root, "Colin_Powell", 1))
    with pytest.raises(
        FaceGateError, match=r"Tony_Blair_0001.jpg does not look like E001 .*score 0\.8\d\d < threshold"
    ):
        add_person(runtime, "E001", None, _photos(lfw_root, "Tony_Blair", 1))
    assert _template_count(db) == 1 and len(gallery) == 1
    assert add_person(runtime, "E001", None, _photos(lfw_root, "Colin_Powell", 2)).added == 1
    assert add_person(runtime, "E001", None, _photos(lfw_root, "Tony_Blair", 1), accept_unmatched=True).added == 1


def test_every_enrolment_change_is_audited_with_who_and_where(
    db: Database, gallery: Gallery, pipeline: FacePipeline, embedder: Embedder, lfw_root: Path
) -> None:
    """Nothing recorded who enrolled what. Now enrolment, photos added (with any override), removal
    and re-embedding each leave an audit entry in the same transaction; a refused change leaves none."""
    _add(db, gallery, pipeline, embedder, "E7", "Colin", _photos(lfw_root, "Colin_Powell", 1))
    _add(db, gallery, pipeline, embedder, "E7", None, _photos(lfw_root, "Colin_Powell", 2), unmatched=True)
    with pytest.raises(FaceGateError):
        _add(db, gallery, pipeline, embedder, "E8", None, _photos(lfw_root, "Tony_Blair", 1))  # no name: refused
    remove_person(db, gallery, "E7")
    trail = audit_trail(db)
    assert [(e.action, e.employee_id) for e in trail] == [("enrol", "E7"), ("photos_added", "E7"), ("remove", "E7")]
    assert json.loads(trail[1].detail) == {
        "photos": ["Colin_Powell_0002.jpg"],
        "force": False,
        "accept_unmatched": True,
    }
    assert {(e.actor, e.host) for e in trail} == {(getpass.getuser(), socket.gethostname())}
    assert [e.id for e in audit_trail(db, "E7")] == [e.id for e in trail] and not audit_trail(db, "E8")
