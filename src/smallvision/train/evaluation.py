"""A split in memory and how it is evaluated: the one path for validation and the final test.

The trainer's validation and the run's final evaluation (``study.finish.evaluate_split``) both go
through :func:`evaluation_split` and :func:`predict_split`, so a masked or denoising autoencoder is
scored on the same corrupted inputs each epoch, at the end and in every variant, against the clean
image (:meth:`smallvision.train.inputs.InputPrep.corrupted`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from smallvision.data.normalize import Normalizer
from smallvision.evaluate.predict import predict
from smallvision.train.inputs import InputPrep


@dataclass
class Split:
    """One split in memory: stored images and the target of each head (by head name).

    Attributes:
        images: (N, C, H, W) uint8 or float, as stored.
        targets: head name -> target.
        inputs: for evaluation only: the fixed corrupted model inputs (standardised), or None
            when the model sees ``images`` through the run's :class:`InputPrep`.
        mask: (N, 1, H, W) bool, the pixels a masking op hid in ``inputs``, or None.
    """

    images: torch.Tensor  # (N, C, H, W) uint8 or float
    targets: dict[str, torch.Tensor] = field(default_factory=dict)
    inputs: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.images)


def evaluation_split(split: Split, prep: InputPrep) -> Split:
    """``split`` with its corrupted evaluation inputs filled in when ``prep`` corrupts (else itself).

    Idempotent: a split that has its inputs already is returned as it is.
    """
    if split.inputs is not None:
        return split
    made = prep.corrupted(split.images)
    return split if made is None else replace(split, inputs=made[0], mask=made[1])


def predict_split(
    model: nn.Module, split: Split, prep: InputPrep | Normalizer, heads: Sequence[str], batch_size: int
) -> dict[str, np.ndarray]:
    """Raw outputs per head on ``split``: its corrupted ``inputs`` when set, else ``prep(images)``."""
    if split.inputs is not None:
        return predict(model, split.inputs, _as_is, heads, batch_size)
    return predict(model, split.images, prep, heads, batch_size)


def _as_is(x: torch.Tensor) -> torch.Tensor:
    return x


def numpy_target(split: Split, head: str, prep: InputPrep | Normalizer) -> np.ndarray:
    """A head's true values on ``split`` as numpy; reconstruction: the prepared (standardised) clean input."""
    if head in split.targets:
        return split.targets[head].numpy()
    return prep(split.images[:]).numpy()  # [:]: a memory-mapped split is read here, a tensor is viewed
