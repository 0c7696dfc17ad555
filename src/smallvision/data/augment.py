"""Augmentation as batched tensor ops: pure functions of (batch, generator) -> batch.

Images arrive as float (B, C, H, W) in [0, 1] (before standardisation), so a rotation fills with
black. Consecutive geometric ops (rotate, shift, zoom, shear) are fused into one affine matrix per
image and one ``grid_sample`` call: one interpolation instead of four, which is both faster and
sharper. Every random draw comes from the generator passed in, never from global state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from smallvision.registry import AUGMENTATIONS


class Augmentation:
    """Base class: ``aug(x, gen) -> x`` for a float batch (B, C, H, W) in [0, 1]."""

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError  # abstract: every augmentation defines it


class AffineAugmentation(Augmentation):
    """A geometric op given by one 3x3 matrix per image in normalised coordinates [-1, 1].

    The matrix maps output pixel coordinates to input coordinates (``F.affine_grid``'s
    convention), so a zoom-in by ``s`` is a matrix scaling by ``1 / s``.
    """

    def matrix(self, n: int, gen: torch.Generator) -> torch.Tensor:  # (n, 3, 3)
        raise NotImplementedError  # abstract: every affine augmentation defines it

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return apply_affine(x, self.matrix(len(x), gen))


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) * (high - low) + low


def _eye(n: int) -> torch.Tensor:
    return torch.eye(3).repeat(n, 1, 1)


def apply_affine(x: torch.Tensor, mats: torch.Tensor) -> torch.Tensor:
    """Resample each image of ``x`` (B, C, H, W) through its matrix ``mats`` (B, 3, 3)."""
    grid = F.affine_grid(mats[:, :2, :].to(x.dtype), list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@AUGMENTATIONS.register("rotate")
class Rotate(AffineAugmentation):
    """Rotate by an angle drawn uniformly from [-degrees, degrees]."""

    def __init__(self, degrees: float = 15.0) -> None:
        self.degrees = degrees

    def matrix(self, n: int, gen: torch.Generator) -> torch.Tensor:
        a = _uniform(n, -self.degrees, self.degrees, gen) * (math.pi / 180)
        m = _eye(n)
        m[:, 0, 0], m[:, 0, 1] = torch.cos(a), -torch.sin(a)
        m[:, 1, 0], m[:, 1, 1] = torch.sin(a), torch.cos(a)
        return m


@AUGMENTATIONS.register("shift")
class Shift(AffineAugmentation):
    """Translate by up to ``fraction`` of the width and height in each direction."""

    def __init__(self, fraction: float = 0.1) -> None:
        self.fraction = fraction

    def matrix(self, n: int, gen: torch.Generator) -> torch.Tensor:
        m = _eye(n)
        # normalised coordinates span 2 units across the image
        m[:, 0, 2] = _uniform(n, -2 * self.fraction, 2 * self.fraction, gen)
        m[:, 1, 2] = _uniform(n, -2 * self.fraction, 2 * self.fraction, gen)
        return m


@AUGMENTATIONS.register("zoom")
class Zoom(AffineAugmentation):
    """Scale by a factor drawn uniformly from [1 - amount, 1 + amount] (same on both axes)."""

    def __init__(self, amount: float = 0.1) -> None:
        self.amount = amount

    def matrix(self, n: int, gen: torch.Generator) -> torch.Tensor:
        s = _uniform(n, 1 - self.amount, 1 + self.amount, gen)
        m = _eye(n)
        m[:, 0, 0] = m[:, 1, 1] = 1 / s
        return m


@AUGMENTATIONS.register("shear")
class Shear(AffineAugmentation):
    """Horizontal shear with a factor drawn uniformly from [-amount, amount]."""

    def __init__(self, amount: float = 0.1) -> None:
        self.amount = amount

    def matrix(self, n: int, gen: torch.Generator) -> torch.Tensor:
        m = _eye(n)
        m[:, 0, 1] = _uniform(n, -self.amount, self.amount, gen)
        return m


class Pipeline(Augmentation):
    """Ops applied in order; runs of affine ops are fused into one resampling."""

    def __init__(self, ops: list[Augmentation]) -> None:
        self.ops = ops

    def __len__(self) -> int:
        return len(self.ops)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        pending: torch.Tensor | None = None  # product of the affine matrices seen so far
        for op in self.ops:
            if isinstance(op, AffineAugmentation):
                m = op.matrix(len(x), gen)
                pending = m if pending is None else pending @ m
                continue
            if pending is not None:
                x, pending = apply_affine(x, pending), None
            x = op(x, gen)
        return apply_affine(x, pending) if pending is not None else x


def build_augment(spec: Mapping[str, Mapping[str, Any]]) -> Pipeline:
    """A Pipeline from the config mapping ``{name: {param: value}}``, in order.

    Unknown names and parameters are UserErrors naming ``data.augment.<name>``.
    """
    from smallvision.registry import check_params

    ops = []
    for name, params in spec.items():
        cls = AUGMENTATIONS.get(name)
        params = dict(params or {})
        check_params(cls.__init__, params, f"data.augment.{name}")
        ops.append(cls(**params))
    return Pipeline(ops)
