"""Seed groups and their ensemble: ``seeds: [42, 43, 44]`` -> one run per seed, then soft voting.

Layout: ``<output_dir>/<name>-<stamp>/`` holds the group's ``config.yaml``, one run directory per
seed (``seed-42/`` ...) and ``ensemble/`` with ``metrics.json`` and ``predictions.npz``.

The ensemble is computed from the members' saved ``predictions.npz`` only: the mean of the
probabilities for classification heads (soft voting), the mean prediction for regression and
reconstruction heads. Its metrics use the same code as every run, and sit beside each member's
with the gain over the best and over the mean member (positive = the ensemble is better).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smallvision.config import RunConfig, to_yaml
from smallvision.errors import UserError
from smallvision.evaluate.metrics import compute_metrics, scalar_metrics
from smallvision.study.run import RunResult, run_config, save_predictions
from smallvision.study.rundir import new_run_dir, write_json

LOWER_IS_BETTER = ("loss", "mae", "rmse", "mse")


@dataclass
class GroupResult:
    """A finished seed group.

    Attributes:
        dir: the group directory (``<output_dir>/<name>-<stamp>``).
        members: one RunResult per seed, in the order of ``seeds``.
        metrics: ``ensemble/metrics.json``: ``test`` / ``val`` (the ensemble's metrics, shaped like a
            run's), ``members`` (each member's scalar test metrics), ``gain`` (per head and metric:
            ensemble, best_member, mean_member, over_best, over_mean), ``heads``, ``train_seconds``.
        config: the group's config (with ``seeds``).
    """

    dir: Path
    members: list[RunResult]
    metrics: dict
    config: RunConfig


def member_config(cfg: RunConfig, seed: int) -> RunConfig:
    """The config of the member run for ``seed``: the group's, with that seed and no seed list."""
    return cfg.model_copy(update={"seed": seed, "seeds": None})


def run_group(cfg: RunConfig) -> GroupResult:
    """Train one run per seed of ``cfg.seeds`` in a new group directory, then their ensemble."""
    parent = new_run_dir(cfg.output_dir, cfg.name)
    (parent / "config.yaml").write_text(to_yaml(cfg))
    members = [run_config(member_config(cfg, s), run_dir=parent / f"seed-{s}") for s in cfg.seeds or []]
    return GroupResult(parent, members, ensemble_runs([m.dir for m in members], parent / "ensemble"), cfg)


def lower_is_better(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1] in LOWER_IS_BETTER


def _load_member(d: Path) -> tuple[dict, dict]:
    metrics_file, pred_file = d / "metrics.json", d / "predictions.npz"
    if not metrics_file.is_file() or not pred_file.is_file():
        raise UserError(
            f"ensemble member {d}: metrics.json or predictions.npz missing (is the run finished?)"
        )
    metrics = json.loads(metrics_file.read_text())
    if metrics.get("status", "completed") != "completed":
        raise UserError(f"ensemble member {d}: status {metrics.get('status')!r}, expected a completed run")
    with np.load(pred_file) as z:
        return metrics, {k: z[k] for k in z.files}


def mean_outputs(
    preds: Sequence[dict], dirs: Sequence[Path], split: str, heads: dict
) -> tuple[dict, dict, np.ndarray]:
    """(y_true, mean outputs, index) of one split over the members; they must share test samples."""
    index = preds[0][f"{split}/index"]
    y_true, outputs = {}, {}
    for p, d in zip(preds, dirs, strict=True):
        if not np.array_equal(p[f"{split}/index"], index):
            raise UserError(
                f"ensemble member {d}: its {split} samples differ from {dirs[0]}'s; members need the same "
                "data and data.split.seed"
            )
    for h in heads:
        key = f"{split}/{h}/prob" if f"{split}/{h}/prob" in preds[0] else f"{split}/{h}/y_pred"
        y_true[h] = preds[0][f"{split}/{h}/y_true"]
        # float64 mean: identical members give back exactly their own outputs
        outputs[h] = np.mean([p[key].astype(np.float64) for p in preds], axis=0)
    return y_true, outputs, index


def gains(ensemble: dict, members: Sequence[dict]) -> dict:
    """Per head and scalar metric: the ensemble's value, the best and mean member's, and the gains."""
    out: dict[str, dict] = {}
    flat = scalar_metrics(ensemble)
    member_flat = [scalar_metrics(m) for m in members]
    for key, value in flat.items():
        values = [m[key] for m in member_flat if key in m]
        if len(values) != len(members):
            continue
        sign = -1.0 if lower_is_better(key) else 1.0
        best = min(values) if sign < 0 else max(values)
        mean = float(np.mean(values))
        head, metric = key.split("/", 1)
        out.setdefault(head, {})[metric] = {
            "ensemble": value,
            "best_member": best,
            "mean_member": mean,
            "over_best": sign * (value - best),
            "over_mean": sign * (value - mean),
        }
    return out


def ensemble_runs(member_dirs: Sequence[Path], out_dir: Path) -> dict:
    """Soft-vote the members' saved predictions; write ``out_dir/metrics.json`` and ``predictions.npz``.

    Args:
        member_dirs: finished run directories of the same config with different seeds.
        out_dir: where the ensemble's files go (created).

    Returns:
        The content of ``metrics.json`` (see :class:`GroupResult`).
    """
    if not member_dirs:
        raise UserError("an ensemble needs at least one member run (seeds is empty)")
    dirs = [Path(d) for d in member_dirs]
    loaded = [_load_member(d) for d in dirs]
    metrics0 = loaded[0][0]
    heads = metrics0["heads"]
    kinds = {h: v["kind"] for h, v in heads.items()}
    preds = [p for _, p in loaded]
    result: dict = {"status": "completed", "kind": "ensemble", "members": {}, "heads": heads}
    splits, evaluated = {}, {}
    for split in ("val", "test"):
        if all(f"{split}/index" in p for p in preds) and len(preds[0][f"{split}/index"]):
            y_true, outputs, index = mean_outputs(preds, dirs, split, kinds)
            splits[split], evaluated[split] = index, (y_true, outputs)
            result[split] = compute_metrics(kinds, y_true, outputs)
    if "test" not in result:
        raise UserError(f"ensemble: the members in {dirs[0].parent} have no test predictions")
    for d, (m, _) in zip(dirs, loaded, strict=True):
        result["members"][d.name] = {"dir": str(d), "seed": _seed_of(d), "test": _scalars(m["test"])}
    result["gain"] = gains(result["test"], [m["test"] for m, _ in loaded])
    result["train_seconds"] = float(sum(m.get("train_seconds", 0.0) for m, _ in loaded))
    result["method"] = {"classification": "mean of probabilities (soft voting)", "regression": "mean"}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_predictions(out_dir / "predictions.npz", splits, evaluated, kinds)
    write_json(out_dir / "metrics.json", result)
    return result


def _scalars(metrics: dict) -> dict:
    return {h: {k: v for k, v in m.items() if isinstance(v, int | float)} for h, m in metrics.items()}


def _seed_of(run_dir: Path) -> int | None:
    env = run_dir / "env.json"
    return json.loads(env.read_text()).get("seed") if env.is_file() else None
