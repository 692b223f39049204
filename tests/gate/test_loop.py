"""The gate loop end to end on a turnstile video of LFW people: real MTCNN, FAISS, SQLite, OpenCV."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from enrollment.people import add_person
from evaluation.head_motion import FLAT, HEAD, ClipSpec, clip_frames, draw_motion
from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.config import CardSettings, LivenessSettings, Settings, settings_from_dict
from gate.decision.policy import Verdict
from gate.door.requests import DoorOutcome, DoorRequest
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.model.embedder import Embedder
from gate.runtime.loop import GateLoop
from gate.runtime.parts import Runtime
from gate.runtime.recorder import DOOR_FAILED
from gate.runtime.run import run_gate
from gate.store.database import Database
from gate.store.event_log import EventLog
from gate.store.events import AccessEventRecord
from gate.vision.camera_state import CameraState
from gate.vision.faces import FacePipeline
from gate.vision.imageio import decode_crop, load_image
from gate.vision.sources import Frame, VideoFileSource

SPEC = TurnstileSpec(width=320, height=240, fps=10, walk_s=1.5, gap_s=1.0, seed=1)


class Doors:
    """An actuator that remembers whom it opened for."""

    def __init__(self) -> None:
        self.opened: list[DoorRequest] = []
        self.closed = False

    def open(self, request: DoorRequest) -> DoorOutcome:
        self.opened.append(request)
        return DoorOutcome.OPENED

    def close(self) -> None:
        self.closed = True


def gate_settings(tmp_path: Path, **decision: float) -> Settings:
    return settings_from_dict(
        {
            "camera": {"gate_id": "test-door"},
            "decision": {"track_timeout_s": 0.5, "votes_needed": 2, "window": 3, **decision},
            "database": {"url": f"sqlite:///{tmp_path / 'gate.db'}", "journal_path": str(tmp_path / "events.journal")},
            "gallery": {"index_path": str(tmp_path / "gallery.faiss")},
        }
    )


def open_gate(
    settings: Settings, embedder: Embedder, pipeline: FacePipeline, enrol: tuple[str, Path] | None
) -> tuple[Database, Gallery]:
    database = Database(settings.database_url)
    index_path = settings.resolve(settings.gallery.index_path)
    gallery = Gallery.open(
        database, settings.gallery, index_path, embedder.model_id, embedder.card.embedding_size, embedder.scorer
    )
    if enrol is not None:
        runtime = Runtime(settings, embedder, pipeline, database, gallery)
        add_person(runtime, "e1", enrol[0], [enrol[1]], threshold=0.99)
    return database, gallery


@pytest.fixture(scope="module")
def video(people: list[tuple[str, list[Path]]], tmp_path_factory: pytest.TempPathFactory):
    photos = [(name, load_image(paths[0])) for name, paths in people]
    return render_turnstile(photos, tmp_path_factory.mktemp("video") / "walk.mp4", SPEC)


def test_run_gate_turnstile_every_track_decided_and_recorded(tmp_path, embedder, pipeline, people, video) -> None:
    # threshold -1: every match is a vote (the untrained model's scores mean nothing); the stranger is then
    # taken for the one enrolled person within the cooldown, so the second walk is refused with COOLDOWN.
    settings = gate_settings(tmp_path, threshold=-1.0, allow_loose_threshold=True, cooldown_s=60.0)
    name, photos = people[0]
    database, gallery = open_gate(settings, embedder, pipeline, enrol=(name, photos[1]))
    doors = Doors()
    path, walks = video
    runtime = Runtime(settings, embedder, pipeline, database, gallery)
    summary = run_gate(runtime, VideoFileSource(path), doors, annotate=tmp_path / "annotated.mp4")
    assert doors.closed  # the gate releases its actuator (an MQTT door's broker connection) when it stops
    assert summary.frames == summary.processed == walks[-1].last_frame + 1 + round(SPEC.gap_s * SPEC.fps)
    decided = [t for t in summary.tracks if t.usable_frames]
    assert decided and all(t.decision is not None for t in decided)
    events = database.events(limit=100)
    assert len(events) == len(summary.decisions) == len(decided)
    for walk in walks:
        inside = [t for t in decided if walk.first_frame <= t.first_frame <= walk.last_frame]
        assert len(inside) == 1, f"{walk.person}: {inside}"
        assert inside[0].frames_to_decision <= walk.last_frame - inside[0].first_frame + 1
    verdicts = [d.verdict for d in summary.decisions]
    assert verdicts == [Verdict.GRANTED, Verdict.COOLDOWN]
    assert [(r.person_id, r.name, r.gate_id) for r in doors.opened] == [("e1", name, "test-door")]
    assert sorted((e.decision, e.reason, e.employee_id, e.door) for e in events) == [
        ("denied", "COOLDOWN", "e1", None),
        ("granted", "GRANTED", "e1", "opened"),
    ]
    assert all(e.gate_id == "test-door" and e.score is not None for e in events)
    faces = [decode_crop(database.event_face(e.event_uid)) for e in events]  # the deciding frame's face, kept
    assert all(face.shape == (embedder.template.size, embedder.template.size, 3) for face in faces)
    [status] = database.gate_statuses()  # the heartbeat: written at start, when due, and at the end
    assert (status.gate_id, status.frames, status.last_decision) == ("test-door", summary.frames, "denied")
    annotated = cv2.VideoCapture(str(tmp_path / "annotated.mp4"))
    assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == summary.frames
    annotated.release()


class StopsAt:
    """A real video source that sends this process SIGTERM while handing out frame `index`."""

    live = False  # a recording
    gave_up = False

    def __init__(self, source: VideoFileSource, index: int) -> None:
        self.source, self.index = source, index
        self.fps, self.description = source.fps, source.description
        self.closed = False

    @property
    def state(self) -> CameraState:
        return self.source.state

    def frames(self) -> Iterator[Frame]:
        for frame in self.source.frames():
            if frame.index == self.index:
                signal.raise_signal(signal.SIGTERM)
            yield frame

    def close(self) -> None:
        self.source.close()
        self.closed = True


def test_run_gate_sigterm_finishes_frame_and_closes_source(tmp_path, embedder, pipeline, video) -> None:
    settings = gate_settings(tmp_path)
    database, gallery = open_gate(settings, embedder, pipeline, enrol=None)
    source = StopsAt(VideoFileSource(video[0]), index=2)
    previous = signal.getsignal(signal.SIGTERM)
    summary = run_gate(Runtime(settings, embedder, pipeline, database, gallery), source, Doors())
    assert summary.stopped_by_signal and source.closed
    assert summary.frames == summary.processed == 3
    assert signal.getsignal(signal.SIGTERM) is previous


def test_run_gate_process_every_skips_frames(tmp_path, embedder, pipeline, video) -> None:
    settings = settings_from_dict(
        {**gate_settings(tmp_path).model_dump(exclude={"base_dir"}), "camera": {"process_every": 4}}
    )
    database, gallery = open_gate(settings, embedder, pipeline, enrol=None)
    source = StopsAt(VideoFileSource(video[0]), index=9)
    summary = run_gate(Runtime(settings, embedder, pipeline, database, gallery), source, Doors())
    assert (summary.frames, summary.processed) == (10, 3)


class StuckDoor(Doors):
    """An actuator whose door never opens (a relay that fails, a controller that times out)."""

    def open(self, request: DoorRequest) -> DoorOutcome:
        super().open(request)
        return DoorOutcome.TIMED_OUT


def test_a_door_that_did_not_open_is_recorded_as_such_not_as_a_grant(tmp_path, embedder, pipeline, people, video):
    """When the actuator failed, the access event still said `granted`."""
    settings = gate_settings(tmp_path, threshold=-1.0, allow_loose_threshold=True, cooldown_s=60.0)
    name, photos = people[0]
    database, gallery = open_gate(settings, embedder, pipeline, enrol=(name, photos[1]))
    doors = StuckDoor()
    summary = run_gate(Runtime(settings, embedder, pipeline, database, gallery), VideoFileSource(video[0]), doors)
    assert [d.verdict for d in summary.decisions][0] == Verdict.GRANTED and len(doors.opened) == 1
    events = sorted((e.decision, e.reason, e.door) for e in database.events(limit=100))
    assert ("denied", DOOR_FAILED, "timed_out") in events and not any(e[0] == "granted" for e in events)


def test_a_denial_records_the_nearest_enrolled_person_and_their_score(tmp_path, embedder, pipeline, people, video):
    """Denied events now name their nearest candidate (with its score), for audits."""
    settings = gate_settings(tmp_path, threshold=0.99999)  # nobody passes: every track is denied below it
    name, photos = people[0]
    database, gallery = open_gate(settings, embedder, pipeline, enrol=(name, photos[1]))
    summary = run_gate(Runtime(settings, embedder, pipeline, database, gallery), VideoFileSource(video[0]), Doors())
    events = database.events(limit=100)
    assert events and len(events) == len(summary.decisions)
    assert all(e.decision == "denied" and e.reason == "BELOW_THRESHOLD" for e in events)
    assert all(e.candidate_id == "e1" and e.employee_id is None and e.score is not None for e in events)


def test_decisions_while_the_database_is_unwritable_are_journalled_then_replayed(
    tmp_path, embedder, pipeline, people, video
):
    """With the database unwritable the gate opened the door and lost the event. Now the decision
    is fsynced to the journal before the door opens, and moved into the database once it takes writes again."""
    settings = gate_settings(tmp_path, threshold=-1.0, allow_loose_threshold=True, cooldown_s=60.0)
    name, photos = people[0]
    database, gallery = open_gate(settings, embedder, pipeline, enrol=(name, photos[1]))
    read_only = Database(f"sqlite:///file:{tmp_path / 'gate.db'}?mode=ro&uri=true")  # SQLite itself refuses
    path, walks = video
    loop = GateLoop(Runtime(settings, embedder, pipeline, database, gallery), Doors())
    loop.events.database = read_only  # unavailable from the start of the first walk ...
    for frame in VideoFileSource(path).frames():
        if frame.index == walks[0].last_frame + 1:
            loop.events.database = database  # ... and back after it (the journal is replayed at the next tick)
        loop.step(frame)
    loop.finish()
    assert [d.verdict for d in loop.decisions] == [Verdict.GRANTED, Verdict.COOLDOWN]
    # the walkers came into view mid-video and were decided while the gate followed their faces ([detector]
    # follow, the default): most frames needed no full search
    assert loop.follower is not None and 0 < loop.follower.full_detections < loop.processed / 2
    assert loop.events.journalled == 2 and loop.events.replayed == 1  # the grant and its door report
    assert not loop.events.journal.pending()
    events = sorted((e.decision, e.reason, e.door) for e in database.events(limit=100))
    assert events == [("denied", "COOLDOWN", None), ("granted", "GRANTED", "opened")]


def test_a_journal_left_by_a_previous_run_is_replayed_when_the_gate_starts(tmp_path, embedder, pipeline, video):
    settings = gate_settings(tmp_path)
    database, gallery = open_gate(settings, embedder, pipeline, enrol=None)
    journal = EventLog(database, settings.resolve(settings.database.journal_path)).journal
    left = AccessEventRecord(datetime.now(UTC), "test-door", "e9", 0.9, "granted", "GRANTED", event_uid="a" * 32)
    journal.append(left)  # what a gate killed while the database was away leaves behind
    source = StopsAt(VideoFileSource(video[0]), index=2)
    run_gate(Runtime(settings, embedder, pipeline, database, gallery), source, Doors())
    assert not journal.pending()
    assert [(e.employee_id, e.event_uid) for e in database.events(limit=10)] == [("e9", "a" * 32)]


def card_settings(tmp_path: Path, timeout_s: float) -> Settings:
    base = gate_settings(tmp_path, threshold=-1.0, allow_loose_threshold=True, cooldown_s=0.0)
    return base.model_copy(update={"card": CardSettings(claims="stdin", timeout_s=timeout_s)})


def test_refused_badge_claims_go_on_the_record_at_most_once_per_interval(tmp_path, embedder, pipeline) -> None:
    """Claims refused as forged, replayed or stale were only logged: now they are denials on the record
    (CLAIM_REFUSED, no claimed id since none was proven), one per 10 s of a flood, and counted in the summary."""
    settings = card_settings(tmp_path, timeout_s=5.0)
    database, gallery = open_gate(settings, embedder, pipeline, enrol=None)
    loop = GateLoop(Runtime(settings, embedder, pipeline, database, gallery), Doors())
    empty = np.zeros((120, 160, 3), np.uint8)
    for reason in ("bad_mac", "bad_mac", "replayed"):
        loop.claims.refuse(reason)
    loop.step(Frame(0, 0.0, empty))
    loop.claims.refuse("stale")
    loop.step(Frame(1, 3.0, empty))  # within 10 s of the last record: counted, not yet recorded
    assert len(database.events()) == 1
    loop.step(Frame(2, 12.0, empty))
    loop.claims.refuse("stale")
    loop.finish()  # the last ones are recorded when the gate stops
    events = database.events()
    assert [(e.decision, e.reason, e.claimed_id) for e in events] == [("denied", "CLAIM_REFUSED", None)] * 3
    tally = loop.summary(stopped_by_signal=False).tally
    assert tally.claims_refused == 5 and tally.describe().endswith("5 badge claims refused")


def run_with_claims(loop: GateLoop, path: Path, claims: dict[int, str]) -> None:
    """Step the loop through the video, a badge read at each frame index named in `claims`."""
    for frame in VideoFileSource(path).frames():
        if frame.index in claims:
            loop.claims.put(claims[frame.index])
        loop.step(frame)
    loop.finish()


def test_card_and_face_compares_only_while_a_badge_claim_waits(tmp_path, embedder, pipeline, people, video):
    """Presentation attacks (a): with card + face, no face is matched without a claim; a claim is
    used by one grant; one naming nobody enrolled, or that no face matches in time, is denied on the record."""
    settings = card_settings(tmp_path, timeout_s=SPEC.walk_s)
    name, photos = people[0]
    database, gallery = open_gate(settings, embedder, pipeline, enrol=(name, photos[1]))
    path, walks = video
    doors = Doors()
    loop = GateLoop(Runtime(settings, embedder, pipeline, database, gallery), doors)
    gap = walks[0].last_frame + 2  # between the two walks, nobody at the door
    run_with_claims(loop, path, {walks[0].first_frame: "e1", gap: "nobody", walks[1].first_frame: "e1"})
    events = sorted(database.events(limit=100), key=lambda e: e.time)
    assert [(e.reason, e.claimed_id, e.door) for e in events] == [
        ("GRANTED", "e1", "opened"),  # the first walker, checked 1:1 against the badge's person
        ("CLAIM_UNKNOWN", "nobody", None),
        ("GRANTED", "e1", "opened"),  # the second walker used the second badge read (every match counts here)
    ]
    assert [r.person_id for r in doors.opened] == ["e1", "e1"]


def test_card_and_face_without_a_badge_decides_nothing_and_an_unused_claim_expires(
    tmp_path, embedder, pipeline, people, video
):
    settings = card_settings(tmp_path, timeout_s=0.8)
    name, photos = people[0]
    database, gallery = open_gate(settings, embedder, pipeline, enrol=(name, photos[1]))
    path, walks = video
    doors = Doors()
    loop = GateLoop(Runtime(settings, embedder, pipeline, database, gallery), doors)
    # read just as the first walker left; it expires (0.8 s) in the 1 s gap, before the second walker shows
    run_with_claims(loop, path, {walks[0].last_frame + 1: "e1"})
    events = database.events(limit=100)
    assert [(e.decision, e.reason, e.claimed_id) for e in events] == [("denied", "CLAIM_EXPIRED", "e1")]
    assert doors.opened == [] and loop.reports and all(r.decision is None for r in loop.reports.values())


def test_a_gate_that_cannot_record_refuses_to_start_and_closes_its_source(tmp_path, embedder, pipeline, video):
    settings = gate_settings(tmp_path)
    database, gallery = open_gate(settings, embedder, pipeline, enrol=None)
    read_only = Database(f"sqlite:///file:{tmp_path / 'gate.db'}?mode=ro&uri=true")
    source = StopsAt(VideoFileSource(video[0]), index=10**6)  # never signals
    with pytest.raises(FaceGateError, match="cannot record access events"):
        run_gate(Runtime(settings, embedder, pipeline, read_only, gallery), source, Doors())
    assert source.closed  # a live source's reader thread is stopped, not left reading


def clip(kind: str, photo, pipeline: FacePipeline) -> list[Frame]:  # noqa: ANN001
    """The same walk-up of `photo`, held as a flat picture tilting 6 degrees, or as a head turning 6 degrees."""
    spec = ClipSpec(width=320, height=240)
    landmarks = max(pipeline.detector.detect(photo), key=lambda face: face.area).landmarks
    motion = replace(draw_motion(kind, np.random.default_rng(3), spec), yaw_deg=6.0, pitch_deg=3.0, roll_deg=0.0)
    frames = clip_frames(photo, landmarks, motion, np.random.default_rng(4), spec)
    return [Frame(i, i / spec.fps, image) for i, image in enumerate(frames)]


def test_with_the_liveness_test_on_a_flat_photo_is_denied_and_a_turning_head_let_in(
    tmp_path, embedder, pipeline, people
):
    """Presentation attacks (b): a held photo of an employee was let in like the employee."""
    base = gate_settings(tmp_path, threshold=-1.0, allow_loose_threshold=True)
    settings = base.model_copy(update={"liveness": LivenessSettings(enabled=True)})
    name, photos = people[0]
    database, gallery = open_gate(settings, embedder, pipeline, enrol=(name, photos[1]))
    photo = load_image(photos[0])
    outcomes = {}
    for kind in (FLAT, HEAD):
        doors = Doors()
        loop = GateLoop(Runtime(settings, embedder, pipeline, database, gallery), doors)
        for frame in clip(kind, photo, pipeline):
            loop.step(frame)
        loop.finish()
        outcomes[kind] = ([(d.verdict, d.nearest, d.employee_id) for d in loop.decisions], len(doors.opened))
    assert outcomes[FLAT] == ([(Verdict.NOT_LIVE, "e1", None)], 0)
    assert outcomes[HEAD] == ([(Verdict.GRANTED, None, "e1")], 1)


def test_a_postgresql_server_stopped_mid_run_loses_no_decision(tmp_path, embedder, pipeline, people, video, postgres):
    """The journal on a real server, several gates: stopped while the first walker is decided, restarted
    in the gap; both decisions end up in the database, in order, with the door's report."""
    base = gate_settings(tmp_path, threshold=-1.0, allow_loose_threshold=True, cooldown_s=60.0)
    settings = base.model_copy(update={"database": base.database.model_copy(update={"url": postgres.new_database()})})
    name, photos = people[0]
    database, gallery = open_gate(settings, embedder, pipeline, enrol=(name, photos[1]))
    path, walks = video
    loop = GateLoop(Runtime(settings, embedder, pipeline, database, gallery), Doors())
    stopped = False
    try:
        for frame in VideoFileSource(path).frames():
            if frame.index == walks[0].first_frame:
                postgres.stop()
                stopped = True
            if frame.index == walks[0].last_frame + 1:
                postgres.start()
                stopped = False
            loop.step(frame)
    finally:
        if stopped:
            postgres.start()  # the session's other tests need it
    loop.finish()
    assert loop.events.journalled == 2 and loop.events.replayed == 1 and not loop.events.journal.pending()
    events = sorted((e.decision, e.reason, e.door) for e in database.events(limit=100))
    assert events == [("denied", "COOLDOWN", None), ("granted", "GRANTED", "opened")]


def test_the_running_gate_deletes_event_faces_older_than_keep_days(tmp_path, embedder, pipeline, video):
    settings = gate_settings(tmp_path)  # [events] keep_days = 30
    database, gallery = open_gate(settings, embedder, pipeline, enrol=None)
    long_ago, recent = datetime(2020, 1, 1, tzinfo=UTC), datetime.now(UTC)
    database.record_events(
        [
            AccessEventRecord(long_ago, "test-door", "e1", 0.9, "granted", "GRANTED", event_uid="o" * 32, crop=b"old"),
            AccessEventRecord(recent, "test-door", "e1", 0.9, "granted", "GRANTED", event_uid="r" * 32, crop=b"new"),
        ],
        [],
    )
    run_gate(Runtime(settings, embedder, pipeline, database, gallery), VideoFileSource(video[0]), Doors())
    assert database.event_face("o" * 32) is None and database.event_face("r" * 32) == b"new"
    assert {e.event_uid for e in database.events(limit=100)} >= {"o" * 32, "r" * 32}  # the events stay
