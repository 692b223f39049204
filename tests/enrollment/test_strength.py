"""Enrolment strength on constructed vectors: weak with one template, with own faces that disagree, with another
person close; strong otherwise; and the thresholds taken from the card and the gate's settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from enrollment.roster import set_active
from enrollment.strength import StrengthRule, all_strengths, strengths
from gate.config import DecisionSettings, GallerySettings
from gate.matching.gallery import Gallery
from gate.model.card import ModelCard
from gate.model.scoring import Scorer
from gate.store.database import Database
from tests.enrollment.test_roster import DIM, enrol

RULE = StrengthRule(decision=0.9, close=0.8)


def unit(*rows: list[float]) -> np.ndarray:
    """Rows padded to DIM and scaled to unit length."""
    out = np.zeros((len(rows), DIM), dtype=np.float32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def near(axis: int, cosine: float, towards: int) -> list[float]:
    """A unit vector at `cosine` from axis `axis`, leaning towards axis `towards`."""
    row = [0.0] * DIM
    row[axis], row[towards] = cosine, float(np.sqrt(1 - cosine**2))
    return row


def test_strength_with_agreeing_faces_and_nobody_near_is_strong() -> None:
    vectors = unit(near(0, 0.98, 5), near(0, 0.98, 6), [0, 1], near(1, 0.97, 7))
    found = strengths(vectors, np.array(["a", "a", "b", "b"]), {}, Scorer(), RULE)
    assert not found["a"].weak and found["a"].reasons == ()
    assert found["a"].templates == 2 and found["a"].own_worst == pytest.approx(0.98**2, abs=1e-5)
    assert found["a"].nearest_id == "b" and found["a"].nearest_score < 0.1


def test_strength_with_one_template_is_weak_as_agreement_is_unknown() -> None:
    found = strengths(unit([1], [0, 1], near(1, 0.99, 3)), np.array(["a", "b", "b"]), {}, Scorer(), RULE)
    assert found["a"].weak and found["a"].own_worst is None and "only one template" in found["a"].reasons[0]
    assert not found["b"].weak


def test_strength_with_own_templates_below_the_decision_threshold_is_weak() -> None:
    vectors = unit([1], near(0, 0.95, 4), near(0, 0.85, 5), [0, 1], near(1, 0.99, 3))
    found = strengths(vectors, np.array(["a", "a", "a", "b", "b"]), {}, Scorer(), RULE)
    (reason,) = found["a"].reasons
    assert "may be turned away" in reason and found["a"].own_median == pytest.approx(0.85, abs=1e-5)
    assert found["a"].own_worst == pytest.approx(min(0.85, 0.95 * 0.85), abs=1e-3)


def test_strength_with_another_person_at_the_close_threshold_is_weak_for_both() -> None:
    vectors = unit([1], near(0, 0.99, 4), near(0, 0.85, 2), near(0, 0.84, 3), [0, 0, 0, 0, 0, 0, 1], near(6, 0.99, 7))
    found = strengths(vectors, np.array(["a", "a", "b", "b", "c", "c"]), {}, Scorer(), RULE)
    assert found["a"].nearest_id == "b" and found["a"].nearest_score >= 0.8
    assert any("close to b" in reason for reason in found["a"].reasons)
    assert any("close to a" in reason for reason in found["b"].reasons)
    assert not found["c"].weak and found["c"].nearest_score < 0.1
    # an inactive person opens no door: nobody is close to them
    found = strengths(vectors, np.array(["a", "a", "b", "b", "c", "c"]), {"b": False}, Scorer(), RULE)
    assert found["a"].nearest_id == "c" and not found["a"].weak


def card(thresholds: dict[str, float]) -> ModelCard:
    return ModelCard("m", "x", 112, DIM, [], "m.pt", "0" * 64, thresholds)


def test_strength_rule_takes_the_gate_threshold_and_the_cards_at_far_1e3() -> None:
    both = card({"0.001": 0.7, "0.0001": 0.8})
    assert StrengthRule.of(DecisionSettings(), both) == StrengthRule(0.8, 0.7)
    assert StrengthRule.of(DecisionSettings(threshold=0.75), both) == StrengthRule(0.75, 0.7)
    loose = DecisionSettings(threshold=0.65, allow_loose_threshold=True)
    assert StrengthRule.of(loose, both) == StrengthRule(0.65, 0.65)
    assert StrengthRule.of(DecisionSettings(threshold=0.85), card({"0.0001": 0.8})) == StrengthRule(0.85, 0.85)


def test_all_strengths_reads_every_person_from_the_database(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    enrol(database, "e1", unit([1], near(0, 0.99, 3)))
    enrol(database, "e2", unit([0, 1]))
    enrol(database, "e3", unit(near(0, 0.9, 2), near(0, 0.89, 4)))
    found = all_strengths(database, "m1", Scorer(), RULE)
    assert sorted(found) == ["e1", "e2", "e3"] and found["e1"].nearest_id == "e3" and found["e1"].weak
    assert all_strengths(database, "other-model", Scorer(), RULE)["e1"].templates == 0
    gallery = Gallery.open(database, GallerySettings(), tmp_path / "gallery.faiss", "m1", DIM)
    set_active(database, gallery, "e3", False)
    assert not all_strengths(database, "m1", Scorer(), RULE)["e1"].weak
