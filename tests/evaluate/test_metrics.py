"""The metric table: directions, balanced accuracy, pixel accuracy on the [0, 1] scale."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from smallvision.data.normalize import Normalizer
from smallvision.errors import UserError
from smallvision.evaluate.metrics import METRICS, Metric, MetricTable, compute_metrics, higher_is_better
from smallvision.study.ensemble import gains
from smallvision.train.trainer import monitor_mode


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("val/loss", False),
        ("train/loss", False),
        ("val/label/weighted_loss", False),
        ("test/label/accuracy", True),
        ("label/mae", False),
        ("image/mse", False),
        ("image/pixel_accuracy", True),
        ("r2", True),
        ("val/label/balanced_accuracy", True),
        ("top5", True),
    ],
)
def test_higher_is_better_reads_the_table(key, expected):
    assert higher_is_better(key) is expected
    assert monitor_mode(key, "auto") == ("max" if expected else "min")


def test_unknown_metric_and_set_mode():
    with pytest.raises(UserError, match=r"metric 'val/label/nope': 'nope' is not a known metric"):
        higher_is_better("val/label/nope")
    with pytest.raises(
        UserError, match=r"^train\.early_stopping\.monitor: .*set train\.early_stopping\.mode"
    ):
        monitor_mode("val/label/nope", "auto")
    assert monitor_mode("val/label/nope", "min") == "min"


def test_table_refuses_duplicates_and_two_directions():
    table = MetricTable()
    table.add(Metric("mae", "regression", None, higher_is_better=False))
    with pytest.raises(ValueError, match="duplicate"):
        table.add(Metric("mae", "regression", None, higher_is_better=False))
    with pytest.raises(ValueError, match="disagrees"):
        table.add(Metric("mae", "reconstruction", None, higher_is_better=True))
    assert [m.name for m in METRICS.for_kind("regression")] == ["mae", "rmse", "r2", "pearson"]


def test_balanced_accuracy_matches_sklearn_and_differs_from_accuracy():
    y = np.array([0] * 90 + [1] * 10)
    prob = np.tile([0.9, 0.1], (100, 1))  # always class 0
    m = compute_metrics({"h": "classification"}, {"h": y}, {"h": prob})["h"]
    assert m["accuracy"] == pytest.approx(0.9)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, prob.argmax(1))) == 0.5


def test_ensemble_gain_sign_follows_the_table():
    ens = {"h": {"accuracy": 0.8, "mae": 0.2}}
    members = [{"h": {"accuracy": 0.7, "mae": 0.3}}, {"h": {"accuracy": 0.6, "mae": 0.4}}]
    g = gains(ens, members)["h"]
    assert g["accuracy"].over_best == pytest.approx(0.1) and g["accuracy"].best_member == 0.7
    assert g["mae"].over_best == pytest.approx(0.1) and g["mae"].best_member == 0.3


def test_pixel_accuracy_is_on_the_unit_scale_and_mse_in_standardised_units():
    rng = np.random.default_rng(0)
    norm = Normalizer(1 / 255, (0.5,), (0.1,))
    unit = rng.random((4, 1, 6, 6))
    off = unit + np.where(rng.random(unit.shape) < 0.25, 0.3, 0.05)  # a quarter of pixels 0.3 off
    y_true, y_pred = (unit - 0.5) / 0.1, (off - 0.5) / 0.1  # as the model sees them
    for normalization in (norm, norm.to_dict()):
        m = compute_metrics({"image": "reconstruction"}, {"image": y_true}, {"image": y_pred}, normalization)[
            "image"
        ]
        assert m["pixel_accuracy"] == pytest.approx(float((np.abs(off - unit) <= 0.1).mean()))
        assert 0.6 < m["pixel_accuracy"] < 0.9  # standardised errors (0.5 and 3) would give 0
        assert m["mse"] == pytest.approx(float(((y_pred - y_true) ** 2).mean()))
    raw = compute_metrics({"image": "reconstruction"}, {"image": y_true}, {"image": y_pred})["image"]
    assert raw["pixel_accuracy"] == 0.0  # without the normaliser the arrays are taken as they are


def test_psnr_and_ssim_in_metrics_json_equal_scikit_image_on_the_unit_scale():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(5)
    norm = Normalizer(1 / 255, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3))
    unit = rng.random((3, 3, 16, 16))
    recon = unit + rng.normal(0, 0.08, unit.shape)  # some values leave [0, 1]: clipped as an image
    mean, std = np.array(norm.mean).reshape(1, 3, 1, 1), np.array(norm.std).reshape(1, 3, 1, 1)
    y_true, y_pred = (unit - mean) / std, (recon - mean) / std  # as saved (standardised)
    m = compute_metrics({"image": "reconstruction"}, {"image": y_true}, {"image": y_pred}, norm)["image"]
    clipped = np.clip(recon, 0, 1)
    assert m["psnr"] == pytest.approx(peak_signal_noise_ratio(unit, clipped, data_range=1.0))
    expected = np.mean(
        [
            structural_similarity(a, b, data_range=1.0, channel_axis=0)
            for a, b in zip(unit, clipped, strict=True)
        ]
    )
    assert m["ssim"] == pytest.approx(expected)
    assert higher_is_better("val/image/psnr") and higher_is_better("test/image/ssim")
    tiny = compute_metrics({"i": "reconstruction"}, {"i": unit[:, :, :2, :2]}, {"i": unit[:, :, :2, :2]})["i"]
    assert "ssim" not in tiny  # a 2x2 image has no SSIM window: left out, not a made-up figure


@pytest.mark.parametrize("n", [0, 1, 7, 300])
def test_per_class_precision_recall_f1_equal_scikit_learns(n):
    from sklearn.metrics import precision_recall_fscore_support

    from smallvision.evaluate.metrics import _prfs

    rng = np.random.default_rng(n)
    k = 6
    y = rng.integers(0, k - 1, n)  # class 5 never occurs; some classes are never predicted
    prob = rng.random((n, k)) * np.array([1, 1, 1, 0, 1, 1.2])
    ours = _prfs(y, prob)
    if n == 0:  # scikit-learn refuses empty input: every figure is 0
        assert all(np.array_equal(a, np.zeros(k)) for a in ours)
        return
    theirs = precision_recall_fscore_support(y, prob.argmax(1), labels=np.arange(k), zero_division=0)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
