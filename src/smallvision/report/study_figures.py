"""Figures of a study's comparison, as PNG bytes (Agg canvas, no pyplot state; see figures.py)."""

from __future__ import annotations

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
