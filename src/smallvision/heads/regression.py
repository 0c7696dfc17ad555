"""Regression: one or more real values per image, saved as ``y_pred`` (N,) or (N, k)."""

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
    from smallvision.report.checks import Finding
    from smallvision.report.heads import HeadReport


class Regression(HeadKind):
    """MSE, MAE or Huber (delta 1) on a dense head; ``activation: sigmoid`` bounds it to (0, 1)."""

    name = "regression"
    losses = ("mse", "mae", "huber")
    options = ("classes", "hidden", "dropout", "activation")  # classes: the number of outputs
    headline = ("mae",)

    def build_module(self, backbone: nn.Module, cfg: HeadConfig) -> nn.Module:
        from torch import nn

        from smallvision.models.heads import mlp

        layers = [mlp(backbone.num_features, cfg.hidden, cfg.classes or 1, cfg.dropout)]
        if cfg.activation == "sigmoid":
            layers.append(nn.Sigmoid())
        return nn.Sequential(*layers)

    def loss_fn(self, cfg: HeadConfig, class_weights: torch.Tensor | None = None) -> Any:
        import torch.nn.functional as F

        fn = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.huber_loss}[cfg.loss or self.default_loss]
        return lambda out, target, mask=None: fn(out.float().reshape(target.shape), target.float())

    def train_target(self, target: torch.Tensor) -> torch.Tensor:
        return target.float()

    def to_output(self, raw: np.ndarray) -> np.ndarray:
        # a single output is saved as (N,), like its target
        return raw[:, 0] if raw.ndim == 2 and raw.shape[1] == 1 else raw

    def looks_like(self, arrays: Mapping[str, np.ndarray], reported: Mapping[str, Any]) -> bool:
        return "y_pred" in arrays and np.ndim(arrays["y_pred"]) < 3

    def diagnose(
        self, report: HeadReport, arrays: Mapping[str, np.ndarray], extra: Any, classes: list[str] | None
    ) -> list[Finding]:
        from smallvision.report import checks as ck

        r2 = report.checks[report.split]["r2"].recomputed
        return ck.diagnose_regressor(report.name, arrays["y_true"], arrays["y_pred"], r2)

    def draw(
        self, report: HeadReport, arrays: Mapping[str, np.ndarray], extra: Any, classes: list[str] | None
    ) -> None:
        from smallvision.report import figures
        from smallvision.report.tables import Image

        y_true, y_pred = arrays["y_true"], arrays["y_pred"]
        t = np.asarray(y_true, dtype=np.float64).ravel()
        p = np.asarray(y_pred, dtype=np.float64).ravel()
        report.images.append(Image(f"{report.split} true vs predicted", figures.true_vs_predicted(t, p)))
        report.images.append(Image(f"{report.split} residuals", figures.residual_histogram(p - t)))


HEAD_KINDS.register("regression")(Regression())
