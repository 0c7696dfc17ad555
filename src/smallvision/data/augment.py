"""Augmentation as batched tensor ops: pure functions of (batch, generator) -> batch.

Images arrive as float (B, C, H, W) in [0, 1] (before standardisation), so a rotation fills with
black. Consecutive affine ops (rotate, shift, zoom, shear) are fused into one matrix per image and
one ``grid_sample`` call: one interpolation instead of four, which is both faster and sharper.
Every random draw comes from the generator passed in (on the generator's device, then moved to the
batch's), never from global state, so the same ops run on CPU and CUDA batches alike.

This module holds the base classes, the fused affine ops (rotate, shift, zoom, shear), the Pipeline
and ``build_augment``; flips, crop, permutation, brightness, contrast, noise and masking are in
:mod:`smallvision.data.augment_ops` and register themselves when the registry loads the package.

Each op has a class attribute ``kind``: "geometric" (moves pixels), "photometric" (changes values)
or "corruption" (noise and masking, which a denoising or masked autoencoder must undo); see
:meth:`Pipeline.split`. Ops with ``at_eval = True`` (the fixed pixel permutation) are part of the
input's definition and must also be applied to validation and test inputs; see
:meth:`Pipeline.eval_pipeline`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from smallvision.errors import UserError
from smallvision.registry import AUGMENTATIONS

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


def _eye(n: int, device: torch.device) -> torch.Tensor:
    return torch.eye(3, device=device).repeat(n, 1, 1)


# ---------------------------------------------------------------- affine ops (fused)


@lru_cache(maxsize=32)
def _base_grid(h: int, w: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    """(H*W, 3) homogeneous pixel-centre coordinates in [-1, 1] (``align_corners=False``)."""
    ys = (torch.arange(h, dtype=torch.float64) * 2 + 1) / h - 1
    xs = (torch.arange(w, dtype=torch.float64) * 2 + 1) / w - 1
    grid = torch.stack([xs.repeat(h), ys.repeat_interleave(w), torch.ones(h * w, dtype=torch.float64)], 1)
    return grid.to(device=device, dtype=dtype)


def apply_affine(x: torch.Tensor, mats: torch.Tensor) -> torch.Tensor:
    """Resample each image of ``x`` (B, C, H, W) through its matrix ``mats`` (B, 3, 3).

    The sampling grid is one (H*W, 3) x (3, 2B) matrix product, made contiguous because
    ``grid_sample`` reads a strided grid at half speed; with ``grid_sample`` this runs about twice
    as fast on a CPU as ``F.affine_grid``, which builds the same grid with B small products.
    """
    b, _, h, w = x.shape
    mats = mats.to(device=x.device, dtype=x.dtype)
    still = (mats == _eye(b, x.device).to(x.dtype)).flatten(1).all(1)  # (B,) images that do not move
    if still.all():  # skip the interpolation
        return x
    theta = mats[:, :2, :].permute(2, 0, 1).reshape(3, 2 * b)  # (3, B*2)
    grid = _base_grid(h, w, str(x.device), x.dtype) @ theta  # (H*W, B*2)
    grid = grid.view(h, w, b, 2).permute(2, 0, 1, 3).contiguous()  # (B, H, W, 2)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # bilinear weights at the identity are 1 - 1e-7, not 1: images left alone (p < 1) stay bit-exact
    return torch.where(still[:, None, None, None], x, out) if still.any() else out


class AffineAugmentation(Augmentation):
    """A geometric op given by one 3x3 matrix per image in normalised coordinates [-1, 1].

    The matrix maps output pixel coordinates to input coordinates (``F.affine_grid``'s
    convention), so a zoom-in by ``s`` is a matrix scaling by ``1 / s``. Subclasses define
    :meth:`sample`; :meth:`matrix` leaves the images not drawn with probability ``p`` unchanged.
    """

    kind: ClassVar[str] = "geometric"
    p: float = 1.0

    @abstractmethod
    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:  # (n, 3, 3)
        ...

    def matrix(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """(n, 3, 3) on the generator's device; the identity for images left alone."""
        m = self.sample(n, gen)
        if self.p < 1.0:
            m = torch.where(chosen(n, self.p, gen)[:, None, None], m, _eye(n, m.device))
        return m

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return apply_affine(x, self.matrix(len(x), gen))


@AUGMENTATIONS.register("rotate")
@dataclass(frozen=True)
class Rotate(AffineAugmentation):
    """Rotate by an angle drawn uniformly from [-degrees, degrees]."""

    degrees: float = 15.0
    p: float = 1.0

    def __post_init__(self) -> None:
        check_range("degrees", self.degrees, 0, 180)
        check_range("p", self.p, 0, 1)

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        a = uniform(n, -self.degrees, self.degrees, gen) * (math.pi / 180)
        m = _eye(n, a.device)
        m[:, 0, 0], m[:, 0, 1] = torch.cos(a), -torch.sin(a)
        m[:, 1, 0], m[:, 1, 1] = torch.sin(a), torch.cos(a)
        return m


@AUGMENTATIONS.register("shift")
@dataclass(frozen=True)
class Shift(AffineAugmentation):
    """Translate by up to ``fraction`` of the width and height in each direction."""

    fraction: float = 0.1
    p: float = 1.0

    def __post_init__(self) -> None:
        check_range("fraction", self.fraction, 0, 1)
        check_range("p", self.p, 0, 1)

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        m = _eye(n, gen.device)
        # normalised coordinates span 2 units across the image
        m[:, 0, 2] = uniform(n, -2 * self.fraction, 2 * self.fraction, gen)
        m[:, 1, 2] = uniform(n, -2 * self.fraction, 2 * self.fraction, gen)
        return m


@AUGMENTATIONS.register("zoom")
@dataclass(frozen=True)
class Zoom(AffineAugmentation):
    """Scale by a factor drawn uniformly from [1 - amount, 1 + amount] (same on both axes)."""

    amount: float = 0.1
    p: float = 1.0

    def __post_init__(self) -> None:
        check_range("amount", self.amount, 0, 0.9)
        check_range("p", self.p, 0, 1)

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        s = uniform(n, 1 - self.amount, 1 + self.amount, gen)
        m = _eye(n, s.device)
        m[:, 0, 0] = m[:, 1, 1] = 1 / s
        return m


@AUGMENTATIONS.register("shear")
@dataclass(frozen=True)
class Shear(AffineAugmentation):
    """Horizontal shear with a factor drawn uniformly from [-amount, amount]."""

    amount: float = 0.1
    p: float = 1.0

    def __post_init__(self) -> None:
        check_range("amount", self.amount, 0, 2)
        check_range("p", self.p, 0, 1)

    def sample(self, n: int, gen: torch.Generator) -> torch.Tensor:
        m = _eye(n, gen.device)
        m[:, 0, 1] = uniform(n, -self.amount, self.amount, gen)
        return m


# ---------------------------------------------------------------- masking (the ops: augment_ops.py)


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


# ---------------------------------------------------------------- pipeline


class Pipeline(Augmentation):
    """Ops applied in order; runs of affine ops are fused into one resampling.

    Args:
        ops: augmentations (a nested Pipeline is flattened into its ops).
    """

    def __init__(self, ops: Iterable[Augmentation]) -> None:
        self.ops: list[Augmentation] = []
        for op in ops:
            self.ops.extend(op.ops if isinstance(op, Pipeline) else [op])

    def __len__(self) -> int:
        return len(self.ops)

    def __repr__(self) -> str:
        return f"Pipeline({self.ops!r})"

    @property
    def masks(self) -> bool:
        """Whether a masking op is part of the pipeline (``return_mask`` then gives a mask)."""
        return any(isinstance(op, MaskingAugmentation) for op in self.ops)

    def split(self) -> tuple[Pipeline, Pipeline]:
        """``(clean, corruption)``: the geometric and photometric ops, then the noise and masking ops.

        Each keeps the original order. A denoising autoencoder's target is ``clean(x)`` and its
        input ``corruption(clean(x))``.
        """
        clean = [op for op in self.ops if op.kind != "corruption"]
        return Pipeline(clean), Pipeline([op for op in self.ops if op.kind == "corruption"])

    def eval_pipeline(self) -> Pipeline:
        """The fixed ops (``at_eval``, e.g. ``permute``) that every split's inputs must also go through."""
        return Pipeline([op for op in self.ops if op.at_eval])

    def __call__(
        self, x: torch.Tensor, gen: torch.Generator, return_mask: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        """Apply every op to the batch ``x`` (B, C, H, W) in [0, 1].

        Args:
            x: the batch; it is never modified in place.
            gen: the only source of randomness.
            return_mask: also return the (B, 1, H, W) bool mask of pixels hidden by masking ops
                (None when the pipeline has no masking op). The mask is in the coordinates of the
                masking op's output, so geometric ops belong before masking ops.
        """
        pending: torch.Tensor | None = None  # product of the affine matrices seen so far
        mask: torch.Tensor | None = None
        for op in self.ops:
            if isinstance(op, AffineAugmentation):
                m = op.matrix(len(x), gen)
                pending = m if pending is None else pending @ m
                continue
            if pending is not None:
                x, pending = apply_affine(x, pending), None
            if isinstance(op, MaskingAugmentation):
                x, hidden = op.masked(x, gen)
                mask = hidden if mask is None else mask | hidden
            else:
                x = op(x, gen)
        if pending is not None:
            x = apply_affine(x, pending)
        return (x, mask) if return_mask else x


def build_augment(spec: Mapping[str, Mapping[str, Any] | None]) -> Pipeline:
    """A Pipeline from the config mapping ``{name: {param: value}}``, in order.

    Unknown names, unknown parameters and values out of range are UserErrors naming
    ``data.augment.<name>.<param>``.
    """
    from smallvision.registry import check_params

    ops = []
    for name, params in spec.items():
        cls = AUGMENTATIONS.get(name)
        if params is not None and not isinstance(params, Mapping):
            raise UserError(f"data.augment.{name}: expected a mapping of parameters, got {params!r}")
        params = dict(params or {})
        check_params(cls.__init__, params, f"data.augment.{name}")
        try:
            ops.append(cls(**params))
        except ValueError as exc:
            raise UserError(f"data.augment.{name}.{exc}") from None
    return Pipeline(ops)
