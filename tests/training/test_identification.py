"""Identification metrics on hand-computed cases, ties and empty classes included."""

import numpy as np
import pytest

from training.metrics import cmc, fnir_at_fpir, ranks

GALLERY = np.array(["a", "b", "c"])


def test_ranks_mated_and_stranger_probes():
    scores = np.array([[0.9, 0.2, 0.1], [0.5, 0.4, 0.6], [0.3, 0.8, 0.7]])
    assert ranks(scores, np.array(["a", "b", "x"]), GALLERY).tolist() == [1, 3, 0]  # b: 0.5 and 0.6 beat 0.4


def test_ranks_tie_counts_against_probe():
    scores = np.array([[0.5, 0.5, 0.1]])
    assert ranks(scores, np.array(["a"]), GALLERY).tolist() == [2]


def test_ranks_shape_mismatch_raises():
    with pytest.raises(ValueError, match="do not match"):
        ranks(np.zeros((2, 2)), np.array(["a", "b"]), GALLERY)


def test_cmc_ignores_strangers_and_accumulates():
    assert cmc(np.array([1, 2, 0, 3, 1]), 3).tolist() == [0.5, 0.75, 1.0]


def test_cmc_no_mated_probe_raises():
    with pytest.raises(ValueError, match="no mated probe"):
        cmc(np.array([0, 0]), 5)


def test_fnir_at_fpir_hand_computed():
    scores = np.array([
        [0.9, 0.1, 0.1],  # a: rank 1, 0.9
        [0.2, 0.6, 0.1],  # b: rank 1, 0.6
        [0.7, 0.1, 0.3],  # c: rank 2 -> never identified
        [0.4, 0.1, 0.2],  # stranger, top 0.4
        [0.1, 0.65, 0.2],  # stranger, top 0.65
    ])  # fmt: skip
    probes = np.array(["a", "b", "c", "x", "y"])
    # FPIR 0.5 of 2 strangers: one may pass -> threshold just above 0.4; a and b identified, c not
    fnir, threshold = fnir_at_fpir(scores, probes, GALLERY, 0.5)
    assert 0.4 < threshold < 0.41 and fnir == pytest.approx(1 / 3)
    # FPIR below 1/2: no stranger may pass -> threshold just above 0.65; only a identified
    fnir, threshold = fnir_at_fpir(scores, probes, GALLERY, 0.1)
    assert 0.65 < threshold < 0.66 and fnir == pytest.approx(2 / 3)


def test_fnir_at_fpir_needs_both_kinds():
    with pytest.raises(ValueError, match="both"):
        fnir_at_fpir(np.array([[0.9, 0.1, 0.1]]), np.array(["a"]), GALLERY, 0.01)
