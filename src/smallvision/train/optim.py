"""The optimiser a config names, over a model's trainable weights."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from smallvision.config import TrainConfig


def build_optimizer(
    model: nn.Module, cfg: TrainConfig, extra: Iterable[nn.Parameter] = ()
) -> torch.optim.Optimizer:
    """The configured optimiser over the model's trainable weights plus ``extra`` (without weight decay)."""
    groups: list[dict] = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    extra = list(extra)
    if extra:  # e.g. uncertainty log-variances: decaying them would bias every head's weight
        groups.append({"params": extra, "weight_decay": 0.0})
    o = cfg.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(
            groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
        )
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(groups, lr=o.lr, weight_decay=o.weight_decay)
