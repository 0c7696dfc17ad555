"""``smallvision lr-find CONFIG``: the LR range test on a run's data and model, with a plot.

The run is prepared exactly as ``smallvision run`` would (data, split, statistics, model,
augmentation, MixUp, loss weights), then :func:`smallvision.train.lrfind.lr_range_test` sweeps
the lr with a constant schedule and no EMA. The weights are thrown away; a new directory
``<output_dir>/<name>-lrfind-<stamp>/`` receives ``lr_find.png``, ``lr_find.csv`` and
``lr_find.json`` (the suggestions and the config).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from smallvision.config import to_yaml
from smallvision.errors import UserError
from smallvision.rundir import new_run_dir, write_json
from smallvision.rundir.layout import check_output_dir
from smallvision.study.run import prepare, resolve_config
from smallvision.train.lrfind import LRFindResult, lr_range_test, plot_lr_find
from smallvision.train.trainer import Trainer


def lr_find(
    config: Any = None,
    overrides: dict[str, Any] | list[str] | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    steps: int = 100,
) -> tuple[Path, LRFindResult]:
    """Run the LR range test for a config; returns (output directory, result).

    Args:
        config: a YAML path, a mapping, a RunConfig or None.
        overrides: ``key.path=value`` overrides.
        start_lr: the first lr of the sweep.
        end_lr: the last lr of the sweep.
        steps: number of lr values (one batch each).
    """
    if not 0 < start_lr < end_lr:
        raise UserError(f"lr-find: expected 0 < start_lr < end_lr, got {start_lr:g} and {end_lr:g}")
    if steps < 5:
        raise UserError(f"lr-find: --steps {steps}: expected at least 5 steps")
    cfg = resolve_config(config, overrides)
    if cfg.features is not None and cfg.features.head != "mlp":
        raise UserError(
            f"lr-find: features.head {cfg.features.head} is fitted by scikit-learn, without a learning rate"
        )
    check_output_dir(cfg.output_dir)  # before the sweep, not after it
    train_cfg = cfg.train.model_copy(
        update={
            "schedule": cfg.train.schedule.model_copy(update={"name": "constant", "warmup_epochs": 0}),
            "ema": None,
        }
    )
    p = prepare(cfg.model_copy(update={"train": train_cfg}))
    trainer = Trainer(p.model, p.heads, train_cfg, p.normalizer, p.augment, seed=cfg.seed)
    try:
        result = lr_range_test(trainer, p.split_data["train"], start_lr, end_lr, steps)
    except ValueError as exc:
        raise UserError(f"lr-find: {exc}") from None
    out = new_run_dir(cfg.output_dir, f"{cfg.name}-lrfind")
    (out / "config.yaml").write_text(to_yaml(p.cfg))
    with (out / "lr_find.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["lr", "loss", "smoothed"])
        w.writerows(zip(result.lrs, result.losses, result.smoothed, strict=True))
    write_json(out / "lr_find.json", {
        "suggestion": result.suggestion, "steepest": result.steepest, "min_over_10": result.min_over_10,
        "start_lr": start_lr, "end_lr": end_lr, "steps_run": len(result.lrs), "steps": steps,
    })  # fmt: skip
    plot_lr_find(result, out / "lr_find.png")
    return out, result
