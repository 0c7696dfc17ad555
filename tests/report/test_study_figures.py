"""The critical-difference diagram of a comparison."""

from __future__ import annotations

import numpy as np
import pytest

from smallvision.evaluate.compare import VariantResult, compare
from smallvision.report.study_figures import critical_difference_png


def _comparison(n_seeds=8):
    rng = np.random.default_rng(0)
    variants = [
        VariantResult(name, list(range(n_seeds)), rng.normal(mean, 0.005, n_seeds))
        for name, mean in (("a", 0.9), ("b", 0.9), ("c", 0.8), ("d", 0.7))
    ]
    return compare(variants, "acc", True)


def test_critical_difference_png_is_a_deterministic_png():
    c = _comparison()
    png = critical_difference_png(c)
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    assert png == critical_difference_png(c)


def test_critical_difference_needs_ranks():
    rng = np.random.default_rng(1)
    c = compare([VariantResult(n, [0], rng.random(1)) for n in "ab"], "acc", True)
    with pytest.raises(ValueError, match="average ranks"):
        critical_difference_png(c)
