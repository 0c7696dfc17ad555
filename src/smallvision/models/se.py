"""``se_cnn``: the squeeze-and-excitation CNN of study 002."""

from __future__ import annotations

import torch
from torch import nn

from smallvision.models.base import Backbone
from smallvision.models.blocks import Dropout, SqueezeExcite, conv_bn, global_pool, require_size
from smallvision.registry import MODELS


@MODELS.register("se_cnn")
class SECNN(Backbone):
    """Stages of 3x3 conv+BN+ReLU followed by a squeeze-and-excitation block; max-pool between stages.

    Study 002's network: 32-64-128 channels, one conv per stage, SE ratio 16, global average
    pool, dropout 0.5.

    Args:
        input_shape: (C, H, W) of the images.
        widths: channels of each stage.
        convs: conv layers per stage (the SE block follows the last one).
        ratio: SE reduction ratio: the excitation MLP has ``width // ratio`` hidden units.
        dropout: dropout on the pooled features.
    """

    min_size = 4  # a 2x2 pool between each pair of the three stages

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        widths: tuple[int, ...] = (32, 64, 128),
        convs: int = 1,
        ratio: int = 16,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(input_shape)
        require_size(input_shape, 2 ** (len(widths) - 1), f"model.params.widths: {len(widths)} stages")
        if ratio < 1 or convs < 1:
            raise ValueError(f"ratio and convs must be >= 1, got ratio={ratio}, convs={convs}")
        cin = input_shape[0]
        stages = []
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if i > 0 else []
            for j in range(convs):
                layers += conv_bn(cin if j == 0 else width, width)
            stages.append(nn.Sequential(*layers, SqueezeExcite(width, ratio)))
            cin = width
        self.body = nn.ModuleList(stages)
        self.pool = nn.Sequential(global_pool(), Dropout(dropout))
        self.num_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.body:
            x = stage(x)  # (B, w_i, H/2^i, W/2^i), channels reweighted by SE
        return self.pool(x)  # (B, w_last)

    def stages(self) -> list[tuple[str, nn.Module]]:
        names = ["stem"] + [f"stage{i}" for i in range(1, len(self.body))]
        return list(zip(names, self.body, strict=True))
