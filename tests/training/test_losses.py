"""Triplet losses and the P x K sampler on hand-made embeddings (no faces)."""

import numpy as np
import pytest
import torch

from gate.errors import FaceGateError
from training.data import PKSampler
from training.losses import batch_hard_triplet, get_loss, semi_hard_triplet


def _unit(*angles_deg: float) -> torch.Tensor:
    a = torch.tensor(angles_deg) * torch.pi / 180
    return torch.stack([torch.cos(a), torch.sin(a)], 1)


def test_batch_hard_well_separated_classes_zero_loss():
    emb = _unit(0, 5, 90, 95)  # two tight, far-apart pairs
    labels = torch.tensor([0, 0, 1, 1])
    assert batch_hard_triplet(emb, labels, margin=0.3).item() == pytest.approx(0.0)


def test_batch_hard_negative_closer_than_positive_hand_computed():
    emb = _unit(0, 60, 10, 100)  # anchor 0: positive at 60 deg, a negative at 10 deg
    labels = torch.tensor([0, 0, 1, 1])
    chord = lambda deg: 2 * np.sin(np.radians(deg) / 2)  # noqa: E731
    # per anchor: hardest positive minus nearest negative plus margin
    expected = np.mean(
        [
            max(0, chord(60) - chord(10) + 0.1),  # a=0: pos 60, nearest neg 10 (the 10-degree one)
            max(0, chord(60) - chord(40) + 0.1),  # a=60: pos 60, nearest neg at 100 (40 deg) vs 10 (50 deg)
            max(0, chord(90) - chord(10) + 0.1),  # a=10: pos 100 (90 deg), nearest neg 0 (10 deg)
            max(0, chord(90) - chord(40) + 0.1),  # a=100: pos 10 (90 deg), nearest neg 60 (40 deg)
        ]
    )
    assert batch_hard_triplet(emb, labels, margin=0.1).item() == pytest.approx(expected, abs=1e-5)


def test_semi_hard_prefers_negative_beyond_positive():
    # anchor at 0, positive at 20; negatives at 10 (hard) and 30 (semi-hard: farther than positive)
    emb = _unit(0, 20, 10, 30)
    labels = torch.tensor([0, 0, 1, 2])
    chord = lambda deg: 2 * np.sin(np.radians(deg) / 2)  # noqa: E731
    loss = semi_hard_triplet(emb[:4], labels, margin=0.5)
    # anchor 0 / positive 20: semi-hard negative is 30 -> relu(chord20 - chord30 + 0.5)
    a0 = max(0, chord(20) - chord(30) + 0.5)
    # anchor 20 / positive 0: negatives at 10 deg (10 away) and 30 (10 away) are both nearer than 20 -> hardest
    a1 = max(0, chord(20) - chord(10) + 0.5)
    assert loss.item() == pytest.approx((a0 + a1) / 2, abs=1e-5)


def test_get_loss_unknown_name_lists_valid():
    with pytest.raises(FaceGateError, match="batch_hard"):
        get_loss("nope")


def test_pk_sampler_batches_hold_p_identities_of_k():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 3 + [3] * 1 + [4] * 4)
    sampler = PKSampler(labels, p=3, k=4, seed=1)
    for batch in sampler:
        assert len(batch) == 12
        chosen = labels[batch].reshape(3, 4)
        assert all(len(set(row)) == 1 for row in chosen)
        assert len(set(chosen[:, 0])) == 3
        assert 3 not in chosen  # a single-photo identity gives no positive pair


def test_pk_sampler_appends_unlabelled_rows_and_keeps_the_labelled_batches():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 3 + [4] * 4 + [-1] * 6)
    plain = list(PKSampler(labels[labels >= 0], p=3, k=4, seed=1))
    mixed = list(PKSampler(labels, p=3, k=4, seed=1, unlabelled=5))
    assert len(mixed) == len(plain) == 1  # an epoch counts the labelled crops only
    for a, b in zip(plain, mixed, strict=True):
        assert np.array_equal(a, b[:12])  # the same seed draws the same people and photos
        assert (labels[b[12:]] == -1).all() and len(set(b[12:])) == 5
    with pytest.raises(FaceGateError, match="7 unlabelled crops a batch asked, but the pool has 6"):
        PKSampler(labels, p=3, k=4, unlabelled=7)


def test_training_heads_arcface_skips_unlabelled_rows_the_teacher_does_not():
    from training.heads import TrainingHeads

    torch.manual_seed(0)
    heads = TrainingHeads(embedding_size=8, classes=3, arcface_weight=1.0, distill_weight=1.0, teacher_size=4)
    embeddings = torch.randn(4, 8)
    targets = torch.nn.functional.normalize(torch.randn(4, 4), dim=1)
    labels = torch.tensor([0, 1, -1, 2])
    loss = heads.loss(embeddings, labels, targets)
    known = [0, 1, 3]
    arcface = torch.nn.functional.cross_entropy(heads.arcface(embeddings[known], labels[known]), labels[known])
    teacher = (1 - torch.nn.functional.cosine_similarity(heads.to_teacher(embeddings), targets, dim=1)).mean()
    assert loss.item() == pytest.approx((arcface + teacher).item(), abs=1e-5)


def test_training_heads_distill_only_rows_with_teacher():
    from training.heads import TrainingHeads

    torch.manual_seed(0)
    heads = TrainingHeads(embedding_size=8, classes=3, distill_weight=2.0, teacher_size=4)
    embeddings = torch.randn(3, 8)
    targets = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
    targets[1] = float("nan")
    loss = heads.loss(embeddings, torch.tensor([0, 1, 2]), targets)
    projected = heads.to_teacher(embeddings[[0, 2]])
    expected = 2.0 * (1 - torch.nn.functional.cosine_similarity(projected, targets[[0, 2]], dim=1)).mean()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert heads.loss(embeddings, torch.tensor([0, 1, 2]), torch.full((3, 4), float("nan"))).item() == 0.0


def test_prepare_targets_centred_unit_rows_nan_kept():
    from training.teacher import prepare_targets

    raw = np.array([[1.0, 1.0], [1.2, 0.8], [np.nan, np.nan], [0.8, 1.2]], np.float32)  # a narrow cone
    targets = prepare_targets(raw)
    assert np.isnan(targets[2]).all()
    rows = targets[[0, 1, 3]]
    assert np.allclose(np.linalg.norm(rows[1:], axis=1), 1.0)
    assert rows[1] @ rows[2] == pytest.approx(-1.0, abs=1e-5)  # spread apart once centred


def test_contrastive_hand_computed_pull_and_push():
    from training.losses import contrastive

    emb = _unit(0, 60, 90, 180)  # same: (0, 60); different: everything else
    labels = torch.tensor([0, 0, 1, 2])
    chord = lambda deg: 2 * np.sin(np.radians(deg) / 2)  # noqa: E731
    pulled = chord(60) ** 2
    negatives = [90, 180, 30, 120, 90]  # pairs (0,90) (0,180) (60,90) (60,180) (90,180), in degrees apart
    pushed = np.mean([max(0.0, 1.2 - chord(d)) ** 2 for d in negatives])
    assert contrastive(emb, labels, margin=0.2).item() == pytest.approx(pulled + pushed, abs=1e-5)
