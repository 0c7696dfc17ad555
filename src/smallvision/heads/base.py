"""What every head kind owns, as one abstract class.

A kind's declarative parts (its losses, the config keys that fit it, its npz field and headline)
are class attributes readable without torch, so the config schema can check a head at load time;
everything that needs torch, scikit-learn or the report imports it inside the method.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

    from smallvision.config import HeadConfig
    from smallvision.report.checks import Finding
    from smallvision.report.heads import HeadReport

# HeadConfig keys that fit every kind
COMMON_OPTIONS = ("kind", "target", "loss", "weight")
# a saved probability of 0 (float32 underflow) costs -log(1e-12) = 27.6, not infinity
PROB_FLOOR = 1e-12


@dataclass
class Rescored:
    """A head's metrics recomputed by the report from predictions.npz.

    Attributes:
        metrics: metric -> value, as :meth:`HeadKind.metrics` gives them (scalars only).
        bounds: metric -> (low, high) for figures that depend on how ties are broken.
        extra: what the kind's report section draws from (e.g. per-class scores), or None.
    """

    metrics: dict[str, float]
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)
    extra: Any = None


class HeadKind(abc.ABC):
    """One kind of head: its module, losses, outputs, metrics, npz field and report section.

    Attributes:
        name: the ``kind`` of a head config.
        losses: the allowed ``loss`` names; the first is the default.
        options: HeadConfig keys besides :data:`COMMON_OPTIONS` that fit this kind.
        headline: the metrics the CLI prints for a head; the first is the head's main figure.
        npz_field: the array name of the saved outputs, ``<split>/<head>/<npz_field>``.
        target_is_input: the head's target is the (clean) input image, not a target of the data.
        needs_classes: the head needs a class count (filled in from the data when left out).
        likelihood_scale: uncertainty weighting's factor (Kendall et al.: 1 for softmax
            likelihoods, 1/2 for Gaussian ones).
        ensemble_method: how an ensemble combines the members' saved outputs (their mean).
        sample_loss: what :meth:`sample_losses` computes, in words (the worst-mistakes caption).
    """

    name: ClassVar[str]
    losses: ClassVar[tuple[str, ...]]
    options: ClassVar[tuple[str, ...]]
    headline: ClassVar[tuple[str, ...]]
    npz_field: ClassVar[str] = "y_pred"
    target_is_input: ClassVar[bool] = False
    needs_classes: ClassVar[bool] = False
    likelihood_scale: ClassVar[float] = 0.5
    ensemble_method: ClassVar[str] = "mean"
    sample_loss: ClassVar[str] = "mean squared error"

    @property
    def default_loss(self) -> str:
        return self.losses[0]

    def __repr__(self) -> str:
        return f"<head kind {self.name}>"

    # ------------------------------------------------------------ config

    def check_config(self, cfg: HeadConfig) -> None:
        """A ValueError ``"<key>: ..."`` for a set option that does not fit this kind or an unknown loss.

        An option equal to its default counts as unset: saved configs list every default.
        """
        fits = (*COMMON_OPTIONS, *self.options)
        for key, info in type(cfg).model_fields.items():
            value = getattr(cfg, key)
            if key not in fits and value != info.default:
                allowed = ", ".join(self.options) or "none"
                raise ValueError(
                    f"{key}: {value!r} does not fit a {self.name} head (its own options: {allowed})"
                )
        if cfg.loss is not None and cfg.loss not in self.losses:
            raise ValueError(
                f"loss: {cfg.loss!r} is not a {self.name} loss; expected one of {', '.join(self.losses)}"
            )

    def resolve(
        self, name: str, cfg: HeadConfig, target: torch.Tensor, num_classes: int | None
    ) -> HeadConfig:
        """The head's config fitted to its data target (e.g. a class count filled in); checks it."""
        return cfg

    # ------------------------------------------------------------ training

    @abc.abstractmethod
    def build_module(self, backbone: nn.Module, cfg: HeadConfig) -> nn.Module:
        """The head module on the backbone's (B, F) features."""

    @abc.abstractmethod
    def loss_fn(self, cfg: HeadConfig, class_weights: torch.Tensor | None = None) -> Any:
        """``fn(output, target, mask=None) -> scalar`` for the head's (valid) ``cfg.loss``."""

    def train_target(self, target: torch.Tensor) -> torch.Tensor:
        """A data target as the loss expects it."""
        return target

    # ------------------------------------------------------------ outputs and metrics

    def to_output(self, raw: np.ndarray) -> np.ndarray:
        """Raw model output (N, ...) -> what is saved in predictions.npz and scored."""
        return raw

    def metrics(self, y_true: np.ndarray, output: np.ndarray, normalization: Any = None) -> dict[str, Any]:
        """Every metric of this kind in the table of :mod:`smallvision.evaluate.metrics`."""
        from smallvision.evaluate.metrics import score

        return score(self.name, y_true, output)

    def csv_columns(
        self, head: str, output: np.ndarray, class_names: Sequence[str] | None
    ) -> tuple[list[str], list[list[str]]]:
        """(header, columns) of ``smallvision predict``'s CSV: one column per output value."""
        values = output.reshape(len(output), -1)
        header = [head] if values.shape[1] == 1 else [f"{head}[{j}]" for j in range(values.shape[1])]
        return header, [[f"{v:.6f}" for v in values[:, j]] for j in range(values.shape[1])]

    # ------------------------------------------------------------ report

    def looks_like(self, arrays: Mapping[str, np.ndarray], reported: Mapping[str, Any]) -> bool:
        """Whether saved arrays / reported metrics of a head whose kind is unrecorded are this kind's."""
        return self.npz_field in arrays

    def rescore(self, arrays: Mapping[str, np.ndarray], normalization: Any = None) -> Rescored:
        """Metrics recomputed from one split's saved arrays (``y_true`` and :attr:`npz_field`).

        Raises:
            PredictionError: the arrays cannot be scored; KeyError: one is missing.
        """
        from smallvision.report.checks import flat_pair

        flat_pair(arrays["y_true"], arrays[self.npz_field])
        metrics = self.metrics(arrays["y_true"], arrays[self.npz_field], normalization)
        return Rescored({k: v for k, v in metrics.items() if isinstance(v, int | float)})

    def sample_losses(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """(N,) each sample's loss from one split's saved arrays; the worst mistakes are the largest.

        Default: the mean squared error over the sample's outputs.
        """
        t, p = _flat(arrays["y_true"]), _flat(arrays[self.npz_field])
        return ((p - t) ** 2).mean(axis=1)

    def sample_fields(
        self, arrays: Mapping[str, np.ndarray], i: int, classes: Sequence[str] | None
    ) -> dict[str, Any]:
        """What a worst-mistake picture says of sample ``i`` besides its loss: true and predicted values.

        Default: both values when a sample has at most three outputs, else nothing.
        """
        t, p = _flat(arrays["y_true"][i : i + 1])[0], _flat(arrays[self.npz_field][i : i + 1])[0]
        if len(t) > 3:
            return {}
        show = (lambda v: float(v[0])) if len(t) == 1 else (lambda v: [float(x) for x in v])
        return {"true": show(t), "predicted": show(p)}

    def diagnose(
        self, report: HeadReport, arrays: Mapping[str, np.ndarray], extra: Any, classes: list[str] | None
    ) -> list[Finding]:
        """This kind's findings about ``report.split``'s predictions (pure: no figures are drawn).

        The report and the command line's warnings both call it; default: none.
        """
        return []

    @abc.abstractmethod
    def draw(
        self, report: HeadReport, arrays: Mapping[str, np.ndarray], extra: Any, classes: list[str] | None
    ) -> None:
        """Add this kind's figures and tables to ``report`` (split ``report.split``)."""


def class_names(classes: Sequence[str] | None, k: int) -> list[str]:
    """The ``k`` class names when ``classes`` has that many, else ``"0"`` .. ``"k-1"``."""
    return list(classes) if classes and len(classes) == k else [str(i) for i in range(k)]


def _flat(values: np.ndarray) -> np.ndarray:
    """(N, ...) -> (N, k) float64."""
    a = np.asarray(values, dtype=np.float64)
    return a.reshape(len(a), -1)
