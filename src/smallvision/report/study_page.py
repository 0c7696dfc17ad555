"""The study report: ``report.html`` in a study directory, written from that directory alone.

One section per step: the selection that fed it (``selections.json``) and its search
(``search/<step>/best.json``); per headline metric the verdict, the ranked results beside the
trivial predictors, the significance matrix after Holm's correction, the critical-difference
diagram (three variants or more), the metric against each numeric axis, and the test images the
two best-ranked variants disagree on; then every cell with a link to its run report. Statistics
come from :mod:`smallvision.report.study_stats` (the study's own comparison code); figures are
embedded PNGs and the CSS is inline, so the page opens offline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smallvision.evaluate.compare_text import format_number as num
from smallvision.report import study_figures, study_tables
from smallvision.report.html import environment, write_page
from smallvision.report.image_figures import labelled_grid
from smallvision.report.study_data import StudyCell, StudyDir, StudyStep, read_study
from smallvision.report.study_stats import (
    Disagreement,
    MetricResult,
    disagreement,
    groups,
    headline_metrics,
    metric_parts,
    metric_result,
)
from smallvision.report.tables import Image, Table, format_value

# disagreement pictures shown per direction (the counts cover every test image)
MAX_PICTURES = 16


@dataclass
class MetricView:
    """One metric of one step as the page shows it."""

    metric: str
    verdict: str
    error: str
    excluded: list[str]
    tables: list[Table]
    pairs: Table | None
    images: list[Image]
    disagreement: list[str] = field(default_factory=list)  # the counts, in words
    pictures: list[Image] = field(default_factory=list)


@dataclass
class StepView:
    """One step: its selections, search, metrics and cells."""

    name: str
    anchor: str
    depends_on: list[str]
    counts: str
    selections: list[dict]
    search: Table | None
    metrics: list[MetricView]
    cells: list[dict]


@dataclass(frozen=True)
class BuiltStudyReport:
    """A written study page: its path, the files it could not read, each verdict, time and size."""

    path: Path
    problems: list[str]
    verdicts: list[str]
    seconds: float
    size: int


def render_study_report(study_dir: str | Path) -> str:
    """The study page of ``study_dir`` as an HTML string (see :func:`build_study_report`)."""
    return environment().get_template("study.html").render(**_context(read_study(study_dir)))


def build_study_report(study_dir: str | Path) -> BuiltStudyReport:
    """Write ``report.html`` into a study directory, atomically, from the directory alone.

    Missing, half-written or corrupt files (a killed cell, a damaged ``results.csv``) are named on
    the page and in ``problems``; the rest is rendered.

    Raises:
        UserError: ``study_dir`` is not a study directory.
    """
    start = time.perf_counter()
    study = read_study(study_dir)
    context = _context(study)
    text = environment().get_template("study.html").render(**context)
    target = study.dir / "report.html"
    write_page(target, text)
    verdicts = [f"{s.name} {m.metric}: {m.verdict or m.error}" for s in context["steps"] for m in s.metrics]
    return BuiltStudyReport(
        target, list(study.problems), verdicts, time.perf_counter() - start, len(text.encode())
    )


def _context(study: StudyDir) -> dict[str, Any]:
    cells = study.cells
    statuses: dict[str, int] = {}
    for c in cells:
        statuses[c.status] = statuses.get(c.status, 0) + 1
    return {
        "title": study.name,
        "study_dir": str(study.dir),
        "counts": ", ".join(f"{n} {s}" for s, n in statuses.items()) or "no cells",
        "total": len(cells),
        "failed": [c for c in cells if c.status == "failed"],
        "unfinished": [c for c in cells if c.status not in ("completed", "failed")],
        "problems": study.problems,
        "steps": [_step(s, study.dir) for s in study.steps],
        "study_text": study.study_text,
        "overrides": study.overrides,
    }


def _step(step: StudyStep, root: Path) -> StepView:
    metrics = [_metric(step, metric_result(step, m)) for m in headline_metrics(step)]
    done = sum(c.status == "completed" for c in step.cells)
    return StepView(
        step.name,
        "step-" + "".join(ch if ch.isalnum() else "-" for ch in step.name),
        step.depends_on,
        f"{done}/{len(step.cells)} cells completed, {len(groups(step))} groups",
        _selections(step, root),
        study_tables.search_table(step.search) if step.search else None,
        metrics,
        [_cell_row(c, [m.metric for m in metrics]) for c in step.cells],
    )


def _metric(step: StudyStep, result: MetricResult) -> MetricView:
    c = result.comparison
    if c is None:
        return MetricView(result.metric, "", result.error, result.excluded, [], None, [])
    step_groups = groups(step)
    tables = [study_tables.results_table(c, step_groups, study_tables.references(step.cells, c.metric))]
    matrix = study_tables.significance_matrix(c)
    tables += [matrix] if matrix is not None else []
    view = MetricView(
        c.metric, c.verdict, "", result.excluded, tables, study_tables.pairs_table(c), _figures(step, c)
    )
    d = disagreement(result, step)
    if d is not None:
        _disagreement(view, d)
    return view


def _figures(step: StudyStep, c: Any) -> list[Image]:
    images = []
    if len(c.rows) >= 3 and all(r.avg_rank is not None for r in c.rows):
        caption = (
            "a bar joins variants the comparison did not find significantly different (Holm, after Friedman)"
        )
        images.append(Image("critical-difference diagram", study_figures.critical_difference_png(c), caption))
    rows = {r.name: r for r in c.rows}
    for axis, series in _sweeps(step, rows).items():
        png = study_figures.axis_sweep_png(c.metric, axis, series)
        images.append(Image(f"{c.metric} against {axis}", png, "mean over seeds, bars ± one std (ddof 1)"))
    return images


def _sweeps(step: StudyStep, rows: dict) -> dict[str, dict[str, list]]:
    """Numeric axis -> series label (variant and the other axes' values) -> points from the rows."""
    firsts = {g: cells[0] for g, cells in groups(step).items() if g in rows}
    keys = {k for cell in firsts.values() for k in cell.values}
    out = {}
    for axis in sorted(keys):
        values = [cell.values.get(axis) for cell in firsts.values()]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if not numeric or len(set(values)) < 2:
            continue
        series: dict[str, list] = {}
        for group, cell in firsts.items():
            others = [f"{k}={format_value(v)}" for k, v in cell.values.items() if k != axis]
            label = " ".join(([cell.variant] if cell.variant else []) + others)
            r = rows[group]
            point = study_figures.SweepPoint(float(cell.values[axis]), r.mean, r.std, r.n_seeds)
            series.setdefault(label, []).append(point)
        out[axis] = series
    return out


def _disagreement(view: MetricView, d: Disagreement) -> None:
    n = len(d.seeds)
    pooled = f"pooled over {n} seed{'s' if n > 1 else ''}" if n > 1 else "one seed"
    view.disagreement = [
        f"{d.a} right, {d.b} wrong: {d.a_only} {d.split} image–seed pairs; the reverse: {d.b_only} ({pooled}, "
        "the discordant pairs of McNemar's test)",
        f"{d.split} images {d.a} gets right more often than {d.b}: {int((d.right_a > d.right_b).sum())}; "
        f"the reverse: {int((d.right_b > d.right_a).sum())} (of {len(d.right_a)})",
    ]
    if d.images is None:
        view.disagreement.append(d.note)
        return
    # stored uint8 images on one 0..255 scale (a faint digit stays faint); others on their own range
    vrange = (0.0, 255.0) if d.images.images.dtype == np.uint8 else None
    for first, second, where in ((d.a, d.b, d.a_images), (d.b, d.a, d.b_images)):
        shown = where[:MAX_PICTURES]
        if not len(shown):
            continue
        labels = [_picture_label(d, int(i)) for i in shown]
        png = labelled_grid(d.images.images[shown], labels, cols=8, vrange=vrange)
        caption = (
            f"{len(shown)} of the {len(where)} (test_images.npz), largest difference first; under "
            f"each: the true class, then the prediction of A = {d.a} and of B = {d.b} "
            "(probabilities averaged over seeds) with their seeds right"
        )
        view.pictures.append(Image(f"{first} right, {second} wrong", png, caption, wide=True))


def _picture_label(d: Disagreement, i: int) -> str:
    n = len(d.seeds)

    def name(k: int) -> str:
        return d.classes[k] if d.classes and 0 <= k < len(d.classes) else str(k)

    a, b = round(d.right_a[i] * n), round(d.right_b[i] * n)
    return f"true {name(int(d.labels[i]))}\nA {name(int(d.pred_a[i]))} ({a}/{n})\nB {name(int(d.pred_b[i]))} ({b}/{n})"


def _selections(step: StudyStep, root: Path) -> list[dict]:
    """Each distinct best(...) the step's cells used: source step, metric, rule, choice, table."""
    found: dict[tuple, dict] = {}
    for sel in step.selections:
        chosen = sel.get("chosen") or {}
        key = (sel.get("from_step"), sel.get("metric"), chosen.get("group"), chosen.get("cell"))
        if key in found:
            found[key]["users"] += 1
            continue
        cell = str(chosen.get("cell") or "")
        report = root / "runs" / cell / "report.html"
        seeds = chosen.get("seeds")
        found[key] = {
            "source": f"@{sel.get('from_step')}.best({sel.get('metric')})",
            "rule": sel.get("rule", ""),
            "chosen": f"{chosen.get('group')} (mean {sel.get('metric')} {num(chosen.get('mean'))} over {seeds} seeds)",
            "cell": cell, "link": f"runs/{cell}/report.html" if cell and report.is_file() else None,
            "users": 1, "table": study_tables.selection_table(sel),
        }  # fmt: skip
    return list(found.values())


def _cell_row(cell: StudyCell, metrics: list[str]) -> dict:
    splits = cell.run.metrics.splits if cell.run is not None and cell.run.metrics is not None else {}
    values = []
    for m in metrics:
        split, head, name = metric_parts(m)
        value = splits.get(split, {}).get(head, {}).get(name)
        values.append(format_value(value) if cell.status == "completed" else "")
    return {
        "label": cell.label, "id": cell.id, "seed": cell.seed, "status": cell.status,
        "kind": f"baseline: {cell.baseline}" if cell.baseline else "network",
        "values": values, "report": cell.report, "has_run": cell.run is not None,
        "error": cell.error,
    }  # fmt: skip
