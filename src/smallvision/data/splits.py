"""Train / val / test splits and the statistics learned from the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from smallvision.config import SplitConfig
from smallvision.data.dataset import ImageSet
from smallvision.errors import UserError

SPLITS = ("train", "val", "test")


def make_splits(data: ImageSet, cfg: SplitConfig) -> dict[str, np.ndarray]:
    """Indices of the train / val / test samples; disjoint, seeded, stratified when asked.

    Args:
        data: the whole dataset.
        cfg: the split config (method, ratios, stratify target, seed).

    Returns:
        {"train": idx, "val": idx, "test": idx}, each a sorted int64 array (val may be empty).
    """
    if cfg.method != "ratio":
        raise UserError(f"data.split.method {cfg.method!r} is not available for {data.name}")
    strata = _strata(data, cfg.stratify)
    splits = ratio_split(strata, (cfg.train, cfg.val, cfg.test), cfg.seed)
    check_disjoint(splits, len(data))
    return splits


def _strata(data: ImageSet, stratify: str | None) -> np.ndarray:
    """One stratum id per sample: the stratify target's class, or all zeros."""
    if stratify is None or stratify not in data.targets:
        if stratify is not None and stratify != "label":
            raise UserError(
                f"data.split.stratify {stratify!r}: no such target (targets: {', '.join(data.targets) or 'none'})"
            )
        return np.zeros(len(data), dtype=np.int64)
    if data.info[stratify].kind != "classification":
        raise UserError(f"data.split.stratify {stratify!r}: can only stratify by a classification target")
    return data.targets[stratify].numpy()


def ratio_split(strata: np.ndarray, ratios: tuple[float, float, float], seed: int) -> dict[str, np.ndarray]:
    """Split each stratum by ``ratios`` (train, val, test) after a seeded shuffle.

    Per-stratum counts are rounded so that every stratum keeps its share in each split to within
    one sample; the training split takes what rounding leaves over.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for value in np.unique(strata):
        idx = np.flatnonzero(strata == value)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * ratios[2]))
        n_val = int(round(len(idx) * ratios[1]))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return {s: np.sort(np.concatenate(p)).astype(np.int64) for s, p in parts.items()}


def check_disjoint(splits: dict[str, np.ndarray], n: int) -> None:
    """Raise when two splits share an index or an index is out of range."""
    seen = np.zeros(n, dtype=bool)
    for name, idx in splits.items():
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"split {name!r} has indices outside 0..{n - 1}")
        if seen[idx].any() or len(np.unique(idx)) != len(idx):
            raise ValueError(f"split {name!r} shares samples with another split")
        seen[idx] = True


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
        mean = torch.tensor(self.mean, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        return self.standardize(self.to_unit(raw))

    def to_dict(self) -> dict:
        return {"scale": self.scale, "mean": list(self.mean), "std": list(self.std)}


def fit_normalizer(train_images: torch.Tensor, method: str) -> Normalizer:
    """Per-channel statistics of the training images only (never val or test).

    Args:
        train_images: (N, C, H, W) uint8 or float.
        method: "standardize" (mean/std), "scale" (uint8 / 255 only) or "none".
    """
    c = train_images.shape[1]
    scale = 1.0 / 255.0 if train_images.dtype == torch.uint8 and method != "none" else 1.0
    if method != "standardize":
        return Normalizer(scale, (0.0,) * c, (1.0,) * c)
    # float64 sums in chunks: exact enough and never a float32 copy of the whole set
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for chunk in torch.split(train_images, 8192):
        x = chunk.to(torch.float64) * scale
        total += x.sum(dim=(0, 2, 3))
        total_sq += (x * x).sum(dim=(0, 2, 3))
    count = train_images.shape[0] * train_images.shape[2] * train_images.shape[3]
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt().clamp_min(1e-6)
    return Normalizer(scale, tuple(mean.tolist()), tuple(std.tolist()))
