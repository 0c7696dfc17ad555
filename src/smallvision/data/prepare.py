"""Whole-set image preparation done once after loading: size and channels the config asks for."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from smallvision.data.dataset import ImageSet
from smallvision.data.mapped import MappedImages
from smallvision.errors import UserError

# ITU-R BT.601 luma: how RGB becomes grayscale in PIL and most image tools
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def resize_images(images: torch.Tensor, size: tuple[int, int], chunk: int = 4096) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W), antialiased when shrinking; uint8 stays uint8."""
    if tuple(images.shape[2:]) == tuple(size):
        return images
    out = []
    for part in torch.split(images, chunk):
        x = F.interpolate(
            part.float(), size=tuple(size), mode="bilinear", align_corners=False, antialias=True
        )
        out.append(x.round().clamp(0, 255).to(torch.uint8) if images.dtype == torch.uint8 else x)
    return torch.cat(out)


def set_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Gray -> RGB by repetition, RGB -> gray by luma weights."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 1 and channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    if c == 3 and channels == 1:
        gray = (images.float() * _LUMA).sum(dim=1, keepdim=True)
        return gray.round().clamp(0, 255).to(torch.uint8) if images.dtype == torch.uint8 else gray
    raise ValueError(f"cannot convert {c} channels to {channels}")


def conform(images: torch.Tensor, size: tuple[int, int] | None, channels: int | None) -> torch.Tensor:
    """(N, C, H, W) images converted to ``channels`` and then resized to ``size`` (None: kept).

    The one conversion both a run's data (:func:`prepare_images`) and the images a finished run
    predicts on go through, so that both reach the model the same way.
    """
    if channels is not None:
        images = set_channels(images, channels)
    if size is not None:
        images = resize_images(images, size)
    return images


def prepare_images(data: ImageSet, size: tuple[int, int] | None, channels: int | None) -> ImageSet:
    """``data`` with its images resized and converted as configured (a new ImageSet).

    Memory-mapped images are used as stored: converting them would read the whole set into memory.
    """
    if isinstance(data.images, MappedImages):
        _, c, h, w = data.images.shape
        if size is not None and tuple(size) != (h, w):
            raise UserError(
                f"data.size {list(size)}: option mmap reads the images as stored ({h}x{w}); "
                "resize the file once, or leave data.size out"
            )
        if channels is not None and channels != c:
            raise UserError(
                f"data.channels {channels}: option mmap reads the images as stored ({c} channels); "
                "convert the file once, or leave data.channels out"
            )
        return data
    images = conform(data.images, size, channels)
    if images is data.images:
        return data
    return ImageSet(images, data.targets, data.info, data.groups, data.name, data.meta)
