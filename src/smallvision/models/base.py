"""The one face every model has (timm's habit), so transfer learning and heads are written once.

A family writes only a ``Backbone``: ``forward(x) -> (B, F)`` features and ``stages()``.
``Network`` wraps it with one head per target:

    net.forward_features(x)  # (B, F)
    net(x)                   # {"label": (B, K), "angle": (B, 1), ...}
    net.stages()             # [("stem", module), ("stage1", module), ...] for freezing
    net.reset_heads(heads)   # new heads on the same backbone
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

import torch
from torch import nn

from smallvision.config import HeadConfig
from smallvision.errors import UserError


class Backbone(nn.Module, ABC):
    """Base class of every registered model family.

    Subclasses take ``input_shape=(C, H, W)`` plus their own explicit keyword arguments,
    set ``self.num_features`` and implement ``forward`` and ``stages``.
    """

    num_features: int
    min_size: int = 8  # smallest H/W the family accepts; checked at build time
    image_input: bool = True  # False: the input is a (F, 1, 1) feature vector (models.features)

    def __init__(self, input_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        c, h, w = self.input_shape
        if not self.image_input:
            return
        if c not in (1, 3):
            raise UserError(f"{type(self).__name__}: input has {c} channels, expected 1 or 3")
        if min(h, w) < self.min_size:
            raise UserError(
                f"{type(self).__name__}: input {h}x{w} is smaller than the {self.min_size}x{self.min_size}"
                " this model needs; set data.size to a larger size"
            )

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, F)
        ...

    @abstractmethod
    def stages(self) -> list[tuple[str, nn.Module]]:
        """Ordered named groups of layers, input side first (``stem``, ``stage1`` ...)."""
        ...

    def reconstruction_head(self) -> nn.Module:
        """A decoder (B, F) -> (B, C, H, W); autoencoder families override this."""
        raise UserError(f"model {type(self).__name__} has no decoder: use an autoencoder_* model")


class Network(nn.Module):
    """A backbone plus one head per target."""

    # stages whose weights models.freeze.freeze() fixed; their batch-norm layers stay in eval mode
    frozen_stages: tuple[str, ...] = ()

    def __init__(self, backbone: Backbone, heads: Mapping[str, HeadConfig]) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict()
        self.head_configs: dict[str, HeadConfig] = {}
        self.reset_heads(heads)

    def reset_heads(self, heads: Mapping[str, HeadConfig]) -> None:
        """Replace every head (transfer learning keeps the backbone, trains new heads)."""
        from smallvision.models.heads import build_head

        self.heads = nn.ModuleDict({name: build_head(self.backbone, h) for name, h in heads.items()})
        self.head_configs = dict(heads)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.backbone(x)  # (B, F)
        return {name: head(f) for name, head in self.heads.items()}

    def stages(self) -> list[tuple[str, nn.Module]]:
        return self.backbone.stages()

    def train(self, mode: bool = True) -> Network:
        """``nn.Module.train``, except that batch-norm layers of ``frozen_stages`` stay in eval mode."""
        super().train(mode)
        stages = dict(self.stages())
        for name in self.frozen_stages:
            for m in stages[name].modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()  # running statistics must not drift while the weights are fixed
        return self

    def param_counts(self) -> dict[str, int]:
        """Parameters per stage and per head (``head:<name>``), plus ``total``."""
        counts = {name: _count(m) for name, m in self.stages()}
        counts.update({f"head:{n}": _count(h) for n, h in self.heads.items()})
        counts["total"] = _count(self)
        return counts


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
