"""Classification: K classes, logits out, class probabilities saved as ``prob`` (N, K)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from smallvision.errors import UserError
from smallvision.heads.base import PROB_FLOOR, HeadKind, Rescored, class_names
from smallvision.registry import HEAD_KINDS

if TYPE_CHECKING:
    import torch
    from torch import nn

    from smallvision.config import HeadConfig
    from smallvision.report.checks import Finding
    from smallvision.report.heads import HeadReport


class Classification(HeadKind):
    """Cross-entropy (with label smoothing, class weights) or focal loss on softmax outputs."""

    name = "classification"
    losses = ("ce", "focal")
    options = ("classes", "hidden", "dropout", "label_smoothing", "class_weights", "focal_gamma")
    headline = ("accuracy", "macro_f1")
    npz_field = "prob"
    needs_classes = True
    sample_loss = "negative log-probability of the true class"
    likelihood_scale = 1.0
    ensemble_method = "mean of probabilities (soft voting)"

    def resolve(
        self, name: str, cfg: HeadConfig, target: torch.Tensor, num_classes: int | None
    ) -> HeadConfig:
        classes = cfg.classes or num_classes
        top = int(target.max()) if len(target) else 0
        if top >= (classes or 0) or (len(target) and int(target.min()) < 0):
            raise UserError(
                f"heads.{name}.classes: {classes} classes but target {cfg.target or name!r} has label {top}"
            )
        return cfg.model_copy(update={"classes": classes})

    def build_module(self, backbone: nn.Module, cfg: HeadConfig) -> nn.Module:
        from smallvision.models.heads import mlp

        if not cfg.classes or cfg.classes < 2:
            raise UserError(f"classification head needs classes >= 2, got {cfg.classes}")
        return mlp(backbone.num_features, cfg.hidden, cfg.classes, cfg.dropout)  # logits

    def loss_fn(self, cfg: HeadConfig, class_weights: torch.Tensor | None = None) -> Any:
        from smallvision.train.losses import soft_cross_entropy

        gamma = cfg.focal_gamma if (cfg.loss or self.default_loss) == "focal" else 0.0
        smoothing = cfg.label_smoothing

        def classify(out, target, mask=None):
            return soft_cross_entropy(out, target, smoothing, class_weights, gamma)

        return classify

    def to_output(self, raw: np.ndarray) -> np.ndarray:
        import torch

        return torch.from_numpy(raw).softmax(dim=1).numpy()

    def metrics(self, y_true: np.ndarray, output: np.ndarray, normalization: Any = None) -> dict[str, Any]:
        from smallvision.evaluate.metrics import class_tables, score

        return {**score(self.name, y_true, output), **class_tables(y_true, output)}

    def csv_columns(
        self, head: str, output: np.ndarray, class_names: Sequence[str] | None
    ) -> tuple[list[str], list[list[str]]]:
        """The predicted class name, then every class's probability."""
        classes = list(class_names or [str(i) for i in range(output.shape[1])])
        header = [head] + [f"{head}:p({c})" for c in classes]
        columns = [[classes[k] for k in output.argmax(axis=1)]]
        return header, columns + [[f"{p:.6f}" for p in output[:, j]] for j in range(output.shape[1])]

    def looks_like(self, arrays: Mapping[str, np.ndarray], reported: Mapping[str, Any]) -> bool:
        return "prob" in arrays or "accuracy" in reported

    def rescore(self, arrays: Mapping[str, np.ndarray], normalization: Any = None) -> Rescored:
        from smallvision.report.checks import classification_scores

        scores = classification_scores(arrays["y_true"], arrays["prob"])
        return Rescored(scores.metrics, scores.bounds, scores)

    def sample_losses(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """The negative log-probability of the true class (cross-entropy without label smoothing)."""
        prob = np.asarray(arrays["prob"], dtype=np.float64)
        y = np.asarray(arrays["y_true"], dtype=np.int64)
        return -np.log(np.clip(prob[np.arange(len(y)), y], PROB_FLOOR, None))

    def sample_fields(
        self, arrays: Mapping[str, np.ndarray], i: int, classes: Sequence[str] | None
    ) -> dict[str, Any]:
        prob = np.asarray(arrays["prob"][i], dtype=np.float64)
        y, pred = int(arrays["y_true"][i]), int(prob.argmax())
        names = class_names(classes, len(prob))
        return {"true": names[y], "predicted": names[pred], "p(predicted)": prob[pred], "p(true)": prob[y]}

    def diagnose(
        self, report: HeadReport, arrays: Mapping[str, np.ndarray], extra: Any, classes: list[str] | None
    ) -> list[Finding]:
        from smallvision.report import checks as ck

        return ck.diagnose_classifier(report.name, extra, class_names(classes, extra.confusion.shape[0]))

    def draw(
        self, report: HeadReport, arrays: Mapping[str, np.ndarray], extra: Any, classes: list[str] | None
    ) -> None:
        from smallvision.report import figures
        from smallvision.report.tables import Image

        k = extra.confusion.shape[0]
        names = class_names(classes, k)
        split = report.split
        report.images.append(
            Image(f"{split} confusion matrix", figures.confusion_matrix(extra.confusion, names), wide=k > 12)
        )
        if k >= 3 and np.any(extra.confusion - np.diag(np.diag(extra.confusion))):
            png = figures.confusion_matrix(extra.confusion, names, mask_diagonal=True)
            report.images.append(
                Image(f"{split} mistakes only", png, "correct predictions greyed out", wide=k > 12)
            )
        report.images.append(
            Image(
                "predicted vs true class counts",
                figures.class_distribution(extra.support, extra.predicted, names),
                "a classifier that predicts one class for everything shows one tall 'predicted' bar",
                wide=True,
            )
        )
        report.images.append(
            Image(
                "per-class precision, recall, F1",
                figures.per_class_bars(extra.precision, extra.recall, extra.f1, names),
                wide=True,
            )
        )
        confused = most_confused(extra.confusion, names)
        if confused.rows:
            report.tables.append(confused)
        report.details.append(per_class_table(extra, names))


def most_confused(cm: np.ndarray, classes: Sequence[str], top: int = 10) -> Any:
    """The largest off-diagonal counts: which true class is taken for which (fastai's most_confused)."""
    from smallvision.report.tables import Cell, Table

    off = cm - np.diag(np.diag(cm))
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    rows = []
    support = cm.sum(axis=1)
    for flat in order:
        i, j = divmod(int(flat), cm.shape[1])
        if off[i, j] == 0:
            break
        share = off[i, j] / support[i]
        rows.append(
            [
                Cell(classes[i]),
                Cell(classes[j]),
                Cell(f"{int(off[i, j]):,}", cls="num"),
                Cell(f"{share:.1%}", cls="num"),
            ]
        )
    return Table(["true", "predicted as", "count", "share of true class"], rows, "most confused pairs")


def per_class_table(scores: Any, classes: Sequence[str]) -> Any:
    """Precision, recall, F1, support and predicted count of every class."""
    from smallvision.report.tables import Cell, Table, format_value

    rows = [
        [Cell(name)]
        + [Cell(format_value(float(v[i])), cls="num") for v in (scores.precision, scores.recall, scores.f1)]
        + [Cell(f"{int(scores.support[i]):,}", cls="num"), Cell(f"{int(scores.predicted[i]):,}", cls="num")]
        for i, name in enumerate(classes)
    ]
    return Table(["class", "precision", "recall", "F1", "support", "predicted"], rows, "per-class figures")


HEAD_KINDS.register("classification")(Classification())
