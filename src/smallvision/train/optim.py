"""The optimiser a config names, with one parameter group per ``train.lr_mult`` stage.

Every model parameter is in the optimiser, also those ``model.freeze`` fixed: they have
``requires_grad=False``, get no gradient and so are skipped by every torch optimiser (no update, no
weight decay, no state), until ``train.unfreeze`` releases them. The groups and their order are
fixed at construction, so the optimiser's state dict has the same layout at every epoch and a
resumed run loads it as it was saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from smallvision.config import TrainConfig
from smallvision.errors import UserError
from smallvision.models.freeze import resolve_stages, stage_names


def stage_multipliers(model: nn.Module, lr_mult: Mapping[str, float]) -> dict[str, float]:
    """Stage name -> lr multiplier for the stages that ``lr_mult`` (names or patterns) picks, in stage order.

    Raises:
        UserError: a key matches no stage (the message lists the model's stages), or two keys
            match the same stage.
    """
    if not lr_mult:
        return {}
    picked: dict[str, str] = {}
    for key in lr_mult:
        for stage in resolve_stages(model, [key], where=f"train.lr_mult.{key}"):
            if stage in picked:
                raise UserError(
                    f"train.lr_mult: stage {stage!r} is matched by both {picked[stage]!r} and {key!r}; "
                    "give each stage one multiplier"
                )
            picked[stage] = key
    return {s: float(lr_mult[picked[s]]) for s in stage_names(model) if s in picked}


def param_groups(
    model: nn.Module, lr: float, lr_mult: Mapping[str, float], extra: Iterable[nn.Parameter] = ()
) -> list[dict]:
    """Group 0: every parameter without a multiplier (heads, other stages) at ``lr``; then one group
    per multiplied stage at ``lr * mult``; then ``extra`` (no weight decay). Each group names itself
    (``group``) and carries its ``lr_mult``, so that the lr of every group stays ``base * mult``
    under every schedule (torch schedulers scale each group from its own initial lr)."""
    mults = stage_multipliers(model, lr_mult)
    stages = dict(model.stages()) if mults else {}
    taken: set[int] = set()
    staged = []
    for name, mult in mults.items():
        params = [p for p in stages[name].parameters() if id(p) not in taken]
        taken.update(id(p) for p in params)
        staged.append({"params": params, "lr": lr * mult, "lr_mult": mult, "group": name})
    rest = [p for p in model.parameters() if id(p) not in taken]
    groups = [{"params": rest, "lr": lr, "lr_mult": 1.0, "group": "default"}, *staged]
    extra = list(extra)
    if extra:  # e.g. uncertainty log-variances: decaying them would bias every head's weight
        groups.append({"params": extra, "lr": lr, "weight_decay": 0.0, "lr_mult": 1.0, "group": "extra"})
    return groups


def build_optimizer(
    model: nn.Module, cfg: TrainConfig, extra: Iterable[nn.Parameter] = ()
) -> torch.optim.Optimizer:
    """The configured optimiser over every model parameter (frozen ones are skipped while frozen)
    plus ``extra``, grouped by :func:`param_groups`."""
    o = cfg.optimizer
    groups = param_groups(model, o.lr, cfg.lr_mult, extra)
    if o.name == "sgd":
        return torch.optim.SGD(
            groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
        )
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(groups, lr=o.lr, weight_decay=o.weight_decay)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Mapping, where: str) -> None:
    """Load a saved optimiser state; one of another group layout is a UserError naming ``where``."""
    try:
        optimizer.load_state_dict(state)
    except ValueError as exc:  # torch: a group of another size, or another number of groups
        raise UserError(
            f"checkpoint {where}: its optimiser state does not fit this run's parameter groups "
            f"({exc}); it was written by another version or with another train.lr_mult"
        ) from None
