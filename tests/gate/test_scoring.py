"""Score normalisation (gate/model/scoring.py): the scorer, its cohort file on the card, the gallery and calibration."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from gate.config import GallerySettings
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.model.card import read_card, sha256_of
from gate.model.embedder import Embedder
from gate.model.scoring import Scorer, card_scorer, cohort_people, write_cohort
from gate.store.database import Database
from tests.gate.test_gallery import _enroll, _unit
from training.calibrate_card import CohortPlan, cohort_candidates, pick_cohort
from training.data import VALIDATION_SPLIT, validation_people
from training.ship import ship_model

DIM = 32


def _cohort(seed: int = 1, n: int = 50) -> np.ndarray:
    return _unit(np.random.default_rng(seed), n, DIM)


def test_plain_scorer_is_the_cosine() -> None:
    rng = np.random.default_rng(0)
    a, b = _unit(rng, 6), _unit(rng, 4)
    scorer = Scorer()
    assert not scorer.normalised
    np.testing.assert_array_equal(scorer.matrix(a, b), a @ b.T)
    np.testing.assert_array_equal(scorer.pair_scores(a[:4], b), np.einsum("ij,ij->i", a[:4], b))
    np.testing.assert_array_equal(scorer.stats(a), np.tile([0.0, 1.0], (6, 1)))


def test_normalised_score_hand_computed() -> None:
    rng = np.random.default_rng(0)
    cohort, a, b = _cohort(), _unit(rng, 1)[0], _unit(rng, 1)[0]
    scorer = Scorer(cohort, top_k=5)
    top_a, top_b = np.sort(cohort @ a)[-5:], np.sort(cohort @ b)[-5:]
    s = float(a @ b)
    expected = 0.5 * ((s - top_a.mean()) / top_a.std() + (s - top_b.mean()) / top_b.std())
    assert scorer.pair_scores(a[None], b[None])[0] == pytest.approx(expected, rel=1e-4)
    matrix = scorer.matrix(np.stack([a, b]), np.stack([b, a]))
    assert matrix[0, 0] == pytest.approx(expected, rel=1e-4) and matrix[1, 1] == pytest.approx(expected, rel=1e-4)


def test_a_face_like_many_strangers_needs_a_higher_cosine() -> None:
    """Two pairs with the same cosine 0.9: the one whose faces sit among the cohort's strangers scores lower."""
    axes = np.eye(DIM, dtype=np.float32)
    cohort = axes[0] + 0.3 * _unit(np.random.default_rng(0), 40)  # strangers gathered around axis 0
    scorer = Scorer(cohort / np.linalg.norm(cohort, axis=1, keepdims=True), top_k=10)
    side = np.sqrt(1 - 0.9**2)
    crowded = scorer.pair_scores(axes[[0]], 0.9 * axes[[0]] + side * axes[[2]])[0]
    lonely = scorer.pair_scores(axes[[1]], 0.9 * axes[[1]] + side * axes[[3]])[0]
    assert crowded < lonely


def test_top_k_beyond_the_cohort_is_refused() -> None:
    with pytest.raises(FaceGateError, match="top_k 60 must be 1..50"):
        Scorer(_cohort(), top_k=60)


def test_gallery_scores_on_the_models_scale_and_after_reload(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gate.db'}")
    rng = np.random.default_rng(3)
    templates = {"a": _unit(rng, 2), "b": _unit(rng, 2)}
    for employee, vectors in templates.items():
        _enroll(db, employee, vectors)
    scorer = Scorer(_cohort(), top_k=5)
    path = tmp_path / "gallery.faiss"
    query = templates["b"][:1] + 0.2 * _unit(rng, 1)
    query /= np.linalg.norm(query)
    expected = scorer.matrix(query, np.concatenate(list(templates.values())))[0]
    for gallery in (
        Gallery.open(db, GallerySettings(), path, "m1", DIM, scorer),  # rebuilt from the database
        Gallery.open(db, GallerySettings(), path, "m1", DIM, scorer),
    ):  # loaded from the saved file
        found = gallery.candidates(query, top=2)[0]
        assert [m.employee_id for m in found] == ["b", "a"]
        assert found[0].score == pytest.approx(expected[2:].max(), rel=1e-4)
        assert found[1].score == pytest.approx(expected[:2].max(), rel=1e-4)
    plain = Gallery.open(db, GallerySettings(), path, "m1", DIM).search(query)[0]
    assert plain.score == pytest.approx(float((query @ templates["b"].T).max()), rel=1e-5)


def _normalised_card(untrained_card: Path, tmp_path: Path, dim: int = 128, write: bool = True) -> tuple[Path, Path]:
    """A copy of the throwaway model whose card asks for S-norm against a 20-face cohort of `dim`-d vectors
    (people p0..p19); (card path, cohort file). Without `write` the card file is left as it was."""
    folder = tmp_path / "model"
    shutil.copytree(untrained_card.parent, folder)
    card_path = folder / untrained_card.name
    cohort_file = folder / "untrained.cohort.npz"
    write_cohort(cohort_file, _unit(np.random.default_rng(0), 20, dim), np.array([f"p{i}" for i in range(20)]))
    norm = {"cohort_file": cohort_file.name, "sha256": sha256_of(cohort_file), "top_k": 5}
    if write:
        card_path.write_text(dataclasses.replace(read_card(card_path), score_norm=norm).to_json(), encoding="utf-8")
    return card_path, cohort_file


def test_card_with_cohort_loads_and_a_damaged_cohort_is_refused(untrained_card: Path, tmp_path: Path) -> None:
    card_path, cohort_file = _normalised_card(untrained_card, tmp_path)
    embedder = Embedder(card_path)
    assert embedder.scorer.normalised and embedder.scorer.top_k == 5
    assert cohort_people(card_path, read_card(card_path)) == {f"p{i}" for i in range(20)}
    cohort_file.write_bytes(cohort_file.read_bytes()[:-10])
    with pytest.raises(FaceGateError, match="checksum does not match") as error:
        read_card(card_path)
    assert "\n" not in str(error.value)
    cohort_file.unlink()
    with pytest.raises(FaceGateError, match="cohort .* not found"):
        read_card(card_path)


def test_shipping_a_normalised_card_takes_its_cohort_along(untrained_card: Path, tmp_path: Path) -> None:
    card_path, _ = _normalised_card(untrained_card, tmp_path)
    shipped = ship_model(card_path, [], tmp_path / "shipped" / "default.json")
    assert (tmp_path / "shipped" / "default.cohort.npz").is_file()
    assert Embedder(shipped).scorer.normalised
    assert ship_model(shipped, [], shipped) == shipped  # shipping the shipped card again copies nothing onto itself


def test_cohort_of_another_width_is_refused(untrained_card: Path, tmp_path: Path) -> None:
    card_path, cohort_file = _normalised_card(untrained_card, tmp_path, dim=64, write=False)
    norm = {"cohort_file": cohort_file.name, "sha256": sha256_of(cohort_file), "top_k": 5}
    card = dataclasses.replace(read_card(card_path), score_norm=norm)
    with pytest.raises(FaceGateError, match="not 128-d"):
        card_scorer(card_path, card)


def test_pick_cohort_keeps_cohort_and_calibration_people_apart() -> None:
    person = np.array([f"p{i % 10}" for i in range(60)])  # 10 people, 6 crops each
    plan = CohortPlan(candidates={f"p{i}" for i in range(8)} | {"absent"}, share=0.5, per_person=4)
    chosen, calibrating = pick_cohort(person, plan)
    cohort_people_ = set(person[chosen].tolist())
    assert len(cohort_people_) == 4 and cohort_people_ <= plan.candidates
    assert all((person[chosen] == p).sum() == 4 for p in cohort_people_)
    assert not cohort_people_ & set(person[calibrating].tolist())
    assert {"p8", "p9"} <= set(person[calibrating].tolist())  # never candidates: always calibrated on
    again, _ = pick_cohort(person, plan)
    np.testing.assert_array_equal(chosen, again)


def test_cohort_candidates_leave_out_single_photo_and_validation_people() -> None:
    counts = {f"p{i:03d}": 1 + i % 5 for i in range(400)}
    candidates = cohort_candidates(counts)
    held = validation_people(counts, VALIDATION_SPLIT["val_people"], VALIDATION_SPLIT["seed"])
    assert len(held) == 100 and not candidates & held
    assert candidates == {name for name, photos in counts.items() if photos >= 2} - held
