"""Grants held for the liveness test: with it on, a track's grant waits for the track's liveness verdict and then
stands, or becomes a NOT_LIVE denial (so does one whose track ends first). Every other decision passes at once."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from gate.config import LivenessRules, LivenessSettings
from gate.decision.liveness import LivenessParams, LivenessTracker
from gate.decision.policy import Decision, Verdict, denied

if TYPE_CHECKING:  # torch is loaded by whoever made the face
    from gate.vision.detection import Face

log = logging.getLogger(__name__)


class HeldGrants:
    """The liveness test ([liveness] enabled) between the policy and the door; a pass-through when it is off."""

    def __init__(self, settings: LivenessSettings) -> None:
        self.liveness: LivenessTracker | None = None
        if settings.enabled:
            rules = settings.model_dump(include=set(LivenessRules.model_fields))
            self.liveness = LivenessTracker(LivenessParams(**rules))
        self._waiting: dict[int, Decision] = {}  # grants held until their track's liveness verdict

    def see(self, track_id: int, image: np.ndarray, face: Face) -> None:
        """A usable face of a track, for its liveness verdict."""
        if self.liveness is not None:
            self.liveness.add(track_id, image, face)

    def decided(self, decision: Decision) -> list[Decision]:
        """The decisions to act on now: a grant waits for its verdict while the test is on."""
        if self.liveness is not None and decision.granted:
            self._waiting[decision.track_id] = decision
            return self.settle()
        return [decision]

    def settle(self) -> list[Decision]:
        """Each held grant whose track now has a liveness verdict: the grant, or a NOT_LIVE denial."""
        ready = []
        for track_id, decision in list(self._waiting.items()):
            verdict = self.liveness.verdict(track_id) if self.liveness is not None else None
            if verdict is None:
                continue
            del self._waiting[track_id]
            log.info("track %d: liveness score %.4f after %d frames", track_id, verdict.score, verdict.frames)
            ready.append(decision if verdict.live else denied(decision, Verdict.NOT_LIVE))
        return ready

    def ended(self, track_id: int) -> list[Decision]:
        """A track has ended: a grant still held was not shown to be live."""
        if self.liveness is not None:
            self.liveness.end(track_id)
        held = self._waiting.pop(track_id, None)
        return [] if held is None else [denied(held, Verdict.NOT_LIVE)]
