"""dlib's face-recognition ResNet in PyTorch: the same descriptors as dlib itself, and its file reader's errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from gate.errors import FaceGateError
from gate.model.card import SHIPPED_CARD, read_card, sha256_of
from gate.model.dlib_format import DlibFormatError, parse_network, read_network_file
from gate.model.dlib_resnet import CROP_TEMPLATE, DlibResNet, add_padded
from gate.model.embedder import Embedder, to_tensor
from gate.vision.imageio import load_image
from training.dlib_import import import_dlib_model, packaged_network_file

# dlib itself (dlib-bin) is the reference this port must equal; both extras are installed by `make test`
dlib = pytest.importorskip("dlib", reason="dlib, the peer extra, is not installed: pip install -e '.[peer]'")
pytest.importorskip("face_recognition_models", reason="the import extra is not installed: pip install -e '.[import]'")


@pytest.fixture(scope="module")
def port() -> DlibResNet:
    network = DlibResNet()
    network.load_state_dict(read_network_file(packaged_network_file()))
    return network.eval()


@pytest.fixture(scope="module")
def dlib_net():
    return dlib.face_recognition_model_v1(str(packaged_network_file()))


def _synthetic_chips(count: int) -> np.ndarray:
    """Smooth random 150x150 images: any input must give dlib's numbers, faces or not."""
    rng = np.random.default_rng(0)
    return np.stack([cv2.GaussianBlur(rng.integers(0, 256, (150, 150, 3), np.uint8), (0, 0), 2) for _ in range(count)])


def _dlib_chips(photos: list[Path]) -> np.ndarray:
    """dlib's own aligned chips: its HOG detector, 5-point shape predictor and get_face_chip (150 px, padding 0.25)."""
    import face_recognition_models as models

    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
    chips = []
    for photo in photos:
        image = load_image(photo)
        found = detector(image, 1)
        if len(found):
            chips.append(dlib.get_face_chip(image, shapes(image, found[0]), size=150, padding=0.25))
    return np.stack(chips)


def _dlib_descriptors(net, chips: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(net.compute_face_descriptor(chip), np.float32) for chip in chips])


def _port_descriptors(network: torch.nn.Module, chips: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return network(to_tensor(chips)).numpy()


def test_port_equals_dlib_on_synthetic_chips_within_1e4(port, dlib_net):
    chips = _synthetic_chips(4)
    ours, theirs = _port_descriptors(port, chips), _dlib_descriptors(dlib_net, chips)
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.linalg.norm(theirs, axis=1).min() > 1.0  # raw descriptors, not unit vectors


def test_port_equals_dlib_on_dlibs_own_face_chips_within_1e4(port, dlib_net, lfw_root: Path):
    photos = sorted(lfw_root.glob("A*/*_0001.jpg"))[:12]
    chips = _dlib_chips(photos)
    assert len(chips) >= 8
    assert np.abs(_port_descriptors(port, chips) - _dlib_descriptors(dlib_net, chips)).max() < 1e-4


def test_fused_port_gives_the_same_descriptors(port):
    chips = _synthetic_chips(2)
    fused = DlibResNet()
    fused.load_state_dict(port.state_dict())
    fused.eval().fuse()
    assert np.abs(_port_descriptors(fused, chips) - _port_descriptors(port, chips)).max() < 1e-5


def test_shipped_default_is_the_port_in_float16(dlib_net):
    """The default model is the converted file, float16: unit vectors within 1e-6 cosine of dlib's."""
    embedder = Embedder()
    card = embedder.card
    assert card.architecture == "dlib_resnet" and embedder.template == CROP_TEMPLATE
    assert card.source["sha256"] == sha256_of(packaged_network_file())
    assert "public domain" in card.source["licence"] and "research" in card.source["training_data_caveat"]
    chips = _synthetic_chips(3)
    theirs = _dlib_descriptors(dlib_net, chips)
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)
    assert (embedder.embed(chips) * theirs).sum(axis=1).min() > 1 - 1e-6


def test_feature_map_sizes_follow_dlibs_unpadded_strides():
    network, sizes = DlibResNet().eval(), []
    for block in network.blocks:
        block.register_forward_hook(lambda _m, _i, out: sizes.append(out.shape[-1]))
    with torch.inference_mode():
        assert network(torch.zeros(1, 3, 150, 150)).shape == (1, 128)
    assert sorted(set(sizes), reverse=True) == [35, 17, 8, 4, 2]


def test_add_padded_zero_pads_both_at_the_end():
    a, b = torch.ones(1, 2, 3, 3), torch.full((1, 1, 4, 4), 2.0)
    total = add_padded(a, b)
    assert total.shape == (1, 2, 4, 4)
    assert total[0, 0, 0, 0] == 3 and total[0, 0, 3, 3] == 2 and total[0, 1, 0, 0] == 1 and total[0, 1, 3, 3] == 0


def test_import_writes_model_and_card_that_load(tmp_path: Path, port):
    card = import_dlib_model(tmp_path / "dlib.json")
    embedder = Embedder(tmp_path / "dlib.json")
    assert read_card(tmp_path / "dlib.json").source["sha256"] == card.source["sha256"]
    assert read_card(tmp_path / "dlib.json").training["unseen"] == ["lfw"]  # as the shipped card: the study reads it
    assert (tmp_path / "dlib.pt").stat().st_size < 12_000_000  # float16
    chips = _synthetic_chips(2)
    reference = torch.nn.functional.normalize(torch.from_numpy(_port_descriptors(port, chips)), dim=1).numpy()
    assert np.abs(embedder.embed(chips) - reference).max() < 1e-3


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data + b"\x00",  # trailing bytes
        lambda data: b"\x01\x02" + data[2:],  # wrong loss-layer version
        lambda data: bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8)),  # not a dlib file
    ],
)
def test_damaged_network_file_is_one_line_error(damage):
    data = packaged_network_file().read_bytes()
    with pytest.raises(DlibFormatError) as error:
        parse_network(damage(data))
    assert "\n" not in str(error.value)


def test_another_dlib_file_is_refused_with_its_name(tmp_path: Path):
    import face_recognition_models as models

    other = tmp_path / "shape_predictor.dat"
    shutil.copyfile(models.pose_predictor_five_point_model_location(), other)
    with pytest.raises(FaceGateError, match="shape_predictor.dat: not dlib's face-recognition ResNet v1"):
        read_network_file(other)
    with pytest.raises(FaceGateError, match="cannot read"):
        read_network_file(tmp_path / "missing.dat")


def test_shipped_card_records_how_it_was_calibrated():
    card = read_card(SHIPPED_CARD)
    assert set(card.thresholds) == {"0.01", "0.001", "0.0001", "0.00001"}
    assert card.thresholds["0.00001"] > card.thresholds["0.0001"] > card.thresholds["0.001"] > card.thresholds["0.01"]
    assert card.results["calibration"]["impostor_pairs"] > 10_000_000
