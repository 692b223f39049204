"""Tests of the door policy: N-of-M votes, threshold, denials with reasons, cooldown, one per track."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gate.config import DecisionSettings
from gate.decision.policy import Policy, Verdict, threshold_for
from gate.errors import FaceGateError
from gate.model.card import read_card


@dataclass(frozen=True)
class Hit:
    employee_id: str
    name: str
    score: float


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


ALICE, BOB = Hit("e1", "Alice", 0.8), Hit("e2", "Bob", 0.9)
WEAK = Hit("e1", "Alice", 0.3)


def make_policy(clock: Clock | None = None, **overrides: float) -> Policy:
    settings = DecisionSettings(**{"votes_needed": 3, "window": 5, "cooldown_s": 10.0, **overrides})
    return Policy(settings, threshold=0.6, clock=clock or Clock())


def feed(policy: Policy, track: int, matches: list) -> list:
    return [policy.observe(track, m) for m in matches]


def test_policy_three_agreeing_frames_grant_on_third() -> None:
    results = feed(make_policy(), 1, [ALICE, ALICE, ALICE])
    assert results[:2] == [None, None]
    decision = results[2]
    assert decision.verdict is Verdict.GRANTED and decision.granted
    assert (decision.employee_id, decision.name, decision.frames, decision.decision) == (
        "e1",
        "Alice",
        3,
        "granted",
    )
    assert decision.score == pytest.approx(0.8)


def test_policy_votes_split_between_people_no_grant_until_majority() -> None:
    results = feed(make_policy(), 1, [ALICE, BOB, ALICE, BOB, BOB])
    assert results[:4] == [None] * 4
    assert results[4].verdict is Verdict.GRANTED and results[4].employee_id == "e2"


def test_policy_votes_outside_window_do_not_count() -> None:
    policy = make_policy(votes_needed=2, window=2)
    results = feed(policy, 1, [ALICE, WEAK, ALICE])
    assert results == [None, None, None]  # the two ALICE frames never sit in one window of 2


def test_policy_score_below_threshold_not_a_vote_and_full_window_denied() -> None:
    results = feed(make_policy(), 1, [WEAK] * 5)
    assert results[:4] == [None] * 4
    assert results[4].verdict is Verdict.BELOW_THRESHOLD
    assert results[4].decision == "denied" and results[4].employee_id is None
    assert results[4].score == pytest.approx(0.3)


def test_policy_without_early_deny_keeps_watching_and_grants_when_close() -> None:
    policy = make_policy(early_deny=False)
    results = feed(policy, 1, [WEAK] * 6 + [ALICE] * 3)  # far away first, then close enough
    assert results[:8] == [None] * 8
    assert results[8].verdict is Verdict.GRANTED and results[8].frames == 9
    assert feed(make_policy(), 1, [WEAK] * 6 + [ALICE] * 3)[4].verdict is Verdict.BELOW_THRESHOLD  # early deny


def test_policy_without_early_deny_denies_at_track_end() -> None:
    policy = make_policy(early_deny=False)
    assert feed(policy, 1, [WEAK] * 7) == [None] * 7
    decision = policy.end_track(1)
    assert decision.verdict is Verdict.BELOW_THRESHOLD and decision.frames == 7


def test_policy_no_gallery_matches_denied_unknown_face() -> None:
    decision = feed(make_policy(), 1, [None] * 5)[-1]
    assert decision.verdict is Verdict.UNKNOWN_FACE and decision.score is None


def test_policy_threshold_equal_score_counts_as_vote() -> None:
    decision = feed(make_policy(), 1, [Hit("e1", "Alice", 0.6)] * 3)[-1]
    assert decision is not None and decision.granted


def test_policy_one_decision_per_track() -> None:
    policy = make_policy()
    results = feed(policy, 1, [ALICE] * 8)
    assert sum(r is not None for r in results) == 1
    assert policy.end_track(1) is None


def test_policy_same_person_within_cooldown_second_track_cooldown() -> None:
    clock = Clock()
    policy = make_policy(clock)
    assert feed(policy, 1, [ALICE] * 3)[-1].granted
    clock.now = 5.0
    decision = feed(policy, 2, [ALICE] * 3)[-1]
    assert decision.verdict is Verdict.COOLDOWN and decision.employee_id == "e1" and not decision.granted


def test_policy_same_person_after_cooldown_granted_again() -> None:
    clock = Clock()
    policy = make_policy(clock)
    feed(policy, 1, [ALICE] * 3)
    clock.now = 10.5
    assert feed(policy, 2, [ALICE] * 3)[-1].verdict is Verdict.GRANTED


def test_policy_cooldown_is_per_person() -> None:
    policy = make_policy()
    feed(policy, 1, [ALICE] * 3)
    assert feed(policy, 2, [BOB] * 3)[-1].verdict is Verdict.GRANTED


def test_policy_cooldown_does_not_restart_cooldown() -> None:
    clock = Clock()
    policy = make_policy(clock)
    feed(policy, 1, [ALICE] * 3)
    clock.now = 8.0
    assert feed(policy, 2, [ALICE] * 3)[-1].verdict is Verdict.COOLDOWN
    clock.now = 11.0
    assert feed(policy, 3, [ALICE] * 3)[-1].verdict is Verdict.GRANTED


def test_policy_track_ends_with_some_votes_denied_no_agreement() -> None:
    policy = make_policy()
    feed(policy, 1, [ALICE, WEAK])
    decision = policy.end_track(1)
    assert decision.verdict is Verdict.NO_AGREEMENT and decision.frames == 2
    assert policy.end_track(1) is None


def test_policy_track_ends_short_and_weak_denied_below_threshold() -> None:
    policy = make_policy()
    feed(policy, 1, [WEAK, None])
    assert policy.end_track(1).verdict is Verdict.BELOW_THRESHOLD


def test_policy_unobserved_track_ends_without_decision() -> None:
    assert make_policy().end_track(42) is None


def test_policy_decision_time_from_injected_clock() -> None:
    clock = Clock()
    clock.now = 123.0
    assert feed(make_policy(clock), 1, [ALICE] * 3)[-1].time == 123.0


def test_threshold_for_override_wins_over_card(untrained_card) -> None:
    card = read_card(untrained_card)
    assert threshold_for(DecisionSettings(target_far="0.01"), card) == pytest.approx(0.5)
    assert threshold_for(DecisionSettings(target_far="0.01", threshold=0.55), card) == pytest.approx(0.55)
    loose = DecisionSettings(target_far="0.01", threshold=0.42, allow_loose_threshold=True)
    assert threshold_for(loose, card) == pytest.approx(0.42)


@pytest.mark.parametrize(
    ("threshold", "message"),
    [(-1.0, "below untrained-test's loosest calibrated threshold 0.5000 \\(FAR 0.01\\)"), (1.5, "outside the cosine")],
)
def test_a_threshold_that_would_let_anyone_in_is_refused_in_one_line(untrained_card, threshold, message) -> None:
    """A threshold of -1 was accepted (every face granted)."""
    with pytest.raises(FaceGateError, match=message) as error:
        threshold_for(DecisionSettings(threshold=threshold), read_card(untrained_card))
    assert "\n" not in str(error.value) and "decision.threshold" in str(error.value)
