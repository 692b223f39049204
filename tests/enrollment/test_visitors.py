"""The unknown visitors (enrollment.visitors) on real LFW faces with the shipped model: two walk-ups of one stranger
land in one group and another stranger's in another; dismissing takes a group away; enrolling a group makes a new
person whose templates carry the events; granted, dismissed and confirmed events stay out; bounds; the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import numpy as np
import pytest
from shipped_model import events_command, photo, shipped_runtime
from sqlalchemy import select

from enrollment.audit import audit_trail
from enrollment.confirm import review_threshold
from enrollment.people import EnrollmentRefused
from enrollment.roster import show_person
from enrollment.visitors import MAX_EVENT_IDS, cluster, dismiss_visitors, enrol_visitor, visitor_groups
from gate.decision.policy import Verdict
from gate.errors import FaceGateError
from gate.model.embedder import Embedder
from gate.runtime.parts import Runtime
from gate.store.database import Database
from gate.store.events import AccessEventRecord
from gate.store.schema import AccessEvent
from gate.store.visitors import UNMATCHED_REASONS
from gate.vision.faces import FacePipeline
from gate.vision.imageio import encode_crop, load_image

EVENT_CROP_QUALITY = 80  # as the gate keeps them (gate.runtime.loop)


def test_the_unmatched_reasons_are_the_policys_verdicts() -> None:
    assert set(UNMATCHED_REASONS) == {str(Verdict.UNKNOWN_FACE), str(Verdict.BELOW_THRESHOLD)}


def test_cluster_keeps_a_group_only_where_every_pair_reaches_the_threshold() -> None:
    # a ~ b and b ~ c, but a and c apart: single linkage would chain all three; complete linkage must not
    scores = np.array([[1.0, 0.95, 0.5], [0.95, 1.0, 0.93], [0.5, 0.93, 1.0]])
    labels = cluster(scores, threshold=0.9)
    assert len(set(labels)) == 2
    assert labels[0] == labels[1] != labels[2]
    assert len(set(cluster(np.full((3, 3), 0.99), threshold=0.9))) == 1
    assert list(cluster(np.ones((1, 1)), 0.9)) == [0]


@pytest.fixture
def runtime(tmp_path: Path, shipped: Embedder, shipped_pipeline: FacePipeline, lfw_root: Path) -> Iterator[Runtime]:
    """Colin Powell enrolled as E1."""
    yield from shipped_runtime(tmp_path, shipped, shipped_pipeline, lfw_root, {"E1": ("Colin", "Colin_Powell")})


def door_event(
    runtime: Runtime,
    image: Path,
    decision: str = "denied",
    reason: str = "BELOW_THRESHOLD",
    ago_s: float = 0.0,
    score: float = 0.5,
) -> int:
    """An access event as the gate records it, keeping the face of `image` (its aligned crop, lossy WebP), through
    the gate's pipeline; its number."""
    found = runtime.pipeline.one_face(load_image(image))
    assert not isinstance(found, str), found
    uid = uuid4().hex
    when = datetime.now(UTC) - timedelta(seconds=ago_s)
    crop = encode_crop(found.crop, EVENT_CROP_QUALITY)
    record = AccessEventRecord(when, "front", None, score, decision, reason, "E1", event_uid=uid, crop=crop)  # type: ignore[arg-type]
    runtime.database.record_event(record)
    with runtime.database.session() as session:
        return int(session.scalar(select(AccessEvent.id).where(AccessEvent.event_uid == uid)) or 0)


@pytest.fixture
def walk_ups(runtime: Runtime, lfw_root: Path) -> dict[str, list[int]]:
    """Two walk-ups of one stranger (two different photos of Tony Blair) and one of another (George W Bush)."""
    tony = [door_event(runtime, photo(lfw_root, "Tony_Blair", n), ago_s=60 * n) for n in (1, 3)]
    george = [door_event(runtime, photo(lfw_root, "George_W_Bush", 1), reason="UNKNOWN_FACE", ago_s=10)]
    return {"tony": tony, "george": george}


@pytest.mark.slow
def test_two_walk_ups_of_one_stranger_form_one_group(runtime: Runtime, walk_ups: dict[str, list[int]]) -> None:
    groups = visitor_groups(runtime)
    assert [sorted(g.event_ids) for g in groups] == [sorted(walk_ups["tony"]), walk_ups["george"]]  # largest first
    tony = groups[0]
    assert tony.size == 2 and tony.gate_ids == ["front"] and tony.representative in walk_ups["tony"]
    assert tony.first_seen < tony.last_seen
    assert [g.event_ids for g in visitor_groups(runtime, min_size=2)] == [tony.event_ids]


@pytest.mark.slow
def test_granted_and_old_events_are_not_visitors(runtime: Runtime, lfw_root: Path) -> None:
    door_event(runtime, photo(lfw_root, "Tony_Blair", 1), decision="granted", reason="GRANTED")
    door_event(runtime, photo(lfw_root, "Tony_Blair", 3), reason="NOT_LIVE")
    old = door_event(runtime, photo(lfw_root, "Tony_Blair", 6), ago_s=3 * 86400)
    assert [g.event_ids for g in visitor_groups(runtime, days=1)] == []
    assert [g.event_ids for g in visitor_groups(runtime, days=7)] == [[old]]
    # an enrolled person turned away (their nearest scored the review threshold) is theirs to confirm, not a visitor
    near = door_event(runtime, photo(lfw_root, "Tony_Blair", 4), score=review_threshold(runtime))
    assert near not in {i for g in visitor_groups(runtime, days=7) for i in g.event_ids}


@pytest.mark.slow
def test_a_dismissed_group_is_gone(runtime: Runtime, walk_ups: dict[str, list[int]]) -> None:
    assert dismiss_visitors(runtime.database, walk_ups["tony"]) == 2
    assert [g.event_ids for g in visitor_groups(runtime)] == [walk_ups["george"]]
    assert dismiss_visitors(runtime.database, walk_ups["tony"]) == 0  # dismissed already: kept as it was
    assert len(runtime.database.events(10)) == 3  # still in the access log


@pytest.mark.slow
def test_an_enrolled_visitor_is_a_new_person_whose_templates_carry_the_events(
    runtime: Runtime, walk_ups: dict[str, list[int]], lfw_root: Path
) -> None:
    result = enrol_visitor(runtime, walk_ups["tony"], "E050", "Tony")
    assert result.created and result.added == 2
    templates = show_person(runtime.database, "E050").templates
    assert sorted((t.origin, t.event_id) for t in templates) == [("event", i) for i in sorted(walk_ups["tony"])]
    entry = [e for e in audit_trail(runtime.database, "E050") if e.action == "enrol"][0]
    assert all(str(i) in entry.detail for i in walk_ups["tony"])
    assert [g.event_ids for g in visitor_groups(runtime)] == [walk_ups["george"]]  # confirmed: no longer unknown
    found = runtime.pipeline.one_face(load_image(photo(lfw_root, "Tony_Blair", 6)))
    assert not isinstance(found, str)
    match = runtime.gallery.search(runtime.embedder.embed(found.crop[None]))[0]
    assert match is not None and match.employee_id == "E050"  # a third photo of him now matches the new person


@pytest.mark.slow
def test_enrolling_refuses_strangers_together_an_enrolled_id_and_gone_events(
    runtime: Runtime, walk_ups: dict[str, list[int]], lfw_root: Path
) -> None:
    mixed = walk_ups["tony"][:1] + walk_ups["george"]
    with pytest.raises(FaceGateError, match="not all of one person"):
        enrol_visitor(runtime, mixed, "E050", "Two people")
    with pytest.raises(FaceGateError, match="E1 is enrolled already"):
        enrol_visitor(runtime, walk_ups["tony"], "E1", "Colin")
    dismiss_visitors(runtime.database, walk_ups["george"])
    with pytest.raises(FaceGateError, match=f"event {walk_ups['george'][0]} is not an unknown visitor"):
        enrol_visitor(runtime, walk_ups["george"], "E051", "George")
    assert show_person(runtime.database, "E1").templates and len(visitor_groups(runtime)) == 1
    with pytest.raises(EnrollmentRefused, match="looks like enrolled E1"):  # refused as a photo would be
        colin = door_event(runtime, photo(lfw_root, "Colin_Powell", 3))
        enrol_visitor(runtime, [colin], "E052", "Not Colin")


def test_bounds_are_refused_in_one_line(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    with pytest.raises(FaceGateError, match="at most"):
        dismiss_visitors(database, list(range(1, MAX_EVENT_IDS + 2)))
    with pytest.raises(FaceGateError, match="at least one"):
        dismiss_visitors(database, [])
    with pytest.raises(FaceGateError, match="event number is 1 to"):
        dismiss_visitors(database, [0])
    database.close()


@pytest.mark.slow
def test_the_cli_lists_dismisses_and_enrols(runtime: Runtime, walk_ups: dict[str, list[int]], tmp_path: Path) -> None:
    facegate = events_command(tmp_path)

    tony, george = walk_ups["tony"], walk_ups["george"]
    table = facegate("visitors").splitlines()
    assert table[0].split()[:3] == ["group", "size", "first"] and len(table) == 3
    assert table[1].split()[:2] == ["1", "2"] and table[1].split()[-2:] == [str(i) for i in tony]
    assert table[2].split()[-1] == str(george[0]) and "front" in table[2]
    assert facegate("dismiss", str(george[0])) == "1 of 1 events dismissed from the unknown visitors\n"
    assert len(facegate("visitors").splitlines()) == 2
    out = facegate("enrol-visitor", *map(str, tony), "--id", "E050", "--name", "Tony")
    assert out.endswith("E050 (Tony) enrolled from 2 faces at the door\n") and f"event {tony[0]}: added" in out
    assert facegate("visitors") == "no unknown visitors\n"
    assert "BELOW_THRESHOLD" in facegate("--decision", "denied")  # the access log is still the group's default
    with pytest.raises(FaceGateError, match="at most"):
        facegate("visitors", "--limit", "999999")
