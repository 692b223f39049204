"""The model file and its card: the shipped model loads offline; missing, damaged or mismatched files are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gate.errors import FaceGateError
from gate.model.backbones import build_backbone, template_for_backbone
from gate.model.card import SHIPPED_CARD, locate_card, read_card, shipped_model_names
from gate.model.embedder import Embedder
from gate.vision.alignment import arcface_template
from training.export import CardFields, export_model
from training.ship import MAX_SHIPPED_BYTES


def _copy(card: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model.json"
    shutil.copyfile(card, target)
    shutil.copyfile(card.with_suffix(".pt"), tmp_path / json.loads(card.read_text())["weights_file"])
    return target


def _edit(card: Path, **changes: object) -> None:
    data = json.loads(card.read_text())
    data.update(changes)
    card.write_text(json.dumps(data))


def test_shipped_model_loads_on_cpu_small_calibrated_unit_vectors():
    embedder = Embedder()
    card = embedder.card
    assert (SHIPPED_CARD.parent / card.weights_file).stat().st_size <= MAX_SHIPPED_BYTES
    assert card.thresholds["0.0001"] > card.thresholds["0.001"] > card.thresholds["0.01"]
    assert "lfw_pairsDevTest" in card.results
    size = card.input_size
    crops = np.random.default_rng(0).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    vectors = embedder.embed(crops)
    assert vectors.shape == (3, card.embedding_size) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embedder_batches_agree_with_one_by_one(untrained_card: Path):
    embedder = Embedder(untrained_card, batch_size=2)
    crops = np.random.default_rng(1).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    whole = embedder.embed(crops)
    single = np.concatenate([embedder.embed(crops[i : i + 1]) for i in range(5)])
    assert np.allclose(whole, single, atol=1e-5)


def test_embedder_wrong_crop_shape_raises(untrained_card: Path):
    with pytest.raises(ValueError, match="112"):
        Embedder(untrained_card).embed(np.zeros((1, 96, 96, 3), np.uint8))


def test_model_card_missing_file_one_line_error(tmp_path: Path):
    with pytest.raises(FaceGateError, match="model card not found"):
        Embedder(tmp_path / "nope.json")


def test_model_card_not_json_error(tmp_path: Path):
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(FaceGateError, match="not a valid model card"):
        read_card(tmp_path / "bad.json")


def test_model_weights_missing_error(untrained_card: Path, tmp_path: Path):
    card = _copy(untrained_card, tmp_path)
    (tmp_path / "untrained.pt").unlink()
    with pytest.raises(FaceGateError, match="weights file .* not found"):
        Embedder(card)


def test_model_weights_damaged_checksum_refused(untrained_card: Path, tmp_path: Path):
    card = _copy(untrained_card, tmp_path)
    weights = tmp_path / "untrained.pt"
    weights.write_bytes(weights.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(FaceGateError, match="checksum does not match"):
        Embedder(card)


def test_model_card_crop_template_outside_the_crop_refused(untrained_card: Path, tmp_path: Path):
    card = _copy(untrained_card, tmp_path)
    _edit(card, crop_template=[[30.0, 50.0], [80.0, 50.0], [56.0, 70.0], [40.0, 90.0], [172.0, 90.0]])
    with pytest.raises(FaceGateError, match="crop_template is not 5 points inside its crop"):
        Embedder(card)


def test_model_card_own_template_is_the_embedders(untrained_card: Path, tmp_path: Path):
    card = _copy(untrained_card, tmp_path)
    points = [[30.0, 50.0], [80.0, 50.0], [56.0, 70.0], [40.0, 90.0], [72.0, 90.0]]
    _edit(card, crop_template=points)
    assert Embedder(card).template.array.tolist() == points


def test_model_card_architecture_mismatch_refused(untrained_card: Path, tmp_path: Path):
    card = _copy(untrained_card, tmp_path)
    _edit(card, architecture="resnet18")
    with pytest.raises(FaceGateError, match="do not fit resnet18"):
        Embedder(card)


def test_model_card_unknown_architecture_lists_valid(untrained_card: Path, tmp_path: Path):
    card = _copy(untrained_card, tmp_path)
    _edit(card, architecture="vgg99")
    valid = "valid: dlib_resnet, inception_resnet_v1, mobilefacenet, mobilefacenet_wide, resnet18"
    with pytest.raises(FaceGateError, match=valid):
        Embedder(card)


def test_model_card_missing_threshold_names_available(untrained_card: Path):
    with pytest.raises(FaceGateError, match="no threshold for FAR 0.5"):
        read_card(untrained_card).threshold("0.5")


def test_embedder_flip_average_mirror_invariant(untrained_card: Path):
    crops = np.random.default_rng(2).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    flipping = Embedder(untrained_card, flip=True)
    assert np.allclose(flipping.embed(crops), flipping.embed(crops[:, :, ::-1]), atol=1e-5)
    plain = Embedder(untrained_card)
    assert not np.allclose(plain.embed(crops), plain.embed(crops[:, :, ::-1]), atol=1e-3)


def test_wide_mobilefacenet_has_half_again_the_channels_and_embeds_112_crops():
    def count(name: str) -> int:
        return sum(p.numel() for p in build_backbone(name, 128).parameters())

    assert 1.9 < count("mobilefacenet_wide") / count("mobilefacenet") < 2.3  # 1x1 convolutions grow as scale^2
    network = build_backbone("mobilefacenet_wide", 128).eval()
    assert network(torch.zeros(2, 3, template_for_backbone("mobilefacenet_wide").size, 112)).shape == (2, 128)


def test_inception_resnet_v1_card_embeds_160_crops_only(tmp_path: Path):
    sizes = (template_for_backbone("inception_resnet_v1").size, template_for_backbone("mobilefacenet").size)
    assert sizes == (160, 112)
    card = tmp_path / "irv1.json"
    network = build_backbone("inception_resnet_v1", 128).eval()
    template = arcface_template(160)
    export_model(
        network,
        card,
        CardFields(model_id="irv1", architecture="inception_resnet_v1", embedding_size=128, template=template),
    )
    embedder = Embedder(card)
    crops = np.random.default_rng(0).integers(0, 256, (2, 160, 160, 3), dtype=np.uint8)
    vectors = embedder.embed(crops)
    assert vectors.shape == (2, 128)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="160, 160, 3"):
        embedder.embed(crops[:, :112, :112])


def test_model_path_names_a_shipped_model_or_a_card(tmp_path: Path):
    assert locate_card("", tmp_path) == SHIPPED_CARD
    assert Embedder(locate_card("mobilefacenet", tmp_path)).card.architecture == "mobilefacenet"
    assert locate_card("runs/x/model.json", tmp_path) == tmp_path / "runs" / "x" / "model.json"
    assert {"default", "mobilefacenet"} <= set(shipped_model_names())
