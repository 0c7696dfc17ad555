"""The report's own recomputation of metrics, checked against scikit-learn, and its diagnoses."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    r2_score,
    top_k_accuracy_score,
)

from smallvision.report import checks as ck


def _random_case(seed: int, n: int = 300, k: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k - 1, n)  # the last class never occurs: zero-support handling
    prob = rng.dirichlet(np.ones(k), n)
    return y, prob


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_scores_match_sklearn(seed):
    y, prob = _random_case(seed)
    k = prob.shape[1]
    s = ck.classification_scores(y, prob)
    pred = prob.argmax(axis=1)
    p, r, f, sup = precision_recall_fscore_support(y, pred, labels=range(k), zero_division=0)
    np.testing.assert_array_equal(s.confusion, confusion_matrix(y, pred, labels=range(k)))
    np.testing.assert_allclose(s.precision, p)
    np.testing.assert_allclose(s.recall, r)
    np.testing.assert_allclose(s.f1, f)
    np.testing.assert_array_equal(s.support, sup)
    assert s.metrics["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert s.metrics["macro_f1"] == pytest.approx(f.mean())
    for top in (3, 5):
        expected = top_k_accuracy_score(y, prob, k=top, labels=range(k))
        assert s.metrics[f"top{top}"] == pytest.approx(expected)


def test_top_k_bounds_cover_every_tie_break():
    prob = np.full((4, 6), 1 / 6)  # all tied: the true class may rank anywhere
    s = ck.classification_scores(np.array([0, 1, 2, 3]), prob)
    assert s.bounds["top3"] == (0.0, 1.0)
    checks = ck.compare({"top3": 0.5}, s.metrics, s.bounds)
    assert checks["top3"].ok


def test_one_hot_targets_and_bad_labels():
    y = np.array([0, 2, 1])
    prob = np.eye(3)[[0, 2, 2]]
    assert ck.classification_scores(np.eye(3)[y], prob).metrics["accuracy"] == pytest.approx(2 / 3)
    with pytest.raises(ck.PredictionError, match="labels"):
        ck.classification_scores(np.array([0, 5, 1]), prob)
    with pytest.raises(ck.PredictionError, match="shape"):
        ck.classification_scores(y[:2], prob)


def test_regression_and_reconstruction_scores():
    rng = np.random.default_rng(0)
    t = rng.random(100)
    p = t + rng.normal(0, 0.1, 100)
    m = ck.regression_scores(t, p[:, None])
    assert m["mae"] == pytest.approx(np.abs(p - t).mean())
    assert m["rmse"] == pytest.approx(np.sqrt(((p - t) ** 2).mean()))
    assert m["r2"] == pytest.approx(r2_score(t, p))
    images = rng.random((5, 1, 4, 4))
    rec = ck.reconstruction_scores(images, images + 0.05)
    assert rec["mse"] == pytest.approx(0.0025) and rec["pixel_accuracy"] == 1.0


def test_compare_tolerates_float_noise_and_flags_real_differences():
    checks = ck.compare(
        {"accuracy": 0.9 + 1e-9, "mae": 0.5, "per_class": {"f1": [1]}}, {"accuracy": 0.9, "mae": 0.4}
    )
    assert checks["accuracy"].ok and checks["mae"].ok is False
    assert "per_class" not in checks
    found = ck.mismatches("h", "test", checks)
    assert len(found) == 1 and "mae: metrics.json 0.5, recomputed 0.4" in found[0].text


def test_diagnose_classifier_thresholds():
    classes = ["a", "b", "c", "d"]
    y = np.arange(400) % 4
    degenerate = ck.classification_scores(y, np.eye(4)[np.zeros(400, dtype=int)])
    titles = [f.title for f in ck.diagnose_classifier("h", degenerate, classes) if f.level == "warning"]
    assert titles == ["h: one class gets most predictions", "h: macro-F1 far below accuracy"]
    good = ck.classification_scores(y, np.eye(4)[y])
    assert ck.diagnose_classifier("h", good, classes) == []
    # a truly dominant class predicted in proportion is not a degenerate predictor
    y_major = np.array([0] * 70 + [1] * 10 + [2] * 10 + [3] * 10)
    major = ck.classification_scores(y_major, np.eye(4)[y_major])
    assert ck.diagnose_classifier("h", major, classes) == []


def test_diagnose_regressor_and_non_finite():
    t = np.linspace(0, 1, 50)
    flat = ck.diagnose_regressor("v", t, np.full(50, 0.5), r2=-0.01)
    assert [f.title for f in flat] == ["v: near-constant predictions", "v: R² below zero"]
    assert ck.diagnose_regressor("v", t, t, r2=1.0) == []
    assert ck.non_finite("v", np.array([1.0, np.nan, np.inf]))[0].text.startswith("2 values")


def test_check_history_matches_best_epoch_row():
    history = {"epoch": np.array([1.0, 2.0]), "val/h/accuracy": np.array([0.5, 0.8])}
    assert ck.check_history("h", history, 2, {"accuracy": 0.8}) == []
    found = ck.check_history("h", history, 2, {"accuracy": 0.6})
    assert found and "logged 0.8, recomputed 0.6" in found[0].text
    assert ck.check_history("h", history, None, {"accuracy": 0.6}) == []


def test_no_samples_scores_zero_and_says_so():
    s = ck.classification_scores(np.zeros(0, dtype=int), np.zeros((0, 3)))
    assert s.metrics["accuracy"] == 0.0 and s.confusion.shape == (3, 3) and not s.confusion.any()
    assert [f.title for f in ck.diagnose_classifier("h", s, ["a", "b", "c"])] == ["h: no samples"]
