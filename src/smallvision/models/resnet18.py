"""``resnet18``: the standard ResNet-18 (study 004), with a small-input stem option.

Parameter names follow torchvision (``conv1``, ``bn1``, ``layer1.0.conv1`` ...), so a ResNet-18
state dict the user already has loads by key with ``strict=False`` (its ``fc`` is the heads' job;
its 7x7 RGB ``conv1`` fits only ``stem: standard`` with 3 channels).
"""

from __future__ import annotations

import torch
from torch import nn

from smallvision.models.base import Backbone
from smallvision.models.blocks import ResidualBlock, require_size
from smallvision.registry import MODELS

STEMS = ("auto", "small", "standard")
STANDARD_STEM_FROM = 128  # "auto" picks the 7x7 stem from this input size up (ImageNet-like 224)


@MODELS.register("resnet18")
class ResNet18(Backbone):
    """Stem, four stages of two basic residual blocks (64-128-256-512), global average pool -> 512.

    Stems: ``standard`` is 7x7 stride-2 conv + 3x3 stride-2 max-pool (for 224 px inputs, 32x
    downsampling in all); ``small`` is a 3x3 stride-1 conv without max-pool (CIFAR-style, 8x),
    which keeps 28-96 px inputs from shrinking to 1x1 by ``layer3``; ``auto`` takes ``standard``
    from 128 px up and ``small`` below.

    Args:
        input_shape: (C, H, W) of the images.
        stem: ``auto``, ``small`` or ``standard``.
        widths: channels of layer1..layer4.
    """

    min_size = 8  # small stem: three stride-2 stages

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        stem: str = "auto",
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
    ) -> None:
        super().__init__(input_shape)
        c, h, w = input_shape
        if stem not in STEMS:
            raise ValueError(f"stem {stem!r} is not one of {', '.join(STEMS)}")
        if stem == "auto":
            stem = "standard" if min(h, w) >= STANDARD_STEM_FROM else "small"
        self.stem_kind = stem
        if stem == "standard":
            require_size(input_shape, 32, "model.params.stem: standard (7x7 conv + max-pool)")
            self.conv1 = nn.Conv2d(c, widths[0], 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(c, widths[0], 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        cin = widths[0]
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(ResidualBlock(cin, width, stride), ResidualBlock(width, width))
            self.add_module(f"layer{i + 1}", layer)
            cin = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4) or (B, 64, H, W)
        x = self.layer1(x)  # (B, 64, ., .)
        x = self.layer2(x)  # (B, 128, /2, /2)
        x = self.layer3(x)  # (B, 256, /4, /4)
        x = self.layer4(x)  # (B, 512, /8, /8)
        return torch.flatten(self.avgpool(x), 1)  # (B, 512)

    def stages(self) -> list[tuple[str, nn.Module]]:
        # conv1/bn1 stay top-level attributes for torchvision key names; group them on the fly
        stem = nn.ModuleList([self.conv1, self.bn1, self.relu, self.maxpool])
        return [("stem", stem), *((f"layer{i}", getattr(self, f"layer{i}")) for i in range(1, 5))]
