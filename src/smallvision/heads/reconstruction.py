"""Reconstruction: the network rebuilds its (clean) input image, saved as ``y_pred`` (N, C, H, W).

Targets and outputs are in the model's standardised units. ``mse`` and ``mae`` are scored there
(what the loss sees); ``pixel_accuracy`` on the [0, 1] image scale, after undoing the run's
per-channel standardisation, so that "within 0.1" means a tenth of the intensity range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from smallvision.heads.base import HeadKind
from smallvision.registry import HEAD_KINDS

if TYPE_CHECKING:
    import torch
    from torch import nn

    from smallvision.config import HeadConfig
    from smallvision.report.heads import HeadReport

# pixel errors beyond this many are thinned evenly before the histogram
MAX_RESIDUALS = 200_000


def to_unit_scale(x: np.ndarray, normalization: Any) -> np.ndarray:
    """Standardised images (N, C, ...) back to the scale the normaliser started from ([0, 1]).

    Args:
        x: images in standardised units.
        normalization: a Normalizer or its ``to_dict()`` (``mean`` and ``std`` per channel);
            None: ``x`` is returned as it is.
    """
    if normalization is None:
        return x
    get = normalization.get if isinstance(normalization, Mapping) else lambda k: getattr(normalization, k)
    mean, std = np.asarray(get("mean"), dtype=np.float64), np.asarray(get("std"), dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2 or x.shape[1] != len(mean):
        from smallvision.report.checks import PredictionError

        raise PredictionError(f"images of shape {x.shape} do not have the normaliser's {len(mean)} channels")
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return x * std.reshape(shape) + mean.reshape(shape)


class Reconstruction(HeadKind):
    """MSE or L1 between the decoder's output and the clean input, optionally on masked pixels only."""

    name = "reconstruction"
    losses = ("mse", "l1")
    options = ("masked_only",)
    headline = ("mse",)
    target_is_input = True

    def build_module(self, backbone: nn.Module, cfg: HeadConfig) -> nn.Module:
        return backbone.reconstruction_head()

    def loss_fn(self, cfg: HeadConfig, class_weights: torch.Tensor | None = None) -> Any:
        from smallvision.train.losses import pixel_loss

        loss, masked = cfg.loss or self.default_loss, cfg.masked_only

        def reconstruct(out, target, mask=None):
            return pixel_loss(out, target, loss, mask if masked else None)

        return reconstruct

    def metrics(self, y_true: np.ndarray, output: np.ndarray, normalization: Any = None) -> dict[str, Any]:
        from smallvision.evaluate.metrics import score

        unit = (to_unit_scale(y_true, normalization), to_unit_scale(output, normalization))
        return score(self.name, y_true, output, unit)

    def csv_columns(self, head, output, class_names) -> tuple[list[str], list[list[str]]]:
        return [], []  # images do not fit a CSV row

    def looks_like(self, arrays: Mapping[str, np.ndarray], reported: Mapping[str, Any]) -> bool:
        return np.ndim(arrays.get("y_pred")) >= 3 or "mse" in reported

    def draw(
        self, report: HeadReport, arrays: Mapping[str, np.ndarray], extra: Any, classes: list[str] | None
    ) -> None:
        from smallvision.report import figures
        from smallvision.report.tables import Image

        y_true, y_pred = arrays["y_true"], arrays["y_pred"]
        # the original / reconstructed grid is drawn by report.sections, on the [0, 1] scale
        err = (np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)).ravel()
        if err.size > MAX_RESIDUALS:
            err = err[np.linspace(0, err.size - 1, MAX_RESIDUALS).astype(np.int64)]
        report.images.append(Image(f"{report.split} pixel errors", figures.residual_histogram(err)))


HEAD_KINDS.register("reconstruction")(Reconstruction())
