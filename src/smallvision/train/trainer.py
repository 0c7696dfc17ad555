"""A small trainer over in-memory tensors with a fixed list of named events (fastai's habit).

Each batch is a slice of the stored uint8 tensor: index, scale to [0, 1], augment (batched ops),
mix (MixUp / CutMix), corrupt (noise, masking), standardise, forward. No DataLoader, no worker
processes, no per-image Python.

Events, in order: before_fit, before_epoch, before_batch, after_loss, after_batch, after_epoch,
after_fit. A callback is any object with methods of those names taking the trainer.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from smallvision.config import HeadConfig, TrainConfig
from smallvision.data.augment.mix import mix_batch
from smallvision.data.augment.pipeline import IDENTITY, Pipeline
from smallvision.data.normalize import Normalizer
from smallvision.errors import UserError
from smallvision.evaluate.metrics import compute_metrics, scalar_metrics
from smallvision.evaluate.predict import predict, to_outputs
from smallvision.train.ema import EMA
from smallvision.train.inputs import InputPrep
from smallvision.train.losses import build_losses
from smallvision.train.schedules import build_plateau, build_scheduler, step_plateau
from smallvision.train.state import restore_state
from smallvision.train.weighting import LossWeighting

EVENTS = (
    "before_fit",
    "before_epoch",
    "before_batch",
    "after_loss",
    "after_batch",
    "after_epoch",
    "after_fit",
)


@dataclass
class Split:
    """One split in memory: stored images and the target of each head (by head name)."""

    images: torch.Tensor  # (N, C, H, W) uint8 or float
    targets: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)


class NonFiniteLoss(RuntimeError):
    """A head's loss became NaN or infinite: training cannot go on from these weights."""

    def __init__(self, head: str, epoch: int, step: int, value: float, phase: str = "training") -> None:
        self.head, self.epoch, self.step, self.value = head, epoch, step, value
        super().__init__(
            f"non-finite {phase} loss ({value}) in head {head!r} at epoch {epoch}, step {step}; "
            "lower train.optimizer.lr, set train.optimizer.grad_clip, or check the data for NaN"
        )


def build_optimizer(
    model: nn.Module, cfg: TrainConfig, extra: Iterable[nn.Parameter] = ()
) -> torch.optim.Optimizer:
    """The configured optimiser over the model's trainable weights plus ``extra`` (without weight decay)."""
    groups: list[dict] = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    extra = list(extra)
    if extra:  # e.g. uncertainty log-variances: decaying them would bias every head's weight
        groups.append({"params": extra, "weight_decay": 0.0})
    o = cfg.optimizer
    if o.name == "sgd":
        return torch.optim.SGD(
            groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
        )
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(groups, lr=o.lr, weight_decay=o.weight_decay)


def monitor_mode(monitor: str, mode: str) -> str:
    """``min`` for losses and errors, ``max`` for everything else, unless set."""
    if mode != "auto":
        return mode
    last = monitor.rsplit("/", 1)[-1]
    return "min" if last in ("loss", "weighted_loss", "mae", "rmse", "mse") else "max"


class Trainer:
    """Fits a Network to in-memory splits.

    Args:
        model: a Network whose ``forward`` returns {head: output}.
        heads: head name -> HeadConfig (kind, loss, weight, label smoothing ...).
        cfg: the train section of the config.
        normalizer: stored images -> model input (training statistics).
        augment: batched augmentation applied to training batches in [0, 1] (empty: none); its
            corruption ops run after mixing and give reconstruction heads their input.
        seed: seeds the shuffling and augmentation generator and torch's global RNG.
        callbacks: objects with event methods (see EVENTS).
    """

    def __init__(
        self,
        model: nn.Module,
        heads: Mapping[str, HeadConfig],
        cfg: TrainConfig,
        normalizer: Normalizer,
        augment: Pipeline = IDENTITY,
        seed: int = 0,
        callbacks: Sequence[object] = (),
    ) -> None:
        self.model, self.heads, self.cfg = model, dict(heads), cfg
        self.device = next(model.parameters()).device  # the run moved the model to train.device
        self.normalizer, self.augment = normalizer, augment
        self.clean_aug, self.corrupt_aug = augment.split()
        self.input_prep = InputPrep(normalizer, augment)
        self.callbacks = list(callbacks)
        self.kinds = {h: c.kind for h, c in self.heads.items()}
        self.mix_spec = {h: (c.kind, c.classes) for h, c in self.heads.items()}
        torch.manual_seed(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.weighting = LossWeighting(self.heads, cfg.loss_weighting)
        self.optimizer = build_optimizer(model, cfg, self.weighting.parameters())
        self.ema = EMA(model, cfg.ema) if cfg.ema else None
        self.mode = monitor_mode(cfg.early_stopping.monitor, cfg.early_stopping.mode)
        self.plateau = build_plateau(self.optimizer, cfg.schedule, self.mode)
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.loss_fns: dict | None = None
        self.history: list[dict[str, float]] = []
        self.epoch = 0  # epochs completed
        self.step = 0  # optimiser steps taken
        self.elapsed = 0.0  # seconds spent in fit(), summed over resumed sessions
        self.best_value: float | None = None
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stop = False
        self.improved = False
        self.logs: dict[str, float] = {}
        self.val_outputs: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ events

    def emit(self, event: str) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn(self)

    # ------------------------------------------------------------------ fitting

    def steps_per_epoch(self, train: Split) -> int:
        return max(1, len(train) // self.cfg.batch_size)

    def setup(self, train: Split) -> None:
        """Losses (class weights from ``train``) and the per-step lr schedule; idempotent."""
        if self.loss_fns is None:
            self.loss_fns = build_losses(self.heads, train.targets)
        if self.scheduler is None:
            steps = self.steps_per_epoch(train)
            self.scheduler = build_scheduler(self.optimizer, self.cfg.schedule, steps, self.cfg.epochs)

    def fit(self, train: Split, val: Split | None = None, state: dict | None = None) -> None:
        """Train for ``cfg.epochs`` (or until early stopping), then restore the best weights.

        Args:
            train: the training split.
            val: the validation split (early stopping and the best epoch follow it).
            state: a trainer state from ``last.pt`` to continue from (see ``train.state``).
        """
        self.train_split, self.val_split = train, val
        self.setup(train)
        if state is not None:
            restore_state(self, state)
        self._fit_start, self._elapsed_before = time.perf_counter(), self.elapsed
        self.emit("before_fit")
        try:
            while self.epoch < self.cfg.epochs and not self.stop:
                self._run_epoch(train, val)
        finally:
            self.restore_best()
            self.emit("after_fit")

    def batches(self, train: Split) -> list[torch.Tensor]:
        """One epoch of batch indices, shuffled by the trainer's generator."""
        steps, size = self.steps_per_epoch(train), self.cfg.batch_size
        # drop the last partial batch: a batch of 1 breaks BatchNorm and skews the epoch mean
        order = torch.randperm(len(train), generator=self.gen)[: steps * size]
        return list(order.split(size))

    def _run_epoch(self, train: Split, val: Split | None) -> None:
        self.emit("before_epoch")
        start = time.perf_counter()
        self.model.train()
        sums: dict[str, float] = {}
        batches = self.batches(train)
        for self.batch_in_epoch, self.batch_index in enumerate(batches):
            for k, v in self.train_step(train).items():
                sums[k] = sums.get(k, 0.0) + v
        self.epoch += 1
        self.logs = {"epoch": self.epoch, "lr": self.optimizer.param_groups[0]["lr"]}
        self.logs.update({f"train/{k}": v / len(batches) for k, v in sums.items()})
        self.logs.update({f"train/{h}/log_var": s for h, s in self.weighting.log_variances().items()})
        if val is not None and len(val):
            self.logs.update(self.validate(val))
        self.logs["seconds"] = time.perf_counter() - start
        self._track_best()
        self.history.append(dict(self.logs))
        self.elapsed = self._elapsed_before + time.perf_counter() - self._fit_start
        self.emit("after_epoch")

    def prepare_batch(
        self, split: Split, index: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """(model input, targets, mask) of the samples at ``index``, augmented and mixed.

        Order: clean augmentation -> MixUp/CutMix -> corruption -> standardise. A reconstruction
        head's target is the standardised clean (mixed) batch; ``mask`` (B, 1, H, W) marks the
        pixels a masking op hid, or is None.
        """
        # only the batch crosses to the device: the stored set stays in host memory
        x = self.normalizer.to_unit(split.images[index].to(self.device))  # (B, C, H, W) in [0, 1]
        targets = {h: split.targets[h][index].to(self.device) for h in self.heads if h in split.targets}
        x = self.clean_aug(x, self.gen)  # an empty pipeline returns x and draws nothing
        if self.cfg.mix.name != "none":
            m = self.cfg.mix
            x, targets = mix_batch(x, targets, self.mix_spec, m.name, m.alpha, m.prob, self.gen)
        clean, mask = x, None
        if len(self.corrupt_aug):
            x, mask = self.corrupt_aug.masked(x, self.gen)
        x = self.normalizer.standardize(x)
        if "reconstruction" in self.kinds.values():
            target = self.normalizer.standardize(clean) if len(self.corrupt_aug) else x
            targets.update({h: target for h, k in self.kinds.items() if k == "reconstruction"})
        return x, targets, mask

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast around the forward pass when ``train.precision: bf16``."""
        if self.cfg.precision != "bf16":
            return contextlib.nullcontext()
        device = next(self.model.parameters()).device.type
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    def train_step(self, split: Split) -> dict[str, float]:
        """One optimiser step on ``self.batch_index``; returns the batch's losses."""
        self.emit("before_batch")
        x, targets, mask = self.prepare_batch(split, self.batch_index)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            out = self.model(x)
        head_losses = {h: self.loss_fns[h](out[h], targets[h], mask) for h in self.heads}
        self.loss, terms = self.weighting(head_losses)
        self._check_finite({**head_losses, "total": self.loss}, "training")
        self.emit("after_loss")
        self.optimizer.zero_grad(set_to_none=True)
        self.loss.backward()
        if self.cfg.optimizer.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optimizer.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.scheduler.step()
        self.step += 1
        self.emit("after_batch")
        losses = {f"{h}/loss": float(v.detach()) for h, v in head_losses.items()}
        losses.update({f"{h}/weighted_loss": float(v.detach()) for h, v in terms.items()})
        losses["loss"] = float(self.loss.detach())
        return losses

    def _check_finite(self, losses: Mapping[str, torch.Tensor], phase: str) -> None:
        # during training the epoch and step under way are counted (1-based); validation follows an epoch
        ongoing = 1 if phase == "training" else 0
        for h, v in losses.items():
            if not bool(torch.isfinite(v)):
                raise NonFiniteLoss(h, self.epoch + ongoing, self.step + ongoing, float(v.detach()), phase)

    # ------------------------------------------------------------------ validation

    def evaluated(self) -> contextlib.AbstractContextManager:
        """Within the block the model holds the weights that are evaluated (the EMA's when on)."""
        return self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext()

    @torch.no_grad()
    def validate(self, val: Split) -> dict[str, float]:
        """Losses and metrics on ``val``: the same code the final evaluation uses."""
        with self.evaluated():
            raw = predict(self.model, val.images, self.input_prep, list(self.heads), self.cfg.eval_batch_size)
        # true values once: a reconstruction target (the prepared val set) is not rebuilt per use
        y_true = {h: numpy_target(val, h, self.input_prep) for h in self.heads}
        head_losses = {
            h: self.loss_fns[h](torch.from_numpy(raw[h]), torch.from_numpy(y_true[h])) for h in self.heads
        }
        self._check_finite(head_losses, "validation")
        total, terms = self.weighting(head_losses)
        logs: dict[str, float] = {}
        for h in self.heads:
            logs[f"val/{h}/loss"] = float(head_losses[h])
            logs[f"val/{h}/weighted_loss"] = float(terms[h])
        logs["val/loss"] = float(total)
        self.val_outputs = to_outputs(raw, self.kinds)
        metrics = compute_metrics(self.kinds, y_true, self.val_outputs)
        logs.update({f"val/{k}": v for k, v in scalar_metrics(metrics).items()})
        return logs

    def eval_state(self) -> dict[str, torch.Tensor]:
        """The weights that are evaluated: the EMA's shadow when on, else the model's own."""
        return self.ema.shadow if self.ema is not None else self.model.state_dict()

    def _track_best(self) -> None:
        es = self.cfg.early_stopping
        value = self.logs.get(es.monitor)
        if value is None:
            if self.val_split is not None and len(self.val_split):
                keys = ", ".join(k for k in self.logs if k.startswith("val/"))
                raise UserError(f"train.early_stopping.monitor {es.monitor!r}: no such figure (have: {keys})")
            value = self.logs.get("train/loss", 0.0)  # no validation split: best = last epoch by train loss
        if self.plateau is not None:
            step_plateau(self.plateau, self.scheduler, value)
        sign = 1.0 if self.mode == "max" else -1.0
        self.improved = self.best_value is None or sign * (value - self.best_value) > es.min_delta
        if self.improved:
            self.best_value, self.best_epoch = value, self.epoch
            self.best_state = copy.deepcopy(self.eval_state())
        elif es.patience is not None and self.epoch - self.best_epoch >= es.patience:
            self.stop = True

    def restore_best(self) -> None:
        """Load the weights of the best epoch (the final evaluation uses these)."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def numpy_target(split: Split, head: str, prep: InputPrep | Normalizer) -> np.ndarray:
    """A head's true values on ``split`` as numpy; reconstruction: the prepared (standardised) input."""
    if head in split.targets:
        return split.targets[head].numpy()
    return prep(split.images).numpy()


def iterate_batches(trainer: Trainer, train: Split) -> Iterator[torch.Tensor]:
    """Batch indices without end: epoch after epoch of the trainer's shuffles (for the LR range test)."""
    while True:
        yield from trainer.batches(train)
