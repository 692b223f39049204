"""Card + face at one gate: the badge claim a face is compared with, after dropping (and recording) one expired or
naming nobody enrolled; claims the feed refused go on the record as one denial at most every
REFUSED_CLAIMS_EVENT_S (a flood of forged claims does not flood the database)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from gate.decision.policy import Verdict
from gate.door.claims import Claim, ClaimBox
from gate.matching.gallery import Gallery
from gate.runtime.recorder import Recorder

log = logging.getLogger(__name__)

REFUSED_CLAIMS_EVENT_S = 10.0  # refused badge claims go on the record as at most one event this often (a flood)


class ClaimDesk:
    """The gate's ClaimBox (`box`): `current()` once per processed frame, the claim a face is compared with;
    `waiting()` the claim a decision is recorded with, `used(claim)` once it let someone in."""

    def __init__(
        self, box: ClaimBox, recorder: Recorder, gallery: Gallery, timeout_s: float, clock: Callable[[], float]
    ) -> None:
        self.box, self.recorder, self.gallery, self.timeout_s, self._clock = box, recorder, gallery, timeout_s, clock
        self._refused_recorded = 0  # refused badge claims already on the record
        self._last_refusal_event = -REFUSED_CLAIMS_EVENT_S

    def current(self) -> Claim | None:
        """The waiting claim, after dropping (and recording) one expired or naming nobody enrolled."""
        self.record_refused()
        expired = self.box.expired(self.timeout_s)
        if expired is not None:
            self._deny(expired, Verdict.CLAIM_EXPIRED)
        claim = self.box.current()
        if claim is not None and not self.gallery.has_person(claim.employee_id):
            self.box.take(claim)
            self._deny(claim, Verdict.CLAIM_UNKNOWN)
            return None
        return claim

    def waiting(self) -> Claim | None:
        return self.box.current()

    def used(self, claim: Claim) -> None:
        self.box.take(claim)

    def record_refused(self, now: bool = False) -> None:
        """Claims the feed refused since the last such record, as one CLAIM_REFUSED denial (`now`: whatever the
        time since the last). No claimed id: an unverified id does not go on the record; the log gives reasons."""
        refusals = self.box.refusals()
        total = sum(refusals.values())
        soon = self._clock() - self._last_refusal_event < REFUSED_CLAIMS_EVENT_S
        if total == self._refused_recorded or (soon and not now):
            return
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(refusals.items()))
        fresh = total - self._refused_recorded
        log.warning("%d badge claims refused since the last record (so far: %s)", fresh, reasons)
        self._refused_recorded, self._last_refusal_event = total, self._clock()
        self.recorder.deny(counted=False, reason=str(Verdict.CLAIM_REFUSED))

    def _deny(self, claim: Claim, verdict: Verdict) -> None:
        log.info("claim of %s: denied (%s)", claim.employee_id, verdict)
        self.recorder.deny(reason=str(verdict), candidate_id=claim.employee_id, claimed_id=claim.employee_id)
