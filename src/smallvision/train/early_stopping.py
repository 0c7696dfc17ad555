"""The early-stopping record: the best monitored value so far, its epoch and weights, and when to stop."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from smallvision.config import EarlyStoppingConfig


class BestEpoch:
    """Follows ``train.early_stopping``'s monitor, epoch after epoch.

    Args:
        cfg: the early-stopping section (patience, min_delta).
        mode: ``min`` or ``max`` (already resolved from ``auto``).
    """

    def __init__(self, cfg: EarlyStoppingConfig, mode: str) -> None:
        self.cfg, self.mode = cfg, mode
        self.value: float | None = None
        self.epoch = 0
        self.weights: dict[str, torch.Tensor] | None = None
        self.stop = False

    def update(self, value: float, epoch: int, weights: Callable[[], dict[str, torch.Tensor]]) -> bool:
        """Record epoch ``epoch``'s ``value``; True when it improved (then ``weights()`` is copied).

        ``weights`` is called only on improvement: copying the weights is the costly part.
        """
        sign = 1.0 if self.mode == "max" else -1.0
        improved = self.value is None or sign * (value - self.value) > self.cfg.min_delta
        if improved:
            self.value, self.epoch = value, epoch
            self.weights = copy.deepcopy(weights())
        elif self.cfg.patience is not None and epoch - self.epoch >= self.cfg.patience:
            self.stop = True
        return improved

    def state_dict(self) -> dict:
        return {
            "best_value": self.value,
            "best_epoch": self.epoch,
            "best_state": self.weights,
            "stop": self.stop,
        }

    def load_state_dict(self, state: dict) -> None:
        self.value, self.epoch = state["best_value"], int(state["best_epoch"])
        self.weights, self.stop = state["best_state"], bool(state["stop"])
