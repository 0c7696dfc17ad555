"""What the model sees at evaluation: scale, the pipeline's fixed ``at_eval`` ops, standardise.

(A training batch goes clean ops -> MixUp/CutMix -> corruption ops -> standardise: see the trainer.)
"""

from __future__ import annotations

import torch

from smallvision.data.augment.pipeline import IDENTITY, Pipeline
from smallvision.data.normalize import Normalizer


class InputPrep:
    """Stored images -> model input for evaluation: scale, the fixed ``at_eval`` ops, standardise.

    Most pipelines have no ``at_eval`` op and this is just the normaliser; a fixed pixel
    permutation (study 004) defines the input, so validation and test images go through it too.

    Args:
        normalizer: the run's normaliser (training statistics).
        augment: the training pipeline (its ``at_eval`` ops are kept).
    """

    def __init__(self, normalizer: Normalizer, augment: Pipeline = IDENTITY) -> None:
        self.normalizer = normalizer
        self.fixed = augment.eval_pipeline()

    def __call__(self, raw: torch.Tensor) -> torch.Tensor:
        x = self.normalizer.to_unit(raw)
        if len(self.fixed):  # fixed ops draw nothing: the generator is only the call's signature
            x = self.fixed(x, torch.Generator().manual_seed(0))
        return self.normalizer.standardize(x)
