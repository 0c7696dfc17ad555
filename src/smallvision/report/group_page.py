"""The seed-group page: ``report.html`` in a seed group's directory, from that directory alone.

Each member and the ensemble with the 95% bootstrap intervals of the run report (the same
:mod:`smallvision.evaluate.diagnostics` functions on the same test predictions, so a member's
figures here equal those on its own page), the trivial predictors beside them, the ensemble's gain
over the best and the mean member (``ensemble/metrics.json``), and the learning curves of every
seed on shared panels. Missing or unreadable files are named on the page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smallvision.errors import UserError
from smallvision.evaluate import diagnostics as dg
from smallvision.evaluate.reference import reference_labels
from smallvision.registry import HEAD_KINDS
from smallvision.report.html import environment, write_page
from smallvision.report.sections import INTERVAL_NOTE
from smallvision.report.study_figures import seed_curves_png
from smallvision.report.tables import Cell, Image, Table, format_value
from smallvision.rundir import MetricsRecord, Run, read_run


@dataclass(frozen=True)
class BuiltGroupReport:
    """A written group page: its path, the files it could not read, time and size."""

    path: Path
    problems: list[str]
    seconds: float
    size: int


def is_group(path: Path) -> bool:
    """A seed group's directory: its config lists seeds, or it holds ``ensemble/`` or ``seed-*/``."""
    run = Run(path, tolerant=True)
    if run.paths.env.exists():
        return False  # a run of its own
    metrics = run.metrics if run.paths.metrics.is_file() else None
    return bool(
        (metrics is not None and metrics.kind == "group")
        or (run.paths.config.is_file() and run.config is not None and run.config.seeds)
        or run.paths.ensemble.is_dir()
        or any(p.is_dir() for p in path.glob("seed-*"))
    )


def _members(group: Run) -> list[Run]:
    """The members by the config's seeds, else every ``seed-*`` directory (a config that cannot be read)."""
    if group.config is not None and group.config.seeds:
        dirs = [group.paths.member(s) for s in group.config.seeds]
    else:
        dirs = sorted(p for p in group.dir.glob("seed-*") if p.is_dir())
    return [read_run(d) if d.is_dir() else Run(d, tolerant=True) for d in dirs]


def build_group_report(group_dir: str | Path) -> BuiltGroupReport:
    """Write ``report.html`` into a seed group's directory, atomically, from the directory alone.

    Raises:
        UserError: ``group_dir`` is not a seed group's directory.
    """
    start = time.perf_counter()
    path = Path(group_dir)
    if not path.is_dir() or not is_group(path):
        raise UserError(
            f"{str(path)!r} is not a seed group's directory (no seeds in config.yaml, no seed-*/ or ensemble/)"
        )
    context = _context(path)
    text = environment().get_template("group.html").render(**context)
    target = path / "report.html"
    write_page(target, text)
    return BuiltGroupReport(target, context["problems"], time.perf_counter() - start, len(text.encode()))


def _context(path: Path) -> dict[str, Any]:
    group = Run(path, tolerant=True)
    config_text = group.config_text
    record = group.metrics
    members = _members(group)
    ensemble = read_run(group.paths.ensemble) if group.paths.ensemble.is_dir() else None
    problems = list(group.problems)
    for m in members:
        if not m.dir.is_dir():
            problems.append(f"{m.dir.name}/ not found")
        else:
            problems += [f"{m.dir.name}/{p}" for p in m.problems]
    if ensemble is None:
        problems.append("ensemble/ not found")
    else:  # an ensemble has no config, env or history of its own: only its results can be missing
        problems += [
            f"ensemble/{p}" for p in ensemble.problems if p.split()[0] in ("metrics.json", "predictions.npz")
        ]
    runs = {m.dir.name: m for m in members} | ({"ensemble": ensemble} if ensemble is not None else {})
    heads = _heads(runs.values())
    return {
        "title": group.name,
        "group_dir": str(path),
        "status": record.status if record else "unknown",
        "error": record.error if record else None,
        "problems": problems,
        "members": _members_table(runs, heads),
        "reference": _reference_table(runs, heads),
        "gain": _gain_table(ensemble.metrics if ensemble is not None else None),
        "curves": _curves(members, heads),
        "links": [(m.dir.name, f"{m.dir.name}/report.html") for m in members if m.paths.report.is_file()],
        "config_text": config_text,
    }


def _heads(runs) -> dict[str, str]:
    """head -> kind, from the first record that has them."""
    for run in runs:
        if run is not None and run.metrics is not None and run.metrics.heads:
            return {h: info.kind for h, info in run.metrics.heads.items()}
    return {}


def _intervals(run: Run, head: str, kind: str) -> dict[str, dg.Estimate]:
    """The run report's intervals of one head's test predictions (classification, regression)."""
    arrays = run.predictions.head("test", head) if run.predictions is not None else {}
    try:
        if kind == "classification" and "prob" in arrays:
            y = np.asarray(arrays["y_true"])
            y = y.argmax(axis=1) if y.ndim == 2 else y
            return dg.classification_intervals(y.astype(np.int64), arrays["prob"])
        if kind == "regression" and "y_pred" in arrays:
            return dg.regression_intervals(arrays["y_true"], arrays["y_pred"])
    except (KeyError, ValueError, IndexError):  # unusable arrays: the member's own report says why
        return {}
    return {}


def _members_table(runs: dict[str, Run], heads: dict[str, str]) -> Table | None:
    """One row per member and the ensemble: each head's headline metrics with their intervals."""
    columns = [
        (h, name)
        for h, kind in heads.items()
        if kind in HEAD_KINDS.list()
        for name in HEAD_KINDS.get(kind).headline
    ]
    if not columns or not runs:
        return None
    rows = []
    for label, run in runs.items():
        test = run.metrics.test if run.metrics is not None else {}
        estimates = {h: _intervals(run, h, heads[h]) for h in {h for h, _ in columns}}
        cells = [Cell(label, cls="best" if label == "ensemble" else ""), Cell(run.status)]
        for h, name in columns:
            e = estimates[h].get(name)
            value = e.value if e is not None else test.get(h, {}).get(name)
            note = f"[{format_value(e.low)}, {format_value(e.high)}]" if e is not None else ""
            cells.append(Cell(format_value(value), note=note, cls="num"))
        rows.append(cells)
    caption = f"test metrics of each member and their ensemble; under each value its {INTERVAL_NOTE}"
    return Table(["run", "status", *[f"{h}/{n}" for h, n in columns]], rows, caption)


def _reference_table(runs: dict[str, Run], heads: dict[str, str]) -> Table | None:
    """The trivial predictors' test scores (the members share data and split: the first's)."""
    for run in runs.values():
        refs = run.metrics.reference.get("test", {}) if run.metrics is not None else {}
        if refs:
            rows = [
                [Cell(f"{head} · {label}"), *[Cell(f"{k} {format_value(v)}") for k, v in scores.items()]]
                for head, ref in refs.items()
                for label, scores in reference_labels(ref).items()
            ]
            return Table(["predictor", "scores"], rows, "trivial predictors on the same test images")
    return None


def _gain_table(ensemble: MetricsRecord | None) -> Table | None:
    """ensemble/metrics.json's gain: each metric's ensemble, best and mean member and the gains."""
    if ensemble is None or not ensemble.gain:
        return None
    rows = []
    for head, metrics in ensemble.gain.items():
        for name, g in metrics.items():
            values = [g.ensemble, g.best_member, g.mean_member, g.over_best, g.over_mean]
            rows.append([Cell(f"{head}/{name}"), *[Cell(format_value(v), cls="num") for v in values]])
    columns = ["metric", "ensemble", "best member", "mean member", "gain over best", "gain over mean"]
    return Table(
        columns,
        rows,
        "ensemble/metrics.json: gain positive = the ensemble is better (signs follow each metric's direction)",
    )


def _curves(members: list[Run], heads: dict[str, str]) -> Image | None:
    histories = {m.dir.name: m.history for m in members if m.history}
    columns = ["train/loss", "val/loss"]
    columns += [
        f"val/{h}/{HEAD_KINDS.get(k).headline[0]}" for h, k in heads.items() if k in HEAD_KINDS.list()
    ]
    png = seed_curves_png(histories, columns) if histories else None
    if png is None:
        return None
    return Image(
        "learning curves of every seed", png, "one colour per member, from each history.csv", wide=True
    )
