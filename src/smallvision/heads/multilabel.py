"""Multi-label: L independent yes/no labels per image, sigmoid probabilities saved as ``prob`` (N, L).

Targets are (N, L) 0/1 values (soft values after MixUp). A label counts as predicted when its
probability is at least 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from smallvision.errors import UserError
from smallvision.evaluate.metrics import metric
from smallvision.heads.base import PROB_FLOOR, HeadKind, class_names
from smallvision.registry import HEAD_KINDS

if TYPE_CHECKING:
    import torch
    from torch import nn

    from smallvision.config import HeadConfig
    from smallvision.report.heads import HeadReport

THRESHOLD = 0.5


def _decisions(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) as (N, L) bool."""
    return np.asarray(y_true) >= THRESHOLD, np.asarray(prob) >= THRESHOLD


def per_label(y_true: np.ndarray, prob: np.ndarray) -> dict[str, list[float]]:
    """Precision, recall, F1 and support of every label (0 where undefined)."""
    t, p = _decisions(y_true, prob)
    tp, support, predicted = (t & p).sum(axis=0), t.sum(axis=0), p.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros(tp.shape), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(tp.shape), where=support > 0)
    f1 = np.divide(
        2 * precision * recall, precision + recall, out=np.zeros(tp.shape), where=precision + recall > 0
    )
    return {
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
    }


@metric("label_accuracy", "multilabel", higher_is_better=True)
def label_accuracy(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Share of (image, label) decisions that are right (1 - Hamming loss)."""
    t, p = _decisions(y_true, prob)
    return float((t == p).mean()) if t.size else 0.0


@metric("exact_match", "multilabel", higher_is_better=True)
def exact_match(y_true: np.ndarray, prob: np.ndarray) -> float:
    """Share of images whose every label is right (scikit-learn's subset accuracy)."""
    t, p = _decisions(y_true, prob)
    return float((t == p).all(axis=1).mean()) if len(t) else 0.0


@metric("macro_f1", "multilabel", higher_is_better=True)
def macro_f1(y_true: np.ndarray, prob: np.ndarray) -> float:
    return float(np.mean(per_label(y_true, prob)["f1"]))


class MultiLabel(HeadKind):
    """Binary cross-entropy per label on a dense head's logits."""

    name = "multilabel"
    losses = ("bce",)
    options = ("classes", "hidden", "dropout")  # classes: the number of labels
    headline = ("label_accuracy", "macro_f1")
    npz_field = "prob"
    needs_classes = True
    sample_loss = "binary cross-entropy (mean over the labels)"
    likelihood_scale = 1.0  # a Bernoulli likelihood per label, like softmax's
    ensemble_method = "mean of probabilities"

    def resolve(
        self, name: str, cfg: HeadConfig, target: torch.Tensor, num_classes: int | None
    ) -> HeadConfig:
        labels = cfg.classes or (target.shape[1] if target.ndim == 2 else None)
        if target.ndim != 2 or target.shape[1] != labels:
            raise UserError(
                f"heads.{name}: a multilabel target is (N, {labels}) 0/1 values, got {tuple(target.shape)}"
            )
        return cfg.model_copy(update={"classes": labels})

    def build_module(self, backbone: nn.Module, cfg: HeadConfig) -> nn.Module:
        from smallvision.models.heads import mlp

        if not cfg.classes:
            raise UserError(f"multilabel head needs classes >= 1 (the number of labels), got {cfg.classes}")
        return mlp(backbone.num_features, cfg.hidden, cfg.classes, cfg.dropout)  # one logit per label

    def loss_fn(self, cfg: HeadConfig, class_weights: torch.Tensor | None = None) -> Any:
        import torch.nn.functional as F

        return lambda out, target, mask=None: F.binary_cross_entropy_with_logits(out.float(), target.float())

    def train_target(self, target: torch.Tensor) -> torch.Tensor:
        return target.float()

    def to_output(self, raw: np.ndarray) -> np.ndarray:
        import torch

        return torch.from_numpy(raw).sigmoid().numpy()

    def metrics(self, y_true: np.ndarray, output: np.ndarray, normalization: Any = None) -> dict[str, Any]:
        from smallvision.evaluate.metrics import score

        return {**score(self.name, y_true, output), "per_label": per_label(y_true, output)}

    def csv_columns(
        self, head: str, output: np.ndarray, class_names: Sequence[str] | None
    ) -> tuple[list[str], list[list[str]]]:
        names = list(class_names or [str(i) for i in range(output.shape[1])])
        return [f"{head}:p({c})" for c in names], [
            [f"{p:.6f}" for p in output[:, j]] for j in range(output.shape[1])
        ]

    def looks_like(self, arrays: Mapping[str, np.ndarray], reported: Mapping[str, Any]) -> bool:
        prob, y_true = arrays.get("prob"), arrays.get("y_true")
        same = (
            prob is not None
            and y_true is not None
            and np.ndim(prob) == 2
            and np.shape(prob) == np.shape(y_true)
        )
        return "label_accuracy" in reported or same

    def sample_losses(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Binary cross-entropy averaged over the labels."""
        t = np.asarray(arrays["y_true"], dtype=np.float64)
        p = np.clip(np.asarray(arrays["prob"], dtype=np.float64), PROB_FLOOR, 1 - PROB_FLOOR)
        return -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean(axis=1)

    def sample_fields(
        self, arrays: Mapping[str, np.ndarray], i: int, classes: Sequence[str] | None
    ) -> dict[str, Any]:
        t, p = _decisions(arrays["y_true"][i : i + 1], arrays["prob"][i : i + 1])
        names = class_names(classes, t.shape[1])
        said = lambda on: ", ".join(n for n, yes in zip(names, on, strict=True) if yes) or "none"  # noqa: E731
        return {"true": said(t[0]), "predicted": said(p[0])}

    def draw(
        self, report: HeadReport, arrays: Mapping[str, np.ndarray], extra: Any, classes: list[str] | None
    ) -> None:
        from smallvision.report import figures
        from smallvision.report.tables import Image

        scores = per_label(arrays["y_true"], arrays["prob"])
        k = len(scores["f1"])
        names = class_names(classes, k)
        bars = figures.per_class_bars(*(np.asarray(scores[m]) for m in ("precision", "recall", "f1")), names)
        report.images.append(Image(f"{report.split} per-label precision, recall, F1", bars, wide=True))


HEAD_KINDS.register("multilabel")(MultiLabel())
