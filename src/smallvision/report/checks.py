"""Recompute every figure from predictions.npz and flag what looks wrong.

The report does not trust metrics.json: it recomputes the metrics from the saved predictions
with the same functions as evaluation (:mod:`smallvision.evaluate.metrics`) and says so when the
two disagree (study 000 printed a
validation accuracy of 10.71% during training and 6.00% "after training"). It also looks for a
classifier that predicts one class for everything (study 001) and a regressor that predicts a
constant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

# A class predicted for more than this share of samples ...
DOMINANT_SHARE = 0.5
# ... while it is truly at most this fraction of its predicted share is a one-class predictor.
DOMINANT_TRUE_RATIO = 0.5
# Macro-F1 this far below accuracy means the accuracy comes from a few (large) classes.
F1_GAP = 0.15
# Recomputed vs reported: float32 predictions and JSON round trips stay well inside these.
RTOL, ATOL = 1e-5, 1e-6
# history.csv may be written with fewer digits than metrics.json.
HISTORY_TOL = 1e-4


class PredictionError(ValueError):
    """Arrays in predictions.npz that cannot be scored (wrong shape, labels out of range)."""


@dataclass(frozen=True)
class Finding:
    """One thing the reader should know: ``warning`` boxes stand out, ``note`` boxes do not."""

    level: Literal["warning", "note"]
    title: str
    text: str


@dataclass(frozen=True)
class ClassScores:
    """Classification figures recomputed from (y_true, prob).

    Attributes:
        confusion: (K, K) counts, rows = true class, columns = predicted class.
        precision, recall, f1: (K,) per class; 0 where undefined (as scikit-learn's zero_division=0).
        support: (K,) true count per class.
        predicted: (K,) predicted count per class.
        metrics: accuracy, macro_f1, macro_precision, macro_recall (over all K classes).
        bounds: metric -> (low, high) for metrics that depend on how ties are broken (top-k).
    """

    confusion: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    predicted: np.ndarray
    metrics: dict[str, float]
    bounds: dict[str, tuple[float, float]]


@dataclass(frozen=True)
class Check:
    """A metric as metrics.json reports it and as recomputed; ``ok`` is None when not comparable."""

    metric: str
    reported: float | None
    recomputed: float | None
    ok: bool | None


def _labels(y_true: np.ndarray, n: int, k: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim == 2:  # one-hot or soft targets: the class is the arg-max
        y = y.argmax(axis=1)
    if y.ndim != 1 or len(y) != n:
        raise PredictionError(f"y_true has shape {y.shape}, expected ({n},) to match prob")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y) & (y == np.round(y))):
        raise PredictionError("y_true holds non-integer values, expected class indices")
    y = y.astype(np.int64)
    if n and (y.min() < 0 or y.max() >= k):
        raise PredictionError(f"y_true has labels {y.min()}..{y.max()}, expected 0..{k - 1}")
    return y


def classification_scores(y_true: np.ndarray, prob: np.ndarray) -> ClassScores:
    """Confusion matrix, per-class and macro figures from labels and class probabilities.

    Args:
        y_true: (N,) int class indices (or (N, K) one-hot / soft targets).
        prob: (N, K) probabilities or scores; the arg-max is the prediction.

    Raises:
        PredictionError: shapes disagree or labels fall outside 0..K-1.
    """
    from smallvision.evaluate.metrics import class_tables, score, top_k_range

    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[1] < 1:
        raise PredictionError(f"prob has shape {prob.shape}, expected (N, K)")
    n, k = prob.shape
    y = _labels(y_true, n, k)
    metrics = score("classification", y, prob)
    tables = class_tables(y, prob)
    confusion = np.asarray(tables["confusion"], dtype=np.int64).reshape(k, k)
    per = {name: np.asarray(v, dtype=np.float64) for name, v in tables["per_class"].items()}
    # top-k depends on how ties are ordered, so a reported value anywhere in the range agrees
    bounds = {f"top{top}": top_k_range(y, prob, top) for top in (3, 5) if f"top{top}" in metrics and n}
    return ClassScores(
        confusion,
        per["precision"],
        per["recall"],
        per["f1"],
        confusion.sum(axis=1),
        confusion.sum(axis=0),
        metrics,
        bounds,
    )


def flat_pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64 (N, -1), or a PredictionError when their shapes disagree."""
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.size != p.size or len(t) != len(p):
        raise PredictionError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}")
    return t.reshape(len(t), -1), p.reshape(len(p), -1)


def regression_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R² (pooled over outputs) and Pearson r of (N,) or (N, k) values."""
    from smallvision.registry import HEAD_KINDS

    return HEAD_KINDS.get("regression").rescore({"y_true": y_true, "y_pred": y_pred}).metrics


def reconstruction_scores(
    y_true: np.ndarray, y_pred: np.ndarray, normalization: Any = None
) -> dict[str, float]:
    """MSE, MAE and pixel accuracy (share of values with |error| <= 0.1 on the [0, 1] scale) of images.

    Args:
        y_true, y_pred: images as saved (standardised units).
        normalization: the run's normaliser as in metrics.json; None when the images are in [0, 1].
    """
    from smallvision.registry import HEAD_KINDS

    arrays = {"y_true": y_true, "y_pred": y_pred}
    return HEAD_KINDS.get("reconstruction").rescore(arrays, normalization).metrics


def compare(
    reported: Mapping[str, Any] | None,
    recomputed: Mapping[str, float],
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Check]:
    """Pair every scalar metric of ``reported`` with its recomputed value.

    Args:
        reported: one head's metrics from metrics.json (non-scalars are skipped).
        recomputed: the same head's metrics recomputed from predictions.
        bounds: metric -> (low, high); a reported value inside the range agrees.

    Returns:
        metric -> Check, reported metrics first, then those only recomputed.
    """
    reported = reported or {}
    names = [m for m, v in reported.items() if _is_scalar(v)]
    names += [m for m in recomputed if m not in names]
    checks = {}
    for name in names:
        rep = float(reported[name]) if _is_scalar(reported.get(name)) else None
        rec = recomputed.get(name)
        ok = None
        if rep is not None and rec is not None:
            low, high = (bounds or {}).get(name, (rec, rec))
            ok = low - _tol(low) <= rep <= high + _tol(high)
        checks[name] = Check(name, rep, rec, ok)
    return checks


def _tol(value: float) -> float:
    return ATOL + RTOL * abs(value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def mismatches(head: str, split: str, checks: Mapping[str, Check]) -> list[Finding]:
    """A warning for every metric whose reported and recomputed values disagree."""
    bad = [c for c in checks.values() if c.ok is False]
    if not bad:
        return []
    listed = "; ".join(
        f"{c.metric}: metrics.json {c.reported:.6g}, recomputed {c.recomputed:.6g}" for c in bad
    )
    return [
        Finding(
            "warning",
            f"{head}: {split} metrics disagree with predictions.npz",
            f"{listed}. The saved predictions are not the ones the metrics were computed from "
            "(were the best weights restored before evaluation?).",
        )
    ]


def diagnose_classifier(head: str, scores: ClassScores, classes: Sequence[str]) -> list[Finding]:
    """Warn about a classifier that predicts one class for almost everything."""
    n = int(scores.support.sum())
    if n == 0:
        return [Finding("warning", f"{head}: no samples", "the predictions hold no samples to score")]
    findings = []
    pred_share, true_share = scores.predicted / n, scores.support / n
    top = int(pred_share.argmax())
    if pred_share[top] > DOMINANT_SHARE and true_share[top] < DOMINANT_TRUE_RATIO * pred_share[top]:
        findings.append(
            Finding(
                "warning",
                f"{head}: one class gets most predictions",
                f"class {classes[top]!r} is predicted for {pred_share[top]:.1%} of samples but is only "
                f"{true_share[top]:.1%} of them. The model may predict one class for everything.",
            )
        )
    acc, f1 = scores.metrics["accuracy"], scores.metrics["macro_f1"]
    if acc - f1 > F1_GAP or (f1 < 0.5 * acc and acc - f1 > 0.05):
        findings.append(
            Finding(
                "warning",
                f"{head}: macro-F1 far below accuracy",
                f"accuracy {acc:.4f} but macro-F1 {f1:.4f}: the accuracy comes from a few classes; "
                "look at the per-class figures.",
            )
        )
    never = [classes[i] for i in np.flatnonzero((scores.support > 0) & (scores.predicted == 0))]
    if never:
        shown = ", ".join(map(str, never[:10])) + (" ..." if len(never) > 10 else "")
        findings.append(Finding("note", f"{head}: {len(never)} classes never predicted", shown))
    return findings


def diagnose_regressor(head: str, y_true: np.ndarray, y_pred: np.ndarray, r2: float) -> list[Finding]:
    """Warn about a regressor that predicts a near-constant value or does worse than the mean."""
    t, p = flat_pair(y_true, y_pred)
    findings = []
    if t.std() > 0 and p.std() < 0.1 * t.std():
        findings.append(
            Finding(
                "warning",
                f"{head}: near-constant predictions",
                f"predictions vary by {p.std():.4g} (std) while the targets vary by {t.std():.4g}.",
            )
        )
    if r2 < 0:
        findings.append(
            Finding("warning", f"{head}: R² below zero", f"R² = {r2:.4f}: worse than predicting the mean.")
        )
    return findings


def non_finite(head: str, array: np.ndarray) -> list[Finding]:
    """A warning when predictions contain NaN or infinity."""
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if not bad:
        return []
    return [Finding("warning", f"{head}: non-finite predictions", f"{bad} values are NaN or infinite.")]


def check_history(
    head: str, history: Mapping[str, np.ndarray], best_epoch: Any, val_metrics: Mapping[str, float]
) -> list[Finding]:
    """Compare the best epoch's logged validation figures with those recomputed from val predictions.

    The trainer logs ``val/<head>/<metric>`` each epoch; after restoring the best weights the
    saved validation predictions must give the same numbers, or evaluation used other weights.
    """
    epochs = history.get("epoch")
    if epochs is None or not _is_scalar(best_epoch):
        return []
    rows = np.flatnonzero(epochs == best_epoch)
    if not len(rows):
        return []
    bad = []
    for metric, value in val_metrics.items():
        logged = history.get(f"val/{head}/{metric}")
        if logged is None or math.isnan(logged[rows[0]]):
            continue
        if abs(logged[rows[0]] - value) > HISTORY_TOL * max(1.0, abs(value)):
            bad.append(f"{metric}: logged {logged[rows[0]]:.6g}, recomputed {value:.6g}")
    if not bad:
        return []
    return [
        Finding(
            "warning",
            f"{head}: best epoch's validation figures differ from the saved validation predictions",
            f"epoch {best_epoch}: " + "; ".join(bad) + ". The evaluated weights are not the best epoch's.",
        )
    ]
