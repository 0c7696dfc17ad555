"""The dual-stream model from inside (study 000): the spectra its frequency stream sees, and the
activations of both streams.

For a few images: the log FFT magnitude and the phase (``numpy.fft``), the frequency stream's own
input (``models.dualstream.fft_magnitude``), the radial profile of the spectrum; each stream's
last feature map and its pooled features; and how much of the fusion layer's weight each stream
gets. Other models get nothing here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from smallvision.report import image_figures
from smallvision.report.tables import Block, Cell, Image, Table, format_value

if TYPE_CHECKING:
    from smallvision.report.inside import Inputs


def spectrum(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log(1 + |F|), angle(F)) of ``F = fftshift(fft2(images))`` for (n, H, W) images, low frequencies centred."""
    f = np.fft.fftshift(np.fft.fft2(np.asarray(images, dtype=np.float64)), axes=(-2, -1))
    return np.log1p(np.abs(f)), np.angle(f)


def radial_profile(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(radii, (n, R) mean of each (n, H, W) map over the pixels at each integer distance from the centre).

    The centre is ``(H // 2, W // 2)``, where ``fftshift`` puts the zero frequency; radii run to
    ``min(H, W) // 2`` (farther rings are cut by the corners).
    """
    maps = np.asarray(maps, dtype=np.float64)
    h, w = maps.shape[-2:]
    yy, xx = np.indices((h, w))
    r = np.rint(np.hypot(yy - h // 2, xx - w // 2)).astype(np.int64).ravel()
    keep = r <= min(h, w) // 2
    counts = np.bincount(r[keep])
    flat = maps.reshape(len(maps), -1)[:, keep]
    sums = np.stack([np.bincount(r[keep], weights=m) for m in flat])
    radii = np.flatnonzero(counts)
    return radii, sums[:, radii] / counts[radii]


def fusion_shares(fusion_weight: np.ndarray, widths: dict[str, int]) -> dict[str, float]:
    """Each stream's share of the squared fusion weights ``||W[:, part]||² / ||W||²`` (columns in stream order)."""
    w = np.asarray(fusion_weight, dtype=np.float64)
    total = float((w**2).sum())
    out, start = {}, 0
    for name, width in widths.items():
        out[name] = float((w[:, start : start + width] ** 2).sum()) / total if total else float("nan")
        start += width
    return out


def last_map(module: Any, x: Any) -> tuple[Any, Any]:
    """(pooled output, the last (B, C, h, w) output with h * w > 1 of its submodules) of ``module(x)``, no gradients."""
    import torch

    maps: list[Any] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: maps.append(out))
        for m in module.modules()
        if m is not module
    ]
    try:
        with torch.no_grad():
            pooled = module(x)
    finally:
        for h in hooks:
            h.remove()
    # the last map that still has a layout: a global pool's (B, C, 1, 1) output has none
    spatial = [m for m in maps if getattr(m, "ndim", 0) == 4 and m.shape[-2] * m.shape[-1] > 1]
    return pooled, spatial[-1] if spatial else None


def blocks(model: Any, x: Any, inputs: Inputs) -> list[Block]:
    """The spectrum and streams blocks for a ``dualstream`` backbone; [] for any other model."""
    from smallvision.models.dualstream import DualStream

    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, DualStream):
        return []
    return [_spectrum_block(backbone, x, inputs), _streams_block(backbone, x, inputs)]


def _spectrum_block(backbone: Any, x: Any, inputs: Inputs) -> Block:
    from smallvision.models.dualstream import fft_magnitude
    from smallvision.report.inside import grey

    block = Block("Spectra (dual-stream model)")
    images = grey(inputs.unit)
    magnitude, phase = spectrum(images)
    log = backbone.frequency.log if backbone.frequency is not None else True
    seen = fft_magnitude(x, log=log).mean(dim=1).numpy()  # what the frequency stream is given
    rows = {"image": images, "log |FFT|": magnitude, "phase": phase, "stream input": seen}
    png = image_figures.panel_grid(
        rows, inputs.labels, {"log |FFT|": "magma", "phase": "twilight", "stream input": "magma"}
    )
    if png:
        caption = (
            "centred 2-D FFT of each image (mean over channels): log(1 + magnitude), phase in radians, and "
            "the frequency stream's input (fft_magnitude of the standardised image, z-scored, clipped, in [0, 1])"
        )
        block.images.append(Image("FFT magnitude and phase", png, caption, wide=True))
    radii, profiles = radial_profile(magnitude)
    block.images.append(
        Image(
            "radial profile",
            image_figures.radial_profiles(radii, profiles, inputs.labels),
            f"mean log(1 + |FFT|) at each integer radius 0..{int(radii[-1])}; high radii are fine detail",
        )
    )
    return block


def _streams_block(backbone: Any, x: Any, inputs: Inputs) -> Block:
    from smallvision.report.inside import grey, upsample

    block = Block("Both streams' activations")
    streams = {
        n: s for n, s in (("spatial", backbone.spatial), ("frequency", backbone.frequency)) if s is not None
    }
    pooled, rows = {}, {"input": grey(inputs.unit)}
    for name, stream in streams.items():
        out, fmap = last_map(stream, x)
        pooled[name] = out.float().numpy()
        if fmap is not None:
            mean_map = fmap.float().abs().mean(dim=1, keepdim=True).numpy()  # (n, 1, h, w)
            rows[f"{name} stream"] = upsample(mean_map, inputs.unit.shape[2:])[:, 0]
    png = image_figures.panel_grid(rows, inputs.labels, {k: "viridis" for k in rows if k != "input"})
    if png and len(rows) > 1:
        caption = "mean |activation| over the channels of each stream's last feature map, scaled to the image"
        block.images.append(Image("stream feature maps", png, caption, wide=True))
    strips = image_figures.feature_strips(pooled, inputs.labels)
    if strips:
        block.images.append(
            Image(
                "pooled features per stream", strips, "what each stream hands to the fusion layer", wide=True
            )
        )
    widths = {n: p.shape[1] for n, p in pooled.items()}
    shares = fusion_shares(backbone.fusion[0].weight.detach().numpy(), widths)
    rows_t = [
        [Cell(n), Cell(format_value(widths[n]), cls="num"), Cell(format_value(float(np.abs(pooled[n]).mean())), cls="num"),
         Cell(format_value(shares[n]), cls="num")]
        for n in pooled
    ]  # fmt: skip
    block.tables.append(
        Table(
            ["stream", "features", "mean |feature|", "share of fusion weight²"],
            rows_t,
            "the streams at the fusion layer",
        )
    )
    return block
