"""A small trainer over in-memory tensors with a fixed list of named events (fastai's habit).

Each batch is a slice of the stored uint8 tensor: index, scale to [0, 1], augment (batched ops),
mix (MixUp / CutMix), corrupt (noise, masking), standardise, forward. No DataLoader, no worker
processes, no per-image Python.

Callbacks subclass ``train.events.Callback``; each epoch gives them an ``EpochRecord``. The trainer
saves and restores its own state (``state_dict`` / ``load_state_dict``): a resumed fit continues
with exactly the numbers of one never interrupted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from smallvision.config import HeadConfig, TrainConfig
from smallvision.data.augment.mix import mix_batch
from smallvision.data.augment.pipeline import IDENTITY, Pipeline
from smallvision.data.normalize import Normalizer
from smallvision.errors import UserError
from smallvision.evaluate.metrics import compute_metrics, higher_is_better, scalar_metrics
from smallvision.evaluate.predict import to_outputs
from smallvision.registry import HEAD_KINDS
from smallvision.train.checkpoint import load_model_state
from smallvision.train.early_stopping import BestEpoch
from smallvision.train.ema import EMA
from smallvision.train.evaluation import Split, evaluation_split, numpy_target, predict_split
from smallvision.train.events import BatchInfo, Callback, EpochRecord, Hooks
from smallvision.train.inputs import InputPrep, corrupts_evaluation
from smallvision.train.losses import build_losses
from smallvision.train.optim import build_optimizer, load_optimizer_state
from smallvision.train.rng import rng_state, seed_everything, set_rng_state
from smallvision.train.schedules import build_plateau, build_scheduler, step_plateau
from smallvision.train.unfreeze import Unfreezing
from smallvision.train.weighting import LossWeighting

# the layout of state_dict(); a checkpoint of another layout is refused, not misread
STATE_FORMAT = 2
STATE_KEYS = ("format", "model", "optimizer", "scheduler", "weighting", "epoch", "step", "history",
              "early_stopping", "rng")  # fmt: skip


class NonFiniteLoss(RuntimeError):
    """A head's loss became NaN or infinite: training cannot go on from these weights."""

    def __init__(self, head: str, epoch: int, step: int, value: float, phase: str = "training") -> None:
        self.head, self.epoch, self.step, self.value = head, epoch, step, value
        super().__init__(
            f"non-finite {phase} loss ({value}) in head {head!r} at epoch {epoch}, step {step}; "
            "lower train.optimizer.lr, set train.optimizer.grad_clip, or check the data for NaN"
        )


def monitor_mode(monitor: str, mode: str) -> str:
    """``mode`` unless ``auto``; then the metric table's direction (``higher_is_better``)."""
    if mode != "auto":
        return mode
    try:
        return "max" if higher_is_better(monitor) else "min"
    except UserError as exc:
        raise UserError(f"train.early_stopping.monitor: {exc}; or set train.early_stopping.mode") from None


class Trainer:
    """Fits a Network to in-memory splits.

    Args:
        model: a Network whose ``forward`` returns {head: output}.
        heads: head name -> HeadConfig (kind, loss, weight, label smoothing ...).
        cfg: the train section of the config.
        normalizer: stored images -> model input (training statistics).
        augment: batched augmentation applied to training batches in [0, 1] (empty: none); its
            corruption ops run after mixing and give reconstruction heads their input.
        seed: seeds every random stream of training (``train.rng.seed_everything``).
        callbacks: ``train.events.Callback`` objects, called in this order at each event.
    """

    def __init__(
        self,
        model: nn.Module,
        heads: Mapping[str, HeadConfig],
        cfg: TrainConfig,
        normalizer: Normalizer,
        augment: Pipeline = IDENTITY,
        seed: int = 0,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.model, self.heads, self.cfg = model, dict(heads), cfg
        # what training batches go through: the model, or its DistributedDataParallel wrapper
        # (train.parallel); self.model stays the plain module that is saved and evaluated
        self.forward_module: nn.Module = model
        self.device = next(model.parameters()).device  # the run moved the model to train.device
        self.normalizer, self.augment = normalizer, augment
        self.clean_aug, self.corrupt_aug = augment.split()
        self.hooks = Hooks(callbacks)
        self.kinds = {h: c.kind for h, c in self.heads.items()}
        # evaluation inputs: an autoencoder's corrupted like its training batches (fixed seed)
        self.input_prep = InputPrep(normalizer, augment, corrupts_evaluation(self.kinds.values()))
        # heads (reconstruction) whose target is the clean input batch
        self.input_targets = [h for h, c in self.heads.items() if HEAD_KINDS.get(c.kind).target_is_input]
        self.mix_spec = {h: (c.kind, c.classes) for h, c in self.heads.items()}
        self.gen = seed_everything(seed)  # shuffling, augmentation, mixing; dropout via the global RNG
        self.weighting = LossWeighting(self.heads, cfg.loss_weighting)
        self.optimizer = build_optimizer(model, cfg, self.weighting.parameters())
        self.unfreezing = Unfreezing(model, cfg.unfreeze)  # stages released at an epoch's start
        self.ema = EMA(model, cfg.ema) if cfg.ema else None
        self.mode = monitor_mode(cfg.early_stopping.monitor, cfg.early_stopping.mode)
        self.plateau = build_plateau(self.optimizer, cfg.schedule, self.mode)
        self.best = BestEpoch(cfg.early_stopping, self.mode)
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.loss_fns: dict | None = None
        self.history: list[dict[str, float]] = []  # one EpochRecord.row() per completed epoch
        self.epoch = 0  # epochs completed
        self.step = 0  # optimiser steps taken
        self.elapsed = 0.0  # seconds spent in fit(), summed over resumed sessions

    @property
    def best_epoch(self) -> int:
        """The epoch whose weights are the best so far (0 before the first epoch)."""
        return self.best.epoch

    @property
    def stop(self) -> bool:
        """Early stopping ended (or will end) the fit."""
        return self.best.stop

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """Everything that influences what comes next, at an epoch boundary: weights, optimiser,
        schedules, EMA, loss weighting, early stopping with the best weights, history and every
        random stream. Tensors and plain containers only, so it loads with ``weights_only=True``."""
        optional = {"scheduler": self.scheduler, "plateau": self.plateau, "ema": self.ema}
        return {
            "format": STATE_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **{k: part.state_dict() if part is not None else None for k, part in optional.items()},
            "weighting": self.weighting.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "elapsed": self.elapsed,
            "history": self.history,
            "early_stopping": self.best.state_dict(),
            "rng": rng_state(self.gen),
        }

    def load_state_dict(self, state: Mapping[str, Any], where: str = "last.pt") -> None:
        """Continue from a :meth:`state_dict` (call :meth:`setup` first: the lr schedule is sized by
        the training split). A state of another layout, model or EMA setting is a UserError naming ``where``."""
        missing = [k for k in STATE_KEYS if k not in state]
        if missing:
            raise UserError(
                f"checkpoint {where} is incomplete: missing {', '.join(missing)}; it cannot be resumed"
            )
        if state["format"] != STATE_FORMAT:
            raise UserError(
                f"checkpoint {where} has format {state['format']}, this version reads format {STATE_FORMAT}"
            )
        if (state["ema"] is None) != (self.ema is None):
            raise UserError(f"checkpoint {where}: train.ema differs between the checkpoint and the config")
        if state["scheduler"] is not None and self.scheduler is None:
            raise RuntimeError("Trainer.load_state_dict: call setup(train) first")
        load_model_state(self.model, state["model"], where)
        load_optimizer_state(self.optimizer, state["optimizer"], where)
        for key, part in (("scheduler", self.scheduler), ("plateau", self.plateau), ("ema", self.ema)):
            if state.get(key) is not None and part is not None:
                part.load_state_dict(state[key])
        self.weighting.load_state_dict(state["weighting"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.unfreezing.apply(self.model, self.epoch)  # the trainable set of the epoch saved
        self.elapsed = float(state.get("elapsed", 0.0))
        self.history = [dict(row) for row in state["history"]]
        self.best.load_state_dict(state["early_stopping"])
        set_rng_state(self.gen, state["rng"])

    def best_state_dict(self) -> dict[str, Any]:
        """What ``best.pt`` holds of the trainer: the best epoch's evaluated weights, its number, and
        whether they are the EMA's."""
        return {"model": self.best.weights, "epoch": self.best.epoch, "ema": self.ema is not None}

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

    def fit(self, train: Split, val: Split | None = None, state: Mapping[str, Any] | None = None) -> None:
        """Train for ``cfg.epochs`` (or until early stopping), then restore the best weights.

        Args:
            train: the training split.
            val: the validation split (early stopping and the best epoch follow it).
            state: a :meth:`state_dict` (e.g. from ``last.pt``) to continue from.
        """
        self.setup(train)
        if state is not None:
            self.load_state_dict(state)
        if val is not None:  # corrupted once (a denoising / masked autoencoder), the same every epoch
            val = evaluation_split(val, self.input_prep)
        fit_start, elapsed_before = time.perf_counter(), self.elapsed
        for fn in self.hooks.by_event["before_fit"]:
            fn(self)
        try:
            while self.epoch < self.cfg.epochs and not self.stop:
                record = self._run_epoch(train, val)
                self.elapsed = elapsed_before + time.perf_counter() - fit_start
                for fn in self.hooks.by_event["after_epoch"]:
                    fn(self, record)
        finally:
            self.restore_best()
            for fn in self.hooks.by_event["after_fit"]:
                fn(self)

    def batches(self, train: Split) -> list[torch.Tensor]:
        """One epoch of batch indices, shuffled by the trainer's generator."""
        steps, size = self.steps_per_epoch(train), self.cfg.batch_size
        # drop the last partial batch: a batch of 1 breaks BatchNorm and skews the epoch mean
        order = torch.randperm(len(train), generator=self.gen)[: steps * size]
        return list(order.split(size))

    def _run_epoch(self, train: Split, val: Split | None) -> EpochRecord:
        """One epoch: its batches, validation, the early-stopping decision, and its history row."""
        start = time.perf_counter()
        self.unfreezing.apply(self.model, self.epoch + 1)
        self.model.train()
        sums: dict[str, float] = {}
        batches = self.batches(train)
        before, after = self.hooks.by_event["before_batch"], self.hooks.by_event["after_batch"]
        for i, index in enumerate(batches):
            info = BatchInfo(self.epoch + 1, i, self.step) if before or after else None
            for fn in before:
                fn(self, info)
            for k, v in self.train_step(train, index).items():
                sums[k] = sums.get(k, 0.0) + v
            for fn in after:
                fn(self, info)
        self.epoch += 1
        losses = self.epoch_losses(sums, len(batches))
        losses.update({f"{h}/log_var": s for h, s in self.weighting.log_variances().items()})
        has_val = val is not None and len(val) > 0
        val_logs = self.validate(val) if has_val else {}
        lr = self.optimizer.param_groups[0]["lr"]
        record = EpochRecord(self.epoch, lr, time.perf_counter() - start, losses, val_logs)
        value = self._monitored(record.row(), has_val)
        if self.plateau is not None:
            step_plateau(self.plateau, self.scheduler, value)
        is_best = self.best.update(value, self.epoch, self.eval_state)
        record = replace(record, monitored=value, is_best=is_best, best_epoch=self.best.epoch, stop=self.stop)
        self.history.append(record.row())
        return record

    def epoch_losses(self, sums: Mapping[str, float], batches: int) -> dict[str, float]:
        """The epoch's mean training losses from their sums over its ``batches`` (after its last
        batch, before validation; the distributed trainer averages them over its ranks here)."""
        return {k: v / batches for k, v in sums.items()}

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
        if self.input_targets:
            target = self.normalizer.standardize(clean) if len(self.corrupt_aug) else x
            targets.update({h: target for h in self.input_targets})
        return x, targets, mask

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast around the forward pass when ``train.precision: bf16``."""
        if self.cfg.precision != "bf16":
            return contextlib.nullcontext()
        device = next(self.model.parameters()).device.type
        return torch.autocast(device_type=device, dtype=torch.bfloat16)

    def train_step(self, split: Split, index: torch.Tensor) -> dict[str, float]:
        """One optimiser step on the samples of ``split`` at ``index``; returns the batch's losses
        (``loss``, ``<head>/loss``, ``<head>/weighted_loss``)."""
        x, targets, mask = self.prepare_batch(split, index)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with self.autocast():
            out = self.forward_module(x)
        head_losses = {h: self.loss_fns[h](out[h], targets[h], mask) for h in self.heads}
        loss, terms = self.weighting(head_losses)
        self._check_finite({**head_losses, "total": loss}, "training")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.optimizer.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optimizer.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.scheduler.step()
        self.step += 1
        losses = {f"{h}/loss": float(v.detach()) for h, v in head_losses.items()}
        losses.update({f"{h}/weighted_loss": float(v.detach()) for h, v in terms.items()})
        losses["loss"] = float(loss.detach())
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
        """Losses and metrics on ``val`` (``loss``, ``<head>/loss``, ``<head>/accuracy`` ...): the same
        code the final evaluation uses (:mod:`smallvision.train.evaluation`)."""
        val = evaluation_split(val, self.input_prep)
        with self.evaluated():
            raw = predict_split(self.model, val, self.input_prep, list(self.heads), self.cfg.eval_batch_size)
        # true values once: a reconstruction target (the prepared val set) is not rebuilt per use
        y_true = {h: numpy_target(val, h, self.input_prep) for h in self.heads}
        head_losses = {
            h: self.loss_fns[h](torch.from_numpy(raw[h]), torch.from_numpy(y_true[h]), val.mask)
            for h in self.heads
        }
        self._check_finite(head_losses, "validation")
        total, terms = self.weighting(head_losses)
        logs: dict[str, float] = {}
        for h in self.heads:
            logs[f"{h}/loss"] = float(head_losses[h])
            logs[f"{h}/weighted_loss"] = float(terms[h])
        logs["loss"] = float(total)
        metrics = compute_metrics(self.kinds, y_true, to_outputs(raw, self.kinds), self.normalizer)
        logs.update(scalar_metrics(metrics))
        return logs

    def eval_state(self) -> dict[str, torch.Tensor]:
        """The weights that are evaluated: the EMA's shadow when on, else the model's own."""
        return self.ema.shadow if self.ema is not None else self.model.state_dict()

    def _monitored(self, row: Mapping[str, float], has_val: bool) -> float:
        """The early-stopping monitor's value in an epoch's history row."""
        monitor = self.cfg.early_stopping.monitor
        value = row.get(monitor)
        if value is None:
            if has_val:
                keys = ", ".join(k for k in row if k.startswith("val/"))
                raise UserError(f"train.early_stopping.monitor {monitor!r}: no such figure (have: {keys})")
            value = row.get("train/loss", 0.0)  # no validation split: best = last epoch by train loss
        return value

    def restore_best(self) -> None:
        """Load the weights of the best epoch (the final evaluation uses these)."""
        if self.best.weights is not None:
            self.model.load_state_dict(self.best.weights)
