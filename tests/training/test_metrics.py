"""Verification metrics on hand-computed cases, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import (
    auc,
    best_threshold,
    eer,
    kfold_accuracy,
    roc,
    tar_at_far,
    threshold_at_far,
    weighted_threshold_at_far,
)

# genuine 0.8, 0.5, 0.5; impostor 0.5, 0.2 (a genuine/impostor tie at 0.5)
TIED_SCORES = np.array([0.8, 0.5, 0.5, 0.5, 0.2])
TIED_LABELS = np.array([True, True, True, False, False])


def test_roc_tied_scores_one_point_per_distinct_score() -> None:
    far, tar, thresholds = roc(TIED_SCORES, TIED_LABELS)
    np.testing.assert_array_equal(thresholds, [np.inf, 0.8, 0.5, 0.2])
    np.testing.assert_allclose(tar, [0, 1 / 3, 1, 1])
    np.testing.assert_allclose(far, [0, 0, 0.5, 1])


def test_roc_mismatched_lengths_raises() -> None:
    with pytest.raises(ValueError, match="differ"):
        roc(np.array([0.1, 0.2]), np.array([True]))


def test_roc_only_genuine_raises() -> None:
    with pytest.raises(ValueError, match="impostor"):
        roc(np.array([0.1, 0.2]), np.array([True, True]))


def test_auc_tied_scores_counts_ties_half() -> None:
    # 6 genuine/impostor pairs: 4 wins and 2 ties -> (4 + 2 * 0.5) / 6
    assert auc(TIED_SCORES, TIED_LABELS) == pytest.approx(5 / 6)


def test_auc_perfect_and_reversed_scores_one_and_zero() -> None:
    labels = np.array([True, True, False, False])
    assert auc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == pytest.approx(1.0)
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == pytest.approx(0.0)


def test_eer_tied_scores_interpolated_on_roc() -> None:
    # FAR - FRR goes from -2/3 (t=0.8) to +1/2 (t=0.5): crossing at 4/7 of the way, FAR = 4/7 * 1/2
    assert eer(TIED_SCORES, TIED_LABELS) == pytest.approx(2 / 7)


def test_eer_separable_scores_zero_reversed_one() -> None:
    labels = np.array([True, True, False, False])
    assert eer(np.array([0.9, 0.8, 0.2, 0.1]), labels) == pytest.approx(0.0)
    assert eer(np.array([0.1, 0.2, 0.8, 0.9]), labels) == pytest.approx(1.0)


def test_threshold_at_far_one_allowed_just_above_second_highest() -> None:
    impostor = np.array([0.1, 0.2, 0.3, 0.4])
    threshold = threshold_at_far(impostor, 0.25)
    assert 0.3 < threshold < 0.3 + 1e-6
    assert np.mean(impostor >= threshold) == 0.25
    assert np.mean(impostor >= np.float32(threshold)) == 0.25  # survives float32 scores


def test_threshold_at_far_below_resolution_above_highest() -> None:
    threshold = threshold_at_far(np.array([0.1, 0.2, 0.3, 0.4]), 0.2)
    assert 0.4 < threshold < 0.4 + 1e-6


def test_threshold_at_far_tie_at_cut_rejects_whole_tie() -> None:
    impostor = np.array([0.5, 0.5, 0.1, 0.2])
    threshold = threshold_at_far(impostor, 0.25)  # accepting one 0.5 means accepting both: accept none
    assert 0.5 < threshold < 0.5 + 1e-6
    assert np.mean(impostor >= threshold) == 0.0
    assert 0.2 < threshold_at_far(impostor, 0.5) < 0.2 + 1e-6  # both 0.5 fit within 50%


def test_threshold_at_far_500_impostors_allows_exactly_five() -> None:
    impostor = np.arange(500) / 500
    threshold = threshold_at_far(impostor, 0.01)
    assert np.sum(impostor >= threshold) == 5


def test_threshold_at_far_out_of_range_raises() -> None:
    with pytest.raises(ValueError, match="far"):
        threshold_at_far(np.array([0.1]), 1.0)


def test_tar_at_far_quarter_two_of_three_genuine_accepted() -> None:
    scores = np.array([0.9, 0.35, 0.3, 0.1, 0.2, 0.3, 0.4])
    labels = np.array([True, True, True, False, False, False, False])
    tar, threshold = tar_at_far(scores, labels, 0.25)
    assert tar == pytest.approx(2 / 3)
    assert 0.3 < threshold < 0.35


def test_best_threshold_separable_midpoint() -> None:
    labels = np.array([False, True, False, True])
    threshold, accuracy = best_threshold(np.array([0.1, 0.4, 0.35, 0.8]), labels)
    assert threshold == pytest.approx(0.375)
    assert accuracy == 1.0


def test_best_threshold_tie_never_split_lowest_of_equal_wins() -> None:
    # splits between 0.1|0.5 and 0.5|0.9 both give 3/4; the tie at 0.5 cannot be split
    threshold, accuracy = best_threshold(np.array([0.5, 0.5, 0.9, 0.1]), np.array([True, False, True, False]))
    assert threshold == pytest.approx(0.3)
    assert accuracy == 0.75


def test_kfold_accuracy_two_folds_threshold_from_other_fold() -> None:
    scores = np.array([0.9, 0.2, 0.6, 0.7])
    labels = np.array([True, False, True, False])
    folds = np.array([0, 0, 1, 1])
    mean, std, thresholds = kfold_accuracy(scores, labels, folds)
    # fold 0 uses fold 1's best threshold (0.6: accept all, ties with reject all, lowest wins) -> 2/2 right;
    # fold 1 uses fold 0's (0.55) -> the impostor 0.7 is accepted -> 1/2 right
    np.testing.assert_allclose(thresholds, [0.6, 0.55])
    assert mean == pytest.approx(0.75)
    assert std == pytest.approx(0.25)


def test_kfold_accuracy_single_fold_raises() -> None:
    with pytest.raises(ValueError, match="2 folds"):
        kfold_accuracy(np.array([0.1, 0.9]), np.array([False, True]), np.array([0, 0]))


def test_weighted_threshold_matches_the_repeated_scores():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=400)
    weights = rng.integers(0, 4, size=400)
    order = np.argsort(-scores)
    for far in (0.0, 0.001, 0.01, 0.1, 0.5):
        expected = threshold_at_far(np.repeat(scores, weights), far)
        got = weighted_threshold_at_far(scores[order], np.cumsum(weights[order]), far)
        assert got == expected
