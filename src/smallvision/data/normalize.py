"""The statistics learned from the training split only, and how stored images become model inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from smallvision.data.mapped import chunk_rows

# torchvision's / timm's ImageNet statistics (RGB, [0, 1] scale): the inputs pretrained weights saw
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Normalizer:
    """Maps stored images to model inputs: ``x = raw * scale``, then ``(x - mean) / std`` per channel.

    ``scale`` brings uint8 images to [0, 1] so that augmentation works in a known range
    (a rotation fills with 0 = black); mean and std come from the training split only.
    """

    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_unit(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.float() * self.scale  # (B, C, H, W) float

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        return self.standardize(self.to_unit(raw))

    def to_dict(self) -> dict:
        return {"scale": self.scale, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        """The inverse of :meth:`to_dict` (as stored in checkpoints and metrics.json)."""
        return cls(float(d["scale"]), tuple(d["mean"]), tuple(d["std"]))


def fit_normalizer(train_images: torch.Tensor, method: str) -> Normalizer:
    """Per-channel statistics of the training images only (never val or test).

    Args:
        train_images: (N, C, H, W) uint8 or float, a tensor or memory-mapped (read in chunks).
        method: "standardize" (mean/std), "scale" (uint8 / 255 only), "none", or "imagenet":
            the fixed ImageNet mean/std per channel (no statistics learned), for weights
            pretrained on ImageNet; a 1-channel input takes the mean of the three means and of
            the three stds, matching a conv1 whose RGB weights were summed (``model.init``).
    """
    c = train_images.shape[1]
    scale = 1.0 / 255.0 if train_images.dtype == torch.uint8 and method != "none" else 1.0
    if method == "imagenet":
        if c == 3:
            return Normalizer(scale, IMAGENET_MEAN, IMAGENET_STD)
        return Normalizer(scale, (sum(IMAGENET_MEAN) / 3,) * c, (sum(IMAGENET_STD) / 3,) * c)
    if method != "standardize":
        return Normalizer(scale, (0.0,) * c, (1.0,) * c)
    # float64 sums in chunks: exact enough and never a float32 copy of the whole set
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    step = chunk_rows(train_images, bytes_per_value=8)
    for start in range(0, len(train_images), step):
        x = train_images[start : start + step].to(torch.float64) * scale
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    count = train_images.shape[0] * train_images.shape[2] * train_images.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt().clamp_min(1e-6)
    return Normalizer(scale, tuple(mean.tolist()), tuple(std.tolist()))
