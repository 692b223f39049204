"""The gate loop: frames -> faces -> embeddings -> matches -> tracks -> decisions -> door and events; one camera's
per-frame work, the frame source and the running of it apart (gate.runtime.run)."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from gate.decision.aggregation import TrackEmbeddings, frame_weight
from gate.decision.held_grants import HeldGrants
from gate.decision.policy import Decision, Policy
from gate.decision.tracking import Tracker
from gate.door.claims import Claim, ClaimBox
from gate.door.requests import Actuator
from gate.matching.gallery import Gallery
from gate.matching.search import Match
from gate.runtime.annotate import Overlay, overlay_for
from gate.runtime.claim_desk import ClaimDesk
from gate.runtime.housekeeping import Housekeeping
from gate.runtime.parts import Runtime
from gate.runtime.recorder import EventPublisher, Recorder
from gate.runtime.results import GateSummary, TrackReport
from gate.runtime.snapshot import SnapshotTaker
from gate.store.event_log import EventLog
from gate.store.heartbeat import Camera, HeartbeatWriter
from gate.vision.alignment import CropTemplate
from gate.vision.faces import FaceCrop
from gate.vision.imageio import encode_crop
from gate.vision.sources import Frame

log = logging.getLogger(__name__)

KEPT_TRACKS = 10_000  # reports and decisions of ended tracks kept for the summary: a daemon runs for months
EVENT_CROP_QUALITY = 80  # WebP quality of the face kept with each access event (a few kB)


class GateObserver(Protocol):
    """Sees what the policy is handed (offline evaluation records it; the daemon needs none)."""

    def observed(self, track_id: int, frame: int, time: float, match: Match | None) -> None: ...

    def track_ended(self, report: TrackReport, frame: int, time: float) -> None: ...


@dataclass(frozen=True)
class Sight:
    """What one processed frame showed a gate: its faces, their tracks, those fit to match and, with card + face,
    the claim they are compared with. `compare`: whether they are compared at all (not while no badge waits);
    `image`: the frame (for the snapshot)."""

    crops: list[FaceCrop]
    track_ids: list[int]
    usable: list[tuple[int, FaceCrop]]
    claim: Claim | None
    compare: bool
    image: np.ndarray

    def faces_to_embed(self) -> list[np.ndarray]:
        return [crop.crop for _, crop in self.usable] if self.compare else []


class GateLoop:
    """The per-frame work of the gate, without the frame source: `step(frame)` then `finish()`. `step` is `see`
    (faces found or followed, tracked, graded), the usable faces embedded, then `decide`; the loops of several
    cameras embed their faces together (gate.runtime.cameras). Recording and the door are the `recorder`'s, badge
    claims the `desk`'s, chores between frames `housekeeping`'s, held grants `held`'s; `camera`: the frame source
    whose state its heartbeat reports (`sign_on` starts the heartbeat, `sign_off` says it stopped)."""

    def __init__(
        self,
        runtime: Runtime,
        actuator: Actuator,
        observer: GateObserver | None = None,
        publisher: EventPublisher | None = None,
        camera: Camera | None = None,
    ) -> None:
        settings = self.settings = runtime.settings
        self.gate_id, self.observer = settings.camera.gate_id, observer
        self.pipeline, self.embedder, self.gallery = runtime.pipeline, runtime.embedder, runtime.gallery
        self.follower = runtime.pipeline.follower()  # this camera's faces followed between full detections, or None
        self.events = EventLog(runtime.database, settings.resolve(settings.database.journal_path))
        self.heartbeat = HeartbeatWriter(runtime.database, self.gate_id, camera=camera)  # `facegate gates`, the page
        self.snapshots = SnapshotTaker(runtime.database, self.gate_id, settings.snapshot)  # [snapshot] enabled
        self.recorder = Recorder(self.events, self.heartbeat, actuator, self.gate_id, publisher)
        self.tracker = Tracker(settings.decision.track_timeout_s)
        self.track_embeddings = TrackEmbeddings(settings.decision.track_embedding)
        self.policy = Policy(settings.decision, runtime.threshold, self._clock)
        self.held = HeldGrants(settings.liveness)
        self.housekeeping = Housekeeping(self.gallery, self.events, settings.events.keep_days)
        # card + face: faces are compared with the badge's person only, and only while a claim waits
        self.claims = ClaimBox(self._clock) if settings.card.claims != "off" else None
        self.desk: ClaimDesk | None = None
        if self.claims is not None:
            self.desk = ClaimDesk(self.claims, self.recorder, self.gallery, settings.card.timeout_s, self._clock)
        self._faces: dict[int, np.ndarray] = {}  # each open track's latest usable aligned face, kept with its event
        self.reports: dict[int, TrackReport] = {}
        self.decisions: deque[Decision] = deque(maxlen=KEPT_TRACKS)
        self.overlays: list[Overlay] = []
        self.frames = self.processed = self._frame_index = 0
        self._now = 0.0

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
        self.housekeeping.due(frame.time)
        claim = self.desk.current() if self.desk is not None else None
        crops = self.pipeline.process(frame.image, self.follower)
        update = self.tracker.update([crop.face.box for crop in crops], frame.time)
        for track in update.ended:
            self._end_track(track.track_id)
        usable = self._usable(update.track_ids, crops, frame.index)
        for track_id, crop in usable:
            self.held.see(track_id, frame.image, crop.face)
        compare = self.claims is None or claim is not None  # card + face without a badge: nothing to compare with
        return Sight(crops, update.track_ids, usable, claim, compare and bool(usable), frame.image)

    def decide(self, sight: Sight, embeddings: np.ndarray | None) -> None:
        """Match the sight's usable faces (`embeddings`: theirs, in order; None when it compares nothing) and act on
        the decisions that follow."""
        if sight.compare and embeddings is not None:
            matches = match_faces(self.gallery, self.track_embeddings, self.embedder.template, sight, embeddings)
            for (track_id, _), match in zip(sight.usable, matches, strict=True):
                self._observe(track_id, match)
        self._act(self.held.settle())
        pairs = zip(sight.track_ids, sight.crops, strict=True)
        self.overlays = [overlay_for(track_id, self.reports[track_id], crop) for track_id, crop in pairs]
        self.snapshots.offer(sight.image, self.overlays)

    def _usable(self, track_ids: list[int], crops: list[FaceCrop], frame_index: int) -> list[tuple[int, FaceCrop]]:
        """Count each track's sighting in its report; the crops that passed the quality gate, with their track."""
        usable: list[tuple[int, FaceCrop]] = []
        for track_id, crop in zip(track_ids, crops, strict=True):
            if track_id not in self.reports:
                self.reports[track_id] = TrackReport(track_id, frame_index, frame_index)
            report = self.reports[track_id]
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
        if self.desk is not None:
            self.desk.record_refused(now=True)

    def sign_on(self) -> None:
        """Online from the start: the heartbeat's first beat and its pulse; no snapshot of an earlier run left."""
        self.heartbeat.start()
        self.snapshots.forget()

    def sign_off(self) -> None:
        """A clean stop: the last heartbeat says "stopped", the snapshot is deleted."""
        self.heartbeat.stopped(self.frames)
        self.snapshots.forget()

    def give_up(self) -> None:
        """Not a clean stop, the camera gave up: a last beat now ("running", with the camera's state), then no more;
        it goes stale and the gate reads lost, not stopped. The snapshot (of a camera now away) is deleted."""
        self.heartbeat.halt()
        self.heartbeat.tick(self.frames, force=True)
        self.snapshots.forget()

    def summary(self, stopped_by_signal: bool, camera_gave_up: bool = False) -> GateSummary:
        tracks = sorted(self.reports.values(), key=lambda report: report.track_id)
        refused = sum(self.claims.refusals().values()) if self.claims is not None else 0
        tally = replace(
            self.recorder.tally, lost=self.events.lost, waiting=self.events.journal.waiting(), claims_refused=refused
        )
        return GateSummary(
            self.frames, self.processed, list(self.decisions), tracks, stopped_by_signal, tally, camera_gave_up
        )

    def _observe(self, track_id: int, match: Match | None) -> None:
        if self.observer is not None:
            self.observer.observed(track_id, self._frame_index, self._now, match)
        report = self.reports[track_id]
        if match is not None and (report.best_score is None or match.score > report.best_score):
            report.best_score = match.score
        decision = self.policy.observe(track_id, match)
        if decision is not None:
            self._act(self.held.decided(decision))

    def _end_track(self, track_id: int) -> None:
        if self.observer is not None and track_id in self.reports:
            self.observer.track_ended(self.reports[track_id], self._frame_index, self._now)
        self.track_embeddings.end(track_id)
        decision = self.policy.end_track(track_id)
        if decision is not None:
            self._act(self.held.decided(decision))
        self._act(self.held.ended(track_id))  # left before its liveness verdict: not shown to be live
        self._faces.pop(track_id, None)
        if len(self.reports) > KEPT_TRACKS:  # forget the oldest report (dicts keep insertion order)
            del self.reports[next(iter(self.reports))]

    def _act(self, decisions: list[Decision]) -> None:
        """Each decision into its track's report and the run's list, then to the recorder (record, then door)."""
        for decision in decisions:
            report = self.reports[decision.track_id]
            report.decision, report.decision_frame = decision, min(self._frame_index, report.last_frame)
            claim = self.desk.waiting() if self.desk is not None else None
            face = self._faces.get(decision.track_id)  # kept as lossy WebP for the admin to see who it was
            crop = None if face is None else encode_crop(face, EVENT_CROP_QUALITY)
            final = self.recorder.act(decision, claim.employee_id if claim is not None else None, crop)
            self.decisions.append(final)
            if claim is not None and final.granted and self.desk is not None:
                self.desk.used(claim)  # the next person needs their own badge


def match_faces(
    gallery: Gallery, track_embeddings: TrackEmbeddings, template: CropTemplate, sight: Sight, embeddings: np.ndarray
) -> list[Match | None]:
    """The best enrolled person for each usable face of a sight (its frame's embedding or its track's mean); with
    a badge's claim, the claimed person's score only."""
    queries = [
        track_embeddings.query(track_id, vector, frame_weight(crop.face, template))
        for (track_id, crop), vector in zip(sight.usable, embeddings, strict=True)
    ]
    if sight.claim is not None:
        return gallery.verify(np.stack(queries), sight.claim.employee_id)
    return gallery.search(np.stack(queries))
