"""``summary.md``: per step, the cells grouped by everything but the seed, with their statistics.

Each group's mean ± std over seeds of ``val/loss`` and of each head's headline test metric; where a
step has two groups or more, its comparison (``smallvision.evaluate.compare``: ranked table,
significance after correction, verdict) of each headline metric follows, with per-image scores
from ``predictions.npz`` (correctness for accuracy: McNemar; errors for MAE / MSE: bootstrap).
Without a test split the headline metrics are val's, and the summary says why that is optimistic.
A step with ``ensemble: true`` ends with its groups' ensembles (``study.ensembles``).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from smallvision.errors import UserError
from smallvision.evaluate.compare import compare
from smallvision.evaluate.metrics import higher_is_better
from smallvision.registry import HEAD_KINDS
from smallvision.rundir import load_run
from smallvision.study.compare_runs import Variant, variant_results
from smallvision.study.spec import StudySpec
from smallvision.study.worker import PlannedCell

NO_TEST = (
    "No test split: these figures are on val, which also chose each run's best epoch (early "
    "stopping), so they are optimistic; keep a test split for an unbiased comparison."
)


def summary_markdown(
    spec: StudySpec, study_dir: Path, plan: list[PlannedCell], rows: list[dict], ensembles: list | None = None
) -> str:
    """The whole summary, one section per step (with its ensembles, when the step makes them)."""
    from smallvision.study.ensembles import ensembles_markdown

    lines = [f"# Study {spec.name}", ""]
    for step in spec.steps:
        groups: dict[str, list[tuple[PlannedCell, dict]]] = {}
        for pc, r in zip(plan, rows, strict=True):
            if pc.cell.step == step.name:
                groups.setdefault(pc.cell.group, []).append((pc, r))
        metrics = headline_metrics([r for members in groups.values() for _, r in members])
        lines += [f"## Step {step.name}", "", group_table(groups, ["val/loss", *metrics]), ""]
        if metrics and not metrics[0].startswith("test/"):
            lines += [NO_TEST, ""]
        for metric in metrics:
            section = comparison_markdown(study_dir, groups, metric)
            lines += [section, ""] if section else []
        section = ensembles_markdown(ensembles or [], step.name)
        lines += [section, ""] if section else []
    return "\n".join(lines)


def headline_metrics(rows: list[dict]) -> list[str]:
    """Each head's headline test metric (its kind's ``HeadKind.headline[0]``: accuracy, mae, mse) in
    these rows; the val ones when the runs have no test split (an 80/20 train/val study)."""
    suffixes = tuple(f"/{HEAD_KINDS.get(k).headline[0]}" for k in HEAD_KINDS.list())
    for split in ("test/", "val/"):
        found = sorted({k for r in rows for k in r if k.startswith(split) and k.endswith(suffixes)})
        if found:
            return found
    return []


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
    """The statistics of one metric across a step's groups, or None (fewer than two groups ran).

    The runs become variants the way ``smallvision compare`` and the study report make them
    (:func:`smallvision.study.compare_runs.variant_results`: per-image scores from predictions.npz),
    so the three say the same.
    """
    variants = []
    for name, members in groups.items():
        done = [pc for pc, r in members if r["status"] == "completed" and r.get(metric) not in (None, "")]
        if done:
            variants.append((name, [study_dir / "runs" / pc.key for pc in done]))
    if len(variants) < 2:
        return None
    try:
        runs = [Variant(name, [load_run(d) for d in dirs]) for name, dirs in variants]
        return compare(variant_results(runs, metric), metric, higher_is_better(metric)).to_markdown()
    except UserError as exc:  # e.g. no seed shared by all groups: say so instead of a verdict
        return f"No comparison: {exc}"
