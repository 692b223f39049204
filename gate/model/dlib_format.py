"""Reads dlib's face-recognition network file (dlib_face_recognition_resnet_model_v1.dat) into a state dict for
gate.model.dlib_resnet.DlibResNet.

dlib serialises a network as nested objects: each layer writes a version, then its whole sub-network, then its own
details, so the file holds every layer's header from the loss down to the input, then the input's details, then
each layer's details from the input up. The reader walks the layer list of dlib's `anet_type` in that order.
Formats (dlib/serialize.h, dlib/cuda/tensor.h): an integer is a control byte (low nibble = byte count, 0x80 = negative)
and little-endian bytes; a float is a mantissa and an exponent in that integer form; a bool is '0' or '1'; a string is
its length and bytes; tensor data is raw little-endian float32 after a version and the 4-d shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from gate.errors import FaceGateError
from gate.model.dlib_resnet import STEM_CHANNELS, residual_layout

# Layer kinds, in the order dlib writes their headers (from the loss down to the input)
FC, AVG_POOL, RELU, ADD_PREV, SKIP, TAG, AFFINE, CONV, MAX_POOL = (
    "fc", "avg_pool", "relu", "add_prev", "skip", "tag", "affine", "conv", "max_pool"
)  # fmt: skip
_WRAPPERS = {SKIP, TAG}  # dlib's tag and skip layers: a version and the sub-network, no details
_CONV_VERSIONS = {"con_4", "con_5", "con_6"}
_AFFINE_VERSIONS = {"affine_", "affine_2"}


class DlibFormatError(FaceGateError):
    """The file is not the dlib network this reader knows, or it is damaged."""


class _Stream:
    """dlib's primitive encodings over a bytes buffer."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise DlibFormatError("the file ends early (truncated?)")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def integer(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise DlibFormatError(f"bad integer at byte {self.pos - 1}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        if exponent >= 32000:  # dlib's codes for inf and NaN
            raise DlibFormatError("a scalar in the file is not finite")
        return math.ldexp(mantissa, exponent)

    def flag(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool at byte {self.pos - 1}")
        return byte == b"1"

    def string(self) -> str:
        length = self.integer()
        if not 0 <= length <= 64:
            raise DlibFormatError(f"bad string length {length} at byte {self.pos}")
        return self.take(length).decode("ascii", errors="replace")

    def version(self, allowed: set[str], what: str) -> str:
        found = self.string()
        if found not in allowed:
            raise DlibFormatError(f"expected {what} ({' or '.join(sorted(allowed))}), found {found!r}")
        return found

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise DlibFormatError(f"bad tensor version at byte {self.pos}")
        shape = tuple(self.integer() for _ in range(4))
        count = math.prod(shape)
        return np.frombuffer(self.take(4 * count), dtype="<f4").reshape(shape).astype(np.float32)

    def alias(self) -> tuple[int, ...]:
        if self.integer() != 1:
            raise DlibFormatError(f"bad alias-tensor version at byte {self.pos}")
        return tuple(self.integer() for _ in range(4))


def layer_list() -> list[tuple[str, str]]:
    """(kind, parameter name) of every layer of dlib's anet_type, from the top (fc) down to the first conv."""
    top_down: list[tuple[str, str]] = [(FC, "fc"), (AVG_POOL, "")]
    for index, (_, _, downsample) in reversed(list(enumerate(residual_layout()))):
        name = f"blocks.{index}"
        top_down += [(RELU, ""), (ADD_PREV, "")]
        if downsample:  # add_prev2<avg_pool<skip1<tag2<block<tag1<x>>>>>>
            top_down += [(AVG_POOL, ""), (SKIP, ""), (TAG, "")]
        top_down += [(AFFINE, f"{name}.affine2"), (CONV, f"{name}.conv2"), (RELU, ""), (AFFINE, f"{name}.affine1")]
        top_down += [(CONV, f"{name}.conv1"), (TAG, "")]
    return top_down + [(MAX_POOL, ""), (RELU, ""), (AFFINE, "stem_affine"), (CONV, "stem")]


def _read_conv(stream: _Stream, name: str, state: dict[str, np.ndarray]) -> None:
    version = stream.version(_CONV_VERSIONS, "a convolution")
    params = stream.tensor().ravel()
    filters = stream.integer()
    for _ in range(6):  # rows, columns, strides and paddings: the architecture fixes them
        stream.integer()
    shape, _bias_shape = stream.alias(), stream.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        stream.real()
    if version != "con_4":
        stream.flag()  # use_bias
    if version == "con_6":
        stream.flag()  # use_relu
    size = math.prod(shape)
    if shape[0] != filters or len(params) != size + filters:
        raise DlibFormatError(f"{name}: a convolution of unexpected shape {shape}")
    state[f"{name}.weight"], state[f"{name}.bias"] = params[:size].reshape(shape), params[size:]


def _read_affine(stream: _Stream, name: str, state: dict[str, np.ndarray]) -> None:
    version = stream.version(_AFFINE_VERSIONS, "an affine layer")
    params = stream.tensor().ravel()
    stream.alias(), stream.alias()  # gamma, beta: the two halves of params
    stream.integer()  # mode: per channel
    if version == "affine_2":
        stream.flag()  # disabled
    half = len(params) // 2
    state[f"{name}.weight"], state[f"{name}.bias"] = params[:half], params[half:]


def _read_fc(stream: _Stream, name: str, state: dict[str, np.ndarray]) -> None:
    version = stream.version({"fc_2", "fc_3"}, "a fully connected layer")
    outputs, inputs = stream.integer(), stream.integer()
    params = stream.tensor().ravel()
    stream.alias(), stream.alias()
    stream.integer()  # bias mode
    for _ in range(4):
        stream.real()
    if version == "fc_3":
        stream.flag()
    if len(params) < inputs * outputs:
        raise DlibFormatError(f"{name}: {len(params)} weights for {inputs}x{outputs}")
    # dlib multiplies rows of inputs by an (inputs, outputs) matrix; torch's Linear holds its transpose
    state[f"{name}.weight"] = params[: inputs * outputs].reshape(inputs, outputs).T.copy()


def _read_pool(kind: str) -> Callable[[_Stream, str, dict[str, np.ndarray]], None]:
    def read(stream: _Stream, _name: str, _state: dict[str, np.ndarray]) -> None:
        stream.version({f"{kind}_2"}, f"a {kind.replace('_', ' ')} layer")
        for _ in range(6):  # size, strides, paddings
            stream.integer()

    return read


def _read_relu(stream: _Stream, _name: str, _state: dict[str, np.ndarray]) -> None:
    if stream.version({"relu_", "relu_2"}, "a relu layer") == "relu_2":
        stream.flag()  # disabled


def _read_add_prev(stream: _Stream, _name: str, _state: dict[str, np.ndarray]) -> None:
    stream.version({"add_prev_"}, "an add_prev layer")


# Each layer kind's own part (version string and parameters), as dlib's deserialize reads it
_READERS: dict[str, Callable[[_Stream, str, dict[str, np.ndarray]], None]] = {
    CONV: _read_conv,
    AFFINE: _read_affine,
    FC: _read_fc,
    MAX_POOL: _read_pool(MAX_POOL),
    AVG_POOL: _read_pool(AVG_POOL),
    RELU: _read_relu,
    ADD_PREV: _read_add_prev,
}


def _read_layer_trailer(stream: _Stream, version: int, on_input: bool) -> None:
    """What dlib's add_layer writes after its details: three flags and (empty) work tensors."""
    for _ in range(3):
        stream.flag()
    stream.tensor(), stream.tensor()  # x_grad, cached output
    if on_input or version >= 2:
        stream.tensor()  # grad_final (on the input) or params_grad
    if on_input and version >= 3:
        stream.integer()  # sample expansion factor


def parse_network(data: bytes) -> dict[str, torch.Tensor]:
    """The float32 state dict of DlibResNet from the bytes of dlib's network file."""
    stream = _Stream(data)
    if stream.integer() != 1:
        raise DlibFormatError("not a dlib network file (no loss layer header)")
    if stream.version({"loss_metric_", "loss_metric_2"}, "dlib's metric loss") == "loss_metric_2":
        stream.real(), stream.real()  # margin, distance threshold: training only
    layers = layer_list()
    versions = [stream.integer() for _ in layers]  # headers, from the top down
    for (kind, _), version in zip(layers, versions, strict=True):
        if version not in ((1,) if kind in _WRAPPERS else (1, 2, 3)):
            raise DlibFormatError(f"unexpected {kind} layer version {version}")
    state: dict[str, np.ndarray] = {}
    stream.version({"input_rgb_image_sized"}, "dlib's RGB input layer")
    state["input_mean"] = np.array([stream.real() for _ in range(3)], np.float32)
    if (stream.integer(), stream.integer()) != (150, 150):
        raise DlibFormatError("the network's input is not 150x150")
    for position, ((kind, name), version) in enumerate(zip(reversed(layers), reversed(versions), strict=True)):
        if kind in _WRAPPERS:  # details, from the input up
            continue
        _READERS[kind](stream, name, state)
        _read_layer_trailer(stream, version, on_input=position == 0)
    if stream.pos != len(data):
        raise DlibFormatError(f"{len(data) - stream.pos} bytes left after the network")
    if state["stem.weight"].shape[0] != STEM_CHANNELS:
        raise DlibFormatError("the first convolution has an unexpected width")
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in state.items()}


def read_network_file(path: Path) -> dict[str, torch.Tensor]:
    """parse_network of a file, every failure as one line naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise FaceGateError(f"{path}: cannot read dlib network file ({error.strerror})") from None
    try:
        return parse_network(data)
    except DlibFormatError as error:
        raise DlibFormatError(f"{path}: not dlib's face-recognition ResNet v1: {error}") from None
