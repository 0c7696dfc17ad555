"""One run: config -> data -> model -> training -> evaluation -> run directory -> report."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smallvision.config import HeadConfig, RunConfig, apply_overrides, build_config, load_config, to_yaml
from smallvision.data.augment import build_augment
from smallvision.data.dataset import ImageSet
from smallvision.data.prepare import prepare_images
from smallvision.data.sources import load_source
from smallvision.data.splits import fit_normalizer, make_splits
from smallvision.errors import UserError
from smallvision.evaluate.metrics import compute_metrics
from smallvision.evaluate.predict import predict, to_outputs
from smallvision.models.base import Network
from smallvision.models.build import build_model
from smallvision.study.rundir import environment, new_run_dir, write_json
from smallvision.train.callbacks import Checkpoint, HistoryCSV, Progress
from smallvision.train.trainer import Split, Trainer


@dataclass
class RunResult:
    """What a finished run gives back: its directory, its metrics and the trained model."""

    dir: Path
    metrics: dict
    model: Network
    config: RunConfig


def resolve_config(config: Any = None, overrides: dict[str, Any] | list[str] | None = None) -> RunConfig:
    """A RunConfig from a path, a mapping, a RunConfig or None (defaults), with overrides applied."""
    if isinstance(config, RunConfig):
        return build_config(apply_overrides(config.model_dump(mode="json"), overrides or {}))
    if isinstance(config, dict):
        return build_config(apply_overrides(config, overrides or {}))
    return load_config(config, overrides or {})


def run(config: Any = None, **overrides: Any) -> RunResult:
    """Train, evaluate and report one run.

    Args:
        config: a YAML path, a mapping, a RunConfig, or None for the defaults.
        **overrides: ``key.path=value`` pairs as keyword arguments, e.g.
            ``run("examples/mnist.yaml", **{"train.epochs": 3})``.

    Returns:
        RunResult with the run directory, the metrics (as in ``metrics.json``) and the model
        holding the restored best weights.
    """
    return run_config(resolve_config(config, overrides))


def resolve_heads(cfg: RunConfig, data: ImageSet) -> dict[str, HeadConfig]:
    """The config's heads checked against the data, with class counts filled in.

    No ``heads`` in the config means one head per target of the data (a reconstruction head
    named ``image`` when the data has no targets).
    """
    if cfg.heads is None:
        if not data.targets:
            return {"image": HeadConfig(kind="reconstruction")}
        return {
            name: HeadConfig(kind=info.kind, classes=info.num_classes or None) for name, info in data.info.items()
        }
    heads = {}
    for name, head in cfg.heads.items():
        if head.kind == "reconstruction":
            heads[name] = head
            continue
        target = head.target or name
        if target not in data.targets:
            have = ", ".join(data.targets) or "none"
            raise UserError(f"heads.{name}: the data {data.name} has no target {target!r} (targets: {have})")
        info = data.info[target]
        if info.kind != head.kind:
            raise UserError(f"heads.{name}.kind: {head.kind!r} but target {target!r} is {info.kind}")
        update: dict[str, Any] = {}
        if head.kind == "classification":
            classes = head.classes or info.num_classes
            top = int(data.targets[target].max()) if len(data) else 0
            if top >= classes or int(data.targets[target].min()) < 0:
                raise UserError(f"heads.{name}.classes: {classes} classes but target {target!r} has label {top}")
            update["classes"] = classes
        heads[name] = head.model_copy(update=update)
    return heads


def head_targets(data: ImageSet, heads: dict[str, HeadConfig], index: np.ndarray) -> dict[str, torch.Tensor]:
    idx = torch.as_tensor(index, dtype=torch.long)
    out = {}
    for name, head in heads.items():
        if head.kind != "reconstruction":
            t = data.targets[head.target or name][idx]
            out[name] = t.float() if head.kind == "regression" else t
    return out


def run_config(cfg: RunConfig) -> RunResult:
    """Execute a validated RunConfig (see :func:`run`)."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    data = load_source(cfg.data.source, cfg.data.options, seed=cfg.seed)
    data = prepare_images(data, cfg.data.size, cfg.data.channels)
    heads = resolve_heads(cfg, data)
    cfg = cfg.model_copy(update={"heads": heads})
    splits = make_splits(data, cfg.data.split)
    normalizer = fit_normalizer(data.images[torch.as_tensor(splits["train"])], cfg.data.normalize)
    augment = build_augment(cfg.data.augment)
    torch.manual_seed(cfg.seed)  # the same weights for the same seed, whatever ran before
    model = build_model(cfg.model.name, cfg.model.params, data.shape, heads)
    if cfg.train.channels_last:
        model = model.to(memory_format=torch.channels_last)

    run_dir = new_run_dir(cfg.output_dir, cfg.name)
    (run_dir / "config.yaml").write_text(to_yaml(cfg))
    write_json(run_dir / "env.json", environment(cfg.seed, data.fingerprint(), torch.get_num_threads()))
    meta = {"config": cfg.model_dump(mode="json"), "normalizer": normalizer.to_dict(), "input_shape": list(data.shape)}
    split_data = {s: Split(data.images[torch.as_tensor(i)], head_targets(data, heads, i)) for s, i in splits.items()}

    trainer = Trainer(
        model, heads, cfg.train, normalizer, augment if len(augment) else None, seed=cfg.seed,
        callbacks=[HistoryCSV(run_dir / "history.csv"), Checkpoint(run_dir / "checkpoints", meta),
                   Progress(cfg.train.progress)],
    )
    start = time.perf_counter()
    trainer.fit(split_data["train"], split_data["val"])
    train_seconds = time.perf_counter() - start

    start = time.perf_counter()
    kinds = {h: c.kind for h, c in heads.items()}
    evaluated = {s: evaluate_split(model, split_data[s], normalizer, kinds, cfg) for s in ("val", "test")}
    metrics = {
        "status": "completed",
        **{s: compute_metrics(kinds, *evaluated[s]) for s in ("val", "test") if len(split_data[s])},
        "best_epoch": trainer.best_epoch,
        "epochs_run": trainer.epoch,
        "stopped_early": trainer.stop,
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - start,
        "params": model.param_counts(),
        "heads": {h: {"kind": c.kind, "classes": _class_names(data, h, c)} for h, c in heads.items()},
        "data": {
            "source": cfg.data.source, "input_shape": list(data.shape), "normalization": normalizer.to_dict(),
            **{f"n_{s}": len(i) for s, i in splits.items()},
        },
    }
    save_predictions(run_dir / "predictions.npz", splits, evaluated)
    write_json(run_dir / "metrics.json", metrics)
    if cfg.report.enabled:
        from smallvision.report.html import write_report

        write_report(run_dir)
    return RunResult(run_dir, metrics, model, cfg)


def evaluate_split(model, split: Split, normalizer, kinds, cfg) -> tuple[dict, dict]:
    """(y_true, outputs) of one split, from the restored best weights."""
    raw = predict(model, split.images, normalizer, list(kinds), cfg.train.eval_batch_size)
    outputs = to_outputs(raw, kinds)
    y_true = {
        h: split.targets[h].numpy() if h in split.targets else normalizer(split.images).numpy() for h in kinds
    }
    return y_true, outputs


def save_predictions(path: Path, splits: dict[str, np.ndarray], evaluated: dict[str, tuple[dict, dict]]) -> None:
    arrays: dict[str, np.ndarray] = {}
    for s, (y_true, outputs) in evaluated.items():
        arrays[f"{s}/index"] = splits[s]
        for h, out in outputs.items():
            arrays[f"{s}/{h}/y_true"] = y_true[h]
            key = "prob" if out.ndim == 2 and y_true[h].ndim == 1 and y_true[h].dtype.kind == "i" else "y_pred"
            arrays[f"{s}/{h}/{key}"] = out.astype(np.float32)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def _class_names(data: ImageSet, head: str, cfg: HeadConfig) -> list[str] | None:
    if cfg.kind != "classification":
        return None
    info = data.info.get(cfg.target or head)
    if info and info.classes and len(info.classes) == cfg.classes:
        return list(info.classes)
    return [str(i) for i in range(cfg.classes or 0)]
