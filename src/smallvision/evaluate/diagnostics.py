"""Diagnostic figures of saved predictions: intervals, calibration, ROC, residual and image statistics.

Everything the run report shows beyond the metric table is computed here, from the arrays of
predictions.npz, with scikit-learn, SciPy and scikit-image; the report only lays the results out.
Intervals are percentile bootstraps over test images: one set of resamples (seeded) per head and
split, so the same predictions always give the same intervals.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from smallvision.evaluate.stats import CONFIDENCE

N_BOOT = 1000
# Shapiro-Wilk is defined up to 5000 samples (SciPy warns above): a larger set is thinned evenly
SHAPIRO_MAX = 5000


@dataclass(frozen=True)
class Estimate:
    """A metric on the whole split and its bootstrap interval (``low`` <= ``high``)."""

    value: float
    low: float
    high: float


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) image indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _interval(value: float, samples: np.ndarray) -> Estimate:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Estimate(float(value), float(min(low, value)), float(max(high, value)))


def _confusions(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """(..., K, K) confusion matrices of label arrays (..., N), rows = true class."""
    lead = y.shape[:-1]
    flat = y.reshape(-1, y.shape[-1]) * k + pred.reshape(-1, y.shape[-1])
    offset = np.arange(flat.shape[0])[:, None] * k * k
    cm = np.bincount((flat + offset).ravel(), minlength=flat.shape[0] * k * k)
    return cm.reshape(*lead, k, k)


def _from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, balanced accuracy, macro / weighted F1 of (..., K, K) confusion matrices.

    As scikit-learn: F1 over all K labels with 0 where undefined; balanced accuracy over the
    classes present in y_true.
    """
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    support, predicted = cm.sum(axis=-1), cm.sum(axis=-2)
    n = support.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(support > 0, tp / support, 0.0)
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        present = (support > 0).sum(axis=-1)
        return {
            "accuracy": tp.sum(axis=-1) / n,
            "balanced_accuracy": recall.sum(axis=-1) / present,
            "macro_f1": f1.mean(axis=-1),
            "weighted_f1": (f1 * support).sum(axis=-1) / n,
        }


def top_k_hits(y: np.ndarray, prob: np.ndarray, k: int) -> np.ndarray:
    """(N,) 1.0 where the true class is among the k most probable (ties broken by class order)."""
    order = np.argsort(-prob, axis=1, kind="stable")[:, :k]
    return (order == y[:, None]).any(axis=1).astype(np.float64)


def classification_intervals(
    y_true: np.ndarray, prob: np.ndarray, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, Estimate]:
    """Accuracy, balanced accuracy, macro / weighted F1 and top-3 / top-5 (when K > k) with intervals.

    Args:
        y_true: (N,) class indices.
        prob: (N, K) class probabilities.
        n_boot: bootstrap resamples of the N images.
        seed: seed of the resampling.
    """
    y = np.asarray(y_true, dtype=np.int64)
    prob = np.asarray(prob, dtype=np.float64)
    k = prob.shape[1]
    pred = prob.argmax(axis=1)
    idx = _resamples(len(y), n_boot, seed)
    whole = _from_confusion(_confusions(y, pred, k))
    boot = _from_confusion(_confusions(y[idx], pred[idx], k))
    out = {name: _interval(float(whole[name]), boot[name]) for name in whole}
    for top in (3, 5):
        if k > top:
            hits = top_k_hits(y, prob, top)
            out[f"top{top}"] = _interval(float(hits.mean()), hits[idx].mean(axis=1))
    return out


def regression_intervals(
    y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, Estimate]:
    """MAE, MSE and R² with intervals; R² pools the outputs of an (N, k) target with each centred on
    its own mean (scikit-learn's ``r2_score(..., multioutput="variance_weighted")``)."""
    t = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    err2 = ((p - t) ** 2).sum(axis=1)
    abs_err = np.abs(p - t).mean(axis=1)

    def r2(tt: np.ndarray, e2: np.ndarray) -> np.ndarray:
        ss_tot = ((tt - tt.mean(axis=-2, keepdims=True)) ** 2).sum(axis=(-2, -1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ss_tot > 0, 1.0 - e2.sum(axis=-1) / ss_tot, 0.0)

    idx = _resamples(len(t), n_boot, seed)
    width = t.shape[1]
    return {
        "mae": _interval(float(abs_err.mean()), abs_err[idx].mean(axis=1)),
        "mse": _interval(float(err2.mean() / width), err2[idx].mean(axis=1) / width),
        "r2": _interval(float(r2(t, err2)), r2(t[idx], err2[idx])),
    }


@dataclass(frozen=True)
class Calibration:
    """A reliability diagram's bins and the expected calibration error (Guo et al., 2017).

    Attributes:
        ece: sum over bins of (bin share) x |accuracy - mean confidence|.
        edges: (B + 1,) confidence bin edges on [0, 1].
        confidence, accuracy: (B,) per bin (NaN for empty bins).
        counts: (B,) images per bin.
    """

    ece: float
    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    counts: np.ndarray


def calibration(y_true: np.ndarray, prob: np.ndarray, bins: int = 15) -> Calibration:
    """Top-label calibration: confidence = the largest probability, correct = it is the true class."""
    prob = np.asarray(prob, dtype=np.float64)
    conf = prob.max(axis=1)
    correct = (prob.argmax(axis=1) == np.asarray(y_true)).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # right-closed bins as in Guo et al.: a confidence of exactly 1 falls in the last bin
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_conf = np.bincount(which, conf, minlength=bins) / counts
        acc = np.bincount(which, correct, minlength=bins) / counts
    gaps = np.where(counts > 0, np.abs(acc - mean_conf), 0.0)
    ece = float((counts / max(len(conf), 1) * gaps).sum())
    return Calibration(ece, edges, mean_conf, acc, counts)


@dataclass(frozen=True)
class RocCurve:
    """One class against the rest: false / true positive rates and the area under the curve."""

    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


def roc_curves(y_true: np.ndarray, prob: np.ndarray) -> dict[int, RocCurve]:
    """One-vs-rest ROC of every class that has both positives and negatives in ``y_true``."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(y_true)
    curves = {}
    for c in range(prob.shape[1]):
        positive = y == c
        if positive.all() or not positive.any():
            continue  # AUC is undefined without both kinds of example
        fpr, tpr, _ = roc_curve(positive, prob[:, c])
        curves[c] = RocCurve(fpr, tpr, float(roc_auc_score(positive, prob[:, c])))
    return curves


def macro_auc(curves: dict[int, RocCurve]) -> float | None:
    """The unweighted mean one-vs-rest AUC over the classes that have one."""
    return float(np.mean([c.auc for c in curves.values()])) if curves else None


@dataclass(frozen=True)
class Correlation:
    """Pearson and Spearman correlation of two per-class figures, with their p-values."""

    pearson: float
    pearson_p: float
    spearman: float
    spearman_p: float


def correlation(x: np.ndarray, y: np.ndarray) -> Correlation | None:
    """None with fewer than three pairs or a constant side (the coefficients are undefined)."""
    from scipy import stats

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    pr, sr = stats.pearsonr(x, y), stats.spearmanr(x, y)
    return Correlation(float(pr.statistic), float(pr.pvalue), float(sr.statistic), float(sr.pvalue))


@dataclass(frozen=True)
class ResidualStats:
    """Shape of the residuals (predicted - true): moments and the Shapiro-Wilk normality test."""

    mean: float
    std: float
    skewness: float
    kurtosis: float  # excess (Fisher): 0 for a normal distribution
    shapiro_w: float | None
    shapiro_p: float | None


def residual_stats(residuals: np.ndarray) -> ResidualStats:
    """Moments of the residuals and Shapiro-Wilk (None below 3 values or for constant residuals)."""
    from scipy import stats

    r = np.asarray(residuals, dtype=np.float64).ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SciPy warns for (near-)constant input and returns NaN
        skew, kurt = float(stats.skew(r)), float(stats.kurtosis(r))
        w = p = None
        if r.size >= 3 and np.ptp(r) > 0:
            thinned = (
                r[np.linspace(0, r.size - 1, SHAPIRO_MAX).astype(np.int64)] if r.size > SHAPIRO_MAX else r
            )
            res = stats.shapiro(thinned)
            w, p = float(res.statistic), float(res.pvalue)
    return ResidualStats(float(r.mean()), float(r.std()), skew, kurt, w, p)


def image_quality(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """MSE, MAE, PSNR and mean SSIM of images (N, C, H, W) already on the [0, 1] scale: the values
    of :func:`image_quality_intervals`, without their intervals."""
    estimates = image_quality_intervals(y_true, y_pred, n_boot=1)
    return {k: None if e is None else e.value for k, e in estimates.items()}


def image_quality_intervals(
    y_true: np.ndarray, y_pred: np.ndarray, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, Estimate | None]:
    """MSE, MAE, PSNR and mean SSIM of images (N, C, H, W) already on the [0, 1] scale, each with a
    percentile-bootstrap interval over the images (the same resamples for all four).

    PSNR over the whole set with data range 1 (scikit-image's ``peak_signal_noise_ratio``); SSIM
    per image over its channels, as the metric table's ``ssim`` (None for images under 3x3).
    Predictions are clipped to [0, 1] for PSNR and SSIM only, as an image would be. Every image has as many pixels as the next, so each whole-set figure is a mean of per-image
    ones: MSE and MAE of their per-image values, SSIM of its per-image values, and PSNR a
    decreasing function (10 log10(1 / MSE)) of the mean per-image MSE of the clipped predictions,
    so its interval is that MSE interval's image.
    """
    from smallvision.evaluate.metrics import ssim_per_image

    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    n = len(t)
    if not n or t.shape != p.shape:
        raise ValueError(
            f"image_quality_intervals needs two equal non-empty arrays, got {t.shape} and {p.shape}"
        )
    diff = (p - t).reshape(n, -1)
    clipped = ((np.clip(p, 0.0, 1.0) - t).reshape(n, -1) ** 2).mean(axis=1)
    idx = _resamples(n, n_boot, seed)

    def mean_interval(per_image: np.ndarray) -> Estimate:
        return _interval(float(per_image.mean()), per_image[idx].mean(axis=1))

    def psnr(mse: float) -> float:
        with np.errstate(divide="ignore"):  # a perfect copy: inf
            return float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf")

    clipped_mse = mean_interval(clipped)
    ssim = ssim_per_image(t, p)
    return {
        "mse": mean_interval((diff**2).mean(axis=1)),
        "mae": mean_interval(np.abs(diff).mean(axis=1)),
        "psnr": Estimate(psnr(clipped_mse.value), psnr(clipped_mse.high), psnr(clipped_mse.low)),
        "ssim": None if ssim is None else mean_interval(ssim),
    }


def per_image_loss(y_true: np.ndarray, output: np.ndarray, kind: str) -> np.ndarray:
    """(N,) loss of every image: cross-entropy of the true class, or the mean squared error."""
    if kind == "classification":
        y = np.asarray(y_true, dtype=np.int64)
        p = np.asarray(output, dtype=np.float64)[np.arange(len(y)), y]
        return -np.log(np.clip(p, 1e-12, 1.0))
    t = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    return ((np.asarray(output, dtype=np.float64).reshape(len(t), -1) - t) ** 2).mean(axis=1)


def top_losses(y_true: np.ndarray, output: np.ndarray, kind: str, k: int = 9) -> np.ndarray:
    """Positions of the k images with the highest loss, highest first (fastai's ``top_losses``)."""
    loss = per_image_loss(y_true, output, kind)
    return np.argsort(-loss, kind="stable")[:k]


def class_references(y_true: np.ndarray, k: int, majority: int | None = None) -> dict[str, dict[str, float]]:
    """The figures of the trivial classifiers the metrics are read against.

    Args:
        y_true: (N,) labels of the scored split.
        k: the class count K.
        majority: the class a majority predictor answers (the most frequent training class);
            None: the most frequent class of ``y_true`` (the best constant answer in hindsight).

    Returns:
        ``{"chance": ..., "majority": ...}``: chance is the expectation of guessing uniformly at
        random (accuracy and balanced accuracy 1/K, top-k k/K); majority scores always answering
        one class, with :func:`classification_intervals`' definitions (no top-k: a constant answer's
        top-k depends only on how ties are ordered).
    """
    y = np.asarray(y_true, dtype=np.int64)
    cls = int(np.bincount(y, minlength=k).argmax()) if majority is None else int(majority)
    constant = _from_confusion(_confusions(y, np.full_like(y, cls), k))
    chance = {"accuracy": 1.0 / k, "balanced_accuracy": 1.0 / k}
    chance |= {f"top{t}": t / k for t in (3, 5) if k > t}
    majority_scores = {name: float(v) for name, v in constant.items()}
    return {"chance": chance, "majority": majority_scores, "majority_class": cls}


def mean_predictor(y_true: np.ndarray, mean: np.ndarray | float | None = None) -> dict[str, float]:
    """MAE, MSE and R² of always predicting ``mean`` (the training mean; None: the split's own mean)."""
    t = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    centre = (
        t.mean(axis=0) if mean is None else np.broadcast_to(np.asarray(mean, dtype=np.float64), t.shape[1:])
    )
    pred = np.broadcast_to(centre, t.shape)
    return {k: v.value for k, v in regression_intervals(t, pred, n_boot=1).items()}
