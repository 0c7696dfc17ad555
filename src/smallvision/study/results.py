"""A study's result files, computed from its run directories alone (so any worker can write them).

``study.resolved.yaml`` (cells with ids and resolved overrides), ``selections.json`` (every
``best(...)`` resolution), ``results.csv`` (one row per run), ``ensembles/`` (steps with
``ensemble: true``, see ``study.ensembles``) and ``summary.md`` (per step, the cells grouped by
everything but the seed: mean ± std of the headline metrics, their comparisons, the ensembles).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import yaml

from smallvision.evaluate.metrics import higher_is_better
from smallvision.study.spec import StudySpec
from smallvision.study.summary import summary_markdown
from smallvision.study.worker import PlannedCell, flat_metrics, read_run_metrics


def write_text(path: Path, text: str) -> None:
    """Atomic text write: several workers may finish the same study at once."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_all(spec: StudySpec, study_dir: Path, plan: list[PlannedCell]) -> None:
    """Every result file of the study as its directory stands now."""
    from smallvision.study.ensembles import write_ensembles

    rows = [result_row(study_dir, pc) for pc in plan]
    write_text(study_dir / "study.resolved.yaml", resolved_yaml(spec, plan))
    write_text(study_dir / "selections.json", json.dumps(selections(study_dir, plan), indent=2))
    write_text(study_dir / "results.csv", results_csv(spec, rows))
    ensembles = write_ensembles(spec, study_dir, plan)  # steps with ensemble: true
    write_text(study_dir / "summary.md", summary_markdown(spec, study_dir, plan, rows, ensembles))


def resolved_yaml(spec: StudySpec, plan: list[PlannedCell]) -> str:
    """The steps and their cells: id, state, values, seed, and overrides with references resolved."""
    steps = []
    for step in spec.steps:
        cells = []
        for pc in (p for p in plan if p.cell.step == step.name):
            cells.append({
                "id": pc.key, "label": pc.cell.label, "variant": pc.cell.variant, "values": pc.cell.values,
                "seed": pc.cell.seed, "state": pc.state,
                "overrides": pc.overrides if pc.overrides is not None else pc.cell.overrides,
                **({"error": pc.error} if pc.error else {}),
            })  # fmt: skip
        steps.append({"name": step.name, "depends_on": list(step.depends_on), "cells": cells})
    return yaml.dump(
        {"name": spec.name, "base": spec.base, "steps": steps}, Dumper=_NoAliases, sort_keys=False
    )


class _NoAliases(yaml.SafeDumper):
    """Repeated values written out in full (no ``&id001`` anchors): the file is for people."""

    def ignore_aliases(self, data) -> bool:
        return True


RULE = "best mean over seeds of the metric on validation, then that group's best seed (spec.select_best)"
SAME_SEED_RULE = (
    "best mean over seeds of the metric on validation, then that group's run with the cell's own seed "
    "(spec.select_best, best(..., same_seed))"
)


def selections(study_dir: Path, plan: list[PlannedCell]) -> list[dict]:
    """One record per ``best(...)`` reference of a resolved cell: rule, metric, candidates, choice."""
    by_step: dict[str, list[PlannedCell]] = {}
    for pc in plan:
        by_step.setdefault(pc.cell.step, []).append(pc)
    out = []
    for pc in plan:
        for sel in pc.selections:
            candidates = [
                {
                    "cell": c.key,
                    "group": c.cell.group,
                    "seed": c.cell.seed,
                    "value": _metric(study_dir, c, sel.metric),
                }
                for c in by_step.get(sel.step, [])
                if c.state == "done"
            ]
            out.append({
                "cell": pc.key, "step": pc.cell.step, "from_step": sel.step,
                "rule": SAME_SEED_RULE if sel.same_seed else RULE,
                "metric": sel.metric, "higher_is_better": higher_is_better(sel.metric),
                "group_means": sel.means, "candidates": candidates,
                "chosen": {"group": sel.group, "mean": sel.mean, "seeds": sel.seeds,
                           "cell": sel.outcome.run_dir.name, "run_dir": str(sel.outcome.run_dir)},
            })  # fmt: skip
    return out


def _metric(study_dir: Path, pc: PlannedCell, metric: str) -> float | None:
    run_dir = study_dir / "runs" / pc.key
    return flat_metrics(run_dir, read_run_metrics(run_dir)).get(metric)


def result_row(study_dir: Path, pc: PlannedCell) -> dict:
    """One results.csv row: the cell, its state (and error), flattened metrics, time, parameters."""
    row = {
        "step": pc.cell.step,
        "cell_id": pc.key or "",
        "label": pc.cell.label,
        "variant": pc.cell.variant or "",
    }
    row.update(pc.cell.values)
    row.update({"seed": pc.cell.seed, "status": _status(pc), "error": pc.error or ""})
    if pc.key is None:
        return row
    run_dir = study_dir / "runs" / pc.key
    if pc.state == "failed":
        metrics = read_run_metrics(run_dir)
        err = (metrics.error if metrics is not None else None) or _error(run_dir)
        row["error"] = err
        return row
    metrics = read_run_metrics(run_dir)
    if metrics is not None and metrics.status == "completed":
        row.update(flat_metrics(run_dir, metrics))
        row["train_seconds"] = metrics.train_seconds
        row["inference_seconds_per_image"] = metrics.inference.get("seconds_per_image")
        row["parameters"] = metrics.params.get("total")
    return row


def _status(pc: PlannedCell) -> str:
    return {"done": "completed", "failed": "failed"}.get(pc.state, pc.state)


def _error(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "error.json").read_text()).get("error", "")
    except (FileNotFoundError, json.JSONDecodeError):
        return ""


def columns(spec: StudySpec, rows: list[dict]) -> list[str]:
    """Fixed columns, the axis (and searched) keys in the order the steps declare them, the metrics sorted."""
    fixed = ["step", "cell_id", "label", "variant"]
    axes: list[str] = []
    for step in spec.steps:
        for cell in step.cells:
            axes += [k for k in cell.values if k not in axes]
        axes += [k for k in (step.search.params if step.search else ()) if k not in axes]  # search-best's
    seen = {k for r in rows for k in r}
    metrics = sorted((k for k in seen if _split_order(k) is not None), key=lambda k: (_split_order(k), k))
    timings = ["train_seconds", "inference_seconds_per_image", "parameters"]
    return fixed + axes + ["seed", "status", "error"] + metrics + timings


def _split_order(key: str) -> int | None:
    """Where a metric column goes: test, the domain parts of test (``test:B/...``), val, the
    evaluation sets (``eval:NAME/...``); None for a column that is not a metric."""
    split = key.split("/", 1)[0] if "/" in key else None
    if split is None:
        return None
    for order, prefix in enumerate(("test", "test:", "val", "val:", "eval:")):
        if split == prefix or (prefix.endswith(":") and split.startswith(prefix)):
            return order
    return None


def results_csv(spec: StudySpec, rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(spec, rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
