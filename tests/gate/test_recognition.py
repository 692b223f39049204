"""The shipped model at the gate's configured threshold, on LFW DevTest people it never saw in training:
held-out photos of enrolled people are accepted and strangers refused, measured as rates over many people."""

from __future__ import annotations

from pathlib import Path

import pytest

from enrollment.people import add_person
from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.config import Settings, settings_from_dict
from gate.decision.policy import threshold_for
from gate.door.actuators import HoldsNothing
from gate.door.requests import DoorOutcome
from gate.matching.gallery import Gallery
from gate.matching.gallery import open_gallery as open_model_gallery
from gate.model.embedder import Embedder
from gate.runtime.parts import Runtime
from gate.runtime.run import run_gate
from gate.store.database import Database
from gate.vision.faces import FacePipeline
from gate.vision.imageio import image_files, load_image
from gate.vision.sources import VideoFileSource
from training.datasets import read_people

ENROLLED = 12  # DevTest people with 4+ photos: 3 enrolled, the 4th probes
STRANGERS = 40  # DevTest people with a single photo


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()  # the shipped model


@pytest.fixture(scope="module")
def pipeline(embedder: Embedder) -> FacePipeline:
    return FacePipeline(template=embedder.template)


@pytest.fixture(scope="module")
def dev_test(data_root: Path) -> tuple[list[str], list[str]]:
    people = read_people(data_root / "lfw" / "peopleDevTest.txt")
    several = [name for name, n in sorted(people.items()) if n >= 4][:ENROLLED]
    singles = [name for name, n in sorted(people.items()) if n == 1][:STRANGERS]
    return several, singles


def settings_in(tmp_path: Path, **decision: object) -> Settings:
    return settings_from_dict(
        {
            "decision": {"track_timeout_s": 0.5, "votes_needed": 2, "window": 4, **decision},
            "database": {"url": f"sqlite:///{tmp_path / 'gate.db'}"},
            "gallery": {"index_path": str(tmp_path / "gallery.faiss")},
        }
    )


def open_gallery(settings: Settings, embedder: Embedder) -> tuple[Database, Gallery]:
    database = Database(settings.database_url)
    return database, open_model_gallery(database, settings, embedder)


def enrol(people, lfw_root, database, gallery, pipeline, embedder, threshold) -> None:  # noqa: ANN001
    for index, name in enumerate(people):
        photos = image_files(lfw_root / name)[:3]
        runtime = Runtime(Settings(), embedder, pipeline, database, gallery)
        add_person(runtime, f"E{index}", name, photos, force=True, threshold=threshold)


def best_match(photo: Path, pipeline: FacePipeline, embedder: Embedder, gallery: Gallery):  # noqa: ANN201
    crops = [c for c in pipeline.process(load_image(photo)) if c.rejected is None]
    if not crops:
        return None
    crop = max(crops, key=lambda c: c.face.area)
    return gallery.search(embedder.embed(crop.crop[None]))[0]


def test_shipped_model_enrolled_accepted_strangers_refused_at_configured_far(
    tmp_path, lfw_root, dev_test, pipeline, embedder
) -> None:
    enrolled, strangers = dev_test
    settings = settings_in(tmp_path, target_far="0.001")
    threshold = threshold_for(settings.decision, embedder.card)
    database, gallery = open_gallery(settings, embedder)
    enrol(enrolled, lfw_root, database, gallery, pipeline, embedder, threshold)

    right = 0
    for index, name in enumerate(enrolled):
        match = best_match(image_files(lfw_root / name)[3], pipeline, embedder, gallery)
        right += match is not None and match.score >= threshold and match.employee_id == f"E{index}"
    false_accepts = 0
    for name in strangers:
        match = best_match(image_files(lfw_root / name)[0], pipeline, embedder, gallery)
        false_accepts += match is not None and match.score >= threshold
    # measured with the shipped model at FAR 1e-3: 11 of 12 accepted as themselves, 4 of 40 strangers let in.
    # A stranger meets 36 templates, so the gate's false-accept rate is ~36x the per-comparison FAR.
    assert right / len(enrolled) >= 0.75
    assert false_accepts / len(strangers) <= 0.15


def test_daemon_on_walk_up_video_opens_for_enrolled_not_for_stranger(
    tmp_path, lfw_root, dev_test, pipeline, embedder
) -> None:
    enrolled, strangers = dev_test
    settings = settings_in(tmp_path, target_far="0.001")
    database, gallery = open_gallery(settings, embedder)
    threshold = threshold_for(settings.decision, embedder.card)
    enrol(enrolled[:2], lfw_root, database, gallery, pipeline, embedder, threshold)
    walkers = [
        (enrolled[0], load_image(image_files(lfw_root / enrolled[0])[3])),
        (strangers[0], load_image(image_files(lfw_root / strangers[0])[0])),
    ]
    spec = TurnstileSpec(width=320, height=240, fps=10, walk_s=2.0, gap_s=1.0, seed=2)
    video, walks = render_turnstile(walkers, tmp_path / "walk.mp4", spec)

    class Doors(HoldsNothing):
        opened: list = []

        def open(self, request) -> DoorOutcome:  # noqa: ANN001
            self.opened.append(request)
            return DoorOutcome.OPENED

    doors = Doors()
    summary = run_gate(Runtime(settings, embedder, pipeline, database, gallery), VideoFileSource(video), doors)
    events = database.events(limit=100)
    assert [r.person_id for r in doors.opened] == ["E0"]
    assert any(e.decision == "granted" and e.employee_id == "E0" for e in events)
    assert any(e.decision == "denied" and e.employee_id is None for e in events)
    assert len(events) == sum(1 for t in summary.tracks if t.decision is not None)


def probe_embedding(photo: Path, pipeline: FacePipeline, embedder: Embedder):  # noqa: ANN201
    crops = [c for c in pipeline.process(load_image(photo)) if c.rejected is None]
    return embedder.embed(max(crops, key=lambda c: c.face.area).crop[None]) if crops else None


def test_card_and_face_verifies_the_claimed_person_only_and_lets_in_fewer_strangers(
    tmp_path, lfw_root, dev_test, pipeline, embedder
) -> None:
    """Presentation attacks (a): 1:1 against the badge's person. A stranger must now resemble that one
    person, not any of the 12 enrolled, so fewer get in than 1:N lets in at the same threshold."""
    enrolled, strangers = dev_test
    settings = settings_in(tmp_path, target_far="0.001")
    threshold = threshold_for(settings.decision, embedder.card)
    database, gallery = open_gallery(settings, embedder)
    enrol(enrolled, lfw_root, database, gallery, pipeline, embedder, threshold)
    own = other = 0
    for index, name in enumerate(enrolled):
        query = probe_embedding(image_files(lfw_root / name)[3], pipeline, embedder)
        own += query is not None and gallery.verify(query, f"E{index}")[0].score >= threshold
        neighbour = f"E{(index + 1) % len(enrolled)}"  # an employee with someone else's badge
        other += query is not None and gallery.verify(query, neighbour)[0].score >= threshold
    loose = embedder.card.threshold("0.01")  # loose enough for 1:N to let strangers in, to compare
    one_to_one = one_to_many = 0
    for index, name in enumerate(strangers):
        query = probe_embedding(image_files(lfw_root / name)[0], pipeline, embedder)
        if query is None:
            continue
        one_to_one += gallery.verify(query, f"E{index % len(enrolled)}")[0].score >= loose
        one_to_many += gallery.search(query)[0].score >= loose
    # measured (shipped model, FAR 1e-2 threshold): 1:1 lets in 2 of 40 strangers, 1:N 10 of 40
    assert own / len(enrolled) >= 0.75 and other == 0
    assert gallery.verify(query, "nobody") == [None]
    assert one_to_one < one_to_many and one_to_one <= 0.05 * len(strangers)
