"""Reference scores: chance, the majority class of the training labels, the training mean."""

import numpy as np
import pytest

from smallvision.evaluate.metrics import compute_metrics
from smallvision.evaluate.reference import reference_labels, reference_scores, run_references


def test_classification_reference_is_chance_and_the_training_majority():
    y_train = np.array([2, 2, 2, 0, 1])  # class 2 is the training majority
    y_test = np.array([0, 0, 0, 2])  # ...but not the test majority: the reference must not peek
    ref = reference_scores(y_train, y_test, "classification", classes=4)
    assert ref["chance"] == {"accuracy": 0.25}
    assert ref["majority_class"] == 2 and ref["majority"]["accuracy"] == 0.25
    assert "top3" not in ref["majority"] and ref["majority"]["macro_recall"] == pytest.approx(1 / 4)
    assert list(reference_labels(ref)) == ["chance (1/K)", "majority class (2)"]


def test_a_tie_picks_the_lowest_class():
    assert reference_scores(np.array([1, 0, 1, 0]), np.array([0]), "classification", 2)["majority_class"] == 0


def test_regression_reference_is_the_training_mean_scored_by_the_run_metrics():
    y_train, y_test = np.array([1.0, 2.0, 3.0]), np.array([0.0, 4.0])
    ref = reference_scores(y_train, y_test, "regression")
    expected = compute_metrics({"y": "regression"}, {"y": y_test}, {"y": np.full(2, 2.0, np.float32)})["y"]
    assert ref["train_mean"]["mae"] == expected["mae"] == 2.0
    assert ref["train_mean"]["rmse"] == pytest.approx(2.0)
    assert list(reference_labels(ref)) == ["training mean"]


def test_multi_output_regression_uses_the_mean_of_each_output():
    ref = reference_scores(np.array([[0.0, 10.0], [2.0, 30.0]]), np.array([[1.0, 20.0]]), "regression")
    assert ref["train_mean"]["mae"] == 0.0


def test_run_references_skip_heads_without_training_targets():
    out = run_references(
        {"label": np.array([0, 1, 1])},
        {"test": {"label": np.array([1, 0]), "image": np.zeros((2, 1, 2, 2))}},
        {"label": "classification", "image": "reconstruction"},
        {"label": 2, "image": None},
    )
    assert list(out["test"]) == ["label"] and out["test"]["label"]["majority"]["accuracy"] == 0.5
