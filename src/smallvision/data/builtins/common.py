"""What the builtin datasets share: option checks, uint8 conversion, balanced labels, uniform draws."""

from __future__ import annotations

import numpy as np
import torch

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.errors import UserError

CHUNK = 2048  # images per grid_sample call: bounds memory, keeps ops batched
DIGIT_NAMES = tuple(str(i) for i in range(10))


def classification_set(images: np.ndarray, labels: np.ndarray, name: str, classes=DIGIT_NAMES) -> ImageSet:
    """An ImageSet with one classification target ``label`` from (N, H, W[, C]) uint8 arrays."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return ImageSet(x, {"label": y}, {"label": TargetInfo("classification", tuple(classes))}, name=name)


def check_int(value: object, option: str, low: int, high: int = 10**7) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UserError(f"data.options.{option}: expected an integer in {low}..{high}, got {value!r}")
    return value


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 255] floats -> uint8."""
    return x.round().clamp(0, 255).to(torch.uint8)


def balanced(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` labels in 0..k-1, as equal in count as ``n`` allows, in random order."""
    return (torch.arange(n) % k)[torch.randperm(n, generator=gen)]


def uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)
