"""``dualstream``: study 000's spatial (pre-activation ResNet) + frequency (2-D FFT) network.

The frequency stream sees the normalised FFT magnitude of the input (``fft_magnitude``),
the spatial stream the image itself; their pooled features are concatenated and fused by
dense 256 + BN + ReLU. Either stream can be switched off, so an ablation measures what the
other adds.
"""

from __future__ import annotations

import torch
from torch import nn

from smallvision.models.base import Backbone
from smallvision.models.blocks import Dropout, conv_bn, global_pool
from smallvision.models.preact import PreActResNet
from smallvision.registry import MODELS


def fft_magnitude(x: torch.Tensor, log: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """The centred 2-D FFT magnitude of each image channel, normalised to [0, 1].

    ``|fftshift(fft2(x))|``, optionally ``log1p``-compressed (the DC term otherwise dwarfs every
    other frequency, so standardising would squash them all near one value), standardised per
    image and channel over (H, W), clipped to [-3, 3] and mapped to [0, 1] by ``z / 6 + 0.5``
    (study 000's fix for its unstable min-max normalisation).

    Args:
        x: images (B, C, H, W).
        log: apply ``log1p`` to the magnitude before standardising.
        eps: added to the standard deviation so a constant image maps to 0.5, not NaN.

    Returns:
        (B, C, H, W) float32 in [0, 1], low frequencies at the centre.
    """
    mag = torch.fft.fftshift(torch.fft.fft2(x.float()).abs(), dim=(-2, -1))  # (B, C, H, W)
    if log:
        mag = torch.log1p(mag)
    mean = mag.mean(dim=(-2, -1), keepdim=True)
    std = mag.std(dim=(-2, -1), keepdim=True, unbiased=False)
    z = ((mag - mean) / (std + eps)).clamp(-3.0, 3.0)
    return z / 6.0 + 0.5


class FrequencyStream(nn.Module):
    """FFT magnitude -> BN -> conv+BN+ReLU+dropout per width -> global average pool."""

    def __init__(self, channels: int, widths: tuple[int, ...], dropout: float, log: bool) -> None:
        super().__init__()
        self.log = log
        layers: list[nn.Module] = [nn.BatchNorm2d(channels)]
        cin = channels
        for width in widths:
            layers += [*conv_bn(cin, width), Dropout(dropout)]
            cin = width
        self.layers = nn.Sequential(*layers, global_pool())
        self.num_features = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = fft_magnitude(x, log=self.log).to(x.dtype)  # (B, C, H, W) in [0, 1]
        return self.layers(spectrum)  # (B, widths[-1])


@MODELS.register("dualstream")
class DualStream(Backbone):
    """Spatial stream + frequency stream, concatenated, then dense + BN + ReLU.

    Args:
        input_shape: (C, H, W) of the images.
        spatial: use the spatial stream (``preact_resnet`` with the parameters below).
        frequency: use the frequency stream.
        widths: spatial blocks' channels (study 000: 64-64-128-128).
        strides: spatial blocks' strides.
        separable: depthwise-separable convs in the spatial stream (study 000: yes).
        freq_widths: channels of the frequency stream's convs (study 000: 32, 64).
        freq_dropout: dropout after each frequency conv (study 000: 0.2).
        fft_log: ``log1p`` the FFT magnitude before normalising (see ``fft_magnitude``).
        fusion_width: width of the fusion layer (the features the heads see).
    """

    min_size = 2  # the spatial stream's one stride-2 block

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        spatial: bool = True,
        frequency: bool = True,
        widths: tuple[int, ...] = (64, 64, 128, 128),
        strides: tuple[int, ...] = (1, 1, 2, 1),
        separable: bool = True,
        freq_widths: tuple[int, ...] = (32, 64),
        freq_dropout: float = 0.2,
        fft_log: bool = True,
        fusion_width: int = 256,
    ) -> None:
        super().__init__(input_shape)
        if not (spatial or frequency):
            raise ValueError("spatial and frequency are both false: switch at least one stream on")
        self.spatial = PreActResNet(input_shape, widths, strides, separable) if spatial else None
        self.frequency = (
            FrequencyStream(input_shape[0], freq_widths, freq_dropout, fft_log) if frequency else None
        )
        width = sum(s.num_features for s in (self.spatial, self.frequency) if s is not None)
        self.fusion = nn.Sequential(
            nn.Linear(width, fusion_width, bias=False), nn.BatchNorm1d(fusion_width), nn.ReLU(inplace=True)
        )
        self.num_features = fusion_width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.spatial is not None:
            parts.append(self.spatial(x))  # (B, widths[-1])
        if self.frequency is not None:
            parts.append(self.frequency(x))  # (B, freq_widths[-1])
        return self.fusion(torch.cat(parts, dim=1))  # (B, fusion_width)

    def stages(self) -> list[tuple[str, nn.Module]]:
        out = [(f"spatial_{n}", m) for n, m in self.spatial.stages()] if self.spatial is not None else []
        if self.frequency is not None:
            out.append(("frequency", self.frequency))
        return [*out, ("fusion", self.fusion)]
