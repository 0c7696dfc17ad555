"""``patches``: RGB crops of the photographs scikit-image and scikit-learn ship: a VOC-like set."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from smallvision.data.builtins.common import balanced, check_int, to_uint8, uniform
from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.errors import UserError
from smallvision.registry import BUILTINS

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")


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
    side = uniform(k, 0.3, 1.0, gen) * min(h, w)
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
def patches(seed: int = 0, n: int = 2000, size: int = 64, labels: bool = False) -> ImageSet:
    """A VOC-like set: ``n`` RGB ``size`` x ``size`` crops of the shipped photographs.

    Photographs: scikit-image's astronaut, chelsea, coffee, rocket, motorcycle (left view) and
    scikit-learn's china and flower, used equally often. No targets (for autoencoders), or with
    ``labels`` the target ``label``: which photograph a crop comes from (7 balanced classes, a
    labelled set of the same shape for a frozen encoder's downstream task). The images do not
    depend on ``labels``.
    """
    if not isinstance(labels, bool):
        raise UserError(f"data.options.labels: expected true or false, got {labels!r}")
    n, size = check_int(n, "n", 1), check_int(size, "size", 8, 256)
    gen = torch.Generator().manual_seed(seed)
    photos = photographs()
    which = balanced(n, len(photos), gen)
    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
    for i, (_, photo) in enumerate(photos):
        idx = (which == i).nonzero().flatten()
        for part in torch.split(idx, 256) if len(idx) else ():
            out[part] = to_uint8(_crops(photo, len(part), size, gen))
    names = [p[0] for p in photos]
    meta = {"photos": names}
    if not labels:
        return ImageSet(out, {}, {}, name="builtin:patches", meta=meta)
    classes = tuple(name.removesuffix(".jpg") for name in names)
    info = {"label": TargetInfo("classification", classes)}
    return ImageSet(out, {"label": which.long()}, info, name="builtin:patches", meta=meta)
