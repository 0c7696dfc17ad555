"""``summary.md``: per step, the cells grouped by everything but the seed, with their statistics.

Each group's mean ± std over seeds of ``val/loss`` and of each head's headline test metric; where
``smallvision.evaluate.compare`` is available and a step has two groups or more, its comparison
(ranked table, significance after correction, verdict) of each headline metric follows, with
per-image correctness from ``predictions.npz`` for classification heads (McNemar, bootstrap).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from smallvision.errors import UserError
from smallvision.evaluate.metrics import higher_is_better
from smallvision.registry import HEAD_KINDS
from smallvision.study.spec import StudySpec
from smallvision.study.worker import PlannedCell


def summary_markdown(spec: StudySpec, study_dir: Path, plan: list[PlannedCell], rows: list[dict]) -> str:
    """The whole summary, one section per step."""
    lines = [f"# Study {spec.name}", ""]
    for step in spec.steps:
        groups: dict[str, list[tuple[PlannedCell, dict]]] = {}
        for pc, r in zip(plan, rows, strict=True):
            if pc.cell.step == step.name:
                groups.setdefault(pc.cell.group, []).append((pc, r))
        metrics = headline_metrics([r for members in groups.values() for _, r in members])
        lines += [f"## Step {step.name}", "", group_table(groups, ["val/loss", *metrics]), ""]
        for metric in metrics:
            section = comparison_markdown(study_dir, groups, metric)
            lines += [section, ""] if section else []
    return "\n".join(lines)


def headline_metrics(rows: list[dict]) -> list[str]:
    """Each head's headline test metric (its kind's ``HeadKind.headline[0]``: accuracy, mae, mse) in these rows."""
    suffixes = tuple(f"/{HEAD_KINDS.get(k).headline[0]}" for k in HEAD_KINDS.list())
    return sorted({k for r in rows for k in r if k.startswith("test/") and k.endswith(suffixes)})


def group_table(groups: dict[str, list[tuple[PlannedCell, dict]]], metrics: list[str]) -> str:
    """A markdown table: group, completed/total runs, mean ± std (over seeds) of each metric."""
    lines = ["| cells | runs | " + " | ".join(metrics) + " |", "|" + "---|" * (len(metrics) + 2)]
    for label, members in groups.items():
        done = [r for _, r in members if r["status"] == "completed"]
        cells = [_mean_std([float(r[m]) for r in done if r.get(m) not in (None, "")]) for m in metrics]
        lines.append(f"| {label} | {len(done)}/{len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def comparison_markdown(study_dir: Path, groups: dict, metric: str) -> str | None:
    """The statistics of one metric across a step's groups, or None (one group, or no compare module)."""
    try:
        from smallvision.evaluate.compare import VariantResult, compare
    except ImportError:
        return None
    variants = []
    for name, members in groups.items():
        done = [
            (pc, r) for pc, r in members if r["status"] == "completed" and r.get(metric) not in (None, "")
        ]
        if done:
            seeds = [pc.cell.seed for pc, _ in done]
            values = np.array([float(r[metric]) for _, r in done])
            correct = _correct(study_dir, [pc for pc, _ in done], metric)
            variants.append(VariantResult(name, seeds, values, correct=correct))
    if len(variants) < 2:
        return None
    try:
        return compare(variants, metric, higher_is_better(metric)).to_markdown()
    except UserError as exc:  # e.g. no seed shared by all groups: say so instead of a verdict
        return f"No comparison: {exc}"


def _correct(study_dir: Path, cells: list[PlannedCell], metric: str) -> np.ndarray | None:
    """``(n_seeds, n_images)`` test-image correctness of a classification head, from predictions.npz."""
    parts = metric.split("/")
    if len(parts) != 3 or parts[2] != "accuracy":
        return None
    rows = []
    for pc in cells:
        path = study_dir / "runs" / pc.key / "predictions.npz"
        if not path.is_file():
            return None
        with np.load(path) as z:
            if f"test/{parts[1]}/prob" not in z:
                return None
            rows.append(z[f"test/{parts[1]}/prob"].argmax(1) == z[f"test/{parts[1]}/y_true"])
    if len({len(r) for r in rows}) != 1:
        return None
    return np.stack(rows)
