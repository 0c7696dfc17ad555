"""Reference scores every result is read against: chance, the majority class, the training mean.

A classifier's 0.30 accuracy means little until one knows that guessing gives 0.10 and always
answering the most frequent training class gives 0.12; a regressor's MAE likewise beside the MAE of
always predicting the training mean. The figures come from the same metric code as the run's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# figures of a constant predictor that say nothing (top-k of a one-hot depends on tie order)
_SKIP = ("top3", "top5")


def _scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in _SKIP
    }


def reference_scores(
    y_train: np.ndarray, y_eval: np.ndarray, kind: str, classes: int | None = None
) -> dict[str, Any]:
    """The scores of the trivial predictors of one head on one evaluated split.

    Args:
        y_train: the training split's targets (class indices, or regression values).
        y_eval: the targets of the split being scored (val or test).
        kind: the head kind; only classification and regression have references.
        classes: the class count K (default: one more than the largest label seen).

    Returns:
        Classification: ``{"chance": {"accuracy": 1/K}, "majority": {metric: value},
        "majority_class": c}`` where c is the most frequent training class (lowest index on a
        tie) and ``majority`` scores always predicting it. Regression: ``{"train_mean": {metric:
        value}}`` for always predicting the training mean. Other kinds: ``{}``.
    """
    from smallvision.evaluate.metrics import compute_metrics

    y_train, y_eval = np.asarray(y_train), np.asarray(y_eval)
    if kind == "classification":
        k = int(classes or max(int(y_train.max(initial=0)), int(y_eval.max(initial=0))) + 1)
        majority = int(np.bincount(y_train.astype(np.int64), minlength=k).argmax())
        prob = np.zeros((len(y_eval), k), dtype=np.float32)
        prob[:, majority] = 1.0
        scored = compute_metrics({"h": kind}, {"h": y_eval}, {"h": prob})["h"]
        return {"chance": {"accuracy": 1.0 / k}, "majority": _scalars(scored), "majority_class": majority}
    if kind == "regression":
        mean = np.asarray(y_train, dtype=np.float64).mean(axis=0)
        pred = np.broadcast_to(mean, y_eval.shape).astype(np.float32)
        scored = compute_metrics({"h": kind}, {"h": y_eval}, {"h": pred})["h"]
        return {"train_mean": _scalars(scored)}
    return {}


def run_references(
    y_train: Mapping[str, np.ndarray],
    y_eval: Mapping[str, Mapping[str, np.ndarray]],
    kinds: Mapping[str, str],
    classes: Mapping[str, int | None],
) -> dict[str, dict[str, Any]]:
    """``{split: {head: reference_scores(...)}}`` for every evaluated split and every head with one.

    Args:
        y_train: head -> training targets.
        y_eval: split -> head -> targets of that split.
        kinds: head -> kind.
        classes: head -> class count (None for non-classification heads).
    """
    out: dict[str, dict[str, Any]] = {}
    for split, targets in y_eval.items():
        heads = {
            h: reference_scores(y_train[h], targets[h], kinds[h], classes.get(h))
            for h in kinds
            if h in y_train and h in targets
        }
        heads = {h: r for h, r in heads.items() if r}
        if heads:
            out[split] = heads
    return out


def reference_labels(ref: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Readable row name -> scores of one head's references (for the report and the CLI)."""
    rows = {}
    if "chance" in ref:
        rows["chance (1/K)"] = dict(ref["chance"])
    if "majority" in ref:
        rows[f"majority class ({ref.get('majority_class', '?')})"] = dict(ref["majority"])
    if "train_mean" in ref:
        rows["training mean"] = dict(ref["train_mean"])
    return rows
