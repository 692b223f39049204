"""The torch device a setting names, refused in one line when this machine does not have it."""

from __future__ import annotations

import torch

from gate.errors import FaceGateError


def torch_device(name: str, setting: str) -> torch.device:
    """`name` as a torch device; `setting` (e.g. "model.device") is named in the error."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise FaceGateError(f"config: {setting} = {name!r} is not a device (cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FaceGateError(f'config: {setting} = {name!r}, but this machine has no usable CUDA GPU; set it to "cpu"')
    return device
