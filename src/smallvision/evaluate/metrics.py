"""The metric table: every metric's name, the head kind it scores, its function, and its direction.

Early stopping's ``mode: auto``, the ensemble's gain sign and the statistics read whether higher
is better from :func:`higher_is_better`; nothing else keeps a list of "lower is better" names.
A metric is added by one decorated function here::

    @metric("balanced_accuracy", "classification", higher_is_better=True)
    def balanced_accuracy(y_true, prob): ...

The trainer's validation and the final test evaluation both call :func:`compute_metrics`, so the
figure logged for the best epoch and the figure of a fresh evaluation cannot disagree.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from smallvision.errors import UserError

MetricFn = Callable[[np.ndarray, np.ndarray], float | None]


@dataclass(frozen=True)
class Metric:
    """One row of the table.

    Attributes:
        name: the key in metrics.json and history.csv (``val/<head>/<name>``).
        kind: the head kind it scores; None for figures with a direction only (losses).
        fn: ``fn(y_true, output) -> float``, or None when the figure is not defined for that
            input (top-5 of a 4-class head): it is then left out.
        higher_is_better: the direction early stopping, ensemble gains and statistics use.
        unit_scale: images are scored on the [0, 1] scale, not in standardised units.
    """

    name: str
    kind: str | None
    fn: MetricFn | None
    higher_is_better: bool
    unit_scale: bool = False


class MetricTable:
    """Metrics by (kind, name); one name has one direction whichever kinds it scores."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str | None, str], Metric] = {}

    def add(self, m: Metric) -> Metric:
        """Add a row; a duplicate (kind, name) or a name with two directions is an error."""
        if (m.kind, m.name) in self._rows:
            raise ValueError(f"duplicate metric {m.name!r} for kind {m.kind!r}")
        for other in self._rows.values():
            if other.name == m.name and other.higher_is_better != m.higher_is_better:
                raise ValueError(f"metric {m.name!r}: higher_is_better disagrees with kind {other.kind!r}")
        self._rows[(m.kind, m.name)] = m
        return m

    def for_kind(self, kind: str) -> list[Metric]:
        """The metrics of one head kind, in the order they were added (the order of metrics.json)."""
        return [m for (k, _), m in self._rows.items() if k == kind]

    def names(self) -> list[str]:
        return sorted({name for _, name in self._rows})

    def higher_is_better(self, name: str) -> bool | None:
        """The direction of a metric name; None when no row has that name."""
        return next((m.higher_is_better for (_, n), m in self._rows.items() if n == name), None)


METRICS = MetricTable()
METRICS.add(Metric("loss", None, None, higher_is_better=False))
METRICS.add(Metric("weighted_loss", None, None, higher_is_better=False))


def metric(
    name: str, kind: str, higher_is_better: bool, unit_scale: bool = False
) -> Callable[[MetricFn], MetricFn]:
    """Decorator: add ``fn`` to :data:`METRICS` as ``name`` for head kind ``kind``."""

    def add(fn: MetricFn) -> MetricFn:
        METRICS.add(Metric(name, kind, fn, higher_is_better, unit_scale))
        return fn

    return add


def higher_is_better(key: str) -> bool:
    """Whether higher is better for a metric key: ``"val/loss"``, ``"test/label/accuracy"``, ``"mae"``.

    Raises:
        UserError: the last part of the key is no metric of the table.
    """
    from smallvision.registry import HEAD_KINDS

    HEAD_KINDS.list()  # a kind's own file may add metrics (heads/multilabel.py)
    name = key.rsplit("/", 1)[-1]
    found = METRICS.higher_is_better(name)
    if found is None:
        raise UserError(
            f"metric {key!r}: {name!r} is not a known metric (known: {', '.join(METRICS.names())})"
        )
    return found


# ---------------------------------------------------------------- classification: (N,) labels, (N, K) prob


def _prfs(y_true: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-class precision, recall, F1 and support over all K classes (0 where undefined).

    scikit-learn's ``precision_recall_fscore_support(..., zero_division=0)`` computed from one
    ``bincount`` confusion matrix: the same figures (tests/evaluate/test_metrics.py) at a
    fraction of its input checking, which dominated every epoch's validation of a small model.
    """
    k = prob.shape[1]
    y = np.asarray(y_true, dtype=np.int64)
    cm = np.bincount(y * k + prob.argmax(axis=1), minlength=k * k).reshape(k, k)  # (true, predicted)
    tp, support, predicted = np.diag(cm).astype(np.float64), cm.sum(axis=1), cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        denom = predicted + support  # 2tp + fp + fn
        f1 = np.where(denom > 0, 2 * tp / denom, 0.0)
    return precision, recall, f1, support


@metric("accuracy", "classification", higher_is_better=True)
def accuracy(y_true: np.ndarray, prob: np.ndarray) -> float:
    return float((prob.argmax(axis=1) == y_true).mean()) if len(y_true) else 0.0


@metric("macro_f1", "classification", higher_is_better=True)
def macro_f1(y_true: np.ndarray, prob: np.ndarray) -> float:
    return float(_prfs(y_true, prob)[2].mean())


@metric("macro_precision", "classification", higher_is_better=True)
def macro_precision(y_true: np.ndarray, prob: np.ndarray) -> float:
    return float(_prfs(y_true, prob)[0].mean())


@metric("macro_recall", "classification", higher_is_better=True)
def macro_recall(y_true: np.ndarray, prob: np.ndarray) -> float:
    return float(_prfs(y_true, prob)[1].mean())


def _top_k(k: int) -> MetricFn:
    def top(y_true: np.ndarray, prob: np.ndarray) -> float | None:
        if prob.shape[1] <= k:  # every sample would count: not a figure
            return None
        order = np.argsort(-prob, axis=1)
        return float((order[:, :k] == y_true[:, None]).any(axis=1).mean())

    return top


metric("top3", "classification", higher_is_better=True)(_top_k(3))
metric("top5", "classification", higher_is_better=True)(_top_k(5))


@metric("balanced_accuracy", "classification", higher_is_better=True)
def balanced_accuracy(y_true: np.ndarray, prob: np.ndarray) -> float:
    """The mean recall over the classes present in ``y_true`` (scikit-learn's definition)."""
    from sklearn.metrics import balanced_accuracy_score

    if not len(y_true):
        return 0.0
    with warnings.catch_warnings():  # predicted classes absent from y_true are expected, not news
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(y_true, prob.argmax(axis=1)))


def top_k_range(y_true: np.ndarray, prob: np.ndarray, k: int) -> tuple[float, float]:
    """(lowest, highest) top-k accuracy over every way of breaking ties between equal scores."""
    n = len(y_true)
    true_score = prob[np.arange(n), y_true][:, None]
    above, at_least = (prob > true_score).sum(axis=1), (prob >= true_score).sum(axis=1)
    return float((at_least <= k).mean()), float((above < k).mean())


def class_tables(y_true: np.ndarray, prob: np.ndarray) -> dict[str, Any]:
    """The non-scalar figures: ``per_class`` precision/recall/F1/support and the ``confusion`` matrix."""
    from sklearn.metrics import confusion_matrix

    p, r, f, s = _prfs(y_true, prob)
    labels = np.arange(prob.shape[1])
    return {
        "per_class": {
            "precision": p.tolist(),
            "recall": r.tolist(),
            "f1": f.tolist(),
            "support": s.astype(int).tolist(),
        },
        "confusion": (
            confusion_matrix(y_true, prob.argmax(axis=1), labels=labels).tolist()
            if len(y_true)
            else np.zeros((len(labels), len(labels)), dtype=np.int64).tolist()
        ),
    }


# ---------------------------------------------------------------- regression: (N,) or (N, k) values


def _flat(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    return t, np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)


@metric("mae", "regression", higher_is_better=False)
def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _flat(y_true, y_pred)
    return float(np.abs(p - t).mean())


@metric("rmse", "regression", higher_is_better=False)
def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _flat(y_true, y_pred)
    return float(np.sqrt(((p - t) ** 2).mean()))


@metric("r2", "regression", higher_is_better=True)
def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """R² pooled over outputs; 0 for constant targets."""
    t, p = _flat(y_true, y_pred)
    ss_tot = float(((t - t.mean(axis=0)) ** 2).sum())
    return 1.0 - float(((p - t) ** 2).sum()) / ss_tot if ss_tot > 0 else 0.0


@metric("pearson", "regression", higher_is_better=True)
def pearson(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _flat(y_true, y_pred)
    varied = t.size > 1 and t.std() > 0 and p.std() > 0
    return float(np.corrcoef(t.ravel(), p.ravel())[0, 1]) if varied else 0.0


# ---------------------------------------------------------------- reconstruction: (N, C, H, W) images
# mse and mae are in the units the model predicts (standardised pixels, what the loss sees);
# pixel_accuracy, psnr and ssim are on the [0, 1] image scale, where "within 0.1" means a tenth of the
# intensity range (psnr is thus the [0, 1]-scale MSE in dB: comparable across runs whatever their statistics).

metric("mse", "reconstruction", higher_is_better=False)(lambda t, p: float(((_diff(t, p)) ** 2).mean()))
metric("mae", "reconstruction", higher_is_better=False)(lambda t, p: float(np.abs(_diff(t, p)).mean()))


def _diff(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)


@metric("pixel_accuracy", "reconstruction", higher_is_better=True, unit_scale=True)
def pixel_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of pixel values with |error| <= 0.1, on images in [0, 1]."""
    return float((np.abs(_diff(y_true, y_pred)) <= 0.1).mean())


@metric("psnr", "reconstruction", higher_is_better=True, unit_scale=True)
def psnr(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """Peak signal-to-noise ratio (dB, data range 1) over the whole set, predictions clipped to [0, 1]
    as an image would be (scikit-image's ``peak_signal_noise_ratio``); inf for a perfect copy."""
    from skimage.metrics import peak_signal_noise_ratio

    t = np.asarray(y_true, dtype=np.float64)
    clipped = np.clip(np.asarray(y_pred, dtype=np.float64), 0.0, 1.0)
    if not t.size:
        return None
    with np.errstate(divide="ignore"):  # a perfect copy: inf, not a warning
        return float(peak_signal_noise_ratio(t, clipped, data_range=1.0))


@metric("ssim", "reconstruction", higher_is_better=True, unit_scale=True)
def ssim(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """Mean structural similarity of images (N, C, H, W) in [0, 1]: scikit-image's
    ``structural_similarity`` per image over its channels (data range 1, 7x7 window or the largest
    odd one that fits), predictions clipped to [0, 1]."""
    values = ssim_per_image(y_true, y_pred)
    return None if values is None else float(np.mean(values))


def ssim_per_image(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray | None:
    """(N,) structural similarity of each image, as :func:`ssim` averages it; None where undefined
    (not (N, C, H, W) images, none at all, or images under 3x3)."""
    from skimage.metrics import structural_similarity

    t = np.asarray(y_true, dtype=np.float64)
    clipped = np.clip(np.asarray(y_pred, dtype=np.float64), 0.0, 1.0)
    win = min(7, *t.shape[-2:]) if t.ndim == 4 else 0
    win -= 1 - win % 2  # SSIM needs an odd window no larger than the image
    if win < 3 or not len(t):  # not images, or too small to have a neighbourhood: undefined
        return None
    return np.array(
        [
            structural_similarity(a, b, data_range=1.0, channel_axis=0, win_size=win)
            for a, b in zip(t, clipped, strict=True)
        ]
    )


# ---------------------------------------------------------------- scoring


def score(kind: str, y_true: np.ndarray, output: np.ndarray, unit: tuple | None = None) -> dict[str, float]:
    """Every scalar metric of ``kind`` in table order.

    Args:
        kind: the head kind.
        y_true, output: as the kind saves them.
        unit: (y_true, output) on the [0, 1] image scale for ``unit_scale`` metrics; None: the
            arrays already are.
    """
    out = {}
    for m in METRICS.for_kind(kind):
        args = unit if m.unit_scale and unit is not None else (y_true, output)
        value = m.fn(*args) if m.fn is not None else None
        if value is not None:
            out[m.name] = value
    return out


def compute_metrics(
    kinds: Mapping[str, str],
    y_true: Mapping[str, np.ndarray],
    outputs: Mapping[str, np.ndarray],
    normalization: Any = None,
) -> dict[str, dict]:
    """Metrics of every head: ``{head: {metric: value}}``.

    Args:
        kinds: head -> kind name.
        y_true, outputs: head -> arrays as saved in predictions.npz.
        normalization: the run's Normalizer (or its ``to_dict()``, as in metrics.json), which
            brings standardised reconstructions back to [0, 1]; None when they already are.
    """
    from smallvision.registry import HEAD_KINDS

    return {h: HEAD_KINDS.get(k).metrics(y_true[h], outputs[h], normalization) for h, k in kinds.items()}


def scalar_metrics(metrics: Mapping[str, dict]) -> dict[str, float]:
    """The scalar figures only, flattened as ``<head>/<metric>`` (for history.csv)."""
    return {
        f"{h}/{name}": value
        for h, m in metrics.items()
        for name, value in m.items()
        if isinstance(value, int | float)
    }
