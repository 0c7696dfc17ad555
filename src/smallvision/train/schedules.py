"""Learning-rate schedules as a multiplier of the base lr per optimiser step.

Warmup is linear from ~0 to 1 over ``warmup_epochs``; cosine then decays to ``alpha`` (the floor
as a fraction of lr: study 000 decays 1e-3 to 1e-4, alpha = 0.1).

ReduceLROnPlateau (``name: plateau``, or ``plateau: {...}`` on top of any curve) multiplies that
curve by ``factor`` each time the monitor stops improving: ``lr = base * cuts * factor(step)``
for every parameter group (each from its own base, so ``train.lr_mult`` ratios hold).
"""

from __future__ import annotations

import math

import torch

from smallvision.config import PlateauConfig, ScheduleConfig


def lr_factor(cfg: ScheduleConfig, step: int, steps_per_epoch: int, epochs: int) -> float:
    """The lr multiplier after ``step`` optimiser steps (0-based)."""
    total = max(1, steps_per_epoch * epochs)
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if cfg.name == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return cfg.alpha + (1 - cfg.alpha) * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.name == "step":
        return cfg.gamma ** (step // (cfg.step_size * steps_per_epoch))
    if cfg.name == "onecycle":
        # triangular rise over the first 30% then cosine fall to alpha (torch's OneCycleLR shape)
        peak = max(1, int(0.3 * total))
        if step < peak:
            return 0.04 + 0.96 * step / peak
        progress = min(1.0, (step - peak) / max(1, total - peak))
        return cfg.alpha + (1 - cfg.alpha) * 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0  # constant, and plateau (whose cuts step_plateau applies per epoch)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR following :func:`lr_factor`."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch, epochs)
    )


def plateau_settings(cfg: ScheduleConfig) -> PlateauConfig | None:
    """The ReduceLROnPlateau settings of a schedule: ``name: plateau`` (a constant curve) or ``plateau:``."""
    if cfg.name == "plateau":
        return PlateauConfig(patience=cfg.patience, factor=cfg.factor)
    return cfg.plateau


def build_plateau(optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, mode: str):
    """ReduceLROnPlateau when the schedule has one, stepped once per epoch with the monitored value."""
    settings = plateau_settings(cfg)
    if settings is None:
        return None
    # eps 0: every cut counts, however small the lr the curve has reached (torch skips cuts < 1e-8)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=settings.factor, patience=settings.patience, eps=0.0
    )


def step_plateau(plateau, scheduler: torch.optim.lr_scheduler.LambdaLR | None, value: float) -> None:
    """Step ReduceLROnPlateau with the epoch's monitored value and make its cut last.

    The per-step LambdaLR sets ``lr = base_lr * factor`` at every step, which would undo the
    plateau's reduction one step later; scaling the LambdaLR's ``base_lrs`` by the same ratio
    keeps it (and ``base_lrs`` is in the scheduler's state dict, so a resumed run keeps it too).
    """
    groups = plateau.optimizer.param_groups
    before = [g["lr"] for g in groups]
    plateau.step(value)
    if scheduler is not None:
        scheduler.base_lrs = [
            base * g["lr"] / old if old > 0 else base
            for base, g, old in zip(scheduler.base_lrs, groups, before, strict=True)
        ]
