"""The in-memory dataset every source produces and everything downstream consumes.

Images stay as one tensor (N, C, H, W) -- uint8 when the source is 8-bit, float32 otherwise --
so that the trainer slices batches instead of looping over images (airbench's habit).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from smallvision.data.mapped import MappedImages, chunk_rows, take_rows


@dataclass(frozen=True)
class TargetInfo:
    """What one target is: its kind and, for classification, the class names (index = label)."""

    kind: Literal["classification", "regression"]
    classes: tuple[str, ...] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes) if self.classes else 0


@dataclass
class ImageSet:
    """Images, their targets, and any official splits or named domains.

    Attributes:
        images: (N, C, H, W) uint8 or float32: a tensor, or a :class:`MappedImages` whose rows
            stay in a memory-mapped file (``data.options.mmap``) and are read a batch at a time.
        targets: target name -> (N,) int64 (classification) or (N,) / (N, k) float32 (regression).
        info: target name -> TargetInfo; same keys as ``targets``.
        groups: official splits ("train", "test") or named domains -> int64 sample indices.
        name: a human name for reports ("builtin:mnist-5k").
        meta: anything a reader wants recorded in the run (e.g. {"skipped": 3}).
    """

    images: torch.Tensor | MappedImages
    targets: dict[str, torch.Tensor]
    info: dict[str, TargetInfo]
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise ValueError(
                f"{self.name}: images must be (N, C, H, W), got shape {tuple(self.images.shape)}"
            )
        n = len(self.images)
        for key, t in self.targets.items():
            if len(t) != n:
                raise ValueError(f"{self.name}: target {key!r} has {len(t)} values for {n} images")
        if set(self.targets) != set(self.info):
            raise ValueError(
                f"{self.name}: targets {sorted(self.targets)} and info {sorted(self.info)} differ"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: np.ndarray | torch.Tensor) -> ImageSet:
        """The samples at ``index`` (groups are dropped: they index the parent)."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return ImageSet(
            images=take_rows(self.images, idx),
            targets={k: v[idx] for k, v in self.targets.items()},
            info=dict(self.info),
            name=self.name,
            meta=dict(self.meta),
        )

    def fingerprint(self) -> str:
        """sha256 of the images and targets: two runs on the same data share it."""
        h = hashlib.sha256()
        h.update(str(tuple(self.images.shape)).encode())
        step = chunk_rows(self.images)
        for start in range(0, len(self), step):  # in chunks: the digest of the whole, never a whole copy
            h.update(self.images[start : start + step].contiguous().numpy())
        for key in sorted(self.targets):
            h.update(key.encode())
            h.update(self.targets[key].contiguous().numpy().tobytes())
        return h.hexdigest()
