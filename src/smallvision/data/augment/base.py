"""Augmentation as batched tensor ops: pure functions of (batch, generator) -> batch.

Images arrive as float (B, C, H, W) in [0, 1] (before standardisation), so a rotation fills with
black. Every random draw comes from the generator passed in (on the generator's device, then moved
to the batch's), never from global state, so the same ops run on CPU and CUDA batches alike.

This package: base.py (the base classes and draws), affine.py (rotate, shift, zoom, shear: fused
into one resampling), ops.py (flips, crop, permutation, brightness, contrast, noise, masking),
pipeline.py (the Pipeline and ``build_augment``) and mix.py (MixUp / CutMix, which also mix the
targets). Each op registers itself in ``AUGMENTATIONS`` when the registry imports the package.

Each op has a class attribute ``kind``: "geometric" (moves pixels), "photometric" (changes values)
or "corruption" (noise and masking, which a denoising or masked autoencoder must undo); see
:meth:`Pipeline.split`. Ops with ``at_eval = True`` (the fixed pixel permutation) are part of the
input's definition and must also be applied to validation and test inputs; see
:meth:`Pipeline.eval_pipeline`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch

KINDS = ("geometric", "photometric", "corruption")


class Augmentation(ABC):
    """Base class: ``aug(x, gen) -> x`` for a float batch (B, C, H, W) in [0, 1].

    Attributes:
        kind: "geometric", "photometric" or "corruption".
        at_eval: True for a fixed transform that defines the input (apply it to every split).
    """

    kind: ClassVar[str]
    at_eval: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor: ...


def check_range(name: str, value: Any, low: float, high: float, integer: bool = False) -> None:
    """A ValueError naming ``name`` unless ``value`` is a number (an int if asked) in [low, high]."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (number and (not integer or isinstance(value, int)) and low <= value <= high):
        what = "an integer" if integer else "a number"
        raise ValueError(f"{name}: expected {what} in [{low:g}, {high:g}], got {value!r}")


def uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    """(n,) uniform draws in [low, high) on the generator's device."""
    return torch.rand(n, generator=gen, device=gen.device) * (high - low) + low


def chosen(n: int, p: float, gen: torch.Generator) -> torch.Tensor:
    """(n,) bool on the generator's device: which images an op with probability ``p`` touches."""
    if p >= 1.0:  # no draw: the common case costs nothing
        return torch.ones(n, dtype=torch.bool, device=gen.device)
    return torch.rand(n, generator=gen, device=gen.device) < p


class MaskingAugmentation(Augmentation):
    """Hides pixels (all channels) by setting them to ``value``; :meth:`masked` also returns where."""

    kind: ClassVar[str] = "corruption"
    ratio: float
    p: float
    value: float

    @abstractmethod
    def sample_mask(self, b: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:  # (B, 1, H, W)
        ...

    def masked(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x with hidden pixels set to value, mask)``; mask (B, 1, H, W) bool, True = hidden."""
        b, _, h, w = x.shape
        mask = self.sample_mask(b, h, w, gen)
        mask = (mask & chosen(b, self.p, gen)[:, None, None, None]).to(x.device)
        return x.masked_fill(mask, self.value), mask

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self.masked(x, gen)[0]

    def _check_common(self) -> None:
        check_range("ratio", self.ratio, 0, 1)
        check_range("p", self.p, 0, 1)
        check_range("value", self.value, -math.inf, math.inf)
