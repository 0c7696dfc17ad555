"""The learning-rate range test (Smith 2017, as fastai runs it).

Train from the initial weights while the lr grows exponentially from ``start_lr`` to ``end_lr``,
one batch per value; record the loss, smooth it with a bias-corrected exponential moving
average, and stop once the smoothed loss exceeds ``diverge`` times its minimum (or turns
non-finite). Two suggestions come from the curve: the lr of steepest descent of the smoothed
loss (against log lr, before its minimum), and the lr at the minimum divided by 10.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from smallvision.train.trainer import NonFiniteLoss, Split, Trainer


@dataclass
class LRFindResult:
    """The sweep and its suggestions.

    Attributes:
        lrs: the lr of each step taken.
        losses: the raw training loss of each step.
        smoothed: the bias-corrected moving average of ``losses``.
        steepest: lr of steepest descent of ``smoothed`` (None when the curve is too short).
        min_over_10: the lr of the smallest smoothed loss, divided by 10.
        suggestion: ``steepest`` when there is one, else ``min_over_10``.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    steepest: float | None
    min_over_10: float
    suggestion: float


def lr_schedule(start_lr: float, end_lr: float, steps: int) -> np.ndarray:
    """``steps`` values growing exponentially from ``start_lr`` to ``end_lr`` (both included)."""
    return np.geomspace(start_lr, end_lr, steps)


def smooth(losses: list[float], beta: float = 0.98) -> list[float]:
    """Bias-corrected exponential moving average: ``avg_i / (1 - beta^(i+1))``."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def suggest(lrs: list[float], smoothed: list[float]) -> tuple[float | None, float]:
    """(steepest-descent lr before the minimum, lr at the minimum / 10)."""
    best = int(np.argmin(smoothed))
    min_over_10 = lrs[best] / 10
    if best < 2:  # too few points before the minimum for a slope
        return None, min_over_10
    slope = np.gradient(np.asarray(smoothed[: best + 1]), np.log10(np.asarray(lrs[: best + 1])))
    return float(lrs[int(np.argmin(slope))]), min_over_10


def iterate_batches(trainer: Trainer, train: Split) -> Iterator[torch.Tensor]:
    """Batch indices without end: epoch after epoch of the trainer's shuffles (for the LR range test)."""
    while True:
        yield from trainer.batches(train)


def lr_range_test(
    trainer: Trainer,
    train: Split,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
    beta: float = 0.98,
    diverge: float = 4.0,
) -> LRFindResult:
    """Run the sweep on ``trainer``'s model (its weights change: use a throwaway model).

    Args:
        trainer: a Trainer over the model and heads to test; its schedule is overridden.
        train: the training split.
        start_lr: the first lr.
        end_lr: the last lr.
        steps: number of lr values (one batch each).
        beta: smoothing of the loss curve.
        diverge: stop when the smoothed loss exceeds this multiple of its minimum.
    """
    trainer.setup(train)
    trainer.model.train()
    lrs, losses = [], []
    smoothed: list[float] = []
    batches = iterate_batches(trainer, train)
    for lr in lr_schedule(start_lr, end_lr, steps):
        for group in trainer.optimizer.param_groups:
            group["lr"] = float(lr) * group.get("lr_mult", 1.0)  # train.lr_mult ratios hold
        try:
            loss = trainer.train_step(train, next(batches))["loss"]
        except NonFiniteLoss:
            break  # the loss diverged to NaN/inf: the sweep is over
        lrs.append(float(lr))
        losses.append(loss)
        smoothed = smooth(losses, beta)
        if smoothed[-1] > diverge * min(smoothed) or not math.isfinite(smoothed[-1]):
            break
    if not lrs:
        raise ValueError("the loss was not finite even at the first lr; lower start_lr")
    steepest, min_over_10 = suggest(lrs, smoothed)
    return LRFindResult(lrs, losses, smoothed, steepest, min_over_10, steepest or min_over_10)


def plot_lr_find(result: LRFindResult, path: Path) -> None:
    """Loss (raw and smoothed) against lr on a log axis, with the suggestions marked; a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses, color="0.75", lw=1, label="loss")
    ax.plot(result.lrs, result.smoothed, color="C0", lw=2, label="smoothed")
    if result.steepest is not None:
        ax.axvline(result.steepest, color="C1", ls="--", label=f"steepest {result.steepest:.2e}")
    ax.axvline(result.min_over_10, color="C2", ls=":", label=f"min/10 {result.min_over_10:.2e}")
    ax.set_xscale("log")
    low, high = min(result.smoothed), max(result.smoothed)
    pad = 0.1 * (high - low) or 1e-3  # the smoothed curve sets the scale; raw spikes may be clipped
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
