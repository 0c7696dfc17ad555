"""Figure functions: arrays in, PNG bytes out."""

from __future__ import annotations

import numpy as np

from smallvision.report import figures

PNG = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_training_curves_png_and_empty_history():
    history = {
        "epoch": np.arange(1.0, 6.0),
        "lr": np.linspace(1e-3, 1e-4, 5),
        "train/loss": np.linspace(2, 0.5, 5),
        "val/loss": np.linspace(2.2, 0.7, 5),
        "val/label/accuracy": np.linspace(0.5, 0.9, 5),
        "val/empty/mae": np.full(5, np.nan),
    }
    png = figures.training_curves(history, best_epoch=4)
    assert png.startswith(PNG)
    # loss, accuracy and lr panels: one row of three (the all-NaN column gets no panel)
    width, height = _size(png)
    assert width > height
    assert figures.training_curves({"epoch": np.arange(3.0)}) is None


def test_confusion_matrix_scales_with_classes_and_is_deterministic():
    rng = np.random.default_rng(0)
    small = figures.confusion_matrix(rng.integers(0, 9, (4, 4)), list("abcd"))
    big = figures.confusion_matrix(
        rng.integers(0, 9, (32, 32)), [f"c{i}" for i in range(32)], mask_diagonal=True
    )
    assert small.startswith(PNG) and big.startswith(PNG)
    assert _size(big)[0] > _size(small)[0]
    again = figures.confusion_matrix(np.eye(3, dtype=int) * 5, list("xyz"))
    assert again == figures.confusion_matrix(np.eye(3, dtype=int) * 5, list("xyz"))


def test_bar_scatter_and_histogram_figures():
    classes = ["a", "b", "c"]
    assert figures.per_class_bars(np.ones(3), np.ones(3), np.ones(3), classes).startswith(PNG)
    assert figures.class_distribution(np.array([5, 5, 5]), np.array([15, 0, 0]), classes).startswith(PNG)
    t = np.linspace(0, 1, 20_000)
    assert figures.true_vs_predicted(t, t + 0.1).startswith(PNG)  # thinned to MAX_POINTS
    assert figures.residual_histogram(np.array([np.nan, 0.1, -0.1])).startswith(PNG)


def test_reconstruction_grid_accepts_images_only():
    rng = np.random.default_rng(0)
    rgb = rng.random((10, 3, 8, 8))
    assert figures.reconstruction_grid(rgb, rgb * 0.5, n=4).startswith(PNG)
    assert figures.reconstruction_grid(rng.random((6, 8, 8)), rng.random((6, 8, 8))).startswith(PNG)
    assert figures.reconstruction_grid(rng.random((6, 5)), rng.random((6, 5))) is None
