"""Each head's diagnostic section: its figures on fixed predictions, and every number it shows equal
to the same number computed directly from predictions.npz with scikit-learn / SciPy."""

from __future__ import annotations

import html as htmllib
import re

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from smallvision.evaluate import diagnostics as dg
from smallvision.report import head_figures, render_report

PNG = b"\x89PNG\r\n\x1a\n"


def _tables(html: str, caption_start: str) -> dict[str, list[str]]:
    """metric -> cell texts of every table whose caption starts with ``caption_start``."""
    rows = {}
    for body in re.findall(
        r"<caption>" + re.escape(caption_start) + r".*?</caption>(.*?)</table>", html, re.S
    ):
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            cells = [htmllib.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            if cells:
                rows[cells[0]] = cells[1:]
    return rows


def test_interval_tables_show_sklearn_numbers(good):
    run, html = good
    with np.load(run / "predictions.npz") as npz:
        y, prob = npz["test/label/y_true"], npz["test/label/prob"]
        t, p = npz["test/value/y_true"], npz["test/value/y_pred"]
    pred = prob.argmax(axis=1)
    rows = _tables(html, "test metrics; 95% percentile bootstrap")
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "macro_f1": skm.f1_score(y, pred, average="macro"),
        "weighted_f1": skm.f1_score(y, pred, average="weighted"),
        "top3": skm.top_k_accuracy_score(y, prob, k=3),
        "mae": skm.mean_absolute_error(t, p),
        "mse": skm.mean_squared_error(t, p),
        "r2": skm.r2_score(t, p),
    }
    for name, value in expected.items():
        shown = rows[name]
        assert float(shown[0]) == pytest.approx(value, abs=5e-5), name
        low, high = (float(v) for v in shown[1].strip("[]").split(", "))
        assert low <= float(shown[0]) <= high
    # chance (1/K) and the majority class (the most frequent test class: no training counts here)
    assert float(rows["accuracy"][2]) == pytest.approx(1 / 4)
    majority = np.bincount(y).argmax()
    assert float(rows["accuracy"][3]) == pytest.approx(np.mean(y == majority), abs=5e-5)
    # the mean predictor's R² on its own split is 0 by definition
    assert float(rows["r2"][2]) == pytest.approx(0.0, abs=5e-5)


def test_auc_ece_correlation_and_residual_shape_shown_as_computed(good):
    run, html = good
    with np.load(run / "predictions.npz") as npz:
        y, prob = npz["test/label/y_true"], npz["test/label/prob"]
        t, p = npz["test/value/y_true"], npz["test/value/y_pred"]
    auc = skm.roc_auc_score(y, prob, multi_class="ovr")
    assert f"macro one-vs-rest AUC {auc:.4f}" in html
    per_class = _tables(html, "test AUC per class")
    assert float(per_class["dog"][0]) == pytest.approx(skm.roc_auc_score(y == 1, prob[:, 1]), abs=5e-5)
    assert f"expected calibration error {dg.calibration(y, prob).ece:.4f}" in html
    support = np.bincount(y, minlength=4)
    recall = np.diag(skm.confusion_matrix(y, prob.argmax(axis=1))) / support
    if np.ptp(support) == 0:  # balanced classes: the correlation is undefined and the page says so
        assert "correlation undefined" in html
    else:
        assert f"Spearman ρ {stats.spearmanr(support, recall).statistic:.3f}" in html
    shape = _tables(html, "residual shape")
    r = (p - t).astype(np.float64)
    assert float(shape["skewness"][0]) == pytest.approx(stats.skew(r), abs=5e-5)
    assert float(shape["excess kurtosis"][0]) == pytest.approx(stats.kurtosis(r), abs=5e-5)
    assert float(shape["Shapiro-Wilk W"][0]) == pytest.approx(stats.shapiro(r).statistic, abs=5e-5)


def test_degenerate_classifier_is_no_better_than_majority(make_run):
    html = render_report(make_run(degenerate=True))
    assert "test accuracy no better than" in html


def test_reconstruction_quality_on_unit_scale(tmp_path):
    rng = np.random.default_rng(4)
    clean = rng.random((10, 1, 12, 12))
    recon = np.clip(clean + rng.normal(0, 0.05, clean.shape), 0, 1)
    mean, std = 0.4, 0.2
    np.savez(
        tmp_path / "predictions.npz",
        **{"test/ae/y_true": (clean - mean) / std, "test/ae/y_pred": (recon - mean) / std},
    )
    (tmp_path / "metrics.json").write_text(
        '{"status": "completed", "heads": {"ae": {"kind": "reconstruction"}},'
        f' "data": {{"normalization": {{"mean": [{mean}], "std": [{std}]}}}}}}'
    )
    rows = _tables(render_report(tmp_path), "test image quality on the [0, 1] scale")
    q = dg.image_quality(clean, recon)
    from skimage.metrics import peak_signal_noise_ratio

    assert float(rows["psnr"][0]) == pytest.approx(
        peak_signal_noise_ratio(clean, recon, data_range=1.0), abs=5e-5
    )
    assert float(rows["ssim"][0]) == pytest.approx(q["ssim"], abs=5e-5)
    assert float(rows["mse"][0]) == pytest.approx(((recon - clean) ** 2).mean(), abs=5e-5)
    intervals = dg.image_quality_intervals(clean, recon)
    for name in ("mse", "mae", "psnr", "ssim"):  # each metric with its 95% interval over the images
        low, high = (float(v) for v in rows[name][1].strip("[]").split(","))
        assert (
            low == pytest.approx(intervals[name].low, abs=5e-5, rel=1e-3)
            and low <= float(rows[name][0]) <= high
        )


@pytest.fixture(scope="module")
def fixed():
    rng = np.random.default_rng(5)
    y = np.arange(60) % 3
    prob = np.full((60, 3), 0.1)
    prob[np.arange(60), (y + (rng.random(60) < 0.2)) % 3] = 0.8
    return y, prob


def test_every_head_figure_draws_a_png(fixed):
    y, prob = fixed
    r = np.random.default_rng(6).normal(size=80)
    images = np.random.default_rng(7).random((6, 1, 8, 8))
    pngs = [
        head_figures.roc_curves(dg.roc_curves(y, prob), ["a", "b", "c"]),
        head_figures.reliability_diagram(dg.calibration(y, prob)),
        head_figures.accuracy_vs_frequency(
            np.array([0.2, 0.3, 0.5]), np.array([0.9, 0.5, 0.7]), ["a", "b", "c"]
        ),
        head_figures.qq_plot(r),
        head_figures.residuals_vs_predicted(r + 1, r),
        head_figures.image_grid({"original": images, "reconstructed": images * 0.5}),
    ]
    assert all(p.startswith(PNG) and len(p) > 1000 for p in pngs)
    assert head_figures.image_grid({"x": np.zeros((2, 5))}) is None  # not images


def test_figures_are_deterministic(fixed):
    y, prob = fixed
    cal = dg.calibration(y, prob)
    assert head_figures.reliability_diagram(cal) == head_figures.reliability_diagram(cal)
