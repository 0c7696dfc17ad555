"""The registered augmentations beyond the affine ones: flips, crop, permutation, brightness,
contrast, noise and masking. Each is a frozen dataclass: its fields are its config parameters,
checked when it is built (a ValueError naming the parameter, which ``build_augment`` turns into a
UserError naming ``data.augment.<name>.<param>``).

The base classes live in :mod:`smallvision.data.augment.base`, the fused affine ops in
:mod:`smallvision.data.augment.affine`, the Pipeline in :mod:`smallvision.data.augment.pipeline`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import torch
import torch.nn.functional as F

from smallvision.data.augment.base import Augmentation, MaskingAugmentation, check_range, chosen, uniform
from smallvision.registry import AUGMENTATIONS

# ---------------------------------------------------------------- other geometric ops


@dataclass(frozen=True)
class _Flip(Augmentation):
    kind: ClassVar[str] = "geometric"
    dim: ClassVar[int] = -1
    p: float = 0.5

    def __post_init__(self) -> None:
        check_range("p", self.p, 0, 1)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        keep = chosen(len(x), self.p, gen).to(x.device)
        return torch.where(keep[:, None, None, None], x.flip(self.dim), x)


@AUGMENTATIONS.register("hflip")
@dataclass(frozen=True)
class HorizontalFlip(_Flip):
    """Mirror left-right with probability ``p`` per image."""

    dim: ClassVar[int] = -1


@AUGMENTATIONS.register("vflip")
@dataclass(frozen=True)
class VerticalFlip(_Flip):
    """Mirror top-bottom with probability ``p`` per image."""

    dim: ClassVar[int] = -2


@AUGMENTATIONS.register("crop")
@dataclass(frozen=True)
class RandomCrop(Augmentation):
    """Pad by ``padding`` black pixels on each side, then crop a random window of the original size.

    An integer shift with no interpolation (the CIFAR recipe); images not drawn keep the centre.
    """

    kind: ClassVar[str] = "geometric"
    padding: int = 4
    p: float = 1.0

    def __post_init__(self) -> None:
        check_range("padding", self.padding, 0, math.inf, integer=True)
        check_range("p", self.p, 0, 1)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        pad = self.padding
        if pad == 0:
            return x
        b, c, h, w = x.shape
        offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=gen, device=gen.device)
        offsets = torch.where(chosen(b, self.p, gen), offsets, pad).to(x.device)
        xp = F.pad(x, (pad, pad, pad, pad))  # (B, C, H + 2p, W + 2p)
        rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (B, H)
        cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (B, W)
        xp = xp.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * pad))  # (B, C, H, W + 2p)
        return xp.gather(3, cols[:, None, None, :].expand(b, c, h, w))


@lru_cache(maxsize=16)
def _permutation(seed: int, n: int, device: str) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(device)


@AUGMENTATIONS.register("permute")
@dataclass(frozen=True)
class Permute(Augmentation):
    """One fixed random permutation of pixel positions, the same for every image and every call.

    Drawn from its own ``seed`` (never from the batch generator), it destroys spatial structure
    while keeping every pixel value: a CNN should suffer, an MLP should not care. It defines the
    input, so it is applied at evaluation too (``at_eval``).
    """

    kind: ClassVar[str] = "geometric"
    at_eval: ClassVar[bool] = True
    seed: int = 0

    def __post_init__(self) -> None:
        check_range("seed", self.seed, 0, 2**63 - 1, integer=True)

    def permutation(self, h: int, w: int, device: str | torch.device = "cpu") -> torch.Tensor:
        """(H*W,) int64: output pixel k takes input pixel ``perm[k]`` (row-major)."""
        return _permutation(self.seed, h * w, str(device))

    def __call__(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.flatten(2)[:, :, self.permutation(h, w, x.device)].view(b, c, h, w)


# ---------------------------------------------------------------- photometric ops


@AUGMENTATIONS.register("brightness")
@dataclass(frozen=True)
class Brightness(Augmentation):
    """Multiply by a factor drawn uniformly from [1 - amount, 1 + amount], clipped to [0, 1].

    ``amount: 0.2`` is the 0.8-1.2 brightness range of Keras' ``brightness_range``.
    """

    kind: ClassVar[str] = "photometric"
    amount: float = 0.2
    p: float = 1.0

    def __post_init__(self) -> None:
        check_range("amount", self.amount, 0, 1)
        check_range("p", self.p, 0, 1)

    def factors(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """(n,) factors; 1 for the images not drawn with probability ``p``."""
        f = uniform(n, 1 - self.amount, 1 + self.amount, gen)
        return torch.where(chosen(n, self.p, gen), f, 1.0)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        f = self.factors(len(x), gen).to(x.device, x.dtype).view(-1, 1, 1, 1)
        return (x * f).clamp(0, 1)


@AUGMENTATIONS.register("contrast")
@dataclass(frozen=True)
class Contrast(Brightness):
    """Scale each image's deviation from its own mean by a factor in [1 - amount, 1 + amount]."""

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        f = self.factors(len(x), gen).to(x.device, x.dtype).view(-1, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return ((x - mean) * f + mean).clamp(0, 1)


# ---------------------------------------------------------------- corruption ops


@AUGMENTATIONS.register("noise")
@dataclass(frozen=True)
class GaussianNoise(Augmentation):
    """Add Gaussian noise of standard deviation ``std``, clipped to [0, 1] when ``clip``."""

    kind: ClassVar[str] = "corruption"
    std: float = 0.1
    p: float = 1.0
    clip: bool = True

    def __post_init__(self) -> None:
        check_range("std", self.std, 0, math.inf)
        check_range("p", self.p, 0, 1)
        if not isinstance(self.clip, bool):
            raise ValueError(f"clip: expected true or false, got {self.clip!r}")

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=gen, device=gen.device).to(x.device, x.dtype)
        scale = torch.where(chosen(len(x), self.p, gen), self.std, 0.0).to(x.device, x.dtype)
        out = torch.addcmul(x, noise, scale.view(-1, 1, 1, 1))  # x + std * noise, one pass
        return out.clamp_(0, 1) if self.clip else out


def _exact_mask(b: int, n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """(B, n) bool with exactly ``k`` True per row at random places: the k smallest random keys.

    A threshold at each row's k-th smallest key is three times faster than ``topk`` + scatter;
    float64 keys make a tie at the threshold (one extra pixel) a 1e-13 event.
    """
    if k <= 0:
        return torch.zeros(b, n, dtype=torch.bool, device=gen.device)
    keys = torch.rand(b, n, generator=gen, device=gen.device, dtype=torch.float64)
    return keys <= keys.kthvalue(k, dim=1, keepdim=True).values


@AUGMENTATIONS.register("mask_pixels")
@dataclass(frozen=True)
class MaskPixels(MaskingAugmentation):
    """Hide exactly ``round(ratio * H * W)`` random pixels of each image."""

    ratio: float = 0.25
    p: float = 1.0
    value: float = 0.0

    def __post_init__(self) -> None:
        self._check_common()

    def sample_mask(self, b: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
        return _exact_mask(b, h * w, round(self.ratio * h * w), gen).view(b, 1, h, w)


@AUGMENTATIONS.register("mask_patches")
@dataclass(frozen=True)
class MaskPatches(MaskingAugmentation):
    """Hide ``round(ratio * patches)`` random squares of a ``patch`` x ``patch`` grid per image.

    When the image side is not a multiple of ``patch`` the last row and column of the grid are
    cut short, so the hidden share of pixels is then close to, not exactly, ``ratio``.
    """

    ratio: float = 0.25
    patch: int = 4
    p: float = 1.0
    value: float = 0.0

    def __post_init__(self) -> None:
        self._check_common()
        check_range("patch", self.patch, 1, math.inf, integer=True)

    def sample_mask(self, b: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
        gh, gw = -(-h // self.patch), -(-w // self.patch)
        grid = _exact_mask(b, gh * gw, round(self.ratio * gh * gw), gen).view(b, 1, gh, gw)
        full = grid.repeat_interleave(self.patch, dim=2).repeat_interleave(self.patch, dim=3)
        return full[:, :, :h, :w]
