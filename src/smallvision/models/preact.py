"""``preact_resnet``: the pre-activation ResNet-V2 spatial stream of study 000."""

from __future__ import annotations

import torch
from torch import nn

from smallvision.models.base import Backbone
from smallvision.models.blocks import PreActBlock, global_pool, require_size
from smallvision.registry import MODELS


@MODELS.register("preact_resnet")
class PreActResNet(Backbone):
    """A 3x3 conv stem, pre-activation residual blocks (BN -> ReLU -> conv), BN + ReLU, global pool.

    Study 000: four blocks 64-64-128-128 with depthwise-separable convs, pooled to 128 features.
    Each block is one stage (``stage1`` ... ``stage4``); the closing BN + ReLU belongs to the last.

    Args:
        input_shape: (C, H, W) of the images.
        widths: output channels of each block.
        strides: stride of each block's first conv (2 halves the resolution).
        separable: depthwise-separable 3x3 convs in the blocks (the stem stays a full conv).
        stem_width: channels of the stem conv; defaults to ``widths[0]``.
    """

    min_size = 2  # one stride-2 block

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        widths: tuple[int, ...] = (64, 64, 128, 128),
        strides: tuple[int, ...] = (1, 1, 2, 1),
        separable: bool = False,
        stem_width: int | None = None,
    ) -> None:
        super().__init__(input_shape)
        if len(widths) != len(strides):
            raise ValueError(f"widths {list(widths)} and strides {list(strides)} must have the same length")
        down = 1
        for s in strides:
            down *= s
        require_size(input_shape, down, f"model.params.strides {list(strides)}")
        stem_width = stem_width or widths[0]
        self.stem = nn.Conv2d(input_shape[0], stem_width, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        cin = stem_width
        for width, stride in zip(widths, strides, strict=True):
            blocks.append(PreActBlock(cin, width, stride, separable))
            cin = width
        # pre-activation blocks end on a conv: normalise once more before pooling
        blocks[-1] = nn.Sequential(blocks[-1], nn.BatchNorm2d(cin), nn.ReLU(inplace=True))
        self.body = nn.ModuleList(blocks)
        self.pool = global_pool()
        self.num_features = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, stem_width, H, W)
        for block in self.body:
            x = block(x)  # (B, width_i, H/s, W/s)
        return self.pool(x)  # (B, widths[-1])

    def stages(self) -> list[tuple[str, nn.Module]]:
        return [("stem", self.stem), *((f"stage{i + 1}", b) for i, b in enumerate(self.body))]
