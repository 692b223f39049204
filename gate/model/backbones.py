"""Embedding backbones by name: `build_backbone(name, embedding_size)` fails listing the valid names; each
registers the crop template it is built for (`template_for_backbone`)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import resnet18

from gate.errors import FaceGateError
from gate.model import dlib_resnet
from gate.vision.alignment import ARCFACE_112, CropTemplate, arcface_template

_REGISTRY: dict[str, Callable[[int], nn.Module]] = {}
_TEMPLATES: dict[str, CropTemplate] = {}  # the crop each backbone is built for

Factory = Callable[[int], nn.Module]


def register(name: str, template: CropTemplate = ARCFACE_112) -> Callable[[Factory], Factory]:
    def add(factory: Factory) -> Factory:
        _REGISTRY[name], _TEMPLATES[name] = factory, template
        return factory

    return add


def backbone_names() -> list[str]:
    return sorted(_REGISTRY)


def _check(name: str) -> None:
    if name not in _REGISTRY:
        raise FaceGateError(f"unknown backbone {name!r}; valid: {', '.join(backbone_names())}")


def template_for_backbone(name: str) -> CropTemplate:
    """The crop the backbone is built for: its training crops, its card and the gate's crops use it."""
    _check(name)
    return _TEMPLATES[name]


def build_backbone(name: str, embedding_size: int = 128) -> nn.Module:
    """A fresh network mapping (N, 3, S, S) floats in [-1, 1], S = template_for_backbone(name).size, to
    (N, embedding_size) raw embeddings."""
    _check(name)
    return _REGISTRY[name](embedding_size)


class _EmbeddingHead(nn.Module):
    """BN -> dropout -> flatten -> linear -> BN: keeps the spatial layout of the last map (as ArcFace's 'E' head)."""

    def __init__(self, channels: int, spatial: int, embedding_size: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels * spatial * spatial, embedding_size)
        self.bn_out = nn.BatchNorm1d(embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn_out(self.fc(torch.flatten(self.dropout(self.bn_in(x)), 1)))


class ResNetFace(nn.Module):
    """torchvision's ResNet-18 trunk at 112x112 with an embedding head (maps 28 -> 14 -> 7 -> 4)."""

    def __init__(self, embedding_size: int) -> None:
        super().__init__()
        trunk = resnet18(weights=None)
        self.features = nn.Sequential(*list(trunk.children())[:-2])  # drop avgpool and fc
        self.head = _EmbeddingHead(512, 4, embedding_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _conv_bn(
    cin: int,
    cout: int,
    kernel: int,
    stride: int,
    groups: int = 1,
    act: bool = True,
    padding: int | None = None,
) -> nn.Sequential:
    padding = kernel // 2 if padding is None else padding
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.PReLU(cout))
    return nn.Sequential(*layers)


class _Bottleneck(nn.Module):
    """MobileNetV2 inverted residual (expand 1x1 -> depthwise 3x3 -> project 1x1)."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.body = nn.Sequential(
            _conv_bn(cin, hidden, 1, 1),
            _conv_bn(hidden, hidden, 3, stride, groups=hidden),
            _conv_bn(hidden, cout, 1, 1, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def _channels(base: int, scale: float) -> int:
    return max(8, int(round(base * scale / 8)) * 8)


class MobileFaceNet(nn.Module):
    """MobileFaceNet (Chen et al., 2018): about 1M parameters and 0.2 GFLOPs at 112x112, built for phones."""

    # (expansion, out channels, blocks, first stride)
    STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))

    def __init__(self, embedding_size: int, scale: float = 1.0) -> None:
        """`scale` multiplies every block's channels (rounded to multiples of 8): a wider student."""
        super().__init__()
        width = _channels(64, scale)
        layers: list[nn.Module] = [_conv_bn(3, width, 3, 2), _conv_bn(width, width, 3, 1, groups=width)]
        cin = width
        for expansion, base, blocks, stride in self.STAGES:
            cout = _channels(base, scale)
            for i in range(blocks):
                layers.append(_Bottleneck(cin, cout, stride if i == 0 else 1, expansion))
                cin = cout
        layers.append(_conv_bn(cin, 512, 1, 1))
        self.features = nn.Sequential(*layers)
        # global depthwise conv over the 7x7 map, then a linear projection (the paper's GDC head)
        self.head = nn.Sequential(
            _conv_bn(512, 512, 7, 1, groups=512, act=False, padding=0),
            nn.Conv2d(512, embedding_size, 1, bias=False),
            nn.BatchNorm2d(embedding_size),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register("resnet18")
def _resnet18(embedding_size: int) -> nn.Module:
    return ResNetFace(embedding_size)


@register("mobilefacenet")
def _mobilefacenet(embedding_size: int) -> nn.Module:
    return MobileFaceNet(embedding_size)


@register("mobilefacenet_wide")
def _mobilefacenet_wide(embedding_size: int) -> nn.Module:
    """1.5x the channels (2.0 M parameters), a larger student: about 1.6x the embedding time of mobilefacenet on a
    2-core CPU (benchmarks/mobilefacenet_widths.py), so over the 15 ms shipping budget there."""
    return MobileFaceNet(embedding_size, scale=1.5)


@register("inception_resnet_v1", template=arcface_template(160))
def _inception_resnet_v1(embedding_size: int) -> nn.Module:
    """facenet-pytorch's InceptionResnetV1 (FaceNet's network, 160x160 crops), untrained (its pretrained weights
    cannot be fetched here), with a projection to embedding_size. classify=True with an identity `logits` layer
    makes it return the raw batch-normalised embedding, which the losses and the embedder normalise."""
    from facenet_pytorch import InceptionResnetV1  # facenet-pytorch is already the gate's detector dependency

    network = InceptionResnetV1(pretrained=None, classify=True, num_classes=1)
    network.last_linear = nn.Linear(network.last_linear.in_features, embedding_size, bias=False)
    network.last_bn = nn.BatchNorm1d(embedding_size, eps=0.001, momentum=0.1, affine=True)
    network.logits = nn.Identity()
    return network


@register("dlib_resnet", template=dlib_resnet.CROP_TEMPLATE)
def _dlib_resnet(embedding_size: int) -> nn.Module:
    """dlib's face-recognition ResNet v1 (dlib_resnet.py): weights from dlib's file (`facegate model import`),
    or trained from them (`init_from`)."""
    return dlib_resnet.DlibResNet(embedding_size)
