"""``resnet_small``: the residual CNN of study 002 (32-64-128, two blocks per stage, projection shortcuts)."""

from __future__ import annotations

import torch
from torch import nn

from smallvision.models.base import Backbone
from smallvision.models.blocks import Dropout, ResidualBlock, conv_bn, global_pool, require_size
from smallvision.registry import MODELS


@MODELS.register("resnet_small")
class ResNetSmall(Backbone):
    """A 3x3 conv stem, then stages of post-activation residual blocks, global average pool.

    As in study 002, stages after the first start with a 2x2 max-pool (stride-1 blocks suit
    28 px digits better than strided convs) and their first block widens the channels through
    a 1x1 projection shortcut.

    Args:
        input_shape: (C, H, W) of the images.
        widths: channels of the stem+first stage and of each later stage.
        blocks: residual blocks per stage.
        dropout: dropout on the pooled features.
    """

    min_size = 4  # one 2x2 pool per stage after the first

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        widths: tuple[int, ...] = (32, 64, 128),
        blocks: int = 2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(input_shape)
        c = input_shape[0]
        require_size(input_shape, 2 ** (len(widths) - 1), f"model.params.widths: {len(widths)} stages")
        self.stem = nn.Sequential(*conv_bn(c, widths[0]))
        stages = []
        for i, width in enumerate(widths):
            cin = widths[max(i - 1, 0)]
            pool = [nn.MaxPool2d(2)] if i > 0 else []
            body = [ResidualBlock(cin if b == 0 else width, width) for b in range(blocks)]
            stages.append(nn.Sequential(*pool, *body))
        self.body = nn.ModuleList(stages)
        self.pool = nn.Sequential(global_pool(), Dropout(dropout))
        self.num_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, w0, H, W)
        for stage in self.body:
            x = stage(x)  # (B, w_i, H/2^i, W/2^i)
        return self.pool(x)  # (B, w_last)

    def stages(self) -> list[tuple[str, nn.Module]]:
        return [("stem", self.stem), *((f"stage{i + 1}", s) for i, s in enumerate(self.body))]
