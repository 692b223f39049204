"""The second-visit evaluation's bookkeeping on hand-made recordings (which events are confirmed, the re-searched
matches, the rates of the right walks), then one small real run through `facegate evaluate-gate --second-visit`."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from facegate_process import facegate_command

from evaluation.replay import Event, Observation, Recording, TrackEnd, Truth, replay, walk_outcomes
from evaluation.second_visit import (
    Denial,
    confirm_denials,
    event_ids_by_track,
    far,
    frr,
    misidentified,
    pick_two_visits,
    refusal_kind,
    researched,
    same_matches,
    visit_denials,
)
from gate.config import DecisionSettings, GallerySettings
from gate.errors import FaceGateError
from gate.matching.search import Match, TemplateSet
from gate.model.scoring import Scorer
from gate.store.people import Owner

FPS = 10.0
POLICY = DecisionSettings(votes_needed=2, window=3, cooldown_s=0.0)
THRESHOLD = 0.5


def hit(employee_id: str, score: float) -> Match:
    return Match(employee_id, employee_id.lower(), score)


def track(track_id: int, first: int, matches: list[Match | None]) -> list[Event]:
    events: list[Event] = [Observation(track_id, first + i, (first + i) / FPS, m) for i, m in enumerate(matches)]
    end = first + len(matches)
    events.append(TrackEnd(track_id, end, end / FPS, first, end - 1, len(matches)))
    return events


# A (E1) walks and is kept out, seen as two tracks; S, a stranger, is kept out; B (E2) is let in; C (E3) is let in as
# E1 (misidentified); D (E4) shows no usable face.
TRUTHS = [
    Truth("A", "employee", "E1", 0, 19),
    Truth("S", "stranger", None, 20, 39),
    Truth("B", "employee", "E2", 40, 59),
    Truth("C", "employee", "E3", 60, 79),
    Truth("D", "employee", "E4", 80, 99),
]
LOW = [hit("E1", 0.3)] * 3


def visit_one() -> Recording:
    events = track(1, 0, LOW) + track(2, 10, LOW) + track(3, 20, [hit("E2", 0.2)] * 3)
    events += track(4, 40, [hit("E2", 0.9)] * 3) + track(5, 60, [hit("E1", 0.8)] * 3)
    decided = replay(events, POLICY, THRESHOLD)
    live = {i: (d.verdict, d.employee_id) for i, d in decided.items()}
    order = [d.track_id for d in sorted(decided.values(), key=lambda d: (d.frame, d.track_id))]
    return Recording(events, FPS, 100, {}, {}, live, order)


def test_only_the_denied_events_of_kept_out_employees_are_confirmed():
    recording = visit_one()
    outcomes = walk_outcomes(TRUTHS, recording.tracks, replay(recording.events, POLICY, THRESHOLD))
    assert [o.granted for o in outcomes] == [False, False, True, True, False]
    events = event_ids_by_track(recording, [101, 102, 103, 104, 105])
    denials = visit_denials(TRUTHS, outcomes, recording, events)
    # both of A's tracks, as A's own id; not the stranger, not B (let in), not C (let in as someone else), nothing
    # for D (no event)
    assert [(d.event_id, d.employee_id, d.person, d.track_id) for d in denials] == [
        (101, "E1", "A", 1),
        (102, "E1", "A", 2),
    ]
    assert all(d.reason == "BELOW_THRESHOLD" for d in denials)
    with pytest.raises(FaceGateError, match="4 access events for 5 decisions"):
        event_ids_by_track(recording, [101, 102, 103, 104])


def test_confirm_denials_records_each_rule_answer_and_refusal_kind():
    calls = []

    def rule(runtime: object, event_id: int, employee_id: str) -> float:
        calls.append((event_id, employee_id))
        if event_id == 102:
            raise FaceGateError("event 102's face does not look like E1: score 0.80 < review threshold 0.908")
        return 0.95

    denials = [Denial(101, "E1", "A", 1, "BELOW_THRESHOLD"), Denial(102, "E1", "A", 2, "NO_AGREEMENT")]
    done = confirm_denials(None, denials, rule)  # type: ignore[arg-type]  # the rule here needs no runtime
    assert calls == [(101, "E1"), (102, "E1")]
    assert [(c.event_id, c.confirmed, c.refusal) for c in done] == [
        (101, True, None),
        (102, False, "below review threshold"),
    ]
    assert refusal_kind("event 7's face looks like E9 (Bo): score 0.950 >= 0.91 for E1") == "closer to someone else"
    assert refusal_kind("event 7's face fails the quality gate again: TOO_SMALL") == "quality"
    assert refusal_kind("event 7 keeps no face (older than [events] keep_days, or removed)") == "no face kept"
    assert refusal_kind("the database is gone") == "other"


def _templates(templates: list[tuple[str, list[float]]]) -> TemplateSet:
    """A real template set of 2-d templates, (employee id, vector) each; one person id per employee."""
    found = TemplateSet(GallerySettings(), "m", 2, Scorer())
    rows = np.array([np.array(v) / np.linalg.norm(v) for _, v in templates], dtype=np.float32)
    people = {employee_id: i for i, employee_id in enumerate(dict.fromkeys(e for e, _ in templates))}
    owners = [Owner(people[e], e, e.lower()) for e, _ in templates]
    found.add(np.arange(len(templates), dtype=np.int64), rows, owners)
    return found


def test_researched_recording_matches_the_other_gallery_and_rates_count_the_right_walks():
    """Visit two's one run searched again in the gallery before the confirmations: A's queries lie near the face
    confirmed for A, far from A's enrolled photo; with it A is let in, without it not."""
    before = _templates([("E1", [1.0, 0.0]), ("E2", [0.0, 1.0])])
    after = _templates([("E1", [1.0, 0.0]), ("E2", [0.0, 1.0]), ("E1", [0.6, 0.8])])  # E1's confirmed face
    queries = np.array([[0.6, 0.8]] * 3 + [[0.0, 1.0]] * 3, dtype=np.float32)
    events = track(1, 0, [None] * 3) + track(2, 40, [None] * 3)
    recording = Recording(events, FPS, 60, {}, {}, {}, [])
    batches = [queries[:1], queries[1:4], queries[4:]]  # as the gate searched them, frame by frame
    with_ = researched(recording, batches, after)
    without = researched(recording, batches, before)
    first = [e.match for e in with_.events if isinstance(e, Observation)][0]
    assert first is not None and first.employee_id == "E1" and first.score == pytest.approx(1.0)
    assert not same_matches(with_, without) and same_matches(with_, researched(recording, [queries], after))
    truths = [Truth("A", "employee", "E1", 0, 19), Truth("B", "employee", "E2", 40, 59)]
    rated = {}
    for name, rec in (("with", with_), ("without", without)):
        outcomes = walk_outcomes(truths, rec.tracks, replay(rec.events, POLICY, 0.9))
        rated[name] = (frr(truths, outcomes), frr(truths, outcomes, {"A"}), misidentified(truths, outcomes))
    assert (rated["with"][0].count, rated["with"][0].of, rated["with"][1].count) == (0, 2, 0)
    assert (rated["without"][0].count, rated["without"][1].count, rated["without"][1].of) == (1, 1, 1)
    assert rated["without"][2].count == 0 and far(truths, outcomes).of == 0
    with pytest.raises(FaceGateError, match="4 gallery queries for 6 observations"):
        researched(recording, batches[:2], before)


def _fake_lfw(root: Path, counts: dict[str, int]) -> tuple[Path, Path]:
    images = root / "lfw-deepfunneled"
    for name, count in counts.items():
        (images / name).mkdir(parents=True)
        for i in range(count):
            (images / name / f"{name}_{i + 1:04d}.jpg").write_bytes(b"")
    people = root / "peopleDevTest.txt"
    people.write_text(f"{len(counts)}\n" + "".join(f"{name}\t{count}\n" for name, count in counts.items()))
    return images, people


def test_pick_two_visits_two_different_unenrolled_photos():
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        images, people = _fake_lfw(Path(folder), {"A": 3, "B": 2, "C": 1, "D": 7, "E": 1, "F": 4})
        one, two = pick_two_visits(images, people, 3, 3, seed=2)
        assert (one, two) == pick_two_visits(images, people, 3, 3, seed=2)
        first = {w.person: w for w in one}
        assert {w.person for w in one} == {w.person for w in two} and len(one) == 6
        employees = [w for w in two if w.role == "employee"]
        assert {w.person for w in employees} == {"A", "D", "F"}  # the only ones with 3+ photos
        for walker in employees:
            earlier = first[walker.person]
            assert walker.walk_photo != earlier.walk_photo and walker.enrol_photos == earlier.enrol_photos
            assert not {walker.walk_photo, earlier.walk_photo} & set(walker.enrol_photos)
            assert 1 <= len(walker.enrol_photos) <= 4
        strangers = [w for w in two if w.role == "stranger"]
        for walker in strangers:  # a different photo when there is one (B has two; C and E one)
            assert (walker.walk_photo != first[walker.person].walk_photo) == (walker.person == "B")
        with pytest.raises(FaceGateError, match="3 people with 3\\+ photos, 4 employees"):
            pick_two_visits(images, people, 4, 1)


# --- the command ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("evaluate_extra")
def test_second_visit_end_to_end_small(tmp_path: Path, data_root: Path):
    """Two employees and a stranger walk twice; a strict threshold keeps the employees out on visit one, so their
    faces are offered to the confirmation rule; what it confirmed is in the database as templates from events."""
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/unused.db"\n[decision]\nthreshold = 0.99\n')
    out = tmp_path / "eval"
    command = facegate_command(
        "--config", str(config), "evaluate-gate", "--employees", "2", "--strangers", "1", "--out", str(out),
        "--data", str(data_root), "--policies", "1/1,3/5", "--seed", "1", "--second-visit",
    )  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "second-visit.json").read_text())
    assert all(report["checks"].values()), report["checks"]
    denials = report["denials"]
    assert denials["walks_kept_out"] == report["setup"]["enrolled"] >= 1  # 0.99: nobody is let in
    assert denials["confirmed"] + denials["refused"] == denials["events"] == len(denials["items"])
    with sqlite3.connect(out / "gate.db") as db:
        made = db.execute(
            "SELECT t.event_id, p.employee_id, e.decision FROM templates t JOIN people p ON p.id = t.person_id"
            " JOIN access_events e ON e.id = t.event_id WHERE t.origin = 'event' ORDER BY t.event_id"
        ).fetchall()
    confirmed = [(i["event_id"], i["employee_id"], "denied") for i in denials["items"] if i["confirmed"]]
    assert made == sorted(confirmed)
    point = report["configured"]
    for visit in ("visit_one", "visit_two_without", "visit_two_with"):
        assert point[visit]["frr"]["of"] == report["setup"]["enrolled"] and point[visit]["far"]["of"] == 1
    assert len(report["grid"]) == 2 * len(report["setup"]["thresholds"])
    assert (out / "second-visit.png").stat().st_size > 10_000
    assert "Visit one's denials, confirmed" in (out / "second-visit.md").read_text()
