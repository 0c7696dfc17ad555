"""Diagnostic figures of one head as PNG bytes: ROC, reliability, per-class accuracy, Q-Q, residuals.

Each function draws numbers computed by :mod:`smallvision.evaluate.diagnostics`; like
:mod:`smallvision.report.figures` they use the Agg canvas, never pyplot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from smallvision.evaluate.diagnostics import Calibration, RocCurve
from smallvision.report.figures import _figure, _png, _style, _thin

# more one-vs-rest curves than this are drawn thin and unlabelled (a legend of 32 names helps no one)
MAX_LABELLED_CURVES = 12


def roc_curves(curves: Mapping[int, RocCurve], classes: Sequence[str]) -> bytes:
    """One-vs-rest ROC curve of every class, with its AUC in the legend."""
    with _style():
        fig = _figure(4.8, 4.2)
        ax = fig.add_subplot()
        labelled = len(curves) <= MAX_LABELLED_CURVES
        for c, curve in curves.items():
            label = f"{classes[c]} (AUC {curve.auc:.3f})" if labelled else None
            ax.plot(curve.fpr, curve.tpr, lw=1.2 if labelled else 0.6, label=label)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="chance")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("one-vs-rest ROC")
        ax.legend(loc="lower right", fontsize=7)
        return _png(fig)


def reliability_diagram(cal: Calibration) -> bytes:
    """Accuracy per confidence bin against the diagonal, with the images per bin below."""
    centres = (cal.edges[:-1] + cal.edges[1:]) / 2
    width = np.diff(cal.edges)
    filled = cal.counts > 0
    with _style():
        fig = _figure(4.6, 4.6)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
        top.bar(
            centres[filled],
            cal.accuracy[filled],
            width[filled],
            color="tab:blue",
            alpha=0.8,
            label="accuracy",
        )
        top.bar(
            centres[filled],
            cal.confidence[filled] - cal.accuracy[filled],
            width[filled],
            bottom=cal.accuracy[filled],
            color="tab:red",
            alpha=0.3,
            label="gap to confidence",
        )
        top.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
        top.set_ylim(0, 1)
        top.set_ylabel("accuracy")
        top.set_title(f"reliability (ECE {cal.ece:.4f})")
        top.legend(loc="upper left")
        bottom.bar(centres, cal.counts, width, color="grey")
        bottom.set_xlim(0, 1)
        bottom.set_xlabel("confidence (largest probability)")
        bottom.set_ylabel("images")
        return _png(fig)


def accuracy_vs_frequency(frequency: np.ndarray, accuracy: np.ndarray, classes: Sequence[str]) -> bytes:
    """Per-class accuracy (recall) against the class's share of the training data (study 000)."""
    with _style():
        fig = _figure(4.6, 3.8)
        ax = fig.add_subplot()
        ax.scatter(frequency, accuracy, s=18)
        if len(classes) <= 40:
            for x, y, name in zip(frequency, accuracy, classes, strict=True):
                ax.annotate(str(name), (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
        ax.set_xlabel("class share of training images")
        ax.set_ylabel("class accuracy (recall)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title("per-class accuracy vs class frequency")
        return _png(fig)


def qq_plot(residuals: np.ndarray) -> bytes:
    """Normal Q-Q plot of the residuals (scipy.stats.probplot) with its least-squares line."""
    from scipy import stats

    r = np.ravel(residuals).astype(np.float64)
    r = r[np.isfinite(r)]
    (theoretical, ordered), (slope, intercept, _) = stats.probplot(r, dist="norm")
    theoretical, ordered = _thin(theoretical, ordered)
    with _style():
        fig = _figure(4.4, 4.0)
        ax = fig.add_subplot()
        ax.scatter(theoretical, ordered, s=6, alpha=0.5, lw=0)
        ax.plot(theoretical, slope * theoretical + intercept, color="tab:red", lw=1)
        ax.set_xlabel("normal quantiles")
        ax.set_ylabel("ordered residuals")
        ax.set_title("residual Q-Q plot")
        return _png(fig)


def residuals_vs_predicted(y_pred: np.ndarray, residuals: np.ndarray) -> bytes:
    """Residual against predicted value: a trend or a funnel means the errors depend on the value."""
    p, r = _thin(np.ravel(y_pred).astype(np.float64), np.ravel(residuals).astype(np.float64))
    with _style():
        fig = _figure(4.6, 3.6)
        ax = fig.add_subplot()
        ax.scatter(p, r, s=6, alpha=0.45, lw=0)
        ax.axhline(0, color="tab:red", lw=1)
        ax.set_xlabel("predicted")
        ax.set_ylabel("predicted - true")
        ax.set_title("residuals vs predicted")
        return _png(fig)


def image_grid(
    rows: Mapping[str, np.ndarray], titles: Sequence[str] | None = None, cols: int = 8
) -> bytes | None:
    """Rows of images ((N, C, H, W) or (N, H, W), C in 1 or 3), one labelled row per entry.

    Every image is scaled to its own range, except that images in the same column share one
    scale, so an original and its reconstruction compare fairly. ``titles`` label the columns.
    """
    from smallvision.report.figures import _as_images
    from smallvision.report.image_figures import mosaic, rgb

    named = {k: _as_images(v[:cols]) for k, v in rows.items()}
    if not named or any(v is None or not len(v) for v in named.values()):
        return None
    count = min(len(v) for v in named.values())
    grid: list[list[np.ndarray]] = [[] for _ in named]
    for j in range(count):
        column = np.stack([v[j] for v in named.values()])
        vrange = (float(np.nanmin(column)), float(np.nanmax(column)))
        for i in range(len(named)):
            grid[i].append(rgb(column[i], vrange))
    return mosaic(grid, row_labels=list(named), col_titles=list(titles[:count]) if titles else None)
