"""Heads: one small module per target on top of the backbone's (B, F) features."""

from __future__ import annotations

from torch import nn

from smallvision.config import HeadConfig
from smallvision.models.blocks import Dropout


def mlp(in_features: int, hidden: list[int], out: int, dropout: float) -> nn.Sequential:
    """Dense(h) + ReLU + Dropout for each hidden size, then Dense(out)."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(Dropout(dropout))
        width = h
    if dropout > 0 and not hidden:
        layers.append(Dropout(dropout))
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)


def build_head(backbone: nn.Module, cfg: HeadConfig) -> nn.Module:
    """The head module for one target, built by its kind (classification heads output logits)."""
    from smallvision.registry import HEAD_KINDS

    return HEAD_KINDS.get(cfg.kind).build_module(backbone, cfg)
