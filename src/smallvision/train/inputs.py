"""What the model sees at evaluation: scale, the pipeline's fixed ``at_eval`` ops, standardise; and,
for a denoising or masked autoencoder, the same corruption as in training, drawn once with a fixed seed.

(A training batch goes clean ops -> MixUp/CutMix -> corruption ops -> standardise: see the trainer.)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from smallvision.data.augment.pipeline import IDENTITY, Pipeline
from smallvision.data.normalize import Normalizer

# the corruption of evaluation inputs: chunk k of a split draws from a generator seeded EVAL_SEED + k,
# so an image's corrupted input depends on its position in the split only (not on the run's seed,
# the variant, the epoch or eval_batch_size): every variant and seed is scored on the same inputs
EVAL_SEED = 0
EVAL_CHUNK = 256


def corrupts_evaluation(kinds: Iterable[str]) -> bool:
    """Whether a run with heads of these kinds is evaluated on corrupted inputs: when a head's target
    is the input (reconstruction). A classifier trained with noise is evaluated on clean images."""
    from smallvision.registry import HEAD_KINDS

    return any(HEAD_KINDS.get(k).target_is_input for k in kinds)


class InputPrep:
    """Stored images -> model input for evaluation: scale, the fixed ``at_eval`` ops, standardise.

    Most pipelines have no ``at_eval`` op and this is just the normaliser; a fixed pixel
    permutation (study 004) defines the input, so validation and test images go through it too.

    Args:
        normalizer: the run's normaliser (training statistics).
        augment: the training pipeline (its ``at_eval`` ops are kept).
        corrupt: also apply the pipeline's corruption ops (noise, masking) in :meth:`corrupted`:
            a denoising or masked autoencoder is scored on what it was trained to undo.
    """

    def __init__(self, normalizer: Normalizer, augment: Pipeline = IDENTITY, corrupt: bool = False) -> None:
        self.normalizer = normalizer
        self.fixed = augment.eval_pipeline()
        self.corruption = augment.split()[1] if corrupt else IDENTITY

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        x = self.normalizer.to_unit(raw)
        if len(self.fixed):  # fixed ops draw nothing: the generator is only the call's signature
            x = self.fixed(x, torch.Generator().manual_seed(0))
        return self.normalizer.standardize(x)

    def corrupted(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """``(inputs, mask)`` of a whole evaluation split, or None when nothing is corrupted.

        inputs: (N, C, H, W) float32, standardised like :meth:`__call__` but corrupted as in training
        (after the fixed ops, before standardising); mask: (N, 1, H, W) bool of the hidden pixels, or
        None without a masking op. Drawn chunk by chunk (see :data:`EVAL_SEED`) on the CPU.
        """
        if not len(self.corruption):
            return None
        inputs, masks = [], []
        for k, start in enumerate(range(0, len(raw), EVAL_CHUNK)):
            gen = torch.Generator().manual_seed(EVAL_SEED + k)
            x = self.normalizer.to_unit(raw[start : start + EVAL_CHUNK])
            if len(self.fixed):
                x = self.fixed(x, gen)
            x, mask = self.corruption.masked(x, gen)
            inputs.append(self.normalizer.standardize(x))
            masks.append(mask)
        if not inputs:  # an empty split
            return torch.empty((0, *raw.shape[1:])), None
        return torch.cat(inputs), None if masks[0] is None else torch.cat(masks)
