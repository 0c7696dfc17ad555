"""``glyphs``: letters A-J from every font file matplotlib ships, jittered: a notMNIST-like set.

Every builtin is offline (no download) and deterministic for a seed; docs/data.md says how each is made. Randomness comes from one ``torch.Generator`` seeded by
``seed``, and every jitter is a batched tensor op (affine_grid / grid_sample on the whole stack).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from smallvision.data.builtins.common import CHUNK, check_int, to_uint8, uniform
from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.errors import UserError
from smallvision.registry import BUILTINS


def glyph_fonts(letters: str = "ABCDEFGHIJ") -> list[Path]:
    """Every TrueType / OpenType file in matplotlib's fonts folder that draws ``letters``.

    A font counts when its character map sends each letter to a glyph named after it: that
    keeps symbol fonts (cmex10 maps "A" to a parenthesis) and placeholder fonts out.
    """
    import matplotlib
    from matplotlib.ft2font import FT2Font

    folder = Path(matplotlib.get_data_path()) / "fonts"
    fonts = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".ttf", ".otf")):
        font = FT2Font(str(path))
        charmap = font.get_charmap()
        if all(ord(c) in charmap and font.get_glyph_name(charmap[ord(c)]) == c for c in letters):
            fonts.append(path)
    return fonts


def _render_glyph(path: Path, letter: str, canvas: int) -> np.ndarray:
    """One letter, its ink box scaled to fill 80% of a ``canvas`` square, centred; float [0, 1]."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(path), size=2 * canvas)
    im = Image.new("L", (4 * canvas, 4 * canvas))
    ImageDraw.Draw(im).text((canvas, canvas // 2), letter, font=font, fill=255)
    ink = im.crop(im.getbbox())
    box = round(0.8 * canvas)
    scale = box / max(ink.size)
    ink = ink.resize((max(1, round(ink.width * scale)), max(1, round(ink.height * scale))), Image.LANCZOS)
    out = Image.new("L", (canvas, canvas))
    out.paste(ink, ((canvas - ink.width) // 2, (canvas - ink.height) // 2))
    return np.asarray(out, dtype=np.float32) / 255.0


@functools.lru_cache(maxsize=4)
def glyph_bank(letters: str = "ABCDEFGHIJ", canvas: int = 56) -> tuple[torch.Tensor, tuple[str, ...]]:
    """The rendered letters with four stroke weights, cached per process.

    Returns:
        (4, F, L, canvas, canvas) float in [0, 1] -- stroke weight (thin, as drawn, bold,
        bolder) x font x letter -- and the font file names.
    """
    fonts = glyph_fonts(letters)
    if not fonts:
        raise UserError(f"builtin:glyphs: no matplotlib font draws all of {letters!r}")
    base = torch.from_numpy(np.stack([[_render_glyph(f, c, canvas) for c in letters] for f in fonts]))
    x = base.flatten(0, 1).unsqueeze(1)  # (F*L, 1, canvas, canvas)
    # grey-scale erosion / dilation as min / max pooling: thinner and bolder strokes
    thin = -F.max_pool2d(-x, 3, stride=1, padding=1)
    bold = F.max_pool2d(x, 3, stride=1, padding=1)
    bolder = F.max_pool2d(x, 5, stride=1, padding=2)
    bank = torch.stack([thin, x, bold, bolder]).view(4, len(fonts), len(letters), canvas, canvas)
    return bank, tuple(f.name for f in fonts)


def _affine_jitter(n: int, gen: torch.Generator, rotate: float, scale: tuple, shear: float, shift: float):
    """(n, 2, 3) affine_grid matrices: random rotation, zoom, shear and shift per image."""
    angle = torch.deg2rad(uniform(n, -rotate, rotate, gen))
    zoom = uniform(n, *scale, gen)
    aspect = uniform(n, 0.85, 1.15, gen)
    k = uniform(n, -shear, shear, gen)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output to input coordinates, hence the inverse zoom
    sx, sy = 1 / (zoom * aspect), aspect / zoom
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * sx, (-sin + k * cos) * sy
    theta[:, 1, 0], theta[:, 1, 1] = sin * sx, (cos + k * sin) * sy
    theta[:, :, 2] = uniform(2 * n, -shift, shift, gen).view(n, 2)
    return theta


@BUILTINS.register("glyphs")
def glyphs(seed: int = 0, n: int = 10000, size: int = 28, letters: str = "ABCDEFGHIJ") -> ImageSet:
    """notMNIST-like letters: every matplotlib font x ``letters``, randomly jittered, ``size`` px.

    Classes and fonts are balanced (each letter ``n / len(letters)`` times, fonts in turn);
    each image gets one of four stroke weights, a rotation (+-12 deg), zoom (0.8-1.1), aspect
    (0.85-1.15), shear (+-0.2), shift (+-7% of the side) and ink intensity (0.7-1.0).
    """
    n, size = check_int(n, "n", 10), check_int(size, "size", 8, 256)
    if not isinstance(letters, str) or len(set(letters)) != len(letters) or len(letters) < 2:
        raise UserError(
            f"data.options.letters: expected distinct letters such as 'ABCDEFGHIJ', got {letters!r}"
        )
    bank, fonts = glyph_bank(letters, 2 * size)  # drawn at 2x, averaged down: anti-aliased edges
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    letter = (torch.arange(n) % len(letters))[order]
    font = (torch.arange(n) // len(letters) % len(fonts))[order]
    weight = torch.randint(0, 4, (n,), generator=gen)
    theta = _affine_jitter(n, gen, rotate=12.0, scale=(0.8, 1.1), shear=0.2, shift=0.14)
    ink = uniform(n, 0.7, 1.0, gen).view(n, 1, 1, 1)
    out = torch.empty(n, 1, size, size, dtype=torch.uint8)
    for s in range(0, n, CHUNK):
        part = slice(s, s + CHUNK)
        src = bank[weight[part], font[part], letter[part]].unsqueeze(1)  # (B, 1, 2size, 2size)
        grid = F.affine_grid(theta[part], list(src.shape), align_corners=False)
        x = F.avg_pool2d(F.grid_sample(src, grid, align_corners=False), 2)  # (B, 1, size, size)
        out[part] = to_uint8(x * ink[part] * 255)
    data = ImageSet(
        out,
        {"label": letter.long()},
        {"label": TargetInfo("classification", tuple(letters))},
        name="builtin:glyphs",
        meta={"fonts": list(fonts)},
    )
    return data
