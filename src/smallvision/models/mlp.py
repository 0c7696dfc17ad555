"""``mlp``: flattened pixels through dense layers (study 001's classifiers, study 004's control)."""

from __future__ import annotations

import torch
from torch import nn

from smallvision.models.base import Backbone
from smallvision.models.blocks import Dropout
from smallvision.registry import MODELS


def dense_layer(cin: int, cout: int, batch_norm: bool, dropout: float) -> nn.Sequential:
    """Linear (bias-free before BN) -> optional BN -> ReLU -> optional dropout."""
    layers: list[nn.Module] = [nn.Linear(cin, cout, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(cout))
    layers.append(nn.ReLU(inplace=True))
    if dropout > 0:
        layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


@MODELS.register("mlp")
class MLP(Backbone):
    """Flatten, then one dense layer per ``hidden`` width; the last width is the feature size.

    Blind to pixel order by construction, which is why study 004 uses it as the control for
    a fixed pixel permutation.

    Args:
        input_shape: (C, H, W) of the images.
        hidden: widths of the dense layers, e.g. [512, 256, 128] or [512, 256, 128, 64, 32].
        dropout: dropout after each layer's ReLU (0 for none).
        batch_norm: BN between each linear layer and its ReLU.
    """

    min_size = 1
    no_layers_allowed = False  # FeatureMLP: hidden=[] passes the features through

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        hidden: tuple[int, ...] = (512, 256, 128),
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(input_shape)
        if not hidden and not self.no_layers_allowed:
            raise ValueError("hidden must list at least one layer width, got []")
        c, h, w = input_shape
        widths = (c * h * w, *hidden)
        self.layers = nn.ModuleList(
            dense_layer(a, b, batch_norm, dropout) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.num_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, C*H*W)
        for layer in self.layers:
            x = layer(x)  # (B, hidden_i)
        return x

    def stages(self) -> list[tuple[str, nn.Module]]:
        return [(f"layer{i + 1}", layer) for i, layer in enumerate(self.layers)]
