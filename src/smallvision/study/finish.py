"""The end of a run: evaluate the restored best weights on every split, time inference alone, and
write predictions, ``metrics.json``, the test images and the report (``study.run`` trains up to it)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from smallvision.config import RunConfig
from smallvision.data.mapped import take_rows
from smallvision.evaluate.metrics import compute_metrics
from smallvision.evaluate.predict import network_inference, to_outputs
from smallvision.evaluate.reference import run_references
from smallvision.models.base import Network
from smallvision.registry import HEAD_KINDS
from smallvision.rundir import (
    DataInfo,
    HeadInfo,
    MetricsRecord,
    RunPaths,
    save_predictions,
    save_test_images,
    write_json,
)
from smallvision.study.resolve import class_names
from smallvision.track.base import trackers
from smallvision.train.evaluation import evaluation_split, predict_split
from smallvision.train.trainer import Split, Trainer, numpy_target

if TYPE_CHECKING:
    from smallvision.study.run import Prepared


@dataclass
class RunResult:
    """What a finished run gives back: its directory, its metrics record and the trained model."""

    dir: Path
    metrics: MetricsRecord
    model: Network
    config: RunConfig
    # under torchrun: the sha256 of this rank's final weights and history (every rank's is equal)
    state_sha256: str | None = None


def finish(p: Prepared, trainer: Trainer, run_dir: Path) -> RunResult:
    """Evaluate the restored best weights on val and test; write predictions, metrics and the report.

    A denoising or masked autoencoder is scored on the same fixed corrupted inputs as its validation
    (:mod:`smallvision.train.evaluation`), saved as ``<split>/<head>/corrupted`` for the report's grid.
    """
    start = time.perf_counter()
    kinds = {h: c.kind for h, c in p.heads.items()}
    prep = trainer.input_prep
    # "val", "test", and per-domain parts such as "test:TEST2" when a split spans several domains
    names = [s for s in p.split_data if s != "train" and len(p.split_data[s])]
    parts = {s: evaluation_split(p.split_data[s], prep) for s in names}
    evaluated = {s: evaluate_split(p.model, parts[s], prep, kinds, p.cfg) for s in names}
    eval_seconds = time.perf_counter() - start
    metrics = MetricsRecord(
        "completed",
        splits={s: compute_metrics(kinds, *evaluated[s], p.normalizer) for s in names},
        best_epoch=trainer.best_epoch,
        epochs_run=trainer.epoch,
        stopped_early=trainer.stop,
        train_seconds=trainer.elapsed,
        eval_seconds=eval_seconds,
        params=p.model.param_counts(),
        heads={h: HeadInfo(c.kind, class_names(p.data, h, c)) for h, c in p.heads.items()},
        data=DataInfo(
            source=p.cfg.data.source,
            input_shape=list(p.data.shape),
            normalization=p.normalizer.to_dict(),
            sizes={s: len(i) for s, i in p.splits.items()},
            split=p.splits.info,
            reader=p.data.meta,  # e.g. {"skipped": 3} when data.skip_bad dropped corrupt samples
        ),
        reference=run_references(
            {h: t.numpy() for h, t in p.split_data["train"].targets.items()},
            {s: evaluated[s][0] for s in names},
            kinds,
            {h: c.classes for h, c in p.heads.items()},
        ),
        features=p.meta.get("features"),
        inference=measure_inference(p, prep, list(kinds)),
    )
    paths = RunPaths(run_dir)
    inputs = [h for h, k in kinds.items() if HEAD_KINDS.get(k).target_is_input]
    corrupted = {
        s: {h: {"corrupted": x.inputs.numpy()} for h in inputs}
        for s, x in parts.items()
        if x.inputs is not None
    }
    save_predictions(paths.predictions, p.splits, evaluated, kinds, extra=corrupted)
    if "test" in evaluated:  # the images of the worst mistakes and of the looking-inside figures
        test = take_rows(p.data.images, p.splits["test"])  # the images (a features run's inputs are not)
        save_test_images(paths.test_images, p.splits["test"], test[:].numpy())
    write_json(paths.metrics, metrics.to_dict())
    if p.cfg.report.enabled:
        from smallvision.report.html import write_report

        write_report(run_dir)
    for tracker in trackers(trainer.hooks.callbacks):  # the final figures and files exist now
        tracker.finish(run_dir, metrics)
    return RunResult(run_dir, metrics, p.model, p.cfg)


def measure_inference(p: Prepared, prep, heads: list[str]) -> dict:
    """The best model's seconds per image on test images (val without a test split), timed alone."""
    split = next((s for s in ("test", "val") if s in p.split_data and len(p.split_data[s])), None)
    if split is None:
        return {}
    images = p.split_data[split].images
    timed = network_inference(p.model, images, prep, heads, p.cfg.train.eval_batch_size, split)
    # a features-mode run's inputs are the frozen encoder's cached features: its time leaves the encoder out
    return {**timed, "input": "features" if p.meta.get("features") else "images"}


def evaluate_split(model, split: Split, prep, kinds, cfg) -> tuple[dict, dict]:
    """(y_true, outputs) of one split, from the restored best weights (its corrupted inputs when set)."""
    raw = predict_split(model, split, prep, list(kinds), cfg.train.eval_batch_size)
    outputs = to_outputs(raw, kinds)
    return {h: numpy_target(split, h, prep) for h in kinds}, outputs
