"""Heads: one small module per target on top of the backbone's (B, F) features."""

from __future__ import annotations

from torch import nn

from smallvision.config import HeadConfig
from smallvision.errors import UserError


def mlp(in_features: int, hidden: list[int], out: int, dropout: float) -> nn.Sequential:
    """Dense(h) + ReLU + Dropout for each hidden size, then Dense(out)."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    if dropout > 0 and not hidden:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, out))
    return nn.Sequential(*layers)


def build_head(backbone: nn.Module, cfg: HeadConfig) -> nn.Module:
    """The head module for one target; classification heads output logits."""
    if cfg.kind == "classification":
        if not cfg.classes or cfg.classes < 2:
            raise UserError(f"classification head needs classes >= 2, got {cfg.classes}")
        return mlp(backbone.num_features, cfg.hidden, cfg.classes, cfg.dropout)
    if cfg.kind == "regression":
        out = cfg.classes or 1  # number of regression outputs
        layers = [mlp(backbone.num_features, cfg.hidden, out, cfg.dropout)]
        if cfg.activation == "sigmoid":
            layers.append(nn.Sigmoid())
        return nn.Sequential(*layers)
    return backbone.reconstruction_head()
