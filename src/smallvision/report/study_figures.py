"""Figures of a study's comparison and a seed group, as PNG bytes (Agg canvas, no pyplot; see figures.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from smallvision.report.figures import _figure, _png, _style


def critical_difference_png(comparison: Any) -> bytes:
    """Critical-difference diagram (Demšar 2006) of a comparison of two variants or more.

    Variants sit at their average rank (1 = best) over the blocks that decided (seeds or test
    images); a bar joins variants the comparison did not find significantly different. The bars are
    drawn from the comparison's own decisions (Holm-adjusted p of the deciding test, gated by
    Friedman), so the picture and the summary table never disagree.

    Args:
        comparison: a :class:`smallvision.evaluate.compare.Comparison` whose rows have average ranks.

    Returns:
        The PNG bytes.

    Raises:
        ValueError: fewer than two variants, or no average ranks (no test was possible).
    """
    import pandas as pd
    import scikit_posthocs as sp

    names = [r.name for r in comparison.rows]
    if len(names) < 2 or any(r.avg_rank is None for r in comparison.rows):
        raise ValueError("critical_difference_png needs two variants or more with average ranks")
    # scikit-posthocs joins groups whose entry is >= alpha: 0 for a significant pair, 1 otherwise
    sig = np.ones((len(names), len(names)))
    index = {n: i for i, n in enumerate(names)}
    for pair in comparison.pairs:
        if pair.significant:
            sig[index[pair.a], index[pair.b]] = sig[index[pair.b], index[pair.a]] = 0.0
    ranks = pd.Series({r.name: r.avg_rank for r in comparison.rows})
    with _style():
        fig = _figure(6.0, 0.6 + 0.25 * len(names))
        ax = fig.add_subplot()
        sp.critical_difference_diagram(ranks, pd.DataFrame(sig, index=names, columns=names), ax=ax)
        ax.set_title(f"{comparison.metric}: average rank over {comparison.level} (1 = best)")
        return _png(fig)


@dataclass(frozen=True)
class SweepPoint:
    """One group of cells at one value of a swept axis: its mean and std over seeds."""

    x: float
    mean: float
    std: float
    n_seeds: int


def axis_sweep_png(metric: str, axis: str, series: Mapping[str, Sequence[SweepPoint]]) -> bytes:
    """A metric against a numeric axis, one line per series, error bars of ± one std over seeds.

    The x axis is logarithmic when every value is positive and they span 20× or more (learning
    rates, widths). Points with one seed have no bar.

    Args:
        metric: the y label, e.g. ``test/label/accuracy``.
        axis: the swept key, e.g. ``model.params.bottleneck``.
        series: label -> points (the other axes' values or the variant of the line).

    Returns:
        The PNG bytes.

    Raises:
        ValueError: no point to draw.
    """
    points = [p for ps in series.values() for p in ps]
    if not points:
        raise ValueError("axis_sweep_png needs at least one point")
    xs = np.array([p.x for p in points], dtype=float)
    with _style():
        fig = _figure(5.2, 3.4)
        ax = fig.add_subplot()
        for label, ps in series.items():
            ps = sorted(ps, key=lambda p: p.x)
            x = [p.x for p in ps]
            y = [p.mean for p in ps]
            err = [p.std if p.n_seeds > 1 else 0.0 for p in ps]
            ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=3, label=label or metric)
        if xs.min() > 0 and xs.max() / xs.min() >= 20:
            ax.set_xscale("log")
        ax.set_xlabel(axis)
        ax.set_ylabel(metric)
        seeds = sorted({p.n_seeds for p in points})
        ax.set_title(f"mean ± std over {'/'.join(map(str, seeds))} seeds")  # the axes name the rest
        if len(series) > 1:
            ax.legend(loc="best")
        return _png(fig)


def seed_curves_png(
    histories: Mapping[str, Mapping[str, np.ndarray]], columns: Sequence[str]
) -> bytes | None:
    """Learning curves of several runs (a seed group's members) on shared panels, one colour per run.

    Args:
        histories: run label (``seed-42``) -> its history.csv columns.
        columns: the columns to draw, one panel each (``val/loss``, ``val/label/accuracy``...);
            those no run logged are left out.

    Returns:
        PNG bytes, or None when no run has any of the columns.
    """
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    panels = [c for c in columns if any(c in h and np.isfinite(h[c]).any() for h in histories.values())]
    if not panels:
        return None
    colours = matplotlib.colormaps["tab10"].colors
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    with _style():
        fig = _figure(4.3 * cols, 3.0 * rows)
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        for ax, column in zip(axes, panels, strict=False):
            for i, (label, h) in enumerate(histories.items()):
                if column not in h:
                    continue
                values = np.asarray(h[column], dtype=float)
                epochs = np.asarray(h.get("epoch", np.arange(1, len(values) + 1)), dtype=float)
                ax.plot(epochs, values, "-o", ms=3, color=colours[i % len(colours)], label=label)
            ax.set_title(column)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0].legend(loc="best")
        for ax in axes[len(panels) :]:
            ax.set_visible(False)
        return _png(fig)
