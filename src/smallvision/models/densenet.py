"""``densenet_small``: the DenseNet-inspired CNN of study 002 (growth rate 12, transition layers)."""

from __future__ import annotations

import torch
from torch import nn

from smallvision.models.base import Backbone
from smallvision.models.blocks import DenseBlock, Dropout, Transition, global_pool, require_size
from smallvision.registry import MODELS


@MODELS.register("densenet_small")
class DenseNetSmall(Backbone):
    """A 3x3 conv stem, then dense blocks each closed by a BN-ReLU-conv1x1 transition.

    Every transition but the last also halves the resolution (2x2 average pool); the last is
    followed by BN + ReLU (the features would otherwise leave the network un-normalised) and
    global average pooling. Study 002: stem 32, two blocks of 3 layers, growth 12, transitions
    to 64 and 128 channels, dropout 0.5.

    Args:
        input_shape: (C, H, W) of the images.
        stem_width: channels of the stem conv.
        growth: channels each dense layer adds.
        layers: dense layers per block.
        widths: output channels of each block's transition.
        bottleneck: the 1x1 conv inside a dense layer has ``bottleneck * growth`` channels.
        dropout: dropout on the pooled features.
    """

    min_size = 2  # one 2x2 pool between the two blocks

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        stem_width: int = 32,
        growth: int = 12,
        layers: tuple[int, ...] = (3, 3),
        widths: tuple[int, ...] = (64, 128),
        bottleneck: int = 4,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(input_shape)
        if len(layers) != len(widths):
            raise ValueError(f"layers {list(layers)} and widths {list(widths)} must have the same length")
        require_size(input_shape, 2 ** (len(layers) - 1), f"model.params.layers: {len(layers)} dense blocks")
        self.stem = nn.Conv2d(input_shape[0], stem_width, 3, padding=1, bias=False)
        blocks = []
        cin = stem_width
        for i, (n, width) in enumerate(zip(layers, widths, strict=True)):
            dense = DenseBlock(cin, n, growth, bottleneck)
            last = i == len(layers) - 1
            tail = [nn.BatchNorm2d(width), nn.ReLU(inplace=True)] if last else []
            blocks.append(nn.Sequential(dense, Transition(dense.out_channels, width, pool=not last), *tail))
            cin = width
        self.body = nn.ModuleList(blocks)
        self.pool = nn.Sequential(global_pool(), Dropout(dropout))
        self.num_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, stem_width, H, W)
        for block in self.body:
            x = block(x)  # (B, width_i, H/2^i, W/2^i)
        return self.pool(x)  # (B, widths[-1])

    def stages(self) -> list[tuple[str, nn.Module]]:
        return [("stem", self.stem), *((f"block{i + 1}", b) for i, b in enumerate(self.body))]
