"""The gate loop: frames -> faces -> embeddings -> matches -> tracks -> decisions -> door and events."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from uuid import uuid4

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from gate.config import LivenessSettings, Settings
from gate.decision.aggregation import TrackEmbeddings, frame_weight
from gate.decision.liveness import LivenessParams, LivenessTracker
from gate.decision.policy import Decision, Policy, Verdict
from gate.decision.tracking import Tracker
from gate.door.claim_feeds import open_claims
from gate.door.claims import Claim, ClaimBox
from gate.door.requests import Actuator, DoorOutcome, DoorRequest
from gate.matching.search import Match
from gate.runtime.annotate import GREEN, GREY, RED, YELLOW, AnnotatedVideo, Overlay
from gate.runtime.parts import Runtime
from gate.store.database import AccessEventRecord, DoorReport, database_error
from gate.store.event_log import EventLog, Journal, Stored
from gate.store.heartbeat import HeartbeatWriter
from gate.vision.faces import FaceCrop
from gate.vision.imageio import encode_crop
from gate.vision.sources import Frame, FrameSource

if TYPE_CHECKING:
    from gate.door.mqtt_events import EventPublisher as MqttEventPublisher

log = logging.getLogger(__name__)

DOOR_FAILED = "DOOR_FAILED"  # the access event's reason when the person was recognised but the actuator failed

KEPT_TRACKS = 10_000  # reports and decisions of ended tracks kept for the summary: a daemon runs for months
EVENT_CROP_QUALITY = 80  # WebP quality of the face kept with each access event (a few kB)
FORGET_FACES_EVERY_S = 3600.0  # how often event faces older than [events] keep_days are deleted
GALLERY_REFRESH_S = 2.0  # how often the running gate looks for people enrolled or removed meanwhile
REFUSED_CLAIMS_EVENT_S = 10.0  # refused badge claims go on the record as at most one event this often (a flood)


@dataclass
class TrackReport:
    """What happened to one face track: when it was seen, how many frames were usable, its decision."""

    track_id: int
    first_frame: int
    last_frame: int
    frames_seen: int = 0  # processed frames in which the face was detected
    usable_frames: int = 0  # ... and passed the quality gate
    rejects: Counter[str] = field(default_factory=Counter)  # quality reason -> frames
    best_score: float | None = None
    decision: Decision | None = None
    decision_frame: int | None = None

    @property
    def frames_to_decision(self) -> int | None:
        """Video frames from the track's first sighting to its decision, both included."""
        return None if self.decision_frame is None else self.decision_frame - self.first_frame + 1


@dataclass
class RecordTally:
    """What the run's decisions came to at the door and on the record."""

    granted: int = 0  # the door opened
    denied: int = 0  # turned away by the policy (or a badge claim)
    door_failed: int = 0  # granted, but the actuator did not open the door
    kept_shut: int = 0  # granted, but the door kept shut: the decision, or what the door would do, had no room
    lost: int = 0  # records (decisions or door reports) neither the database nor the journal took
    waiting: int = 0  # records still in the journal at the end, for the database when it is back
    claims_refused: int = 0  # badge claims refused as not coming from a configured reader (card + face)

    @property
    def complete(self) -> bool:
        """Every decision recorded and every grant acted on with its record."""
        return self.lost == 0 and self.kept_shut == 0

    def describe(self) -> str:
        parts = [f"{self.granted} granted", f"{self.denied} denied"]
        if self.door_failed:
            parts.append(f"{self.door_failed} door failed")
        if self.kept_shut:
            parts.append(f"{self.kept_shut} kept shut for want of a record")
        if self.lost:
            parts.append(f"{self.lost} records LOST")
        if self.waiting:
            parts.append(f"{self.waiting} records waiting in the journal")
        if self.claims_refused:
            parts.append(f"{self.claims_refused} badge claims refused")
        return ", ".join(parts)


@dataclass
class GateSummary:
    """The result of a run: frames read and processed, decisions in order, every track, what they came to."""

    frames: int
    processed: int
    decisions: list[Decision]
    tracks: list[TrackReport]
    stopped_by_signal: bool
    tally: RecordTally = field(default_factory=RecordTally)
    # a live camera's frames: seconds from capture to the end of their processing (gate.runtime.cameras keeps them)
    frame_ages_s: list[float] = field(default_factory=list)


class GateObserver(Protocol):
    """Sees what the policy is handed (offline evaluation records it; the daemon needs none)."""

    def observed(self, track_id: int, frame: int, time: float, match: Match | None) -> None: ...

    def track_ended(self, report: TrackReport, frame: int, time: float) -> None: ...


class EventPublisher(Protocol):
    """Hears every decision's final access event (gate.door.mqtt_events's publisher); must neither raise nor wait."""

    def publish(self, record: AccessEventRecord) -> None: ...


@dataclass(frozen=True)
class Sight:
    """What one processed frame showed a gate: its faces, their tracks, those fit to match and, with card + face,
    the claim they are compared with. `compare`: whether they are compared at all (not while no badge waits)."""

    crops: list[FaceCrop]
    track_ids: list[int]
    usable: list[tuple[int, FaceCrop]]
    claim: Claim | None
    compare: bool

    def faces_to_embed(self) -> list[np.ndarray]:
        return [crop.crop for _, crop in self.usable] if self.compare else []


class GateLoop:
    """The per-frame work of the gate, without the frame source: `step(frame)` then `finish()`. `step` is `see`
    (faces found or followed, tracked, graded), the usable faces embedded, then `decide`; the loops of several
    cameras embed their faces together (gate.runtime.cameras)."""

    def __init__(
        self,
        runtime: Runtime,
        actuator: Actuator,
        observer: GateObserver | None = None,
        publisher: EventPublisher | None = None,
    ) -> None:
        settings = self.settings = runtime.settings
        self.gate_id = settings.camera.gate_id
        self.observer, self.publisher = observer, publisher
        self.pipeline, self.embedder, self.gallery = runtime.pipeline, runtime.embedder, runtime.gallery
        self.follower = runtime.pipeline.follower()  # this camera's faces followed between full detections, or None
        self.actuator = actuator
        self.events = EventLog(runtime.database, settings.resolve(settings.database.journal_path))
        self.tracker = Tracker(settings.decision.track_timeout_s)
        self.track_embeddings = TrackEmbeddings(settings.decision.track_embedding)
        self.policy = Policy(settings.decision, runtime.threshold, self._clock)
        # card + face: faces are compared with the badge's person only, and only while a claim waits
        self.claims = ClaimBox(self._clock) if settings.card.claims != "off" else None
        self.heartbeat = HeartbeatWriter(runtime.database, settings.camera.gate_id)  # `facegate gates`, the page
        self.liveness = _liveness_tracker(settings.liveness)
        self._awaiting_liveness: dict[int, Decision] = {}  # grants held until their track's liveness verdict
        self._last_forget = -FORGET_FACES_EVERY_S  # when old event faces were last deleted (monotonic)
        self._claims_refused_recorded = 0  # refused badge claims already on the record
        self._last_refusal_event = -REFUSED_CLAIMS_EVENT_S
        self._faces: dict[int, np.ndarray] = {}  # each open track's latest usable aligned face, kept with its event
        self.reports: dict[int, TrackReport] = {}
        self.decisions: deque[Decision] = deque(maxlen=KEPT_TRACKS)
        self.tally = RecordTally()
        self.overlays: list[Overlay] = []
        self.frames = self.processed = 0
        self._now = 0.0
        self._last_refresh = 0.0
        self._frame_index = 0

    def _clock(self) -> float:
        return self._now  # the policy's time is the frame's: video time for files, monotonic for cameras

    def step(self, frame: Frame) -> None:
        """Read one frame; every `process_every`-th one goes through the whole pipeline."""
        sight = self.see(frame)
        if sight is not None:
            faces = sight.faces_to_embed()
            self.decide(sight, self.embedder.embed(np.stack(faces)) if faces else None)  # one batch per frame

    def see(self, frame: Frame) -> Sight | None:
        """Count the frame; every `process_every`-th one: its faces found (or followed), tracked and graded, and the
        tracks that ended decided. None for a frame not processed."""
        self.frames += 1
        self.heartbeat.tick(self.frames)
        self._now, self._frame_index = frame.time, frame.index
        if frame.index % self.settings.camera.process_every:
            return None
        self.processed += 1
        if frame.time - self._last_refresh >= GALLERY_REFRESH_S:
            self._housekeeping()
            self._last_refresh = frame.time
        claim = self._current_claim()
        crops = self.pipeline.process(frame.image, self.follower)
        update = self.tracker.update([crop.face.box for crop in crops], frame.time)
        for track in update.ended:
            self._end_track(track.track_id)
        usable = self._usable(update.track_ids, crops, frame.index)
        if self.liveness is not None:
            for track_id, crop in usable:
                self.liveness.add(track_id, frame.image, crop.face)
        compare = self.claims is None or claim is not None  # card + face without a badge: nothing to compare with
        return Sight(crops, update.track_ids, usable, claim, compare and bool(usable))

    def decide(self, sight: Sight, embeddings: np.ndarray | None) -> None:
        """Match the sight's usable faces (`embeddings`: theirs, in order; None when it compares nothing) and act on
        the decisions that follow."""
        if sight.compare and embeddings is not None:
            matches = self._match(sight.usable, embeddings, sight.claim)
            for (track_id, _), match in zip(sight.usable, matches, strict=True):
                self._observe(track_id, match)
        self._settle_liveness()
        pairs = zip(sight.track_ids, sight.crops, strict=True)
        self.overlays = [self._overlay(track_id, crop) for track_id, crop in pairs]

    def _housekeeping(self) -> None:
        """Every GALLERY_REFRESH_S: enrolment changes taken up, the journal replayed, old event faces forgotten."""
        self.gallery.refresh()
        if self.events.journal.pending():
            self.events.replay()
        if time.monotonic() - self._last_forget >= FORGET_FACES_EVERY_S:
            self._last_forget = time.monotonic()
            self._forget_old_faces()

    def _forget_old_faces(self) -> None:
        keep = self.settings.events.keep_days
        if keep == 0:
            return
        try:
            forgotten = self.events.database.forget_event_faces(before=datetime.now(UTC) - timedelta(days=keep))
        except SQLAlchemyError as error:
            log.warning("old event faces not deleted this time: %s", database_error(error))
            return
        if forgotten:
            log.info("%d event faces older than %d days deleted ([events] keep_days)", forgotten, keep)

    def _usable(self, track_ids: list[int], crops: list[FaceCrop], frame_index: int) -> list[tuple[int, FaceCrop]]:
        """Count each track's sighting in its report; the crops that passed the quality gate, with their track."""
        usable: list[tuple[int, FaceCrop]] = []
        for track_id, crop in zip(track_ids, crops, strict=True):
            report = self._report(track_id)
            report.frames_seen += 1
            report.last_frame = frame_index
            if crop.rejected is None:
                report.usable_frames += 1
                usable.append((track_id, crop))
                self._faces[track_id] = crop.crop
            else:
                report.rejects[str(crop.rejected)] += 1
                log.debug("frame %d track %d: not matched (%s)", frame_index, track_id, crop.rejected)
        return usable

    def finish(self) -> None:
        """The source has ended: decide the tracks still open, record the badge claims refused meanwhile."""
        for track in self.tracker.end_all():
            self._end_track(track.track_id)
        self._record_refused_claims(now=True)

    def summary(self, stopped_by_signal: bool) -> GateSummary:
        tracks = sorted(self.reports.values(), key=lambda report: report.track_id)
        refused = sum(self.claims.refusals().values()) if self.claims is not None else 0
        tally = replace(
            self.tally, lost=self.events.lost, waiting=self.events.journal.waiting(), claims_refused=refused
        )
        return GateSummary(self.frames, self.processed, list(self.decisions), tracks, stopped_by_signal, tally)

    def _report(self, track_id: int) -> TrackReport:
        if track_id not in self.reports:
            self.reports[track_id] = TrackReport(track_id, self._frame_index, self._frame_index)
        return self.reports[track_id]

    def _current_claim(self) -> Claim | None:
        """Card + face: the waiting claim, after dropping (and recording) one expired or naming nobody enrolled."""
        if self.claims is None:
            return None
        self._record_refused_claims()
        expired = self.claims.expired(self.settings.card.timeout_s)
        if expired is not None:
            self._record_claim_denial(expired, Verdict.CLAIM_EXPIRED)
        claim = self.claims.current()
        if claim is not None and not self.gallery.has_person(claim.employee_id):
            self.claims.take(claim)
            self._record_claim_denial(claim, Verdict.CLAIM_UNKNOWN)
            return None
        return claim

    def _record_refused_claims(self, now: bool = False) -> None:
        """Claims the feed refused since the last such record, as one CLAIM_REFUSED denial (at most every
        REFUSED_CLAIMS_EVENT_S: a flood of forged claims does not flood the database). No claimed id: an unverified
        id does not go on the record; the log line gives the reasons."""
        refusals = self.claims.refusals() if self.claims is not None else Counter()
        total = sum(refusals.values())
        soon = self._now - self._last_refusal_event < REFUSED_CLAIMS_EVENT_S
        if total == self._claims_refused_recorded or (soon and not now):
            return
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(refusals.items()))
        log.warning(
            "%d badge claims refused since the last record (so far: %s)", total - self._claims_refused_recorded, reasons
        )
        self._claims_refused_recorded, self._last_refusal_event = total, self._now
        event = self._new_event(employee_id=None, score=None, decision="denied", reason=str(Verdict.CLAIM_REFUSED))
        self._record(event)
        self._publish(event)

    def _record_claim_denial(self, claim: Claim, verdict: Verdict) -> None:
        log.info("claim of %s: denied (%s)", claim.employee_id, verdict)
        event = self._new_event(
            employee_id=None,
            score=None,
            decision="denied",
            reason=str(verdict),
            candidate_id=claim.employee_id,
            claimed_id=claim.employee_id,
        )
        self._record(event)
        self.tally.denied += 1
        self._publish(event)

    def _new_event(self, **fields: object) -> AccessEventRecord:
        """An access event of this gate, stamped now, with a fresh event_uid."""
        return AccessEventRecord(time=datetime.now(UTC), gate_id=self.gate_id, event_uid=uuid4().hex, **fields)

    def _record(self, event: AccessEventRecord) -> Stored | None:
        """Make the decision durable (database or journal) and note it for the heartbeat; None if it is lost."""
        stored = self.events.record(event)
        self.heartbeat.decided(event.decision)
        return stored

    def _publish(self, record: AccessEventRecord) -> None:
        if self.publisher is not None:
            self.publisher.publish(record)

    def _match(
        self, usable: list[tuple[int, FaceCrop]], embeddings: np.ndarray, claim: Claim | None
    ) -> list[Match | None]:
        """The best enrolled person for each usable face (its frame's embedding or its track's mean); with a
        badge's claim, the claimed person's score only."""
        template = self.embedder.template
        queries = [
            self.track_embeddings.query(track_id, vector, frame_weight(crop.face, template))
            for (track_id, crop), vector in zip(usable, embeddings, strict=True)
        ]
        if claim is not None:
            return self.gallery.verify(np.stack(queries), claim.employee_id)
        return self.gallery.search(np.stack(queries))

    def _observe(self, track_id: int, match: Match | None) -> None:
        if self.observer is not None:
            self.observer.observed(track_id, self._frame_index, self._now, match)
        report = self.reports[track_id]
        if match is not None and (report.best_score is None or match.score > report.best_score):
            report.best_score = match.score
        decision = self.policy.observe(track_id, match)
        if decision is not None:
            self._decided(decision)

    def _end_track(self, track_id: int) -> None:
        if self.observer is not None and track_id in self.reports:
            self.observer.track_ended(self.reports[track_id], self._frame_index, self._now)
        self.track_embeddings.end(track_id)
        decision = self.policy.end_track(track_id)
        if decision is not None:
            self._decided(decision)
        if track_id in self._awaiting_liveness:  # left before its liveness verdict: not shown to be live
            self._act(_denied(self._awaiting_liveness.pop(track_id), Verdict.NOT_LIVE))
        if self.liveness is not None:
            self.liveness.end(track_id)
        self._faces.pop(track_id, None)
        if len(self.reports) > KEPT_TRACKS:  # forget the oldest report (dicts keep insertion order)
            del self.reports[next(iter(self.reports))]

    def _face_of(self, track_id: int) -> bytes | None:
        """The track's latest usable face as lossy WebP, for the admin to see who was let in or turned away."""
        face = self._faces.get(track_id)
        return None if face is None else encode_crop(face, EVENT_CROP_QUALITY)

    def _decided(self, decision: Decision) -> None:
        """With the liveness test on, a grant waits for its track's verdict; every other decision acts now."""
        if self.liveness is not None and decision.granted:
            self._awaiting_liveness[decision.track_id] = decision
            self._settle_liveness()
            return
        self._act(decision)

    def _settle_liveness(self) -> None:
        """Act on each held grant whose track now has a liveness verdict: the grant, or a NOT_LIVE denial."""
        for track_id, decision in list(self._awaiting_liveness.items()):
            verdict = self.liveness.verdict(track_id) if self.liveness is not None else None
            if verdict is None:
                continue
            del self._awaiting_liveness[track_id]
            log.info("track %d: liveness score %.4f after %d frames", track_id, verdict.score, verdict.frames)
            self._act(decision if verdict.live else _denied(decision, Verdict.NOT_LIVE))

    def _act(self, decision: Decision) -> None:
        """Record the decision (database or journal) before the door opens, then record what the door did. A grant
        opens the door only when both can be recorded: else it is kept shut (NO_ROOM, or its record lost)."""
        report = self.reports[decision.track_id]
        report.decision, report.decision_frame = decision, min(self._frame_index, report.last_frame)
        if decision.granted and not self.events.room_for_door_report():
            log.critical(
                "door %s kept shut for %s: no room to record what it would do", self.gate_id, decision.employee_id
            )
            decision = _denied(decision, Verdict.NO_ROOM)
            self.tally.kept_shut += 1
        self.decisions.append(decision)
        opens = decision.granted and decision.employee_id is not None
        claim = self.claims.current() if self.claims is not None else None
        if claim is not None and decision.granted:
            self.claims.take(claim)  # used: the next person needs their own badge
        record = self._new_event(
            employee_id=decision.employee_id,
            score=decision.score,
            decision=decision.decision,
            reason=str(decision.verdict),
            candidate_id=decision.nearest,
            door="pending" if opens else None,
            claimed_id=claim.employee_id if claim is not None else None,
            crop=self._face_of(decision.track_id),
        )
        stored = self._record(record)
        if not opens:
            if decision.verdict is not Verdict.NO_ROOM:
                self.tally.denied += 1
            self._publish(record)
        elif stored is None:
            log.critical(
                "door %s kept shut for %s: the decision could not be recorded", self.gate_id, decision.employee_id
            )
            self.tally.kept_shut += 1
        else:
            self._open_door(decision, record)

    def _open_door(self, decision: Decision, record: AccessEventRecord) -> None:
        """Open the door for a recorded grant, then record (the journal's reserve kept for it) what it did."""
        request = DoorRequest(self.gate_id, decision.employee_id or "", decision.name or "", decision.score or 0.0)
        door = self.actuator.open(request)
        final = ("granted", record.reason) if door is DoorOutcome.OPENED else ("denied", DOOR_FAILED)
        if door is DoorOutcome.OPENED:
            self.tally.granted += 1
        else:  # a door that did not open is not a grant, on the record either
            log.error("door %s did not open for %s: the actuator %s", self.gate_id, decision.employee_id, door)
            self.tally.door_failed += 1
        self.events.record(DoorReport(record.event_uid or "", str(door), *final), use_reserve=True)
        self._publish(replace(record, decision=final[0], reason=final[1], door=str(door)))

    def _overlay(self, track_id: int, crop: FaceCrop) -> Overlay:
        report = self.reports[track_id]
        decision = report.decision
        if decision is not None:
            who = decision.name or str(decision.verdict)
            score = "" if decision.score is None else f" {decision.score:.2f}"
            return Overlay(crop.face.box, f"{who}{score}", GREEN if decision.granted else RED)
        if crop.rejected is not None:
            return Overlay(crop.face.box, f"#{track_id} {crop.rejected}", GREY)
        score = "" if report.best_score is None else f" {report.best_score:.2f}"
        return Overlay(crop.face.box, f"#{track_id}{score}", YELLOW)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set the yielded event (the loop finishes its frame, then stops); a second interrupts."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be installed from the main thread
        return

    def handle(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("%s received: stopping after this frame", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _liveness_tracker(settings: LivenessSettings) -> LivenessTracker | None:
    if not settings.enabled:
        return None
    params = LivenessParams(settings.threshold, settings.min_frames, settings.baseline, settings.max_pairs)
    return LivenessTracker(params)


def _denied(grant: Decision, verdict: Verdict) -> Decision:
    """A grant turned into a denial after the policy decided (NOT_LIVE by the liveness test, NO_ROOM for want of
    room to record it); the recognised person is kept as the nearest."""
    return replace(grant, verdict=verdict, employee_id=None, name=None, nearest=grant.employee_id)


def _open_publisher(settings: Settings) -> MqttEventPublisher | None:
    """The MQTT event publisher when [mqtt] enabled (paho is loaded only then)."""
    if not settings.mqtt.enabled:
        return None
    from gate.door.mqtt_events import EventPublisher as MqttEventPublisher

    return MqttEventPublisher(settings.mqtt, settings.camera.gate_id)


def _watch(source: FrameSource, loop: GateLoop, video: AnnotatedVideo | None) -> bool:
    """Step the loop through the source's frames until they end or a signal; True when stopped by a signal."""
    with stop_on_signals() as stop:
        try:
            for frame in source.frames():
                loop.step(frame)
                if video is not None:
                    video.write(frame.image, loop.overlays)
                if stop.is_set():
                    break
        except KeyboardInterrupt:
            log.warning("interrupted in the middle of a frame")
            stop.set()
    return stop.is_set()


def run_gate(runtime: Runtime, source: FrameSource, actuator: Actuator, annotate: Path | None = None) -> GateSummary:
    """Run the gate on `source` until it ends or SIGINT/SIGTERM; every decision is recorded, then a grant opens
    the door. `annotate`: also write the frames with boxes, names and scores there. The source, the claim feed,
    the video, the MQTT publisher ([mqtt] enabled) and the actuator are closed however the run ends (a refusal
    to start included)."""
    with ExitStack() as cleanup:
        cleanup.callback(source.close)
        cleanup.callback(actuator.close)
        loop = open_loop(cleanup, runtime, actuator, source)
        video = AnnotatedVideo(annotate, source.fps) if annotate is not None else None
        if video is not None:
            cleanup.callback(video.close)
        stopped = _watch(source, loop, video)
        # inside: the tracks still open are decided (and published) before the cleanup closes the feeds
        summary = end_loop(loop, stopped)
    return summary


def open_loop(cleanup: ExitStack, runtime: Runtime, actuator: Actuator, source: FrameSource) -> GateLoop:
    """One camera's gate loop, ready: its MQTT publisher and claim feed opened, the journal of an earlier run
    replayed, its heartbeat online. `cleanup` closes them. Refuses to start (FaceGateError) when no decision could
    be recorded, rather than lose them: by the database, or by the journal with its reserve in place."""
    runtime.database.check_writable()
    settings = runtime.settings
    Journal(settings.resolve(settings.database.journal_path)).check_writable()
    publisher = _open_publisher(runtime.settings)
    if publisher is not None:
        cleanup.callback(publisher.close)  # status "offline" after the last decision's event
    loop = GateLoop(runtime, actuator, publisher=publisher)
    loop.events.replay()  # decisions journalled while the database was away, last time
    feed = open_claims(runtime.settings, loop.claims) if loop.claims is not None else None
    if feed is not None:
        cleanup.callback(feed.close)
    gate_id = runtime.settings.camera.gate_id
    log.info("gate %s watching %s (threshold %.3f)", gate_id, source.description, loop.policy.threshold)
    loop.heartbeat.tick(0, force=True)  # online from the start
    return loop


def end_loop(loop: GateLoop, stopped_by_signal: bool = False) -> GateSummary:
    """The camera's frames have ended: its open tracks decided, its last heartbeat written, what the decisions
    came to logged (records still waiting in the journal, or lost, said loudly); returns the run's summary."""
    loop.finish()
    loop.heartbeat.tick(loop.frames, force=True)
    summary = loop.summary(stopped_by_signal)
    tally, described = summary.tally, summary.tally.describe()
    log.info(
        "gate %s stopped: %d frames (%d processed), %d decisions: %s",
        loop.gate_id,
        loop.frames,
        loop.processed,
        len(loop.decisions),
        described,
    )
    if tally.waiting:
        log.warning(
            "gate %s: %d records wait in %s for the database (added when it is back, or at the next start)",
            loop.gate_id,
            tally.waiting,
            loop.events.journal.path,
        )
    if not tally.complete:
        log.critical("gate %s: not every decision was recorded: %s", loop.gate_id, described)
    return summary
