"""How strong a person's enrolment is: how well their own templates agree, and how close the nearest other
person comes, scored as the gate scores (the gallery's model and its scorer), with the card's thresholds.

The rule (docs/guide/enrolling.md, "Enrolment strength"): a person is weak, with a reason each, when
- they have fewer than two templates of the model: how well their faces agree is unknown;
- their own worst pair scores below the gate's decision threshold: a face like that one may be turned away;
- some template of another (active) person scores at or above the "close" threshold against one of theirs: the
  card's threshold at FAR 1e-3 (`CLOSE_FAR`), or the decision threshold when that is lower or the card has none.
Everyone is computed in one pass over all templates of the model (chunked matrix products), so thousands of people
take well under a second; no network is loaded, only the card's scorer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gate.config import DecisionSettings, Settings
from gate.decision.policy import threshold_for
from gate.model.card import ModelCard
from gate.model.scoring import Scorer
from gate.runtime.parts import card_only
from gate.store import people
from gate.store.database import Database

CLOSE_FAR = "0.001"  # another person scoring at the card's threshold for this false-accept rate is "close"
CHUNK = 2048  # template rows scored against all others at once (bounds one matrix product's memory)


@dataclass(frozen=True)
class StrengthRule:
    """The two thresholds the rule uses, on the card's score scale."""

    decision: float  # the gate's: own pairs below it may be turned away
    close: float  # another person at or above it is close

    @classmethod
    def of(cls, settings: DecisionSettings, card: ModelCard) -> StrengthRule:
        """The gate's decision threshold and the card's threshold at CLOSE_FAR (never above the decision one)."""
        decision = threshold_for(settings, card)
        return cls(decision, min(card.thresholds.get(CLOSE_FAR, decision), decision))


@dataclass(frozen=True)
class Strength:
    """One person's enrolment strength for one model; scores are None where there is nothing to compare."""

    templates: int  # of the model
    own_worst: float | None  # the lowest score between two of their templates
    own_median: float | None  # the median of those pairs
    nearest_id: str | None  # the other person whose template came closest to one of theirs
    nearest_score: float | None
    reasons: tuple[str, ...]  # why weak; empty: strong

    @property
    def weak(self) -> bool:
        return bool(self.reasons)


def _reasons(strength: Strength, rule: StrengthRule) -> tuple[str, ...]:
    reasons = []
    if strength.templates == 0:
        reasons.append("no template of the gate's model: no gate knows them (re-embed or enrol them again)")
    elif strength.templates == 1:
        reasons.append("only one template: how well their faces agree is unknown")
    if strength.own_worst is not None and strength.own_worst < rule.decision:
        reasons.append(
            f"their own templates disagree (worst pair {strength.own_worst:.3f} < threshold {rule.decision:.3f}):"
            " they may be turned away"
        )
    if strength.nearest_score is not None and strength.nearest_score >= rule.close:
        reasons.append(f"close to {strength.nearest_id} ({strength.nearest_score:.3f} >= {rule.close:.3f})")
    return tuple(reasons)


def _rated(templates: int, own: tuple[float | None, float | None], near: tuple[str | None, float | None],
           rule: StrengthRule) -> Strength:  # fmt: skip
    plain = Strength(templates, own[0], own[1], near[0], near[1], ())
    return Strength(templates, own[0], own[1], near[0], near[1], _reasons(plain, rule))


def _own_pairs(scorer: Scorer, vectors: np.ndarray, stats: np.ndarray) -> tuple[float | None, float | None]:
    """(worst, median) score over the pairs of one person's templates; (None, None) under two templates."""
    if len(vectors) < 2:
        return None, None
    scores = scorer.normalise(vectors @ vectors.T, stats[:, None, :], stats[None, :, :])
    pairs = scores[np.triu_indices(len(vectors), k=1)]
    return float(pairs.min()), float(np.median(pairs))


def _nearest_rows(
    scorer: Scorer, vectors: np.ndarray, stats: np.ndarray, codes: np.ndarray, eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the best score against a row of another eligible person (codes: one int per person), and
    that row (-1: none)."""
    best = np.full(len(vectors), -np.inf, dtype=np.float32)
    where = np.full(len(vectors), -1, dtype=np.int64)
    for start in range(0, len(vectors), CHUNK):
        rows = slice(start, start + CHUNK)
        scores = scorer.normalise(vectors[rows] @ vectors.T, stats[rows, None, :], stats[None, :, :])
        scores[(codes[rows, None] == codes[None, :]) | ~eligible[None, :]] = -np.inf
        where[rows] = scores.argmax(axis=1)
        best[rows] = scores[np.arange(len(scores)), where[rows]]
    where[~np.isfinite(best)] = -1
    return best, where


def strengths(
    vectors: np.ndarray, owners: np.ndarray, active: dict[str, bool], scorer: Scorer, rule: StrengthRule
) -> dict[str, Strength]:
    """Employee id -> strength, for every owner of these templates ((N, D) L2-normalised rows, `owners` (N,) the
    employee id of each row); nearest others are only the active people (an inactive one opens no door)."""
    names, codes = np.unique(np.asarray(owners, dtype=str), return_inverse=True)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(codes), -1)
    stats = scorer.stats(vectors)
    eligible = np.array([active.get(str(name), True) for name in names], dtype=bool)[codes]
    best, where = _nearest_rows(scorer, vectors, stats, codes, eligible)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    found: dict[str, Strength] = {}
    for code, name in enumerate(names.tolist()):
        mine = order[bounds[code] : bounds[code + 1]]
        top = mine[int(np.argmax(best[mine]))]
        near = (str(names[codes[where[top]]]), float(best[top])) if where[top] >= 0 else (None, None)
        found[name] = _rated(len(mine), _own_pairs(scorer, vectors[mine], stats[mine]), near, rule)
    return found


def all_strengths(database: Database, model_id: str, scorer: Scorer, rule: StrengthRule) -> dict[str, Strength]:
    """Employee id -> strength for everyone enrolled, for the templates of one model; a person without any
    template of it is weak (0 templates)."""
    with database.session() as session:
        everyone = people.people_by_id(session)
        _, person_ids, vectors = people.model_templates(session, model_id)
    owners = np.array([everyone[int(p)].employee_id for p in person_ids], dtype=str)
    active = {person.employee_id: person.active for person in everyone.values()}
    found = strengths(vectors, owners, active, scorer, rule) if len(owners) else {}
    none = _rated(0, (None, None), (None, None), rule)
    return {person.employee_id: found.get(person.employee_id, none) for person in everyone.values()}


def configured_strengths(database: Database, settings: Settings) -> dict[str, Strength]:
    """Everyone's strength for the configured model, from its card and scorer alone (no network is loaded)."""
    model = card_only(settings)
    rule = StrengthRule.of(settings.decision, model.card)
    return all_strengths(database, model.model_id, model.scorer, rule)


def describe(strength: Strength) -> str:
    """One line: "strong" or "weak: reason; reason"."""
    return f"weak: {'; '.join(strength.reasons)}" if strength.weak else "strong"
