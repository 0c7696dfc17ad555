"""Metrics computed from predictions, one function per head kind.

The trainer's validation and the final test evaluation both call :func:`compute_metrics`, so the
figure logged for the best epoch and the figure of a fresh evaluation cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def classification_metrics(y_true: np.ndarray, prob: np.ndarray) -> dict:
    """Accuracy, macro precision/recall/F1, top-k, per-class figures and the confusion matrix.

    Args:
        y_true: (N,) int class indices.
        prob: (N, K) probabilities (or any scores; the arg-max is the prediction).
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k = prob.shape[1]
    labels = np.arange(k)
    y_pred = prob.argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out = {
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f.mean()),
        "macro_precision": float(p.mean()),
        "macro_recall": float(r.mean()),
    }
    order = np.argsort(-prob, axis=1)
    for top in (3, 5):
        if k > top:
            out[f"top{top}"] = float((order[:, :top] == y_true[:, None]).any(axis=1).mean())
    out["per_class"] = {
        "precision": p.tolist(),
        "recall": r.tolist(),
        "f1": f.tolist(),
        "support": s.astype(int).tolist(),
    }
    out["confusion"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MAE, RMSE, R² and Pearson r over all outputs."""
    t = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    err = p - t
    ss_res = float((err**2).sum())
    ss_tot = float(((t - t.mean(axis=0)) ** 2).sum())
    pearson = (
        float(np.corrcoef(t.ravel(), p.ravel())[0, 1]) if t.size > 1 and t.std() > 0 and p.std() > 0 else 0.0
    )
    return {
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else 0.0,
        "pearson": pearson,
    }


def reconstruction_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """MSE, MAE and pixel accuracy (share of pixels with |error| <= 0.1) on images (N, C, H, W)."""
    err = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
    return {
        "mse": float((err**2).mean()),
        "mae": float(np.abs(err).mean()),
        "pixel_accuracy": float((np.abs(err) <= 0.1).mean()),
    }


KIND_METRICS = {
    "classification": classification_metrics,
    "regression": regression_metrics,
    "reconstruction": reconstruction_metrics,
}

# the headline figure of each kind and whether higher is better
HEADLINE = {
    "classification": ("accuracy", "max"),
    "regression": ("mae", "min"),
    "reconstruction": ("mse", "min"),
}


def compute_metrics(
    kinds: Mapping[str, str], y_true: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]
) -> dict[str, dict]:
    """Metrics of every head: ``{head: {metric: value}}``."""
    return {h: KIND_METRICS[kind](y_true[h], outputs[h]) for h, kind in kinds.items()}


def scalar_metrics(metrics: Mapping[str, dict]) -> dict[str, float]:
    """The scalar figures only, flattened as ``<head>/<metric>`` (for history.csv)."""
    return {
        f"{h}/{name}": value
        for h, m in metrics.items()
        for name, value in m.items()
        if isinstance(value, int | float)
    }
