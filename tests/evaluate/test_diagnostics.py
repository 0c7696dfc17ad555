"""The report's diagnostic numbers against scikit-learn, SciPy and scikit-image computed directly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn import metrics as skm

from smallvision.evaluate import diagnostics as dg


@pytest.fixture(scope="module")
def classes6():
    rng = np.random.default_rng(0)
    n, k = 300, 6
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += rng.random(n) * 3
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, prob


def test_classification_intervals_equal_sklearn(classes6):
    y, prob = classes6
    pred = prob.argmax(axis=1)
    est = dg.classification_intervals(y, prob)
    labels = list(range(prob.shape[1]))
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "macro_f1": skm.f1_score(y, pred, average="macro", labels=labels, zero_division=0),
        "weighted_f1": skm.f1_score(y, pred, average="weighted", labels=labels, zero_division=0),
        "top3": skm.top_k_accuracy_score(y, prob, k=3, labels=labels),
        "top5": skm.top_k_accuracy_score(y, prob, k=5, labels=labels),
    }
    assert set(est) == set(expected)
    for name, value in expected.items():
        assert est[name].value == pytest.approx(value, abs=1e-12), name
        assert est[name].low <= est[name].value <= est[name].high
        assert est[name].high - est[name].low > 0.01  # 300 images leave real uncertainty
    assert dg.classification_intervals(y, prob) == est  # seeded: the same predictions, the same interval


def test_interval_covers_the_bootstrap_of_accuracy(classes6):
    y, prob = classes6
    correct = (prob.argmax(axis=1) == y).astype(float)
    est = dg.classification_intervals(y, prob, n_boot=2000)["accuracy"]
    res = stats.bootstrap((correct,), np.mean, n_resamples=2000, method="percentile", rng=1)
    lo, hi = res.confidence_interval
    assert est.low == pytest.approx(lo, abs=0.02) and est.high == pytest.approx(hi, abs=0.02)


def test_regression_intervals_equal_sklearn():
    rng = np.random.default_rng(1)
    t = rng.normal(size=(200, 2))
    p = t + rng.normal(0, 0.3, (200, 2))
    est = dg.regression_intervals(t, p)
    assert est["mae"].value == pytest.approx(skm.mean_absolute_error(t, p))
    assert est["mse"].value == pytest.approx(skm.mean_squared_error(t, p))
    assert est["r2"].value == pytest.approx(skm.r2_score(t, p, multioutput="variance_weighted"))
    one = dg.regression_intervals(t[:, 0], p[:, 0])
    assert one["r2"].value == pytest.approx(skm.r2_score(t[:, 0], p[:, 0]))
    assert all(e.low <= e.value <= e.high for e in est.values())


def test_references_chance_majority_and_mean():
    y = np.array([0, 0, 0, 1, 2, 2])
    refs = dg.class_references(y, 4)
    assert refs["majority_class"] == 0 and refs["chance"]["accuracy"] == 0.25
    assert refs["majority"]["accuracy"] == pytest.approx(0.5)
    assert refs["majority"]["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, np.zeros(6)))
    given = dg.class_references(y, 4, majority=2)
    assert given["majority"]["accuracy"] == pytest.approx(2 / 6)
    t = np.array([1.0, 2.0, 3.0, 6.0])
    own = dg.mean_predictor(t)
    assert own["r2"] == pytest.approx(0.0) and own["mae"] == pytest.approx(
        skm.mean_absolute_error(t, [3] * 4)
    )
    assert dg.mean_predictor(t, 1.0)["mse"] == pytest.approx(skm.mean_squared_error(t, [1.0] * 4))


def test_calibration_matches_a_direct_count(classes6):
    y, prob = classes6
    cal = dg.calibration(y, prob, bins=10)
    conf, correct = prob.max(axis=1), prob.argmax(axis=1) == y
    ece = 0.0
    for lo, hi in zip(np.linspace(0, 1, 11)[:-1], np.linspace(0, 1, 11)[1:], strict=True):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    assert cal.ece == pytest.approx(ece) and cal.counts.sum() == len(y)
    perfect = np.eye(3)[[0, 1, 2, 0]]
    assert dg.calibration([0, 1, 2, 0], perfect).ece == pytest.approx(0.0)


def test_roc_auc_equals_sklearn(classes6):
    y, prob = classes6
    curves = dg.roc_curves(y, prob)
    assert sorted(curves) == list(range(6))
    for c, curve in curves.items():
        assert curve.auc == pytest.approx(skm.roc_auc_score(y == c, prob[:, c]))
    assert dg.macro_auc(curves) == pytest.approx(
        skm.roc_auc_score(y, prob, multi_class="ovr", average="macro")
    )
    assert 5 not in dg.roc_curves(np.array([0, 1, 0, 1]), np.full((4, 6), 1 / 6))  # no positives: no curve


def test_correlation_and_residual_stats_equal_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.random(10), rng.random(10)
    c = dg.correlation(x, y)
    assert c.pearson == pytest.approx(stats.pearsonr(x, y).statistic)
    assert c.spearman_p == pytest.approx(stats.spearmanr(x, y).pvalue)
    assert dg.correlation(x[:2], y[:2]) is None and dg.correlation(np.ones(5), y[:5]) is None
    r = rng.standard_t(5, 400)
    s = dg.residual_stats(r)
    assert s.skewness == pytest.approx(stats.skew(r)) and s.kurtosis == pytest.approx(stats.kurtosis(r))
    assert (s.shapiro_w, s.shapiro_p) == pytest.approx(tuple(stats.shapiro(r)))
    assert dg.residual_stats(np.zeros(5)).shapiro_p is None


def test_image_quality_equals_skimage():
    rng = np.random.default_rng(3)
    t = rng.random((4, 1, 12, 12))
    p = np.clip(t + rng.normal(0, 0.05, t.shape), 0, 1)
    q = dg.image_quality(t, p)
    assert q["psnr"] == pytest.approx(peak_signal_noise_ratio(t, p, data_range=1.0))
    ssim = np.mean(
        [structural_similarity(a, b, data_range=1.0, channel_axis=0) for a, b in zip(t, p, strict=True)]
    )
    assert q["ssim"] == pytest.approx(ssim)
    assert q["mse"] == pytest.approx(((p - t) ** 2).mean())


def test_image_quality_intervals_hold_image_quality_and_narrow_with_more_images():
    rng = np.random.default_rng(8)
    t = rng.random((200, 1, 12, 12))
    p = t + rng.normal(0, 0.1, t.shape) * rng.random((200, 1, 1, 1))  # some images worse than others
    q = dg.image_quality(t, p)
    est = dg.image_quality_intervals(t, p)
    for name in ("mse", "mae", "psnr", "ssim"):
        e = est[name]
        assert e.value == pytest.approx(q[name]), name
        assert e.low < e.value < e.high, name
    assert est == dg.image_quality_intervals(t, p)  # seeded: the same predictions, the same intervals
    small = dg.image_quality_intervals(t[:20], p[:20])
    for name in ("mse", "mae", "psnr", "ssim"):
        assert est[name].high - est[name].low < small[name].high - small[name].low, name
    # PSNR's interval is the MSE interval of the clipped predictions, mapped through 10 log10(1 / MSE)
    clipped = ((np.clip(p, 0, 1) - t) ** 2).reshape(200, -1).mean(axis=1)
    boot = clipped[np.random.default_rng(0).integers(0, 200, (dg.N_BOOT, 200))].mean(axis=1)
    assert est["psnr"].low == pytest.approx(10 * np.log10(1 / np.percentile(boot, 97.5)))


def test_image_quality_intervals_of_a_perfect_copy_and_tiny_images():
    t = np.random.default_rng(9).random((5, 1, 2, 2))
    est = dg.image_quality_intervals(t, t.copy())
    assert est["mse"] == dg.Estimate(0.0, 0.0, 0.0)
    assert est["psnr"].value == est["psnr"].low == float("inf")
    assert est["ssim"] is None  # 2x2 images have no SSIM window
    with pytest.raises(ValueError, match="two equal non-empty arrays"):
        dg.image_quality_intervals(t, t[:3])


def test_top_losses_are_the_least_probable_true_classes():
    y = np.array([0, 1, 2, 0])
    prob = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.3, 0.3, 0.4], [0.2, 0.7, 0.1]])
    assert list(dg.top_losses(y, prob, "classification", k=2)) == [1, 3]
    loss = dg.per_image_loss(y, prob, "classification")
    assert loss[1] == pytest.approx(skm.log_loss([1], [prob[1]], labels=[0, 1, 2]))
    assert list(dg.top_losses(np.zeros(3), np.array([0.1, -2.0, 0.5]), "regression", k=3)) == [1, 2, 0]
