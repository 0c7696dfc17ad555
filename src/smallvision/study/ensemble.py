"""The ensemble of a seed group's members: soft voting over their saved predictions.

Reads and writes run directories only (through :mod:`smallvision.rundir`); running the members
is :mod:`smallvision.study.group`'s job, so nothing here imports the training code.

The ensemble is computed from the members' saved ``predictions.npz`` only: the mean of the
probabilities for classification heads (soft voting), the mean prediction for regression and
reconstruction heads. Its metrics use the same code as every run, and sit beside each member's
with the gain over the best and over the mean member (positive = the ensemble is better), on the
test split, or on val when the members have no test split (``gain_split: val`` says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from smallvision.errors import UserError
from smallvision.evaluate.metrics import compute_metrics, higher_is_better, scalar_metrics
from smallvision.registry import HEAD_KINDS
from smallvision.rundir import (
    Gain,
    Member,
    MetricsRecord,
    Predictions,
    Run,
    RunPaths,
    save_predictions,
    write_json,
)


def _load_member(d: Path) -> tuple[MetricsRecord, Predictions]:
    paths = RunPaths(d)
    if not paths.metrics.is_file() or not paths.predictions.is_file():
        raise UserError(
            f"ensemble member {d}: metrics.json or predictions.npz missing (is the run finished?)"
        )
    run = Run(d)  # not load_run: a bare member needs no config.yaml, only its results
    if run.metrics.status != "completed":
        raise UserError(f"ensemble member {d}: status {run.metrics.status!r}, expected a completed run")
    return run.metrics, run.predictions


def mean_outputs(
    preds: Sequence[Predictions], dirs: Sequence[Path], split: str, kinds: dict[str, str]
) -> tuple[dict, dict, np.ndarray]:
    """(y_true, mean outputs, index) of one split over the members; they must share test samples."""
    index = preds[0].index[split]
    y_true, outputs = {}, {}
    for p, d in zip(preds, dirs, strict=True):
        if not np.array_equal(p.index[split], index):
            raise UserError(
                f"ensemble member {d}: its {split} samples differ from {dirs[0]}'s; members need the same "
                "data and data.split.seed"
            )
    for h, kind in kinds.items():
        y_true[h] = preds[0].head(split, h)["y_true"]
        # float64 mean: identical members give back exactly their own outputs
        outputs[h] = np.mean([p.output(split, h, kind).astype(np.float64) for p in preds], axis=0)
    return y_true, outputs, index


def gains(ensemble: dict, members: Sequence[dict]) -> dict[str, dict[str, Gain]]:
    """Per head and scalar metric: the ensemble's value, the best and mean member's, and the gains."""
    out: dict[str, dict] = {}
    flat = scalar_metrics(ensemble)
    member_flat = [scalar_metrics(m) for m in members]
    for key, value in flat.items():
        values = [m[key] for m in member_flat if key in m]
        if len(values) != len(members):
            continue
        sign = 1.0 if higher_is_better(key) else -1.0
        best = min(values) if sign < 0 else max(values)
        mean = float(np.mean(values))
        head, metric = key.split("/", 1)
        out.setdefault(head, {})[metric] = Gain(
            ensemble=value,
            best_member=best,
            mean_member=mean,
            over_best=sign * (value - best),
            over_mean=sign * (value - mean),
        )
    return out


def ensemble_runs(member_dirs: Sequence[Path], out_dir: Path) -> MetricsRecord:
    """Soft-vote the members' saved predictions; write ``out_dir/metrics.json`` and ``predictions.npz``.

    Args:
        member_dirs: finished run directories of the same config with different seeds.
        out_dir: where the ensemble's files go (created).

    Returns:
        The record written to ``metrics.json`` (kind ``ensemble``, see :class:`GroupResult`).
    """
    if not member_dirs:
        raise UserError("an ensemble needs at least one member run (seeds is empty)")
    dirs = [Path(d) for d in member_dirs]
    loaded = [_load_member(d) for d in dirs]
    records, preds = [m for m, _ in loaded], [p for _, p in loaded]
    heads = records[0].heads
    kinds = {h: v.kind for h, v in heads.items()}
    normalization = records[0].data.normalization if records[0].data else None
    splits, evaluated, scored = {}, {}, {}
    # val, test, and every domain part (test:A) and evaluation set (eval:NAME) the members scored
    for split in preds[0].splits:
        if all(split in p.index for p in preds) and len(preds[0].index[split]):
            y_true, outputs, index = mean_outputs(preds, dirs, split, kinds)
            splits[split], evaluated[split] = index, (y_true, outputs)
            # reconstructions are saved standardised: pixel accuracy needs the members' normaliser
            scored[split] = compute_metrics(kinds, y_true, outputs, normalization)
    gain_split = gain_split_of(scored, dirs)
    result = MetricsRecord(
        "completed",
        kind="ensemble",
        splits=scored,
        heads=heads,
        data=records[0].data,
        members={
            d.name: Member(str(d), _seed_of(d), m.status, m.scalars("test"), m.scalars("val"))
            for d, m in zip(dirs, records, strict=True)
        },
        gain=gains(scored[gain_split], [m.splits[gain_split] for m in records]),
        gain_split=None if gain_split == "test" else gain_split,
        train_seconds=float(sum(m.train_seconds or 0.0 for m in records)),
        method={k: HEAD_KINDS.get(k).ensemble_method for k in HEAD_KINDS.list()},
        # the members share data and splits, so their trivial predictors score alike
        reference={s: r for s, r in records[0].reference.items() if s in scored},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    save_predictions(RunPaths(out_dir).predictions, splits, evaluated, kinds)
    write_json(RunPaths(out_dir).metrics, result.to_dict())
    return result


def gain_split_of(scored: dict, dirs: Sequence[Path]) -> str:
    """``test``; ``val`` when the members have no test split (an 80/20 train/val split).

    The validation set also chose each member's best epoch, so gains on it are optimistic for the
    members and the ensemble alike; the record says which split it is (``gain_split``).
    """
    for split in ("test", "val"):
        if split in scored:
            return split
    raise UserError(f"ensemble: the members in {dirs[0].parent} have neither test nor val predictions")


def _seed_of(run_dir: Path) -> int | None:
    env = Run(run_dir, tolerant=True).env  # a member without env.json simply has no known seed
    return env.get("seed") if env else None
