"""The diagnostic part of each head kind's report section: intervals beside the trivial predictors,
ROC and calibration, per-class accuracy against frequency, residual shape, image quality.

Each kind's section calls its function here with the split's arrays; the numbers come from
:mod:`smallvision.evaluate.diagnostics`, this module only turns them into tables, figures and
findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from smallvision.evaluate import diagnostics as dg
from smallvision.heads.base import class_names
from smallvision.report import head_figures
from smallvision.report.checks import Finding
from smallvision.report.tables import Cell, Image, Table, format_value

if TYPE_CHECKING:
    from smallvision.report.heads import HeadReport

# how the intervals were made, printed under every interval table
INTERVAL_NOTE = f"95% percentile bootstrap over the images ({dg.N_BOOT} resamples, seed 0)"
# reconstructions shown in the original / reconstructed grid
GRID_IMAGES = 8


@dataclass(frozen=True)
class HeadContext:
    """What a head's section knows beyond its arrays.

    Attributes:
        normalization: the run's per-channel ``mean`` / ``std`` (metrics.json), to bring
            standardised images back to [0, 1]; empty when unknown.
        train_counts: (K,) training images per class, when the data could be read; None otherwise.
        train_mean: the training targets' mean of a regression head, when known.
    """

    normalization: Mapping[str, Any]
    train_counts: np.ndarray | None = None
    train_mean: np.ndarray | None = None


def _cell(value: float | None) -> Cell:
    return Cell(format_value(value) if value is not None else "—", cls="num")


def interval_table(
    estimates: Mapping[str, dg.Estimate], references: Mapping[str, Mapping[str, float]], caption: str
) -> Table:
    """One row per metric: value, 95% interval, then one column per reference predictor."""
    rows = [
        [Cell(name), _cell(e.value), Cell(f"[{format_value(e.low)}, {format_value(e.high)}]", cls="num")]
        + [_cell(ref.get(name)) for ref in references.values()]
        for name, e in estimates.items()
    ]
    return Table(["metric", "value", "95% interval", *references], rows, caption)


def _reference_finding(
    head: str,
    split: str,
    estimates: Mapping[str, dg.Estimate],
    refs: Mapping[str, Mapping[str, float]],
    metric: str,
    higher: bool,
) -> list[Finding]:
    """A warning when ``metric`` is no better than the best reference predictor."""
    known = {name: r[metric] for name, r in refs.items() if metric in r}
    if metric not in estimates or not known:
        return []
    e = estimates[metric]
    name, best = (max if higher else min)(known.items(), key=lambda kv: kv[1])
    worse = e.value <= best + 1e-12 if higher else e.value >= best - 1e-12
    if worse:
        return [
            Finding(
                "warning",
                f"{head}: {split} {metric} no better than {name}",
                f"{metric} {e.value:.4f} against {best:.4f} for the {name} predictor: the model has "
                "learned nothing it can show on this split.",
            )
        ]
    reaches = e.low <= best if higher else e.high >= best
    if reaches:
        return [
            Finding(
                "note",
                f"{head}: {split} {metric} within reach of {name}",
                f"the 95% interval [{e.low:.4f}, {e.high:.4f}] includes the {name} predictor's {best:.4f}.",
            )
        ]
    return []


def classification(
    report: HeadReport, y_true: np.ndarray, prob: np.ndarray, classes: Sequence[str], ctx: HeadContext
) -> None:
    """Intervals beside chance and the majority class, ROC / AUC, calibration, accuracy vs frequency."""
    y, prob = _class_arrays(y_true, prob)
    if not len(y):
        return
    estimates, refs = _class_intervals(report.split, y, prob, classes, ctx)
    report.tables.append(interval_table(estimates, refs, f"{report.split} metrics; {INTERVAL_NOTE}"))
    report.findings += _reference_finding(report.name, report.split, estimates, refs, "accuracy", True)
    _roc(report, y, prob, classes)
    cal = dg.calibration(y, prob)
    report.images.append(
        Image(
            f"{report.split} reliability diagram",
            head_figures.reliability_diagram(cal),
            f"expected calibration error {cal.ece:.4f} ({len(cal.counts)} equal-width confidence bins)",
        )
    )
    _accuracy_vs_frequency(report, y, prob.argmax(axis=1), classes, ctx.train_counts)


def _class_arrays(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels as int64, probabilities as float64); one-hot labels become class indices."""
    y = np.asarray(y_true)
    if y.ndim == 2:
        y = y.argmax(axis=1)
    return y.astype(np.int64), np.asarray(prob, dtype=np.float64)


def _class_intervals(
    split: str, y: np.ndarray, prob: np.ndarray, classes: Sequence[str], ctx: HeadContext
) -> tuple[dict[str, dg.Estimate], dict[str, dict[str, float]]]:
    """(bootstrap estimates, reference predictors: chance and the majority class) of a classifier."""
    k = prob.shape[1]
    counts = ctx.train_counts
    majority = int(np.argmax(counts)) if counts is not None and len(counts) == k else None
    refs_all = dg.class_references(y, k, majority)
    source = "training" if majority is not None else f"{split}"
    refs = {
        "chance": refs_all["chance"],
        f"majority ({classes[refs_all['majority_class']]}, {source})": refs_all["majority"],
    }
    return dg.classification_intervals(y, prob), refs


def _regression_intervals(
    split: str, t: np.ndarray, p: np.ndarray, ctx: HeadContext
) -> tuple[dict[str, dg.Estimate], dict[str, dict[str, float]]]:
    """(bootstrap estimates, the mean predictor) of a regressor."""
    label = "training mean" if ctx.train_mean is not None else f"mean of {split} targets"
    return dg.regression_intervals(t, p), {label: dg.mean_predictor(t, ctx.train_mean)}


def _roc(report: HeadReport, y: np.ndarray, prob: np.ndarray, classes: Sequence[str]) -> None:
    curves = dg.roc_curves(y, prob)
    if not curves:
        return
    auc = dg.macro_auc(curves)
    report.images.append(
        Image(
            f"{report.split} ROC curves",
            head_figures.roc_curves(curves, classes),
            f"macro one-vs-rest AUC {auc:.4f}",
        )
    )
    rows = [[Cell(classes[c]), _cell(curve.auc)] for c, curve in curves.items()]
    report.details.append(
        Table(["class", "one-vs-rest AUC"], rows, f"{report.split} AUC per class (macro {auc:.4f})")
    )


def _accuracy_vs_frequency(
    report: HeadReport,
    y: np.ndarray,
    pred: np.ndarray,
    classes: Sequence[str],
    train_counts: np.ndarray | None,
) -> None:
    k = len(classes)
    support = np.bincount(y, minlength=k)
    hit = np.bincount(y[pred == y], minlength=k)
    present = support > 0
    counts = train_counts if train_counts is not None and len(train_counts) == k else support
    share = counts / max(counts.sum(), 1)
    accuracy = np.divide(hit, support, out=np.zeros(k), where=present)
    corr = dg.correlation(share[present], accuracy[present])
    where = "training" if counts is train_counts else report.split
    caption = f"class share of the {where} images"
    if corr is None:
        caption += "; correlation undefined (fewer than 3 classes, or a constant side)"
    else:
        caption += (
            f"; Pearson r {corr.pearson:.3f} (p {corr.pearson_p:.3g}), "
            f"Spearman ρ {corr.spearman:.3f} (p {corr.spearman_p:.3g})"
        )
    names = [classes[i] for i in np.flatnonzero(present)]
    png = head_figures.accuracy_vs_frequency(share[present], accuracy[present], names)
    report.images.append(Image(f"{report.split} per-class accuracy vs class frequency", png, caption))


def regression(report: HeadReport, y_true: np.ndarray, y_pred: np.ndarray, ctx: HeadContext) -> None:
    """Intervals beside the mean predictor; residual shape, Q-Q plot, residuals vs predicted."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if not len(t):
        return
    estimates, refs = _regression_intervals(report.split, t, p, ctx)
    report.tables.append(interval_table(estimates, refs, f"{report.split} metrics; {INTERVAL_NOTE}"))
    report.findings += _reference_finding(report.name, report.split, estimates, refs, "mae", False)
    residuals = (p.reshape(len(p), -1) - t.reshape(len(t), -1)).ravel()
    stats = dg.residual_stats(residuals)
    report.tables.append(residual_table(stats))
    report.images.append(Image(f"{report.split} residual Q-Q plot", head_figures.qq_plot(residuals)))
    report.images.append(
        Image(
            f"{report.split} residuals vs predicted",
            head_figures.residuals_vs_predicted(p.ravel(), residuals),
        )
    )


def residual_table(stats: dg.ResidualStats) -> Table:
    """Mean, std, skewness, excess kurtosis and Shapiro-Wilk of the residuals."""
    items = {
        "mean": stats.mean,
        "std": stats.std,
        "skewness": stats.skewness,
        "excess kurtosis": stats.kurtosis,
        "Shapiro-Wilk W": stats.shapiro_w,
        "Shapiro-Wilk p": stats.shapiro_p,
    }
    rows = [[Cell(k), _cell(v)] for k, v in items.items()]
    return Table(
        ["residuals", "value"], rows, f"residual shape (Shapiro-Wilk on at most {dg.SHAPIRO_MAX} values)"
    )


def unit_scale(images: np.ndarray, normalization: Mapping[str, Any]) -> np.ndarray:
    """Standardised images back to [0, 1] with the run's per-channel mean and std (as they are if unknown)."""
    x = np.asarray(images, dtype=np.float64)
    mean, std = normalization.get("mean"), normalization.get("std")
    if mean is None or std is None or x.ndim != 4 or x.shape[1] != len(mean):
        return x
    shape = (1, -1, 1, 1)
    return x * np.asarray(std, dtype=np.float64).reshape(shape) + np.asarray(mean, dtype=np.float64).reshape(
        shape
    )


def reconstruction(
    report: HeadReport,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    ctx: HeadContext,
    corrupted: np.ndarray | None = None,
) -> None:
    """MSE, MAE, PSNR, SSIM on the [0, 1] scale with 95% intervals over the images; original /
    (corrupted /) reconstructed grid."""
    t = unit_scale(y_true, ctx.normalization)
    p = unit_scale(y_pred, ctx.normalization)
    if t.ndim != 4 or t.shape != p.shape or not len(t):
        return
    quality = {k: e for k, e in dg.image_quality_intervals(t, p).items() if e is not None}
    scale = "[0, 1] scale" if ctx.normalization.get("mean") is not None else "scale as saved"
    report.tables.append(interval_table(quality, {}, f"{report.split} image quality on the {scale}"))
    rows_shown = {"original": t[:GRID_IMAGES]}
    if corrupted is not None:
        rows_shown["corrupted"] = unit_scale(corrupted, ctx.normalization)[:GRID_IMAGES]
    rows_shown["reconstructed"] = np.clip(p[:GRID_IMAGES], 0, 1)
    grid = head_figures.image_grid(rows_shown)
    if grid is not None:
        report.images.append(Image(f"{report.split} originals and reconstructions", grid, wide=True))


def head_context(metrics: Any) -> HeadContext:
    """The context the run's metrics.json gives every head (its normalisation)."""
    data = getattr(metrics, "data", None)
    return HeadContext(dict(getattr(data, "normalization", None) or {}))


def findings(
    report: HeadReport, arrays: Mapping[str, np.ndarray], classes: Sequence[str] | None, ctx: HeadContext
) -> list[Finding]:
    """The findings :func:`draw` adds for ``report``'s kind, without its tables and figures: a
    headline metric no better than, or within reach of, the trivial predictors."""
    if report.kind == "classification" and "prob" in arrays:
        y, prob = _class_arrays(arrays["y_true"], arrays["prob"])
        if not len(y):
            return []
        names = class_names(classes, prob.shape[1])
        estimates, refs = _class_intervals(report.split, y, prob, names, ctx)
        return _reference_finding(report.name, report.split, estimates, refs, "accuracy", True)
    if report.kind == "regression" and "y_pred" in arrays:
        t = np.asarray(arrays["y_true"], dtype=np.float64)
        if not len(t):
            return []
        p = np.asarray(arrays["y_pred"], dtype=np.float64)
        estimates, refs = _regression_intervals(report.split, t, p, ctx)
        return _reference_finding(report.name, report.split, estimates, refs, "mae", False)
    return []


def draw(
    report: HeadReport, arrays: Mapping[str, np.ndarray], classes: Sequence[str] | None, ctx: HeadContext
) -> None:
    """The diagnostic section of ``report``'s kind from one split's arrays (nothing for other kinds)."""
    if report.kind == "classification" and "prob" in arrays:
        names = class_names(classes, np.shape(arrays["prob"])[1])
        classification(report, arrays["y_true"], arrays["prob"], names, ctx)
    elif report.kind == "regression" and "y_pred" in arrays:
        regression(report, arrays["y_true"], arrays["y_pred"], ctx)
    elif report.kind == "reconstruction" and "y_pred" in arrays:
        reconstruction(report, arrays["y_true"], arrays["y_pred"], ctx, arrays.get("corrupted"))
