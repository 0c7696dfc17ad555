"""Autoencoders (study 001): the backbone is the encoder, its features the bottleneck code.

``reconstruction_head()`` builds the decoder, (B, code) -> (B, C, H, W), as a fresh module each
call, so it lives among the heads: a reconstruction head trains it, and freezing the encoder's
stages then attaching a classification head is the downstream task. The decoder's output has
no activation because the data are standardised, not in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from smallvision.models.base import Backbone
from smallvision.models.blocks import conv_bn, require_size
from smallvision.models.mlp import dense_layer
from smallvision.registry import MODELS


@MODELS.register("autoencoder_dense")
class DenseAutoencoder(Backbone):
    """Dense encoder (flatten -> hidden layers -> linear code) with a mirror-image decoder.

    Args:
        input_shape: (C, H, W) of the images.
        hidden: encoder widths before the code; the decoder uses them in reverse.
        bottleneck: size of the code (the features the heads see).
    """

    min_size = 1

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        hidden: tuple[int, ...] = (512, 256),
        bottleneck: int = 64,
    ) -> None:
        super().__init__(input_shape)
        c, h, w = input_shape
        self.hidden = tuple(hidden)
        widths = (c * h * w, *self.hidden)
        self.layers = nn.ModuleList(
            dense_layer(a, b, False, 0.0) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.code = nn.Linear(widths[-1], bottleneck)  # linear: the code is not clipped at 0
        self.num_features = bottleneck

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (B, C*H*W)
        for layer in self.layers:
            x = layer(x)  # (B, hidden_i)
        return self.code(x)  # (B, bottleneck)

    def stages(self) -> list[tuple[str, nn.Module]]:
        return [*((f"layer{i + 1}", m) for i, m in enumerate(self.layers)), ("code", self.code)]

    def reconstruction_head(self) -> nn.Module:
        c, h, w = self.input_shape
        widths = (self.num_features, *reversed(self.hidden))
        layers = [dense_layer(a, b, False, 0.0) for a, b in zip(widths[:-1], widths[1:], strict=True)]
        return nn.Sequential(*layers, nn.Linear(widths[-1], c * h * w), nn.Unflatten(1, (c, h, w)))


@MODELS.register("autoencoder_conv")
class ConvAutoencoder(Backbone):
    """Stride-2 conv+BN+ReLU encoder stages, flatten, linear code; transposed-conv decoder.

    Each stage halves the resolution (rounding up), and the decoder's transposed convs pick
    their ``output_padding`` so the reconstruction has exactly the input's size, odd or even.

    Args:
        input_shape: (C, H, W) of the images.
        widths: channels of the encoder stages (reversed in the decoder).
        bottleneck: size of the code (the features the heads see).
    """

    min_size = 8  # three stride-2 stages -> at least 1x1

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        widths: tuple[int, ...] = (32, 64, 128),
        bottleneck: int = 128,
    ) -> None:
        super().__init__(input_shape)
        if not widths:
            raise ValueError("widths must list at least one stage, got []")
        require_size(input_shape, 2 ** len(widths), f"model.params.widths: {len(widths)} stride-2 stages")
        c, h, w = input_shape
        self.widths = tuple(widths)
        self.sizes = [(h, w)]  # spatial size entering each stage, then after the last
        for _ in widths:
            ph, pw = self.sizes[-1]
            self.sizes.append(((ph + 1) // 2, (pw + 1) // 2))
        cins = (c, *widths[:-1])
        self.body = nn.ModuleList(
            nn.Sequential(*conv_bn(a, b, stride=2)) for a, b in zip(cins, widths, strict=True)
        )
        fh, fw = self.sizes[-1]
        self.code = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * fh * fw, bottleneck))
        self.num_features = bottleneck

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.body:
            x = stage(x)  # (B, w_i, ceil(H/2^i), ceil(W/2^i))
        return self.code(x)  # (B, bottleneck)

    def stages(self) -> list[tuple[str, nn.Module]]:
        return [*((f"stage{i + 1}", s) for i, s in enumerate(self.body)), ("code", self.code)]

    def reconstruction_head(self) -> nn.Module:
        c = self.input_shape[0]
        fh, fw = self.sizes[-1]
        layers: list[nn.Module] = [
            nn.Linear(self.num_features, self.widths[-1] * fh * fw),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (self.widths[-1], fh, fw)),
        ]
        couts = (*reversed(self.widths[:-1]), c)
        for i, (cin, cout) in enumerate(zip(reversed(self.widths), couts, strict=True)):
            (th, tw), (sh, sw) = self.sizes[-2 - i], self.sizes[-1 - i]  # target and source sizes
            pad = (th - 2 * sh + 1, tw - 2 * sw + 1)  # 0 for an odd target, 1 for an even one
            layers.append(nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=pad))
            if i < len(self.widths) - 1:  # the last layer outputs unbounded pixels
                layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        return nn.Sequential(*layers)
