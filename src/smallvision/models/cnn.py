"""Plain CNNs: ``cnn_small`` (studies 003/004) and ``cnn_bn``, the "Enhanced CNN" of study 002."""

from __future__ import annotations

import torch
from torch import nn

from smallvision.errors import UserError
from smallvision.models.base import Backbone
from smallvision.models.blocks import Dropout, conv_bn, global_pool, require_size
from smallvision.registry import MODELS


@MODELS.register("cnn_small")
class CNNSmall(Backbone):
    """3x3 conv layers, each followed by a 2x2 max-pool, then one dense layer.

    The default is study 004's two-conv CNN; study 003's network is
    ``channels: [32, 64, 128], batch_norm: true, hidden: 512, dropout: 0.5``.

    Args:
        input_shape: (C, H, W) of the images.
        channels: output channels of the conv layers, one pooled conv layer each.
        hidden: width of the dense layer (the features the heads see).
        dropout: dropout before the dense layer.
        batch_norm: BN between each conv and its ReLU.
    """

    min_size = 4  # two 2x2 pools with the default two conv layers

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        channels: tuple[int, ...] = (32, 64),
        hidden: int = 128,
        dropout: float = 0.25,
        batch_norm: bool = False,
    ) -> None:
        super().__init__(input_shape)
        c, h, w = input_shape
        if not channels:
            raise UserError("model.params.channels: expected at least one conv layer, got []")
        require_size(
            input_shape, 2 ** len(channels), f"model.params.channels: {len(channels)} pooled conv layers"
        )
        layers = []
        for cin, cout in zip((c, *channels[:-1]), channels, strict=True):
            conv = [nn.Conv2d(cin, cout, 3, padding=1, bias=not batch_norm)]
            norm = [nn.BatchNorm2d(cout)] if batch_norm else []
            layers.append(nn.Sequential(*conv, *norm, nn.ReLU(inplace=True), nn.MaxPool2d(2)))
        self.convs = nn.ModuleList(layers)
        flat = channels[-1] * (h >> len(channels)) * (w >> len(channels))
        self.dense = nn.Sequential(
            nn.Flatten(), Dropout(dropout), nn.Linear(flat, hidden), nn.ReLU(inplace=True)
        )
        self.num_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)  # (B, c_i, H/2^i, W/2^i)
        return self.dense(x)  # (B, hidden)

    def stages(self) -> list[tuple[str, nn.Module]]:
        names = ["stem"] + [f"stage{i}" for i in range(1, len(self.convs))]
        return [*zip(names, self.convs, strict=True), ("dense", self.dense)]


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

    min_size = 4  # two 2x2 pools

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
        self.stem = nn.Sequential(*conv_bn(c, w1), *conv_bn(w1, w1), nn.MaxPool2d(2), Dropout(dropout))
        self.stage1 = nn.Sequential(*conv_bn(w1, w2), *conv_bn(w2, w2), nn.MaxPool2d(2), Dropout(dropout))
        self.stage2 = nn.Sequential(*conv_bn(w2, w3), *conv_bn(w3, w3))
        self.pool = global_pool()
        self.dense = nn.Sequential(nn.Linear(w3, hidden), nn.ReLU(inplace=True), Dropout(dense_dropout))
        self.num_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # (B, w1, H/2, W/2)
        x = self.stage1(x)  # (B, w2, H/4, W/4)
        x = self.stage2(x)  # (B, w3, H/4, W/4)
        return self.dense(self.pool(x))  # (B, hidden)

    def stages(self) -> list[tuple[str, nn.Module]]:
        return [("stem", self.stem), ("stage1", self.stage1), ("stage2", self.stage2), ("dense", self.dense)]
