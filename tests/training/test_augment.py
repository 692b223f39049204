"""Training augmentation on whole batches: output range, the occlusion (random erasing) option, and none."""

import numpy as np
import pytest
import torch

from gate.model.embedder import to_tensor
from training.augment import FaceAugment
from training.recipes import make_config
from training.train import recipe_name

SIZE = 112


def _still(**occlusion) -> FaceAugment:
    """Only the colour-free, geometry-free path, so erased pixels are the only change."""
    return FaceAugment(scale=0.0, shift=0.0, degrees=0.0, colour=0.0, grey_p=0.0, blur_p=0.0, **occlusion)


def _white(n: int) -> torch.Tensor:
    return torch.full((n, SIZE, SIZE, 3), 255, dtype=torch.uint8)


def test_output_is_normalised_channels_first():
    torch.manual_seed(0)
    out = FaceAugment()(torch.randint(0, 256, (8, SIZE, SIZE, 3), dtype=torch.uint8))
    assert out.shape == (8, 3, SIZE, SIZE)
    assert out.min() >= -1.0 and out.max() <= 1.0


def test_occlusion_erases_one_grey_rectangle_of_5_to_25_percent():
    torch.manual_seed(0)
    out = _still(occlusion_p=1.0)(_white(64))
    for image in out:
        erased = (image == 0.0).all(dim=0)  # mid-grey is 0 after normalisation; the rest stays white (1)
        assert torch.equal(erased | (image == 1.0).all(dim=0), torch.ones_like(erased))
        rows, cols = erased.any(dim=1).nonzero().ravel(), erased.any(dim=0).nonzero().ravel()
        height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert erased.sum() == height * width  # one solid rectangle
        assert 0.04 <= height * width / SIZE**2 <= 0.26


def test_no_occlusion_by_default_and_at_share_zero():
    torch.manual_seed(0)
    assert (_still()(_white(16)) == 1.0).all()
    assert (_still(occlusion_p=0.0)(_white(16)) == 1.0).all()


@pytest.mark.slow  # thousands of augmented crops (~4 s)
def test_occlusion_share_is_respected():
    torch.manual_seed(0)
    out = _still(occlusion_p=0.3)(_white(2000))
    share = (out == 0.0).flatten(1).any(dim=1).float().mean()
    assert 0.25 < share < 0.35


def test_without_augmentation_the_crops_go_in_as_the_embedder_feeds_them_and_the_recipe_says_so():
    crops = np.random.default_rng(0).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    assert torch.allclose(to_tensor(torch.from_numpy(crops)), to_tensor(crops))  # the training path: a tensor
    assert not torch.allclose(FaceAugment()(torch.from_numpy(crops)), to_tensor(crops))
    assert recipe_name(make_config(overrides=["augment=false"])) == "batch_hard+no-augment"
    assert "augment" not in recipe_name(make_config())
