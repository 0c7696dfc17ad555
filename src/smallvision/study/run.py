"""One run: config -> data -> model -> training -> evaluation -> run directory -> report.

The public entry point, which also runs seed groups, is :func:`smallvision.study.api.run`.

The steps are separate functions so that a resumed run (``study.resume``) and the members of a
seed group (``study.ensemble``) go through exactly the same code as a fresh run:
:func:`prepare` (data, split, statistics, model), :func:`make_trainer`, :func:`train_and_finish`
(training with failure and interrupt records, then :func:`smallvision.study.finish.finish`:
evaluation and files).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smallvision.config import HeadConfig, RunConfig, apply_overrides, build_config, load_config, to_yaml
from smallvision.data.augment.pipeline import Pipeline, build_augment
from smallvision.data.dataset import ImageSet
from smallvision.data.load import load_data
from smallvision.data.mapped import take_rows
from smallvision.data.normalize import Normalizer, fit_normalizer
from smallvision.data.splits import Splits, make_splits
from smallvision.errors import UserError
from smallvision.evaluate.metrics import compute_metrics, scalar_metrics
from smallvision.models.base import Network
from smallvision.models.build import build_model
from smallvision.models.transfer import apply_transfer
from smallvision.rundir import (
    Failure,
    MetricsRecord,
    RunPaths,
    environment,
    new_run_dir,
    write_json,
    write_npz,
    write_text,
)
from smallvision.rundir.layout import check_output_dir
from smallvision.study.finish import RunResult, evaluate_split, finish  # RunResult: also imported from here
from smallvision.study.resolve import (  # also imported from here by baselines and features mode
    add_eval_sets,
    head_targets,
    resolve_device,
    resolve_heads,
)
from smallvision.track.base import build_trackers, check_available, trackers
from smallvision.train import distributed
from smallvision.train.callbacks import Checkpoint, HistoryCSV, Progress
from smallvision.train.events import Callback
from smallvision.train.inputs import InputPrep, corrupts_evaluation
from smallvision.train.parallel import DistributedTrainer
from smallvision.train.rng import seed_everything
from smallvision.train.trainer import NonFiniteLoss, Split, Trainer, monitor_mode
from smallvision.train.unfreeze import check_stage_keys


class TrainingFailed(UserError):
    """Training stopped on a non-finite loss; ``metrics.json`` records it and the CLI exits with 2."""

    def __init__(self, message: str, run_dir: Path) -> None:
        super().__init__(message)
        self.dir = run_dir


@dataclass
class Prepared:
    """Everything a run needs before training: resolved config, data, splits, statistics, model."""

    cfg: RunConfig
    data: ImageSet
    heads: dict[str, HeadConfig]
    splits: dict[str, np.ndarray]
    split_data: dict[str, Split]
    normalizer: Normalizer
    augment: Pipeline
    model: Network | None  # None: a features-mode run with a scikit-learn head (no trainer)
    meta: dict


def resolve_config(config: Any = None, overrides: dict[str, Any] | list[str] | None = None) -> RunConfig:
    """A RunConfig from a path, a mapping, a RunConfig or None (defaults), with overrides applied."""
    if isinstance(config, RunConfig):
        return build_config(apply_overrides(config.model_dump(mode="json"), overrides or {}))
    if isinstance(config, dict):
        return build_config(apply_overrides(config, overrides or {}))
    return load_config(config, overrides or {})


@dataclass
class PreparedData:
    """The data half of :class:`Prepared`: config with resolved heads, data, heads and splits."""

    cfg: RunConfig
    data: ImageSet
    heads: dict[str, HeadConfig]
    splits: Splits


def prepare_data(cfg: RunConfig) -> PreparedData:
    """The data, resolved heads and splits of ``cfg``: what network and baseline runs share.

    The data comes from :func:`smallvision.data.load.load_data`, as for ``data preview``: its own
    randomness (synthetic builtins) follows ``data.split.seed``, not the run's ``seed``.
    """
    data = load_data(cfg.data)
    heads = resolve_heads(cfg, data)
    return PreparedData(
        cfg.model_copy(update={"heads": heads}), data, heads, make_splits(data, cfg.data.split)
    )


def prepare(cfg: RunConfig) -> Prepared:
    """Data, split (:func:`prepare_data`), training statistics and a freshly initialised model.

    With ``features:`` (frozen-encoder mode) the splits hold the encoder's cached features
    instead of images: :func:`smallvision.study.features.prepare_features`.
    """
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    distributed.init()  # under torchrun: join the other ranks (a no-op otherwise)
    if cfg.features is not None:
        from smallvision.study.features import prepare_features

        return prepare_features(cfg)
    d = prepare_data(cfg)
    cfg, data, heads, splits = d.cfg, d.data, d.heads, d.splits
    normalizer = fit_normalizer(take_rows(data.images, splits["train"]), cfg.data.normalize)
    augment = build_augment(cfg.data.augment)
    seed_everything(cfg.seed)  # the same weights for the same seed, whatever ran before
    device = resolve_device(cfg.train.device)
    distributed.use_device(device)  # under torchrun on CUDA: this rank's GPU
    model = build_model(cfg.model.name, cfg.model.params, data.shape, heads).to(device)
    apply_transfer(model, cfg.model.init, cfg.model.freeze)
    check_stage_keys(model, cfg.train)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)
    meta = {
        "config": cfg.model_dump(mode="json"),
        "normalizer": normalizer.to_dict(),
        "input_shape": list(data.shape),
    }
    split_data = {
        s: Split(take_rows(data.images, i), head_targets(data, heads, i)) for s, i in splits.items()
    }
    add_eval_sets(cfg, data, heads, splits, split_data)
    return Prepared(cfg, data, heads, splits, split_data, normalizer, augment, model, meta)


def make_trainer(p: Prepared, run_dir: Path, callbacks: Sequence[Callback] = ()) -> Trainer:
    """The trainer of a run, writing ``history.csv`` and checkpoints into ``run_dir``.

    Under torchrun every rank trains (:class:`DistributedTrainer`; with one process it is the plain
    Trainer) and only rank 0 has the callbacks, so only rank 0 writes.
    """
    # shown by TensorBoard; none in features mode, whose splits hold (N, F, 1, 1) feature vectors
    samples = p.split_data["train"].images[: 0 if p.cfg.features is not None else p.cfg.track.images]
    writers = [
        HistoryCSV(RunPaths(run_dir).history),
        # before the checkpoint: an epoch logged but not saved is run again and replaces its log
        *build_trackers(p.cfg, run_dir, samples, p.augment),
        Checkpoint(RunPaths(run_dir).checkpoints, p.meta),
        Progress(p.cfg.train.progress),
        *callbacks,
    ]
    return DistributedTrainer(
        p.model,
        p.heads,
        p.cfg.train,
        p.normalizer,
        p.augment,
        seed=p.cfg.seed,
        callbacks=writers if distributed.world().is_main else [],
    )


def run_config(
    cfg: RunConfig,
    run_dir: Path | None = None,
    callbacks: Sequence[Callback] = (),
    prepared: Prepared | None = None,
) -> RunResult:
    """Execute a validated RunConfig (see :func:`run`).

    Args:
        cfg: the config (``seeds`` is ignored here: one run with ``cfg.seed``).
        run_dir: the directory to write into (created); default a new ``<output_dir>/<name>-<stamp>``.
        callbacks: extra trainer callbacks (after the history, checkpoint and progress ones).
        prepared: ``prepare(cfg)`` when the caller has it already (a seed group checks its first
            member before making the group directory).
    """
    check_output_dir(cfg.output_dir)
    p = prepared or prepare(cfg)
    check_monitor(p)  # before the directory exists: a rejected run leaves nothing behind
    check_available(p.cfg.track)
    fingerprint = p.data.fingerprint()
    # under torchrun rank 0 creates the directory and every rank learns its path
    run_dir = distributed.from_rank0(lambda: _start_run_dir(p, run_dir, fingerprint))
    if p.model is None:  # features mode with logistic regression: fitted once, no trainer
        from smallvision.study.features import fit_sklearn_head

        return fit_sklearn_head(p, run_dir)
    return train_and_finish(p, make_trainer(p, run_dir, callbacks), run_dir)


def _start_run_dir(p: Prepared, run_dir: Path | None, fingerprint: str) -> Path:
    """The run's directory, created, with its ``env.json``, data card and ``config.yaml``.

    ``config.yaml`` comes last and whole (``write_text``): it is what makes a directory a run that
    ``resume`` continues, so a process killed while starting leaves a directory that starts afresh.
    """
    if run_dir is None:
        run_dir = new_run_dir(p.cfg.output_dir, p.cfg.name)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    paths = RunPaths(run_dir)
    env = environment(p.cfg.seed, fingerprint, torch.get_num_threads())
    w = distributed.world()
    if w.active:
        env["distributed"] = {"world_size": w.size, "backend": w.backend}
    write_json(paths.env, env)
    from smallvision.study.data_card import data_card_arrays

    write_npz(paths.data_card, data_card_arrays(p))  # at start: a run that fails later still has it
    write_text(paths.config, to_yaml(p.cfg))
    return run_dir


def check_monitor(p: Prepared) -> None:
    """Refuse an early-stopping monitor that the run will not log, before anything is written.

    The validation columns are taken from the real validation code on two samples of the val
    split (the untrained model in eval mode: no random stream is touched), so the accepted names
    are exactly the columns of ``history.csv``.

    Raises:
        UserError: ``train.early_stopping.monitor`` names no validation column, or (``mode:
            auto``) no metric of the table, so its direction is unknown.
    """
    if p.model is None:  # a scikit-learn head has no epochs to monitor
        return
    monitor = p.cfg.train.early_stopping.monitor
    val = p.split_data.get("val")
    # the trainer checks train columns; without val data it falls back to train/loss
    if not monitor.startswith("train/") and val is not None and len(val):
        _check_val_column(p, monitor, val)
    monitor_mode(monitor, p.cfg.train.early_stopping.mode)  # as the trainer resolves it


def _check_val_column(p: Prepared, monitor: str, val: Split) -> None:
    kinds = {h: c.kind for h, c in p.heads.items()}
    sample = Split(val.images[:2], {h: t[:2] for h, t in val.targets.items()})
    prep = InputPrep(p.normalizer, p.augment, corrupts_evaluation(kinds.values()))  # as the trainer builds it
    y_true, outputs = evaluate_split(p.model, sample, prep, kinds, p.cfg)
    columns = ["val/loss"] + [f"val/{h}/{n}" for h in kinds for n in ("loss", "weighted_loss")]
    columns += [f"val/{k}" for k in scalar_metrics(compute_metrics(kinds, y_true, outputs))]
    if monitor not in columns:
        raise UserError(
            f"train.early_stopping.monitor {monitor!r}: the run logs no such column; "
            f"expected one of {', '.join(columns)} (or a train/ column)"
        )


def train_and_finish(p: Prepared, trainer: Trainer, run_dir: Path, state: dict | None = None) -> RunResult:
    """Fit (from ``state`` when resuming), then evaluate and write the run's files.

    A non-finite loss or a UserError raised during training writes a ``failed`` record to
    ``metrics.json`` and raises TrainingFailed / the UserError; Ctrl-C writes an ``interrupted``
    record and re-raises. Either way the last good ``checkpoints/last.pt`` stays, and an
    interrupted run continues with ``smallvision resume``.
    """
    metrics_file = RunPaths(run_dir).metrics
    # every rank stops at the same step (the trainer agrees on it); rank 0 writes the record
    write = write_json if distributed.world().is_main else _no_write
    try:
        for tracker in trackers(trainer.hooks.callbacks):
            tracker.start()
        trainer.fit(p.split_data["train"], p.split_data["val"], state=state)
    except NonFiniteLoss as exc:
        failure = Failure(exc.head, exc.epoch, exc.step)
        record = MetricsRecord("failed", error=str(exc), failure=failure, **_progress(trainer))
        write(metrics_file, record.to_dict())
        _abort(trainer, "failed")
        raise TrainingFailed(f"run {run_dir} failed: {exc}", run_dir) from None
    except UserError as exc:  # e.g. a setting only the trainer can check: the directory says why
        write(metrics_file, MetricsRecord("failed", error=str(exc), **_progress(trainer)).to_dict())
        _abort(trainer, "failed")
        raise
    except KeyboardInterrupt:
        resume = f"smallvision resume {run_dir}"
        record = MetricsRecord("interrupted", epochs_run=trainer.epoch, resume=resume)
        write(metrics_file, record.to_dict())
        _abort(trainer, "interrupted")
        print(
            f"interrupted after epoch {trainer.epoch}; continue with: smallvision resume {run_dir}",
            file=sys.stderr,
        )
        raise
    if not distributed.world().active:
        return finish(p, trainer, run_dir)
    # rank 0 evaluates and writes; the others get its metrics (their weights are equal: checked)
    metrics = distributed.from_rank0(lambda: _finish_distributed(p, trainer, run_dir).metrics)
    return RunResult(run_dir, metrics, p.model, p.cfg, state_sha256=trainer.state_sha256)


def _abort(trainer: Trainer, status: str) -> None:
    for tracker in trackers(trainer.hooks.callbacks):
        tracker.abort(status)


def _no_write(path: Path, obj: Any) -> None:
    """What a rank other than 0 writes: nothing."""


def _finish_distributed(p: Prepared, trainer: DistributedTrainer, run_dir: Path) -> RunResult:
    """:func:`finish` on rank 0, with the ranks' common state digest recorded in ``env.json``."""
    env_path = RunPaths(run_dir).env
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    record = {**env.get("distributed", {}), "state_sha256": trainer.state_sha256}
    write_json(env_path, {**env, "distributed": record})
    return finish(p, trainer, run_dir)


def _progress(trainer: Trainer) -> dict[str, int | None]:
    return {"epochs_run": trainer.epoch, "best_epoch": trainer.best_epoch}
