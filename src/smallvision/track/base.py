"""Trackers: trainer callbacks that also hear how the run ended, and how a run builds them.

A tracker logs each epoch as the trainer's other callbacks do (:class:`smallvision.train.events.Callback`),
and the run calls :meth:`Tracker.finish` once the restored best weights are evaluated and
``metrics.json`` is written (the final figures exist only then), or :meth:`Tracker.abort` when
training failed or was interrupted. Both libraries are optional: switching one on without it
installed is a one-line UserError before anything is written.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smallvision.errors import UserError
from smallvision.rundir.layout import RunPaths
from smallvision.train.events import Callback

if TYPE_CHECKING:
    import torch

    from smallvision.config import RunConfig
    from smallvision.data.augment.pipeline import Pipeline
    from smallvision.rundir import MetricsRecord
    from smallvision.track.config import TrackConfig

# config key, import name, pip package
_PACKAGES = (("track.tensorboard", "tensorboard", "tensorboard"), ("track.mlflow", "mlflow", "mlflow-skinny"))


class Tracker(Callback):
    """A trainer callback told when the run starts and how it ended (:meth:`finish` or :meth:`abort`)."""

    def start(self) -> None:
        """Before training, outside the timed ``fit`` (opening a store can take seconds)."""

    def finish(self, run_dir: Path, metrics: MetricsRecord) -> None:
        """After evaluation: ``metrics`` is the record just written to ``metrics.json``."""

    def abort(self, status: str) -> None:
        """Training ended without a result: ``status`` is ``failed`` or ``interrupted``."""


def check_available(track: TrackConfig) -> None:
    """Raise a one-line UserError for a tracker switched on whose package is not installed."""
    wanted = {"track.tensorboard": track.tensorboard, "track.mlflow": track.mlflow is not None}
    for key, module, package in _PACKAGES:
        if wanted[key] and importlib.util.find_spec(module) is None:
            raise UserError(
                f"{key} is switched on but the package {package!r} is not installed: "
                f"pip install {package} (or pip install -e '.[track]'), or switch {key} off"
            )


def build_trackers(cfg: RunConfig, run_dir: Path, samples: torch.Tensor, augment: Pipeline) -> list[Tracker]:
    """The trackers ``cfg.track`` switches on for the run in ``run_dir``.

    Args:
        cfg: the run's resolved config (its params are logged).
        run_dir: the run directory (TensorBoard writes into it; MLflow's default store is beside it).
        samples: (n, C, H, W) training images shown in TensorBoard (``track.images`` of them).
        augment: the run's training augmentation, to show the samples as the trainer sees them.
    """
    track = cfg.track
    check_available(track)
    out: list[Tracker] = []
    if track.tensorboard:
        from smallvision.track.tensorboard_logger import TensorBoardLogger

        log_dir = RunPaths(run_dir).tensorboard
        out.append(TensorBoardLogger(log_dir, params(cfg), samples, augment, cfg.seed))
    if track.mlflow is not None:
        from smallvision.track.mlflow_logger import MLflowLogger

        out.append(MLflowLogger(track.mlflow, run_dir, cfg.name, params(cfg)))
    return out


def trackers(callbacks: Sequence[Callback]) -> list[Tracker]:
    """The trackers among a trainer's callbacks."""
    return [cb for cb in callbacks if isinstance(cb, Tracker)]


def params(cfg: RunConfig) -> dict[str, Any]:
    """The settings that change training, flat (``train.optimizer.lr``...), plus the run's name."""
    from smallvision.config_training import training_keys

    return {"name": cfg.name, **training_keys(cfg)}


def final_metrics(metrics: MetricsRecord) -> dict[str, float]:
    """``final/<split>/<head>/<metric>`` for every scalar figure of ``metrics.json``.

    The prefix keeps them apart from the per-epoch ``val/...`` columns of ``history.csv``: the
    final validation figures are the best epoch's, evaluated after its weights were restored.
    """
    from smallvision.evaluate.metrics import scalar_metrics

    out = {}
    for split, heads in metrics.splits.items():
        for name, value in scalar_metrics(heads or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                out[f"final/{split}/{name}"] = float(value)
    return out
