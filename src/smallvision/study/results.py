"""A study's result files, computed from its run directories alone (so any worker can write them).

``study.resolved.yaml`` (cells with ids and resolved overrides), ``selections.json`` (every
``best(...)`` resolution), ``results.csv`` (one row per run) and ``summary.md`` (per step, the cells
grouped by everything but the seed: mean ± std of the headline metrics).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import statistics
from pathlib import Path

import yaml

from smallvision.evaluate.metrics import HEADLINE
from smallvision.study.spec import StudySpec
from smallvision.study.worker import PlannedCell, flat_metrics, read_run_metrics

# "@step.best(metric)" with an optional ".key.path" after it: a selection to record
BEST = re.compile(r"^@(?P<step>[\w-]+)\.best\((?P<metric>[^),]+)(?:,\s*(?P<mode>min|max))?\)")
LOWER_IS_BETTER = ("loss", "mae", "mse", "rmse", "error")


def write_text(path: Path, text: str) -> None:
    """Atomic text write: several workers may finish the same study at once."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_all(spec: StudySpec, study_dir: Path, plan: list[PlannedCell]) -> None:
    """Every result file of the study as its directory stands now."""
    rows = [result_row(study_dir, pc) for pc in plan]
    write_text(study_dir / "study.resolved.yaml", resolved_yaml(spec, plan))
    write_text(study_dir / "selections.json", json.dumps(selections(study_dir, plan), indent=2))
    write_text(study_dir / "results.csv", results_csv(spec, rows))
    write_text(study_dir / "summary.md", summary_markdown(spec, plan, rows))


def _at(tree: dict, key: str):
    for part in key.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def resolved_yaml(spec: StudySpec, plan: list[PlannedCell]) -> str:
    """The steps and their cells: id, state, values, seed, and overrides with references resolved."""
    steps = []
    for step in spec.steps:
        cells = []
        for pc in (p for p in plan if p.cell.step == step.name):
            dump = pc.config.model_dump(mode="json") if pc.config is not None else None
            overrides = {
                k: (_at(dump, k) if dump is not None and isinstance(v, str) and v.startswith("@") else v)
                for k, v in pc.cell.overrides.items()
            }
            cells.append({
                "id": pc.key, "label": pc.cell.label, "variant": pc.cell.variant, "values": pc.cell.values,
                "seed": pc.cell.seed, "state": pc.state, "overrides": overrides, "unresolved": pc.cell.overrides,
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


def higher_is_better(metric: str, mode: str | None = None) -> bool:
    """Direction of a metric: explicit ``min``/``max``, else losses and errors are minimised."""
    if mode:
        return mode == "max"
    return not metric.rsplit("/", 1)[-1].endswith(LOWER_IS_BETTER)


def selections(study_dir: Path, plan: list[PlannedCell]) -> list[dict]:
    """One record per ``best(...)`` reference of a resolved cell: rule, metric, candidates, choice."""
    by_step: dict[str, list[PlannedCell]] = {}
    for pc in plan:
        by_step.setdefault(pc.cell.step, []).append(pc)
    out = []
    for pc in plan:
        if pc.config is None:
            continue
        for key, ref in pc.cell.overrides.items():
            m = BEST.match(ref) if isinstance(ref, str) else None
            if not m:
                continue
            metric, up = m["metric"].strip(), higher_is_better(m["metric"].strip(), m["mode"])
            candidates = []
            for c in by_step.get(m["step"], []):
                if c.state == "done":
                    value = flat_metrics(
                        study_dir / "runs" / c.key, read_run_metrics(study_dir / "runs" / c.key)
                    )
                    candidates.append({"cell": c.key, "label": c.cell.label, "value": value.get(metric)})
            scored = [c for c in candidates if c["value"] is not None]
            chosen = (max if up else min)(scored, key=lambda c: c["value"])["cell"] if scored else None
            out.append({
                "cell": pc.key, "step": pc.cell.step, "key": key, "reference": ref, "rule": "best",
                "metric": metric, "higher_is_better": up, "candidates": candidates, "chosen": chosen,
                "resolved": _at(pc.config.model_dump(mode="json"), key),
            })  # fmt: skip
    return out


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
        err = read_run_metrics(run_dir).get("error") or _error(run_dir)
        row["error"] = err
        return row
    metrics = read_run_metrics(run_dir)
    if metrics.get("status") == "completed":
        row.update(flat_metrics(run_dir, metrics))
        row["train_seconds"] = metrics.get("train_seconds")
        row["parameters"] = (metrics.get("params") or {}).get("total")
    return row


def _status(pc: PlannedCell) -> str:
    return {"done": "completed", "failed": "failed"}.get(pc.state, pc.state)


def _error(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "error.json").read_text()).get("error", "")
    except (FileNotFoundError, json.JSONDecodeError):
        return ""


def columns(spec: StudySpec, rows: list[dict]) -> list[str]:
    """Fixed columns, then the axis keys in the order the steps declare them, then the metrics sorted."""
    fixed = ["step", "cell_id", "label", "variant"]
    axes: list[str] = []
    for step in spec.steps:
        for cell in step.cells:
            axes += [k for k in cell.values if k not in axes]
    seen = {k for r in rows for k in r}
    metrics = sorted(k for k in seen if k.startswith("test/")) + sorted(
        k for k in seen if k.startswith("val/")
    )
    return fixed + axes + ["seed", "status", "error"] + metrics + ["train_seconds", "parameters"]


def results_csv(spec: StudySpec, rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(spec, rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def summary_markdown(spec: StudySpec, plan: list[PlannedCell], rows: list[dict]) -> str:
    """Per step: one line per group of cells that differ only in their seed."""
    lines = [f"# Study {spec.name}", ""]
    for step in spec.steps:
        step_rows = [(pc, r) for pc, r in zip(plan, rows, strict=True) if pc.cell.step == step.name]
        groups: dict[str, list[dict]] = {}
        for pc, r in step_rows:
            groups.setdefault(pc.cell.label, []).append(r)
        names = ["val/loss", *_step_metrics(step_rows)]
        lines += [f"## Step {step.name}", "", group_table(groups, names), ""]
    return "\n".join(lines)


def _step_metrics(step_rows) -> list[str]:
    """Each head's headline test metric (accuracy, mae, mse: ``metrics.HEADLINE``) in these rows."""
    suffixes = tuple(f"/{name}" for name, _ in HEADLINE.values())
    out = {k for _, r in step_rows for k in r if k.startswith("test/") and k.endswith(suffixes)}
    return sorted(out)


def group_table(groups: dict[str, list[dict]], metrics: list[str]) -> str:
    """A markdown table: group, completed/total runs, mean ± std (over seeds) of each metric."""
    head = "| cells | runs | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 2)]
    for label, rows in groups.items():
        done = [r for r in rows if r["status"] == "completed"]
        cells = []
        for m in metrics:
            values = [float(r[m]) for r in done if r.get(m) not in (None, "")]
            cells.append(_mean_std(values))
        lines.append(f"| {label} | {len(done)}/{len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"
