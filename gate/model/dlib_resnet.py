"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1, public domain) as a PyTorch module.

The same arithmetic as dlib's `anet_type` (dlib/examples/dnn_face_recognition_ex.cpp): 29 convolutions at
150x150 RGB, per-channel "affine" layers (batch norm folded into a scale and a shift), 128-d output. Where dlib
differs from the usual ResNet, this module follows dlib:
- stride-2 convolutions and pools are unpadded (dlib pads k/2 only at stride 1): 150 -> 72 -> 35 -> 17 -> 8 -> 4 -> 2;
- a downsampling block's skip path is a 2x2 average pool of its input, and the sum zero-pads both operands to the
  larger channel count and size, at the end (in the last two stages the convolution path is the smaller one:
  3x3 against 4x4, 1x1 against 2x2);
- the input is (pixel - the mean stored in the file) / 256.
Weights come from dlib's file through gate.model.dlib_format; `fuse()` folds every affine into its convolution for
inference (exact, and about 1.4x faster).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn import functional

from gate.vision.alignment import CropTemplate

INPUT_SIZE = 150
# Where MTCNN's 5 points fall in dlib's own 150x150 chips (get_face_chip_details, padding 0.25): MTCNN landmarks
# of LFW DevTrain photos mapped into dlib's chips of the same photos and averaged (benchmarks/dlib_template.py).
CROP_TEMPLATE = CropTemplate(150, ((47.9, 46.0), (102.2, 46.0), (75.0, 78.3), (50.8, 105.7), (98.6, 105.7)))
EMBEDDING_SIZE = 128
STEM_CHANNELS = 32
# (channels, residual blocks, the first one downsamples), from the input upwards
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


class Affine(nn.Module):
    """dlib's affine layer in its convolutional mode: y = weight[c] * x + bias[c] per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] + self.bias[:, None, None]


def _conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Conv2d:
    """A convolution padded the dlib way: k/2 at stride 1, nothing at stride 2."""
    return nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2 if stride == 1 else 0, bias=True)


def fold_affine(conv: nn.Conv2d, affine: nn.Module) -> None:
    """Fold an Affine that follows `conv` into its weights and bias (exact: the scale acts after the sum)."""
    if not isinstance(affine, Affine):
        return  # folded already
    with torch.no_grad():
        assert conv.bias is not None  # the port's convolutions all have one
        conv.weight.mul_(affine.weight[:, None, None, None])
        conv.bias.mul_(affine.weight).add_(affine.bias)


def add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum of two (N, C, H, W) maps, each zero-padded at the end to the larger C, H and W."""
    if a.shape == b.shape:
        return a + b
    channels, height, width = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(x: torch.Tensor) -> torch.Tensor:
        return functional.pad(x, (0, width - x.shape[3], 0, height - x.shape[2], 0, channels - x.shape[1]))

    return pad(a) + pad(b)


class Residual(nn.Module):
    """conv 3x3 (stride 1 or 2) -> affine -> relu -> conv 3x3 -> affine, plus the (pooled) input, then relu."""

    def __init__(self, cin: int, cout: int, downsample: bool) -> None:
        super().__init__()
        self.downsample = downsample
        self.conv1 = _conv(cin, cout, 3, 2 if downsample else 1)
        self.affine1: nn.Module = Affine(cout)
        self.conv2 = _conv(cout, cout, 3, 1)
        self.affine2: nn.Module = Affine(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(torch.relu(self.affine1(self.conv1(x)))))
        skip = functional.avg_pool2d(x, 2, 2) if self.downsample else x
        return torch.relu(add_padded(y, skip))

    def fuse(self) -> None:
        fold_affine(self.conv1, self.affine1)
        fold_affine(self.conv2, self.affine2)
        self.affine1, self.affine2 = nn.Identity(), nn.Identity()


def residual_layout() -> list[tuple[int, int, bool]]:
    """(in channels, out channels, downsamples) of every residual block, from the input upwards."""
    layout, cin = [], STEM_CHANNELS
    for channels, blocks, downsample in STAGES:
        for i in range(blocks):
            layout.append((cin, channels, downsample and i == 0))
            cin = channels
    return layout


class DlibResNet(nn.Module):
    """(N, 3, 150, 150) RGB floats in the gates' convention [-1, 1] -> (N, 128) raw descriptors (norm about 1.4)."""

    input_mean: torch.Tensor  # a buffer (saved with the weights)

    def __init__(self, embedding_size: int = EMBEDDING_SIZE) -> None:
        super().__init__()
        # dlib's input layer subtracts these (stored in its file) from 0-255 pixels, then divides by 256
        self.register_buffer("input_mean", torch.tensor([122.782, 117.001, 104.298]))
        self.stem = _conv(3, STEM_CHANNELS, 7, 2)
        self.stem_affine: nn.Module = Affine(STEM_CHANNELS)
        self.blocks = nn.Sequential(*(Residual(cin, cout, down) for cin, cout, down in residual_layout()))
        self.fc = nn.Linear(STAGES[-1][0], embedding_size, bias=False)
        self.input_folded = False

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 256) globally pooled features, what the last (linear) layer reads."""
        if not self.input_folded:  # [-1, 1] -> (pixel - mean) / 256
            x = (x * 127.5 + 127.5 - self.input_mean[:, None, None]) / 256.0
        x = functional.max_pool2d(torch.relu(self.stem_affine(self.stem(x))), 3, 2)
        return self.blocks(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pooled(x))

    @torch.no_grad()
    def fuse(self) -> DlibResNet:
        """Fold the input scaling and every affine into the convolutions, for inference only (the stem is
        unpadded, so folding the input's scale and shift into it is exact too)."""
        if self.input_folded:
            return self
        scale = 127.5 / 256.0
        shift = (127.5 - self.input_mean) / 256.0
        assert self.stem.bias is not None
        self.stem.bias.add_((self.stem.weight * shift[None, :, None, None]).sum(dim=(1, 2, 3)))
        self.stem.weight.mul_(scale)
        self.input_folded = True
        fold_affine(self.stem, self.stem_affine)
        self.stem_affine = nn.Identity()
        for block in self.blocks:
            cast(Residual, block).fuse()
        return self
