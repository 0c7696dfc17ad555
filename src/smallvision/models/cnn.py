"""Plain CNNs: ``cnn_small`` (studies 003/004) and ``cnn_bn``, the "Enhanced CNN" of study 002."""

from __future__ import annotations

import torch
from torch import nn

from smallvision.models.base import Backbone
from smallvision.registry import MODELS


@MODELS.register("cnn_small")
class CNNSmall(Backbone):
    """Two 3x3 conv layers with max-pooling, then one dense layer.

    Args:
        input_shape: (C, H, W) of the images.
        channels: output channels of the two conv layers.
        hidden: width of the dense layer (the features the heads see).
        dropout: dropout before the dense layer.
    """

    min_size = 8

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        channels: tuple[int, int] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__(input_shape)
        c, h, w = input_shape
        c1, c2 = channels
        self.stem = nn.Sequential(nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        self.stage1 = nn.Sequential(nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
        flat = c2 * (h // 4) * (w // 4)
        self.stage2 = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, hidden), nn.ReLU(inplace=True)
        )
        self.num_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, c1, H/2, W/2)
        x = self.stage1(x)  # (B, c2, H/4, W/4)
        return self.stage2(x)  # (B, hidden)

    def stages(self) -> list[tuple[str, nn.Module]]:
        return [("stem", self.stem), ("stage1", self.stage1), ("stage2", self.stage2)]


def conv_bn(cin: int, cout: int) -> list[nn.Module]:
    # bias is redundant before BN
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@MODELS.register("cnn_bn")
class CNNBN(Backbone):
    """Conv pairs with batch norm, max-pool and dropout, global average pool, dense.

    Three blocks of two 3x3 conv+BN+ReLU layers (32, 64, 128 channels); the first two end
    in a 2x2 max-pool and dropout 0.25; global average pooling; dense 128 with dropout 0.5.

    Args:
        input_shape: (C, H, W) of the images.
        widths: channels of the three blocks.
        hidden: width of the dense layer.
        dropout: dropout after each pooled block.
        dense_dropout: dropout after the dense layer.
    """

    min_size = 8

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        widths: tuple[int, int, int] = (32, 64, 128),
        hidden: int = 128,
        dropout: float = 0.25,
        dense_dropout: float = 0.5,
    ) -> None:
        super().__init__(input_shape)
        c = input_shape[0]
        w1, w2, w3 = widths
        self.stem = nn.Sequential(*conv_bn(c, w1), *conv_bn(w1, w1), nn.MaxPool2d(2), nn.Dropout(dropout))
        self.stage1 = nn.Sequential(*conv_bn(w1, w2), *conv_bn(w2, w2), nn.MaxPool2d(2), nn.Dropout(dropout))
        self.stage2 = nn.Sequential(*conv_bn(w2, w3), *conv_bn(w3, w3))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dense = nn.Sequential(nn.Linear(w3, hidden), nn.ReLU(inplace=True), nn.Dropout(dense_dropout))
        self.num_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, w1, H/2, W/2)
        x = self.stage1(x)  # (B, w2, H/4, W/4)
        x = self.stage2(x)  # (B, w3, H/4, W/4)
        return self.dense(self.pool(x))  # (B, hidden)

    def stages(self) -> list[tuple[str, nn.Module]]:
        return [("stem", self.stem), ("stage1", self.stage1), ("stage2", self.stage2), ("dense", self.dense)]
