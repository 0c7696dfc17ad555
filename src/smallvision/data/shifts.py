"""Documented distribution shifts of a whole image stack, to make a further domain (study 003).

Each shift is one batched tensor op over (N, C, H, W) images (chunks bound memory; never a loop
over images), with one strength parameter:

- ``invert: s`` (``true`` = 1.0): ``x' = (1 - s) x + s (top - x)``: contrast inverted (``top`` is 255
  for uint8, the set's max + min for float images, which maps the value range onto itself);
  ``s = 0.5`` flattens every image to mid-grey.
- ``dilate: r`` (int >= 1): grey-scale dilation, the max over a (2r + 1)² square: bright strokes
  on a dark ground (MNIST) become ``2r`` pixels thicker.
- ``blur: sigma`` (> 0, pixels): Gaussian blur, a separable kernel of radius ``ceil(3 sigma)``,
  reflected at the borders.
- ``noise: sigma`` (> 0): additive Gaussian noise of standard deviation ``sigma`` on the [0, 1]
  scale (``sigma * 255`` grey levels for uint8, ``sigma`` times the value range for float images),
  then clipped to the value range. Drawn from a
  generator seeded by ``seed`` (default 0), so the noisy domain is the same in every run.

Shifts apply in the order they are written; uint8 images stay uint8 (rounded, clipped).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from smallvision.errors import UserError

SHIFTS = ("invert", "dilate", "blur", "noise")
CHUNK = 2048  # images per op: bounds the float copy, keeps the op batched


def check_shift(spec: Any, where: str) -> dict[str, Any]:
    """``spec`` as {shift: strength} (plus ``seed``), every name and strength checked."""
    if not isinstance(spec, dict) or not spec:
        raise UserError(
            f"{where}: expected a mapping of shifts, e.g. {{blur: 1.0}} (one of {', '.join(SHIFTS)})"
        )
    out: dict[str, Any] = {}
    for name, value in spec.items():
        key = f"{where}.{name}"
        if name == "seed":
            if not isinstance(value, int) or isinstance(value, bool):
                raise UserError(f"{key}: expected an integer, got {value!r}")
        elif name == "invert":
            value = 1.0 if value is True else value
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise UserError(f"{key}: expected true or a strength in (0, 1], got {value!r}")
            value = float(value)
        elif name == "dilate":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
                raise UserError(f"{key}: expected a radius in pixels, an integer 1..10, got {value!r}")
        elif name in ("blur", "noise"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 50:
                raise UserError(f"{key}: expected a sigma > 0, got {value!r}")
            value = float(value)
        else:
            raise UserError(f"{key}: unknown shift; expected one of {', '.join(SHIFTS)} (and seed)")
        out[name] = value
    if set(out) == {"seed"}:
        raise UserError(f"{where}: only a seed given; name a shift ({', '.join(SHIFTS)})")
    return out


def apply_shift(images: torch.Tensor, spec: dict[str, Any], where: str = "shift") -> torch.Tensor:
    """``images`` (N, C, H, W) with each shift of ``spec`` applied in order (a new tensor)."""
    spec = check_shift(spec, where)
    uint8 = images.dtype == torch.uint8
    x = images.float()
    low, high = (0.0, 255.0) if uint8 else (float(x.min()), float(x.max()))
    gen = torch.Generator().manual_seed(spec.get("seed", 0))
    for name, s in spec.items():
        if name == "invert":
            x = (1 - s) * x + s * (low + high - x)
        elif name == "dilate":
            x = torch.cat([F.max_pool2d(p, 2 * s + 1, stride=1, padding=s) for p in torch.split(x, CHUNK)])
        elif name == "blur":
            x = torch.cat([gaussian_blur(p, s) for p in torch.split(x, CHUNK)])
        elif name == "noise":
            sigma = s * (high - low)  # 255 grey levels for uint8
            x = (x + sigma * torch.randn(x.shape, generator=gen)).clamp(low, high)
    return x.round().clamp(0, 255).to(torch.uint8) if uint8 else x


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, C, H, W) float blurred by a separable Gaussian of ``sigma`` pixels, borders reflected."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c, h, w = x.shape[1:]
    # reflect padding needs pad < size: replicate covers tiny images
    mode = "reflect" if radius < min(h, w) else "replicate"
    x = F.pad(x, (radius, radius, radius, radius), mode=mode)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)  # along W
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)  # along H
