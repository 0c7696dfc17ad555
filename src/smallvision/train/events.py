"""The trainer's named events (fastai's habit), what each receives, and the record of an epoch.

A callback subclasses :class:`Callback` and overrides the events it needs; each receives the
trainer (for its public API: ``model``, ``epoch``, ``history``, ``state_dict()``, ``eval_state()``)
and, where there is one, a record of what just happened. Events, in order::

    before_fit -> (before_batch -> after_batch)* -> after_epoch ... -> after_fit

Only events something uses exist: a progress bar needs the fit's ends, the history file and the
checkpoints need each epoch, and fault-injection (tests, kill-and-resume) needs the batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smallvision.train.trainer import Trainer

EVENTS = ("before_fit", "before_batch", "after_batch", "after_epoch", "after_fit")


@dataclass(frozen=True)
class BatchInfo:
    """Where a batch falls.

    Attributes:
        epoch: the epoch under way, counted from 1.
        index: the batch's position in that epoch, counted from 0.
        step: optimiser steps taken before this batch.
    """

    epoch: int
    index: int
    step: int


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch gave: one row of ``history.csv``, plus the early-stopping verdict.

    Attributes:
        epoch: the epoch just completed, counted from 1.
        lr: the learning rate after its last step.
        seconds: wall time of the epoch (training and validation).
        train: mean training losses over its batches (``loss``, ``<head>/loss``,
            ``<head>/weighted_loss``) and, under uncertainty weighting, ``<head>/log_var``.
        val: validation losses and metrics (``loss``, ``<head>/accuracy`` ...); empty without a
            validation split.
        monitored: the early-stopping monitor's value this epoch.
        is_best: this epoch improved on the best so far (its weights are the best weights now).
        best_epoch: the best epoch so far (this one when ``is_best``).
        stop: early stopping ends the fit after this epoch.
    """

    epoch: int
    lr: float
    seconds: float
    train: Mapping[str, float]
    val: Mapping[str, float] = field(default_factory=dict)
    monitored: float = 0.0
    is_best: bool = False
    best_epoch: int = 0
    stop: bool = False

    def row(self) -> dict[str, float]:
        """The epoch as a flat ``history.csv`` row: ``epoch``, ``lr``, ``train/...``, ``val/...``, ``seconds``."""
        return {
            "epoch": self.epoch,
            "lr": self.lr,
            **{f"train/{k}": v for k, v in self.train.items()},
            **{f"val/{k}": v for k, v in self.val.items()},
            "seconds": self.seconds,
        }


class Callback:
    """Base of trainer callbacks: every event is a no-op until overridden."""

    def before_fit(self, trainer: Trainer) -> None:
        """Before the first epoch of ``fit`` (after a resumed state is loaded: ``trainer.epoch`` may be > 0)."""

    def before_batch(self, trainer: Trainer, batch: BatchInfo) -> None:
        """Before a training batch is prepared."""

    def after_batch(self, trainer: Trainer, batch: BatchInfo) -> None:
        """After the optimiser step of a training batch."""

    def after_epoch(self, trainer: Trainer, record: EpochRecord) -> None:
        """After an epoch's validation and early-stopping decision; ``trainer.history`` ends with it."""

    def after_fit(self, trainer: Trainer) -> None:
        """When ``fit`` ends, normally or by an exception, after the best weights are restored."""


class Hooks:
    """The callbacks that override each event, found once so that a batch calls only those."""

    def __init__(self, callbacks: Sequence[Callback]) -> None:
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"trainer callback {cb!r} is not a smallvision.train.events.Callback")
        self.callbacks = list(callbacks)
        self.by_event = {
            e: [getattr(cb, e) for cb in callbacks if getattr(type(cb), e) is not getattr(Callback, e)]
            for e in EVENTS
        }
