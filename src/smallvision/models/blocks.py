"""Building blocks shared by the model families: conv+BN, residual, pre-activation, SE, dense blocks,
and the dropout they all use.

Attribute names of ``ResidualBlock`` follow torchvision's ``BasicBlock`` (conv1, bn1, conv2, bn2,
downsample) so that a ResNet-18 state dict a user already has loads into ``resnet18`` by key.
"""

from __future__ import annotations

import torch
from torch import nn

from smallvision.errors import UserError

_MASK_LEVELS = 1 << 16  # the drop probability is rounded to a multiple of 1/65536


class _Masked(torch.autograd.Function):
    """``x * keep * scale``, keeping only the boolean mask (one byte an element) for backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x.mul(keep).mul_(scale)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return grad.mul(keep).mul_(ctx.scale), None, None


def dropout_mask(x: torch.Tensor, p: float) -> tuple[torch.Tensor, float]:
    """A boolean keep-mask laid out like ``x`` (channels_last stays channels_last), and its scale.

    Each element is dropped with probability ``p`` rounded to a multiple of 1/65536: the mask is
    16 random bits an element, cut from 64-bit words drawn by ``random_`` from torch's default
    generator (so ``torch.manual_seed`` governs it, whatever the thread count). That draws a
    quarter as many numbers as ``bernoulli_``, whose CPU kernel draws one per element
    (``benchmarks/bench_dropout.py`` times both). The scale is 1 / (1 - the rounded p), so the
    mean is kept exactly.
    """
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)
    bits = words.view(torch.int16)[:n]
    dense = x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
    bits = bits.as_strided(x.shape, x.stride()) if dense else bits.view(x.shape)
    dropped = round(p * _MASK_LEVELS)
    keep = bits >= dropped - _MASK_LEVELS // 2  # int16 runs from -32768: P(keep) = 1 - dropped/65536
    return keep, _MASK_LEVELS / (_MASK_LEVELS - dropped)


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, state and repr) with a cheaper mask on the CPU.

    On the CPU, in training, the mask comes from :func:`dropout_mask`; elsewhere (CUDA's fused
    kernel, ``inplace=True``, eval mode, ``p`` of 0 or 1) it is ``nn.Dropout`` itself.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.inplace or x.device.type != "cpu" or not 0.0 < self.p < 1.0:
            return super().forward(x)
        keep, scale = dropout_mask(x, self.p)
        return _Masked.apply(x, keep, scale)


def conv_bn(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    """3x3 conv (no bias: BN supplies the shift) + BN + ReLU, as a list to splice into a Sequential."""
    return [
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def global_pool() -> nn.Sequential:
    """(B, C, H, W) -> (B, C) by global average pooling."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


class SeparableConv2d(nn.Sequential):
    """Depthwise 3x3 conv followed by a pointwise 1x1 conv (Keras ``SeparableConv2D``).

    About 8-9x fewer weights than a full 3x3 conv at 64-128 channels.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
        )


def conv3x3(cin: int, cout: int, stride: int = 1, separable: bool = False) -> nn.Module:
    """A bias-free 3x3 conv, full or depthwise-separable."""
    if separable:
        return SeparableConv2d(cin, cout, stride)
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class ResidualBlock(nn.Module):
    """Post-activation basic block: conv-BN-ReLU-conv-BN + shortcut, then ReLU.

    The shortcut is a 1x1 conv + BN projection when the stride or the width changes.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)  # (B, cout, H/s, W/s)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class PreActBlock(nn.Module):
    """Pre-activation (ResNet-V2) block: BN-ReLU-conv, BN-ReLU-conv, plus the identity.

    When the stride or width changes the shortcut is a 1x1 conv applied to the pre-activated
    input (He et al. 2016), so the identity path stays free of normalisation otherwise.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, separable: bool = False) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = conv3x3(cin, cout, stride, separable)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = conv3x3(cout, cout, 1, separable)
        self.relu = nn.ReLU()  # not in-place: the pre-activated input also feeds the shortcut
        self.shortcut: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)  # (B, cout, H/s, W/s)
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + shortcut


class SqueezeExcite(nn.Module):
    """Channel attention: global pool -> dense C/ratio + ReLU -> dense C + sigmoid -> rescale."""

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // ratio)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3))  # (B, C)
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))  # (B, C) weights in (0, 1)
        return x * s[:, :, None, None]


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (bottleneck, ``bottleneck * growth`` channels) then BN-ReLU-conv3x3 (growth)."""

    def __init__(self, cin: int, growth: int, bottleneck: int = 4) -> None:
        super().__init__()
        mid = bottleneck * growth
        self.layers = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.layers(x)], dim=1)  # (B, cin + growth, H, W)


class DenseBlock(nn.Sequential):
    """``num_layers`` dense layers; each sees every earlier layer's output (feature reuse)."""

    def __init__(self, cin: int, num_layers: int, growth: int, bottleneck: int = 4) -> None:
        super().__init__(*(DenseLayer(cin + i * growth, growth, bottleneck) for i in range(num_layers)))
        self.out_channels = cin + num_layers * growth


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1 to ``cout`` channels, then an optional 2x2 average pool."""

    def __init__(self, cin: int, cout: int, pool: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
        ]
        if pool:
            layers.append(nn.AvgPool2d(2))
        super().__init__(*layers)


def require_size(input_shape: tuple[int, int, int], needed: int, why: str) -> None:
    """A UserError at build time when the chosen parameters need larger inputs than the data have.

    ``Backbone.min_size`` covers the default parameters; this covers parameters (more stages,
    another stem) that need more, so the error comes before training, not as a shape error in it.
    """
    _, h, w = input_shape
    if min(h, w) < needed:
        raise UserError(
            f"{why} needs inputs of at least {needed}x{needed}, got {h}x{w}; set data.size larger"
        )
