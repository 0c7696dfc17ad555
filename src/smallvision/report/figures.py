"""Figures as PNG bytes: small functions that take arrays and draw one figure each.

matplotlib is imported inside the functions (``import smallvision`` stays fast) and figures are
drawn on the Agg canvas directly, never through pyplot, so no GUI backend or global figure state is
involved and the functions are safe to call from any process. The study report reuses them.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

DPI = 100
_STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "legend.fontsize": 8,
}
# train = solid, val = dashed; one colour per series so a head's train and val lines pair up
_LINESTYLE = {"train": "-", "val": "--"}
# scatter plots beyond this many points are thinned evenly: the picture is the same, the PNG smaller
MAX_POINTS = 5000
# at most this many numbers written into a confusion matrix
MAX_LABELS = 300


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        yield


def _figure(width: float, height: float, layout: str | None = "constrained") -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # no Software metadata: the same arrays give the same bytes
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _finite(values: np.ndarray) -> bool:
    return bool(np.isfinite(values).any())


def _curve_panels(history: Mapping[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(title, {series label: values}) per panel: all losses, then one per validation metric, then lr."""
    losses = {
        name: v
        for name, v in history.items()
        if name.split("/")[0] in _LINESTYLE and name.endswith("loss") and _finite(v)
    }
    # with one head its loss is the total: drawing both only hides one line under the other
    for name in list(losses):
        total = losses.get(name.split("/")[0] + "/loss")
        if name.count("/") == 2 and total is not None and np.allclose(losses[name], total, equal_nan=True):
            del losses[name]
    panels = [("loss", losses)] if losses else []
    for name, values in history.items():
        parts = name.split("/")
        if parts[0] != "val" or name.endswith("loss") or not _finite(values):
            continue
        series = {name: values}
        train = history.get("train/" + "/".join(parts[1:]))
        if train is not None and _finite(train):
            series = {"train/" + "/".join(parts[1:]): train, name: values}
        panels.append(("/".join(parts[1:]), series))
    if "lr" in history and _finite(history["lr"]):
        panels.append(("learning rate", {"lr": history["lr"]}))
    return panels


def training_curves(history: Mapping[str, np.ndarray], best_epoch: float | None = None) -> bytes | None:
    """Loss curves (train solid, val dashed; total and per head), one panel per metric, and lr.

    Args:
        history: column name -> per-epoch values, as in history.csv (``epoch``, ``lr``,
            ``train/loss``, ``val/<head>/<metric>`` ...).
        best_epoch: drawn as a vertical line on every panel, in the units of the ``epoch`` column.

    Returns:
        PNG bytes, or None when the history has no curve to draw.
    """
    panels = _curve_panels(history)
    if not panels:
        return None
    n_rows = len(next(iter(history.values())))
    epochs = history.get("epoch", np.arange(1, n_rows + 1, dtype=np.float64))
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    with _style():
        fig = _figure(4.3 * cols, 3.0 * rows)
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for i, (ax, (title, series)) in enumerate(zip(axes, panels, strict=False)):
            _curve_panel(ax, title, series, epochs, best_epoch)
            if i == 0 or len(series) > 1:  # one legend names the best-epoch line; others only pair lines
                ax.legend(loc="best")
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        return _png(fig)


def _curve_panel(
    ax: Any, title: str, series: Mapping[str, np.ndarray], epochs: np.ndarray, best_epoch: float | None
) -> None:
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    colours = matplotlib.colormaps["tab10"].colors
    keys = sorted({name.split("/", 1)[1] if "/" in name else name for name in series})
    for name, values in series.items():
        split, _, key = name.partition("/")
        colour = "black" if key == "loss" else colours[keys.index(key or split) % len(colours)]
        marker = "o" if len(values) <= 30 else None
        ax.plot(epochs, values, _LINESTYLE.get(split, "-"), color=colour, marker=marker, ms=3, label=name)
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
    if title == "loss" and finite.min() > 0 and finite.max() / finite.min() > 100:
        ax.set_yscale("log")  # per-head losses can differ by orders of magnitude
    if best_epoch is not None:
        ax.axvline(best_epoch, color="tab:red", lw=1, alpha=0.7, label=f"best epoch {best_epoch:g}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel("epoch")


def _tick_labels(ax: Any, classes: Sequence[str], axis: str = "both") -> None:
    k = len(classes)
    size = 9 if k <= 15 else max(5, 9 - (k - 15) // 5)
    names = [str(c)[:14] for c in classes]
    rotate = 90 if k > 10 or max((len(n) for n in names), default=0) > 4 else 0
    if axis in ("both", "x"):
        ax.set_xticks(range(k), names, rotation=rotate, fontsize=size)
    if axis in ("both", "y"):
        ax.set_yticks(range(k), names, fontsize=size)


def confusion_matrix(
    cm: np.ndarray, classes: Sequence[str], mask_diagonal: bool = False, title: str | None = None
) -> bytes:
    """A confusion matrix of counts (rows true, columns predicted) with class names.

    Args:
        cm: (K, K) counts.
        classes: K class names.
        mask_diagonal: grey out the correct predictions so the mistakes get the whole colour scale
            (the readable view for many classes).
        title: figure title; a default names the view.
    """
    cm = np.asarray(cm)
    k = len(classes)
    side = min(14.0, max(4.5, 0.32 * k + 2.5))
    data = np.ma.masked_where(np.eye(k, dtype=bool), cm) if mask_diagonal else np.ma.asarray(cm)
    # numbers help until they crowd the cells (and each costs draw time): all counts up to 20
    # classes; on the masked view, which is sparse, up to MAX_LABELS non-zero mistakes
    annotate = k <= 20 or (mask_diagonal and np.count_nonzero(data.filled(0)) <= MAX_LABELS)
    with _style():
        import matplotlib

        cmap = matplotlib.colormaps["OrRd" if mask_diagonal else "Blues"].with_extremes(bad="#e6e6e6")
        fig = _figure(side + 1.0, side)
        ax = fig.add_subplot()
        ax.grid(False)
        image = ax.imshow(data, cmap=cmap, vmin=0, vmax=max(1, int(data.max() or 0)))
        from matplotlib.ticker import MaxNLocator

        fig.colorbar(image, ax=ax, shrink=0.8, label="count", ticks=MaxNLocator(integer=True))
        if annotate:
            _annotate_counts(ax, data, fontsize=8 if k <= 12 else 6)
        _tick_labels(ax, classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title or ("mistakes only (diagonal masked)" if mask_diagonal else "confusion matrix"))
        return _png(fig)


def _annotate_counts(ax: Any, data: np.ma.MaskedArray, fontsize: int) -> None:
    top = max(1, int(data.max() or 0))
    rows, cols = np.nonzero(np.ma.filled(data, 0))
    for i, j in zip(rows, cols, strict=True):
        value = int(data[i, j])
        colour = "white" if value > 0.6 * top else "black"
        ax.text(j, i, str(value), ha="center", va="center", fontsize=fontsize, color=colour)


def _grouped_bars(
    series: Mapping[str, np.ndarray],
    classes: Sequence[str],
    ylabel: str,
    title: str,
    ylim: float | None = None,
) -> bytes:
    k = len(classes)
    width = 0.8 / len(series)
    with _style():
        fig = _figure(min(16.0, max(6.0, 0.28 * k * len(series) + 1.5)), 3.4)
        ax = fig.add_subplot()
        x = np.arange(k)
        for i, (label, values) in enumerate(series.items()):
            ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label)
        _tick_labels(ax, classes, axis="x")
        ax.set_xlim(-0.6, k - 0.4)
        if ylim is not None:
            ax.set_ylim(0, ylim)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(axis="x", visible=False)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _png(fig)


def per_class_bars(
    precision: np.ndarray, recall: np.ndarray, f1: np.ndarray, classes: Sequence[str]
) -> bytes:
    """Precision, recall and F1 of every class as grouped bars."""
    return _grouped_bars(
        {"precision": precision, "recall": recall, "F1": f1}, classes, "score", "per-class scores", ylim=1.05
    )


def class_distribution(true_counts: np.ndarray, pred_counts: np.ndarray, classes: Sequence[str]) -> bytes:
    """How often each class is true vs predicted: a one-class predictor shows one tall bar."""
    return _grouped_bars(
        {"true": true_counts, "predicted": pred_counts}, classes, "samples", "true vs predicted class counts"
    )


def _thin(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    n = len(arrays[0])
    if n <= MAX_POINTS:
        return arrays
    keep = np.linspace(0, n - 1, MAX_POINTS).astype(np.int64)
    return tuple(a[keep] for a in arrays)


def true_vs_predicted(y_true: np.ndarray, y_pred: np.ndarray) -> bytes:
    """Scatter of predicted against true values with the identity line."""
    t, p = _thin(np.ravel(y_true).astype(np.float64), np.ravel(y_pred).astype(np.float64))
    ok = np.isfinite(t) & np.isfinite(p)
    lo, hi = (
        (float(min(t[ok].min(), p[ok].min())), float(max(t[ok].max(), p[ok].max()))) if ok.any() else (0, 1)
    )
    pad = 0.03 * (hi - lo or 1.0)
    with _style():
        fig = _figure(4.6, 4.2)
        ax = fig.add_subplot()
        ax.scatter(t[ok], p[ok], s=8, alpha=0.45, lw=0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="tab:red", lw=1, label="y = x")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        ax.set_title("true vs predicted")
        ax.legend(loc="upper left")
        return _png(fig)


def residual_histogram(residuals: np.ndarray) -> bytes:
    """Histogram of residuals (predicted - true) with their mean and standard deviation."""
    r = np.ravel(residuals).astype(np.float64)
    r = r[np.isfinite(r)]
    with _style():
        fig = _figure(4.6, 3.4)
        ax = fig.add_subplot()
        if r.size:
            ax.hist(r, bins=min(50, max(10, int(np.sqrt(r.size)))), color="tab:blue", alpha=0.8)
            ax.set_title(f"residuals: mean {r.mean():.4g}, std {r.std():.4g}")
        ax.axvline(0, color="tab:red", lw=1)
        ax.set_xlabel("predicted - true")
        ax.set_ylabel("samples")
        return _png(fig)


def _as_images(array: np.ndarray) -> np.ndarray | None:
    """(N, H, W) or (N, H, W, 3) for imshow from (N, C, H, W) / (N, H, W); None if not images."""
    a = np.asarray(array, dtype=np.float64)
    if a.ndim == 4 and a.shape[1] in (1, 3):
        return a[:, 0] if a.shape[1] == 1 else a.transpose(0, 2, 3, 1)
    if a.ndim == 3:
        return a
    return None


def reconstruction_grid(originals: np.ndarray, reconstructions: np.ndarray, n: int = 8) -> bytes | None:
    """The first ``n`` images (top row) above their reconstructions (bottom row).

    Each pair shares one intensity scale so that a washed-out reconstruction looks washed out.
    Returns None when the arrays are not images ((N, C, H, W) with C in 1 or 3, or (N, H, W)).
    """
    top, bottom = _as_images(originals[:n]), _as_images(reconstructions[:n])
    if top is None or bottom is None or top.shape != bottom.shape or not len(top):
        return None
    count = len(top)
    with _style():
        fig = _figure(1.3 * count, 2.9)
        axes = fig.subplots(2, count, squeeze=False)
        for j in range(count):
            pair = np.stack([top[j], bottom[j]])
            lo, hi = float(np.nanmin(pair)), float(np.nanmax(pair))
            scaled = (pair - lo) / (hi - lo) if hi > lo else np.zeros_like(pair)
            for i, label in enumerate(("original", "reconstruction")):
                ax = axes[i, j]
                ax.imshow(np.clip(scaled[i], 0, 1), cmap="gray", vmin=0, vmax=1)
                ax.set_axis_off()
                if j == 0:
                    ax.set_title(label, fontsize=8, loc="left")
        return _png(fig)
