"""Gradual unfreezing (``train.unfreeze``): frozen stages start training at a given epoch.

Every parameter is in the optimiser from the start (``train.optim.param_groups``), frozen ones
with ``requires_grad=False``: optimisers skip a parameter without a gradient, so freezing costs
nothing, and unfreezing only flips ``requires_grad``. The optimiser's state layout therefore never
changes during a run, and a resumed run needs nothing saved beyond the epoch counter: the trainable
set at any epoch follows from the config (:meth:`Unfreezing.apply`).

A released stage trains at its group's lr as the schedule has it at that moment (cosine, plateau
cuts and ``train.lr_mult`` included), not from a fresh warmup; its batch-norm layers follow the
network's mode again (``models.freeze.unfreeze``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from smallvision.config import TrainConfig, UnfreezeStep
from smallvision.models.freeze import resolve_stages, unfreeze
from smallvision.train.optim import stage_multipliers


class Unfreezing:
    """The stages each ``train.unfreeze`` step releases, resolved against one model.

    Args:
        model: the network, with ``model.freeze`` already applied.
        steps: the ``train.unfreeze`` entries.

    Raises:
        UserError: a name or pattern matches no stage of the model (the message lists them).
    """

    def __init__(self, model: nn.Module, steps: Sequence[UnfreezeStep]) -> None:
        # a stage that is not frozen is released as a no-op: a study axis over model.freeze
        # (including "none") can share one unfreeze schedule
        self.plan: list[tuple[int, list[str]]] = [
            (step.epoch, resolve_stages(model, step.stages, f"train.unfreeze[{i}].stages"))
            for i, step in enumerate(steps)
        ]

    def due(self, epoch: int) -> list[str]:
        """The stages released by the start of ``epoch`` (1-based), in plan order, without repeats."""
        out: list[str] = []
        for at, stages in self.plan:
            if at <= epoch:
                out.extend(s for s in stages if s not in out)
        return out

    def apply(self, model: nn.Module, epoch: int) -> list[str]:
        """Release every stage due by ``epoch``; returns those this call released (idempotent).

        The trainer calls it with the epoch about to start, and after loading a state with the last
        completed epoch, so that a resumed run has the trainable set the uninterrupted one had.
        """
        frozen = getattr(model, "frozen_stages", ())
        release = [s for s in self.due(epoch) if s in frozen]
        if release:
            unfreeze(model, release)
        return release


def check_stage_keys(model: nn.Module, cfg: TrainConfig) -> None:
    """Resolve ``train.unfreeze`` and ``train.lr_mult`` against ``model`` now, so that a stage name
    the model lacks is an error before a run directory exists (the trainer resolves them again).

    Raises:
        UserError: as :class:`Unfreezing` and :func:`smallvision.train.optim.stage_multipliers` do.
    """
    Unfreezing(model, cfg.unfreeze)
    stage_multipliers(model, cfg.lr_mult)
