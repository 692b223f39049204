"""Confirming a door event's face (enrollment.confirm) on real LFW faces with the shipped model: a confirmed face
becomes a template the gallery then matches another photo with; the wrong person, a grant, a second confirmation
and a damaged or dark face are refused with nothing written; undo removes exactly that template; the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest
from shipped_model import events_command, photo, shipped_runtime

from enrollment.audit import audit_trail
from enrollment.confirm import confirm_event, undo_confirm
from enrollment.roster import show_person
from gate.config import settings_from_dict
from gate.errors import FaceGateError, NotFound
from gate.model.embedder import Embedder
from gate.runtime.parts import Runtime
from gate.store.events import AccessEventRecord
from gate.vision.faces import FacePipeline
from gate.vision.imageio import encode_crop, load_image

pytestmark = pytest.mark.slow  # real faces through MTCNN and the shipped network

EVENT_CROP_QUALITY = 80  # as the gate keeps them (gate.runtime.loop)


@pytest.fixture
def runtime(tmp_path: Path, shipped: Embedder, shipped_pipeline: FacePipeline, lfw_root: Path) -> Iterator[Runtime]:
    """Colin Powell enrolled as E1 and Tony Blair as E2, two photos each."""
    yield from shipped_runtime(
        tmp_path, shipped, shipped_pipeline, lfw_root, {"E1": ("Colin", "Colin_Powell"), "E2": ("Tony", "Tony_Blair")}
    )


def door_event(runtime: Runtime, image: Path | None, decision: str = "denied", crop: bytes | None = None) -> int:
    """An access event as the gate records it, keeping the face of `image` (its aligned crop, lossy WebP); its
    number."""
    if image is not None:
        found = runtime.pipeline.one_face(load_image(image))
        assert not isinstance(found, str), found
        crop = encode_crop(found.crop, EVENT_CROP_QUALITY)
    uid = uuid4().hex
    reason = "GRANTED" if decision == "granted" else "BELOW_THRESHOLD"
    record = AccessEventRecord(datetime.now(UTC), "front", None, 0.9, decision, reason, event_uid=uid, crop=crop)  # type: ignore[arg-type]
    runtime.database.record_event(record)
    return runtime.database.event_marks([uid])[uid].event_id


def templates_of(runtime: Runtime, employee_id: str) -> list[tuple[int, str, int | None]]:
    return [(t.id, t.origin, t.event_id) for t in show_person(runtime.database, employee_id).templates]


def score_for(runtime: Runtime, image: Path, employee_id: str) -> float:
    found = runtime.pipeline.one_face(load_image(image))
    assert not isinstance(found, str)
    match = runtime.gallery.verify(runtime.embedder.embed(found.crop[None]), employee_id)[0]
    assert match is not None
    return match.score


def test_a_confirmed_face_becomes_a_template_that_matches_the_person_better(runtime: Runtime, lfw_root: Path) -> None:
    later = photo(lfw_root, "Colin_Powell", 6)
    before = score_for(runtime, later, "E1")
    event = door_event(runtime, photo(lfw_root, "Colin_Powell", 4))
    done = confirm_event(runtime, event, "E1")
    assert done.employee_id == "E1" and done.score >= done.review_threshold and done.review_far == "0.01"
    assert done.nearest_other is not None and done.nearest_other.employee_id == "E2"
    assert done.nearest_other.score < min(done.score, runtime.threshold)
    assert templates_of(runtime, "E1")[-1] == (done.template_id, "event", event)
    assert done.template_id in runtime.gallery  # the gallery in step with the database
    after = score_for(runtime, later, "E1")
    assert after > before + 0.005, (before, after)  # measured: 0.967 -> 0.978
    uid = runtime.database.events(1)[0].event_uid or ""
    assert runtime.database.event_marks([uid])[uid].confirmed_as == "E1"  # what the events list shows


def test_the_wrong_person_is_refused_with_the_scores_and_nothing_written(runtime: Runtime, lfw_root: Path) -> None:
    event = door_event(runtime, photo(lfw_root, "Tony_Blair", 3))  # Tony at the door ...
    with pytest.raises(FaceGateError) as refused:
        confirm_event(runtime, event, "E1")  # ... said to be Colin
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"event {event}'s face")
    assert "score 0." in message and ("E2" in message or "review threshold" in message), message
    assert [origin for _, origin, _ in templates_of(runtime, "E1")] == ["photo", "photo"]
    assert len(runtime.gallery) == 4
    assert not [e for e in audit_trail(runtime.database) if e.action == "confirm_event"]


def test_a_stranger_is_below_the_review_threshold(runtime: Runtime, lfw_root: Path) -> None:
    event = door_event(runtime, photo(lfw_root, "George_W_Bush", 1))
    with pytest.raises(FaceGateError, match=r"does not look like E1 \(Colin\): score 0\.\d+ < review threshold 0\.908"):
        confirm_event(runtime, event, "E1")


def test_a_grant_an_unknown_event_or_person_a_second_confirmation_and_a_bad_face_are_refused(
    runtime: Runtime, lfw_root: Path
) -> None:
    granted = door_event(runtime, photo(lfw_root, "Colin_Powell", 4), decision="granted")
    with pytest.raises(FaceGateError, match=f"event {granted} was granted"):
        confirm_event(runtime, granted, "E1")
    with pytest.raises(NotFound, match="no access event 9999"):
        confirm_event(runtime, 9999, "E1")
    denied = door_event(runtime, photo(lfw_root, "Colin_Powell", 4))
    with pytest.raises(NotFound, match="no person with employee id 'E9'"):
        confirm_event(runtime, denied, "E9")
    confirm_event(runtime, denied, "E1")
    with pytest.raises(FaceGateError, match=f"event {denied} is already confirmed as E1"):
        confirm_event(runtime, denied, "E2")
    faceless = door_event(runtime, None)
    with pytest.raises(FaceGateError, match="keeps no face"):
        confirm_event(runtime, faceless, "E1")
    dark = door_event(runtime, None, crop=encode_crop(np.full((150, 150, 3), 8, dtype=np.uint8)))
    with pytest.raises(FaceGateError, match="too dark: mean grey level 8"):
        confirm_event(runtime, dark, "E1")
    blank = door_event(runtime, None, crop=encode_crop(np.full((150, 150, 3), 128, dtype=np.uint8)))
    with pytest.raises(FaceGateError, match="fails the quality gate again: NO_FACE"):
        confirm_event(runtime, blank, "E1")
    other_model = door_event(runtime, None, crop=encode_crop(np.full((112, 112, 3), 128, dtype=np.uint8)))
    with pytest.raises(FaceGateError, match=r"cut for another model \(112 px; the model in use takes 150 px\)"):
        confirm_event(runtime, other_model, "E1")
    assert [e.action for e in audit_trail(runtime.database, "E1")].count("confirm_event") == 1


def test_undo_removes_exactly_that_template_and_both_are_audited(runtime: Runtime, lfw_root: Path) -> None:
    first = confirm_event(runtime, door_event(runtime, photo(lfw_root, "Colin_Powell", 4)), "E1")
    second = confirm_event(runtime, door_event(runtime, photo(lfw_root, "Colin_Powell", 5)), "E1")
    undone = undo_confirm(runtime.database, runtime.gallery, first.event_id)
    assert undone.employee_id == "E1" and [t.id for t in undone.templates] == [first.template_id]
    left = templates_of(runtime, "E1")
    assert [origin for _, origin, _ in left] == ["photo", "photo", "event"] and left[-1][0] == second.template_id
    assert first.template_id not in runtime.gallery and second.template_id in runtime.gallery
    trail = [(e.action, json.loads(e.detail)) for e in audit_trail(runtime.database, "E1")]
    confirmed = [d for action, d in trail if action == "confirm_event"]
    assert [(d["event"], d["template"]) for d in confirmed] == [
        (first.event_id, first.template_id),
        (second.event_id, second.template_id),
    ]
    assert confirmed[0]["score"] == round(first.score, 4) and confirmed[0]["review_far"] == "0.01"
    undos = [d for action, d in trail if action == "undo_confirm"]
    assert [(d["event"], d["template"], d["origin"]) for d in undos] == [(first.event_id, first.template_id, "event")]
    with pytest.raises(NotFound, match=f"event {first.event_id} was not confirmed as anyone"):
        undo_confirm(runtime.database, runtime.gallery, first.event_id)
    confirm_event(runtime, first.event_id, "E1")  # confirmable again once undone


def test_a_stricter_review_far_holds_and_one_no_card_has_is_refused(runtime: Runtime, lfw_root: Path) -> None:
    event = door_event(runtime, photo(lfw_root, "Colin_Powell", 4))
    settings = settings_from_dict({"enrollment": {"review_far": "0.00001"}})
    strict = Runtime(settings, runtime.embedder, runtime.pipeline, runtime.database, runtime.gallery)
    done = confirm_event(strict, event, "E1")  # the shipped card has 1e-5: the stricter review holds too
    assert done.review_far == "0.00001" and done.review_threshold > 0.95
    with pytest.raises(FaceGateError, match="review_far"):
        settings_from_dict({"enrollment": {"review_far": "0.05"}})


def test_the_cli_confirms_and_undoes(runtime: Runtime, lfw_root: Path, tmp_path: Path) -> None:
    event = door_event(runtime, photo(lfw_root, "Colin_Powell", 4))
    facegate = events_command(tmp_path)

    with pytest.raises(FaceGateError) as refused:
        facegate("confirm", str(event), "E2")
    assert "\n" not in str(refused.value) and "E2" in str(refused.value)
    out = facegate("confirm", str(event), "E1")
    assert out.startswith(f"event {event} confirmed as E1 (Colin): template ") and "review threshold" in out
    assert f"{event} (confirmed as E1)" in facegate().splitlines()[1]
    assert facegate("undo-confirm", str(event)).endswith("of E1 removed\n")
    with pytest.raises(NotFound, match="was not confirmed as anyone"):
        facegate("undo-confirm", str(event))
