"""One section per head: metrics recomputed from predictions.npz, checks, figures and tables.

Every figure here is drawn from the saved predictions, never from metrics.json, so a report
cannot show a number that no model produced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smallvision.report import checks as ck
from smallvision.report import figures
from smallvision.report.tables import Cell, Image, Table, format_value
from smallvision.rundir import MetricsRecord, Run

SPLITS = ("test", "val")
# pixel errors beyond this many are thinned evenly before the histogram
MAX_RESIDUALS = 200_000


@dataclass
class HeadReport:
    """What the report shows for one head.

    Attributes:
        name, kind: the head and its kind (classification, regression, reconstruction).
        split: the split the figures were drawn from ("test", else "val"; "" when none).
        checks: split -> metric -> Check (reported in metrics.json vs recomputed).
        findings: warnings and notes about this head.
        images: figures, in page order.
        tables: tables shown under the figures (most confused pairs).
        details: longer tables shown folded (per-class figures).
    """

    name: str
    kind: str
    split: str = ""
    checks: dict[str, dict[str, ck.Check]] = field(default_factory=dict)
    findings: list[ck.Finding] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    details: list[Table] = field(default_factory=list)


def head_names(run: Run) -> list[str]:
    """Heads in the order metrics.json lists them, then any only found in predictions."""
    names: dict[str, None] = {}
    metrics = run.metrics or MetricsRecord("completed")
    for source in (metrics.heads, metrics.test, metrics.val):
        names.update((h, None) for h in source)
    for split in SPLITS:
        names.update((h, None) for h in (run.predictions.arrays.get(split, {}) if run.predictions else {}))
    return list(names)


def _arrays(run: Run, split: str, head: str) -> dict[str, np.ndarray]:
    return run.predictions.head(split, head) if run.predictions else {}


def _reported(run: Run, split: str, head: str) -> dict[str, Any] | None:
    return run.metrics.splits.get(split, {}).get(head) if run.metrics else None


def _head_info(run: Run, head: str) -> tuple[str, list[str] | None]:
    """(kind, class names) from metrics.json, else guessed from the prediction arrays."""
    info = run.metrics.heads.get(head) if run.metrics else None
    kind, classes = (info.kind, info.classes) if info else (None, None)
    if kind is None:  # guess from what was saved: probabilities, images, or the reported metrics
        arrays = next((a for s in SPLITS if (a := _arrays(run, s, head))), {})
        reported = next((m for s in SPLITS if (m := _reported(run, s, head))), {})
        if "prob" in arrays or "accuracy" in reported:
            kind = "classification"
        elif np.ndim(arrays.get("y_pred")) >= 3 or "mse" in reported:
            kind = "reconstruction"
        else:
            kind = "regression"
    return kind, [str(c) for c in classes] if isinstance(classes, list) else None


def analyse_head(run: Run, head: str) -> HeadReport:
    """Recompute, check and draw one head from every split that has predictions."""
    kind, classes = _head_info(run, head)
    report = HeadReport(head, kind)
    best_epoch = run.metrics.best_epoch if run.metrics else None
    for split in SPLITS:
        arrays = _arrays(run, split, head)
        if not arrays:
            continue
        try:
            recomputed, bounds, extra = _score(kind, arrays)
        except (ck.PredictionError, KeyError) as exc:
            missing = f"no {exc} array" if isinstance(exc, KeyError) else str(exc)
            report.findings.append(ck.Finding("warning", f"{head}: {split} predictions unusable", missing))
            continue
        report.checks[split] = ck.compare(_reported(run, split, head), recomputed, bounds)
        report.findings += ck.mismatches(head, split, report.checks[split])
        if split == "val":
            report.findings += ck.check_history(head, run.history or {}, best_epoch, recomputed)
        if not report.split:  # figures and diagnoses from test, or from val when test is missing
            report.split = split
            _draw(report, arrays, extra, classes)
    return report


def _score(kind: str, arrays: dict[str, np.ndarray]) -> tuple[dict, dict, Any]:
    """(recomputed metrics, tie bounds, kind-specific extra: ClassScores or None)."""
    if kind == "classification":
        scores = ck.classification_scores(arrays["y_true"], arrays["prob"])
        return scores.metrics, scores.bounds, scores
    if kind == "reconstruction":
        return ck.reconstruction_scores(arrays["y_true"], arrays["y_pred"]), {}, None
    return ck.regression_scores(arrays["y_true"], arrays["y_pred"]), {}, None


def _draw(report: HeadReport, arrays: dict[str, np.ndarray], extra: Any, classes: list[str] | None) -> None:
    output = arrays.get("prob", arrays.get("y_pred"))
    report.findings += ck.non_finite(report.name, output)
    if report.kind == "classification":
        names = classes if classes and len(classes) == extra.confusion.shape[0] else None
        _draw_classification(report, extra, names or [str(i) for i in range(extra.confusion.shape[0])])
    elif report.kind == "reconstruction":
        _draw_reconstruction(report, arrays["y_true"], arrays["y_pred"])
    else:
        _draw_regression(report, arrays["y_true"], arrays["y_pred"])


def _draw_classification(report: HeadReport, scores: ck.ClassScores, classes: Sequence[str]) -> None:
    report.findings += ck.diagnose_classifier(report.name, scores, classes)
    split, k = report.split, len(classes)
    report.images.append(
        Image(f"{split} confusion matrix", figures.confusion_matrix(scores.confusion, classes), wide=k > 12)
    )
    if k >= 3 and np.any(scores.confusion - np.diag(np.diag(scores.confusion))):
        png = figures.confusion_matrix(scores.confusion, classes, mask_diagonal=True)
        report.images.append(
            Image(f"{split} mistakes only", png, "correct predictions greyed out", wide=k > 12)
        )
    report.images.append(
        Image(
            "predicted vs true class counts",
            figures.class_distribution(scores.support, scores.predicted, classes),
            "a classifier that predicts one class for everything shows one tall 'predicted' bar",
            wide=True,
        )
    )
    report.images.append(
        Image(
            "per-class precision, recall, F1",
            figures.per_class_bars(scores.precision, scores.recall, scores.f1, classes),
            wide=True,
        )
    )
    confused = _most_confused(scores.confusion, classes)
    if confused.rows:
        report.tables.append(confused)
    report.details.append(_per_class(scores, classes))


def _most_confused(cm: np.ndarray, classes: Sequence[str], top: int = 10) -> Table:
    """The largest off-diagonal counts: which true class is taken for which (fastai's most_confused)."""
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


def _per_class(scores: ck.ClassScores, classes: Sequence[str]) -> Table:
    rows = [
        [Cell(name)]
        + [Cell(format_value(float(v[i])), cls="num") for v in (scores.precision, scores.recall, scores.f1)]
        + [Cell(f"{int(scores.support[i]):,}", cls="num"), Cell(f"{int(scores.predicted[i]):,}", cls="num")]
        for i, name in enumerate(classes)
    ]
    return Table(["class", "precision", "recall", "F1", "support", "predicted"], rows, "per-class figures")


def _draw_regression(report: HeadReport, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    r2 = report.checks[report.split]["r2"].recomputed
    report.findings += ck.diagnose_regressor(report.name, y_true, y_pred, r2)
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    report.images.append(Image(f"{report.split} true vs predicted", figures.true_vs_predicted(t, p)))
    report.images.append(Image(f"{report.split} residuals", figures.residual_histogram(p - t)))


def _draw_reconstruction(report: HeadReport, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    grid = figures.reconstruction_grid(y_true, y_pred)
    if grid is not None:
        report.images.append(Image(f"{report.split} reconstructions", grid, wide=True))
    err = (np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)).ravel()
    if err.size > MAX_RESIDUALS:
        err = err[np.linspace(0, err.size - 1, MAX_RESIDUALS).astype(np.int64)]
    report.images.append(Image(f"{report.split} pixel errors", figures.residual_histogram(err)))
