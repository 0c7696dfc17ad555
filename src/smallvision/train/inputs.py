"""What the model sees: the training pipeline split around MixUp, and the evaluation inputs.

A training batch goes clean ops (geometric, photometric) -> MixUp/CutMix -> corruption ops (noise,
masking) -> standardise, so that a reconstruction head's target is the clean batch and its input
the corrupted one. Evaluation inputs go through the pipeline's fixed ``at_eval`` ops only.
"""

from __future__ import annotations

import torch

from smallvision.data.splits import Normalizer


def split_augment(augment: object | None) -> tuple[object | None, object | None]:
    """(clean ops, corruption ops) of a pipeline; a pipeline without ``split()`` is all clean."""
    if augment is None or not _nonempty(augment):
        return None, None
    split = getattr(augment, "split", None)
    if split is None:
        return augment, None
    clean, corrupt = split()
    return (clean if _nonempty(clean) else None), (corrupt if _nonempty(corrupt) else None)


def _nonempty(pipeline: object) -> bool:
    return len(pipeline) > 0 if hasattr(pipeline, "__len__") else True


class InputPrep:
    """Stored images -> model input for evaluation: scale, the fixed ``at_eval`` ops, standardise.

    Most pipelines have no ``at_eval`` op and this is just the normaliser; a fixed pixel
    permutation (study 004) defines the input, so validation and test images go through it too.

    Args:
        normalizer: the run's normaliser (training statistics).
        augment: the training pipeline, or None.
    """

    def __init__(self, normalizer: Normalizer, augment: object | None = None) -> None:
        self.normalizer = normalizer
        fixed = getattr(augment, "eval_pipeline", None)
        fixed = fixed() if fixed is not None else None
        self.fixed = fixed if fixed is not None and _nonempty(fixed) else None

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        x = self.normalizer.to_unit(raw)
        if self.fixed is not None:  # fixed ops draw nothing: the generator is only the call's signature
            x = self.fixed(x, torch.Generator().manual_seed(0))
        return self.normalizer.standardize(x)
