"""The figures of a study and a seed group: critical-difference diagram, axis sweeps, seed curves."""

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


def test_axis_sweep_png_is_a_deterministic_png_sized_as_drawn():
    import io

    from PIL import Image

    from smallvision.report.study_figures import SweepPoint, axis_sweep_png

    series = {
        "cnn": [SweepPoint(16, 0.8, 0.02, 3), SweepPoint(64, 0.9, 0.01, 3), SweepPoint(256, 0.91, 0.0, 3)],
        "mlp": [SweepPoint(16, 0.6, 0.05, 1)],
    }
    png = axis_sweep_png("test/label/accuracy", "model.params.width", series)
    assert png.startswith(b"\x89PNG") and png == axis_sweep_png(
        "test/label/accuracy", "model.params.width", series
    )
    assert Image.open(io.BytesIO(png)).size == (520, 340)  # 5.2 x 3.4 in at 100 dpi
    linear = axis_sweep_png("m", "x", {"": [SweepPoint(1, 0.5, 0.1, 2), SweepPoint(2, 0.6, 0.1, 2)]})
    assert linear != axis_sweep_png("m", "x", {"": [SweepPoint(1, 0.5, 0.1, 2), SweepPoint(40, 0.6, 0.1, 2)]})
    with pytest.raises(ValueError, match="at least one point"):
        axis_sweep_png("m", "x", {})


def test_seed_curves_png_draws_the_columns_some_run_logged():
    from smallvision.report.study_figures import seed_curves_png

    h = {"epoch": np.arange(1.0, 4.0), "val/loss": np.array([1.0, 0.8, 0.7])}
    histories = {"seed-1": h, "seed-2": {**h, "val/loss": np.array([1.1, 0.9, np.nan])}}
    png = seed_curves_png(histories, ["val/loss", "val/label/accuracy"])
    assert png.startswith(b"\x89PNG") and png == seed_curves_png(histories, ["val/loss"])
    assert seed_curves_png(histories, ["val/label/accuracy"]) is None
