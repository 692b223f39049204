"""Per-sample training augmentation on whole uint8 batches, on the training device (no worker processes)."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


class FaceAugment:
    """Flip, small scale/shift/rotation, brightness/contrast/saturation jitter, occasional grey and blur, and
    (`occlusion_p` > 0) random erasing: a grey rectangle over 5-25 % of the crop, as sunglasses, a hand or a
    scarf would cover (Zhong et al., 2020).

    Alignment already centres the face, so geometric jitter stays small: it teaches tolerance to landmark error.
    Input (N, S, S, 3) uint8 tensor; output (N, 3, S, S) float in [-1, 1].
    """

    def __init__(
        self,
        scale: float = 0.1,
        shift: float = 0.06,
        degrees: float = 8.0,
        colour: float = 0.25,
        grey_p: float = 0.1,
        blur_p: float = 0.15,
        occlusion_p: float = 0.0,
    ) -> None:
        self.scale, self.shift, self.degrees = scale, shift, degrees
        self.colour, self.grey_p, self.blur_p = colour, grey_p, blur_p
        self.occlusion_p = occlusion_p

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.permute(0, 3, 1, 2).float() / 255.0
        x = self._geometry(x)
        x = self._colour(x)
        x = self._blur(x)
        x = self._occlude(x.clamp(0, 1))
        return (x - 0.5) / 0.5

    def _uniform(self, n: int, low: float, high: float, device: torch.device) -> torch.Tensor:
        return torch.empty(n, device=device).uniform_(low, high)

    def _geometry(self, x: torch.Tensor) -> torch.Tensor:
        n, device = len(x), x.device
        angle = self._uniform(n, -self.degrees, self.degrees, device) * math.pi / 180
        scale = self._uniform(n, 1 - self.scale, 1 + self.scale, device)
        flip = torch.where(torch.rand(n, device=device) < 0.5, -1.0, 1.0)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack(
            [
                torch.stack([cos * flip, -sin, self._uniform(n, -self.shift, self.shift, device) * 2], 1),
                torch.stack([sin * flip, cos, self._uniform(n, -self.shift, self.shift, device) * 2], 1),
            ],
            1,
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _colour(self, x: torch.Tensor) -> torch.Tensor:
        n, device = len(x), x.device
        shape = (n, 1, 1, 1)
        brightness = self._uniform(n, 1 - self.colour, 1 + self.colour, device).view(shape)
        contrast = self._uniform(n, 1 - self.colour, 1 + self.colour, device).view(shape)
        saturation = self._uniform(n, 1 - self.colour, 1 + self.colour, device).view(shape)
        grey = (x * torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)).sum(1, keepdim=True)
        saturation = torch.where(torch.rand(shape, device=device) < self.grey_p, 0.0, saturation)
        x = grey + (x - grey) * saturation
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (mean + (x - mean) * contrast) * brightness

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        chosen = torch.rand(len(x), device=x.device) < self.blur_p
        if not chosen.any():
            return x
        taps = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=x.device)
        kernel = (taps[:, None] * taps[None, :]) / 256.0
        kernel = kernel.expand(3, 1, 5, 5).to(x.dtype)
        blurred = F.conv2d(F.pad(x[chosen], (2, 2, 2, 2), mode="replicate"), kernel, groups=3)
        out = x.clone()
        out[chosen] = blurred
        return out

    def _occlude(self, x: torch.Tensor) -> torch.Tensor:
        """Mid-grey (0 after normalisation) over a random rectangle: area 5-25 %, aspect ratio 1/2-2."""
        if self.occlusion_p <= 0:  # draw nothing: the random stream stays that of the recipes without it
            return x
        n, size, device = len(x), x.shape[-1], x.device
        chosen = torch.rand(n, device=device) < self.occlusion_p
        if not chosen.any():
            return x
        area = self._uniform(n, 0.05, 0.25, device)
        aspect = torch.exp(self._uniform(n, -math.log(2), math.log(2), device))
        height, width = (area * aspect).sqrt().clamp(max=1.0), (area / aspect).sqrt().clamp(max=1.0)
        top, left = torch.rand(n, device=device) * (1 - height), torch.rand(n, device=device) * (1 - width)
        where = (torch.arange(size, device=device) + 0.5) / size
        rows = (where[None] >= top[:, None]) & (where[None] < (top + height)[:, None])
        cols = (where[None] >= left[:, None]) & (where[None] < (left + width)[:, None])
        mask = rows[:, :, None] & cols[:, None, :] & chosen[:, None, None]
        return torch.where(mask[:, None], torch.tensor(0.5, dtype=x.dtype, device=device), x)
