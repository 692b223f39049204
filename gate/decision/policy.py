"""The door decision per face track: N-of-M agreeing frames above the threshold, cooldown, reasons."""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from gate.config import DecisionSettings
from gate.errors import FaceGateError
from gate.model.card import ModelCard

log = logging.getLogger(__name__)


class Verdict(StrEnum):
    """Why a track was let in or not."""

    GRANTED = "GRANTED"
    BELOW_THRESHOLD = "BELOW_THRESHOLD"  # the nearest enrolled person scored under the threshold in every frame
    UNKNOWN_FACE = "UNKNOWN_FACE"  # no enrolled person to compare with at all
    NO_AGREEMENT = "NO_AGREEMENT"  # the track ended before enough frames agreed on one person
    COOLDOWN = "COOLDOWN"  # recognised, but this person was let in less than cooldown_s ago
    CLAIM_UNKNOWN = "CLAIM_UNKNOWN"  # card + face: the badge names nobody enrolled (or inactive)
    CLAIM_EXPIRED = "CLAIM_EXPIRED"  # card + face: no face matched the badge's person within card.timeout_s
    CLAIM_REFUSED = "CLAIM_REFUSED"  # card + face: claims not signed by a configured reader (forged, replayed...)
    NOT_LIVE = "NOT_LIVE"  # recognised, but the face moved as one plane (a photo, a screen) or left too soon
    NO_ROOM = "NO_ROOM"  # recognised, but the door stays shut: no room left to record what it would do (disk full)


class Candidate(Protocol):
    """The best gallery match of one frame (gate.matching.gallery.Match fits)."""

    @property
    def employee_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def score(self) -> float: ...


@dataclass(frozen=True)
class Decision:
    """One decision for one track; `employee_id`/`name` are set for GRANTED and COOLDOWN only."""

    track_id: int
    verdict: Verdict
    time: float
    frames: int  # usable frames of the track observed up to the decision
    score: float | None
    employee_id: str | None = None
    name: str | None = None
    nearest: str | None = None  # a denial's best-scoring enrolled person (its score is `score`), for the record

    @property
    def granted(self) -> bool:
        return self.verdict is Verdict.GRANTED

    @property
    def decision(self) -> str:
        """ "granted" or "denied", as stored with the access event."""
        return "granted" if self.granted else "denied"


def denied(grant: Decision, verdict: Verdict) -> Decision:
    """A grant turned into a denial after the policy decided (NOT_LIVE by the liveness test, NO_ROOM for want of
    room to record it); the recognised person is kept as the nearest."""
    return replace(grant, verdict=verdict, employee_id=None, name=None, nearest=grant.employee_id)


def threshold_for(settings: DecisionSettings, card: ModelCard) -> float:
    """The configured override if any, else the card's threshold calibrated at the target FAR. An override that
    could open the door for anyone is refused in one line: outside the cosine's range, or below the card's
    loosest calibrated threshold unless `allow_loose_threshold` says so."""
    if settings.threshold is None:
        return card.threshold(settings.target_far)
    threshold = settings.threshold
    if not card.score_norm and not -1.0 <= threshold <= 1.0:
        raise FaceGateError(f"config: decision.threshold = {threshold} is outside the cosine's range [-1, 1]")
    loosest = min(card.thresholds.items(), key=lambda item: item[1], default=None)
    if loosest is not None and threshold < loosest[1] and not settings.allow_loose_threshold:
        raise FaceGateError(
            f"config: decision.threshold = {threshold} is below {card.model_id}'s loosest calibrated threshold "
            f"{loosest[1]:.4f} (FAR {loosest[0]}): strangers would be let in; set decision.allow_loose_threshold "
            "= true to insist"
        )
    return threshold


@dataclass
class _TrackState:
    window: deque[tuple[Candidate | None, bool]]  # (best match, above threshold) of the last usable frames
    frames: int = 0
    best: dict[str, Candidate] = field(default_factory=dict)


class Policy:
    """Feed each usable frame of a track with `observe`; at most one Decision comes back per track.

    A grant needs `votes_needed` of the last `window` usable frames to name the same person at a score of at
    least `threshold`; with `early_deny`, a full window with no frame above it is denied at once, else the
    track is watched until it ends (a person still far away may come close enough to be recognised). A track
    ending undecided (`end_track`) is denied, so every track that had a usable frame gets exactly one decision.
    """

    def __init__(
        self, settings: DecisionSettings, threshold: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.threshold = threshold
        self._clock = clock
        self._tracks: dict[int, _TrackState] = {}
        self._decided: set[int] = set()
        self._last_grant: dict[str, float] = {}

    def observe(self, track_id: int, match: Candidate | None) -> Decision | None:
        """Add one usable frame's best match (None: nobody enrolled); returns the decision once it is made."""
        if track_id in self._decided:
            return None
        state = self._tracks.setdefault(track_id, _TrackState(deque(maxlen=self.settings.window)))
        above = match is not None and match.score >= self.threshold
        state.window.append((match, above))
        state.frames += 1
        if above and match is not None:
            best = state.best.get(match.employee_id)
            if best is None or match.score > best.score:
                state.best[match.employee_id] = match
        winner = self._winner(state)
        if winner is not None:
            return self._decide(track_id, self._grant_or_cooldown(winner), state, winner)
        full = len(state.window) == self.settings.window
        if self.settings.early_deny and full and not any(above for _, above in state.window):
            return self._decide(track_id, _denial(state), state)
        return None

    def end_track(self, track_id: int) -> Decision | None:
        """The track has left: decide it if it had usable frames and no decision yet; forget it either way."""
        state = self._tracks.pop(track_id, None)
        if track_id in self._decided:
            self._decided.discard(track_id)
            return None
        if state is None:
            return None
        verdict = Verdict.NO_AGREEMENT if any(above for _, above in state.window) else _denial(state)
        return self._decide(track_id, verdict, state, forget=False)

    def _winner(self, state: _TrackState) -> Candidate | None:
        votes = Counter(match.employee_id for match, above in state.window if above and match is not None)
        if not votes:
            return None
        employee_id, count = votes.most_common(1)[0]
        return state.best[employee_id] if count >= self.settings.votes_needed else None

    def _grant_or_cooldown(self, winner: Candidate) -> Verdict:
        now = self._clock()
        last = self._last_grant.get(winner.employee_id)
        if last is not None and now - last < self.settings.cooldown_s:
            return Verdict.COOLDOWN
        self._last_grant[winner.employee_id] = now
        return Verdict.GRANTED

    def _decide(
        self,
        track_id: int,
        verdict: Verdict,
        state: _TrackState,
        winner: Candidate | None = None,
        forget: bool = True,
    ) -> Decision:
        if forget:
            self._tracks.pop(track_id, None)
            self._decided.add(track_id)
        nearest = _best_match(state) if winner is None else None
        score = winner.score if winner is not None else (nearest.score if nearest is not None else None)
        decision = Decision(
            track_id=track_id,
            verdict=verdict,
            time=self._clock(),
            frames=state.frames,
            score=score,
            employee_id=winner.employee_id if winner is not None else None,
            name=winner.name if winner is not None else None,
            nearest=nearest.employee_id if nearest is not None else None,
        )
        log.info(
            "track %d: %s (%s) score %s after %d frames",
            track_id,
            decision.decision,
            verdict,
            "-" if score is None else f"{score:.3f}",
            state.frames,
        )
        return decision


def _denial(state: _TrackState) -> Verdict:
    if all(match is None for match, _ in state.window):
        return Verdict.UNKNOWN_FACE
    return Verdict.BELOW_THRESHOLD


def _best_match(state: _TrackState) -> Candidate | None:
    """The best-scoring match in the track's window (the first of equals), or None."""
    matches = [match for match, _ in state.window if match is not None]
    return max(matches, key=lambda match: match.score) if matches else None
