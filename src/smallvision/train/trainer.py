"""A small trainer over in-memory tensors with a fixed list of named events (fastai's habit).

Each batch is a slice of the stored uint8 tensor: index, scale to [0, 1], augment (batched ops),
standardise, forward. No DataLoader, no worker processes, no per-image Python.

Events, in order: before_fit, before_epoch, before_batch, after_loss, after_batch, after_epoch,
after_fit. A callback is any object with methods of those names taking the trainer.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from smallvision.config import HeadConfig, TrainConfig
from smallvision.data.augment import Augmentation
from smallvision.data.splits import Normalizer
from smallvision.evaluate.metrics import compute_metrics, scalar_metrics
from smallvision.evaluate.predict import predict, to_outputs
from smallvision.train.losses import head_loss
from smallvision.train.schedules import build_plateau, build_scheduler

EVENTS = ("before_fit", "before_epoch", "before_batch", "after_loss", "after_batch", "after_epoch", "after_fit")


@dataclass
class Split:
    """One split in memory: stored images and the target of each head (by head name)."""

    images: torch.Tensor  # (N, C, H, W) uint8 or float
    targets: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    o = cfg.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(params, lr=o.lr, weight_decay=o.weight_decay)


def monitor_mode(monitor: str, mode: str) -> str:
    """``min`` for losses and errors, ``max`` for everything else, unless set."""
    if mode != "auto":
        return mode
    last = monitor.rsplit("/", 1)[-1]
    return "min" if last in ("loss", "mae", "rmse", "mse") else "max"


class Trainer:
    """Fits a Network to in-memory splits.

    Args:
        model: a Network whose ``forward`` returns {head: output}.
        heads: head name -> HeadConfig (kind, loss, weight, label smoothing).
        cfg: the train section of the config.
        normalizer: stored images -> model input (training statistics).
        augment: batched augmentation applied to training batches in [0, 1].
        seed: seeds the shuffling and augmentation generator and torch's global RNG.
        callbacks: objects with event methods (see EVENTS).
    """

    def __init__(
        self,
        model: nn.Module,
        heads: Mapping[str, HeadConfig],
        cfg: TrainConfig,
        normalizer: Normalizer,
        augment: Augmentation | None = None,
        seed: int = 0,
        callbacks: Sequence[object] = (),
    ) -> None:
        self.model, self.heads, self.cfg = model, dict(heads), cfg
        self.normalizer, self.augment = normalizer, augment
        self.callbacks = list(callbacks)
        self.kinds = {h: c.kind for h, c in self.heads.items()}
        self.loss_fns = {h: head_loss(h, c) for h, c in self.heads.items()}
        torch.manual_seed(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.optimizer = build_optimizer(model, cfg)
        self.mode = monitor_mode(cfg.early_stopping.monitor, cfg.early_stopping.mode)
        self.plateau = build_plateau(self.optimizer, cfg.schedule, self.mode)
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.history: list[dict[str, float]] = []
        self.epoch = 0  # epochs completed
        self.step = 0
        self.best_value: float | None = None
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stop = False
        self.logs: dict[str, float] = {}
        self.val_outputs: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ events

    def emit(self, event: str) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn(self)

    # ------------------------------------------------------------------ fitting

    def fit(self, train: Split, val: Split | None = None) -> None:
        """Train for ``cfg.epochs`` (or until early stopping), then restore the best weights."""
        self.train_split, self.val_split = train, val
        steps = max(1, len(train) // self.cfg.batch_size)
        if self.scheduler is None:
            self.scheduler = build_scheduler(self.optimizer, self.cfg.schedule, steps, self.cfg.epochs)
        self.emit("before_fit")
        try:
            while self.epoch < self.cfg.epochs and not self.stop:
                self._run_epoch(train, val, steps)
        finally:
            self.restore_best()
            self.emit("after_fit")

    def _run_epoch(self, train: Split, val: Split | None, steps: int) -> None:
        self.emit("before_epoch")
        start = time.perf_counter()
        self.model.train()
        # drop the last partial batch: a batch of 1 breaks BatchNorm and skews the epoch mean
        order = torch.randperm(len(train), generator=self.gen)[: steps * self.cfg.batch_size]
        sums: dict[str, float] = {}
        for i in range(steps):
            self.batch_index = order[i * self.cfg.batch_size : (i + 1) * self.cfg.batch_size]
            losses = self.train_step(train)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
        self.epoch += 1
        self.logs = {"epoch": self.epoch, "lr": self.optimizer.param_groups[0]["lr"]}
        self.logs.update({f"train/{k}": v / steps for k, v in sums.items()})
        if val is not None and len(val):
            self.logs.update(self.validate(val))
        self.logs["seconds"] = time.perf_counter() - start
        self._track_best()
        self.history.append(dict(self.logs))
        self.emit("after_epoch")

    def prepare_batch(self, split: Split, index: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The model input of the samples at ``index`` with augmentation, and their targets."""
        x = self.normalizer.to_unit(split.images[index])  # (B, C, H, W) in [0, 1]
        if self.augment is not None:
            x = self.augment(x, self.gen)
        x = self.normalizer.standardize(x)
        targets = {h: split.targets[h][index] for h in self.heads if h in split.targets}
        for h, kind in self.kinds.items():
            if kind == "reconstruction":
                targets[h] = x  # the (augmented) clean input is what the decoder must give back
        return x, targets

    def train_step(self, split: Split) -> dict[str, float]:
        """One optimiser step on ``self.batch_index``; returns the batch's losses."""
        self.emit("before_batch")
        x, targets = self.prepare_batch(split, self.batch_index)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = self.model(x)
        head_losses = {h: self.loss_fns[h](out[h], targets[h]) for h in self.heads}
        self.loss = sum(self.heads[h].weight * v for h, v in head_losses.items())
        self.emit("after_loss")
        self.optimizer.zero_grad(set_to_none=True)
        self.loss.backward()
        if self.cfg.optimizer.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optimizer.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self.emit("after_batch")
        losses = {f"{h}/loss": float(v.detach()) for h, v in head_losses.items()}
        losses["loss"] = float(self.loss.detach())
        return losses

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self, val: Split) -> dict[str, float]:
        """Losses and metrics on ``val``: the same code the final evaluation uses."""
        raw = predict(self.model, val.images, self.normalizer, list(self.heads), self.cfg.eval_batch_size)
        logs: dict[str, float] = {}
        total = 0.0
        for h, cfg in self.heads.items():
            target = val.targets.get(h)
            if cfg.kind == "reconstruction":
                target = self.normalizer(val.images)
            loss = float(self.loss_fns[h](torch.from_numpy(raw[h]), target))
            logs[f"val/{h}/loss"] = loss
            total += cfg.weight * loss
        logs["val/loss"] = total
        self.val_outputs = to_outputs(raw, self.kinds)
        y_true = {h: _numpy_target(val, h, self.normalizer) for h in self.heads}
        metrics = compute_metrics(self.kinds, y_true, self.val_outputs)
        logs.update({f"val/{k}": v for k, v in scalar_metrics(metrics).items()})
        return logs

    def _track_best(self) -> None:
        es = self.cfg.early_stopping
        value = self.logs.get(es.monitor)
        if value is None:
            if self.val_split is not None and len(self.val_split):
                from smallvision.errors import UserError

                keys = ", ".join(k for k in self.logs if k.startswith("val/"))
                raise UserError(f"train.early_stopping.monitor {es.monitor!r}: no such figure (have: {keys})")
            value = self.logs.get("train/loss", 0.0)  # no validation split: best = last epoch by train loss
        if self.plateau is not None:
            self.plateau.step(value)
        sign = 1.0 if self.mode == "max" else -1.0
        if self.best_value is None or sign * (value - self.best_value) > es.min_delta:
            self.best_value, self.best_epoch = value, self.epoch
            self.best_state = copy.deepcopy(self.model.state_dict())
            self.improved = True
        else:
            self.improved = False
            if es.patience is not None and self.epoch - self.best_epoch >= es.patience:
                self.stop = True

    def restore_best(self) -> None:
        """Load the weights of the best epoch (the final evaluation uses these)."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def _numpy_target(split: Split, head: str, normalizer: Normalizer) -> np.ndarray:
    if head in split.targets:
        return split.targets[head].numpy()
    return normalizer(split.images).numpy()  # reconstruction: the standardised input
