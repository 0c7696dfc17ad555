"""Per-head losses. Classification targets may be class indices (N,) or soft targets (N, K)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from smallvision.config import HeadConfig
from smallvision.errors import UserError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

DEFAULT_LOSS = {"classification": "ce", "regression": "mse", "reconstruction": "mse"}
KIND_LOSSES = {
    "classification": ("ce",),
    "regression": ("mse", "mae", "huber"),
    "reconstruction": ("mse", "l1"),
}


def head_loss(name: str, cfg: HeadConfig) -> LossFn:
    """The loss function of one head: ``fn(output, target) -> scalar``."""
    loss = cfg.loss or DEFAULT_LOSS[cfg.kind]
    if loss not in KIND_LOSSES[cfg.kind]:
        raise UserError(
            f"heads.{name}.loss: {loss!r} is not a {cfg.kind} loss; expected one of {KIND_LOSSES[cfg.kind]}"
        )
    if loss == "ce":
        smoothing = cfg.label_smoothing
        return lambda out, target: F.cross_entropy(out.float(), target, label_smoothing=smoothing)
    if loss == "mse":
        return lambda out, target: F.mse_loss(out.float().reshape(target.shape), target.float())
    if loss in ("mae", "l1"):
        return lambda out, target: F.l1_loss(out.float().reshape(target.shape), target.float())
    return lambda out, target: F.huber_loss(out.float().reshape(target.shape), target.float())
