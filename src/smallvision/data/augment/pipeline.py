"""The Pipeline (ops in order, runs of affine ops fused) and ``build_augment`` (config -> Pipeline)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from smallvision.data.augment.affine import AffineAugmentation, apply_affine
from smallvision.data.augment.base import Augmentation, MaskingAugmentation
from smallvision.errors import UserError
from smallvision.registry import AUGMENTATIONS


class Pipeline(Augmentation):
    """Ops applied in order; runs of affine ops are fused into one resampling.

    An empty pipeline is a no-op: it returns its batch unchanged and draws nothing, so callers
    never need a ``None`` for "no augmentation".

    Args:
        ops: augmentations (a nested Pipeline is flattened into its ops).
    """

    def __init__(self, ops: Iterable[Augmentation] = ()) -> None:
        flat: list[Augmentation] = []
        for op in ops:
            flat.extend(op.ops if isinstance(op, Pipeline) else [op])
        self.ops: tuple[Augmentation, ...] = tuple(flat)

    def __len__(self) -> int:
        return len(self.ops)

    def __repr__(self) -> str:
        return f"Pipeline({list(self.ops)!r})"

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

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Every op applied to the batch ``x`` (B, C, H, W) in [0, 1]; ``x`` is never modified in place."""
        return self.masked(x, gen)[0]

    def masked(self, x: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(augmented batch, mask)``: the batch as :meth:`__call__` gives it, and the (B, 1, H, W)
        bool mask of the pixels masking ops hid (None when the pipeline has no masking op).

        The mask is in the coordinates of the masking op's output, so geometric ops belong before
        masking ops. ``gen`` is the only source of randomness.
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
        return x, mask


IDENTITY = Pipeline()  # no augmentation; a shared default is safe because a Pipeline's ops are a tuple


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
