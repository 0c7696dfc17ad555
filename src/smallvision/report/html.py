"""The run report: one self-contained HTML file written from a run directory alone.

Figures are embedded as base64 PNG and the CSS is inline, so ``report.html`` opens offline and
can be mailed around. The report reads files only (see :func:`smallvision.rundir.read_run`); it never
imports the trainer or the data readers, so it also renders runs that failed half-way.
"""

from __future__ import annotations

import functools
import math
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smallvision.config import ReportConfig
from smallvision.errors import UserError
from smallvision.report import data_card, eval_sets, figures, inside, mistakes, reproducibility
from smallvision.report.checks import Finding
from smallvision.report.heads import HeadReport, analyse_head, head_names
from smallvision.report.reference import baseline_items, cv_table, with_references
from smallvision.report.tables import Cell, Image, Table, format_value, kv_table, metrics_table
from smallvision.rundir import DataInfo, MetricsRecord, Run, read_run

TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def environment() -> Any:
    """The Jinja2 environment of the report templates (shared with the study report)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly instead of printing ""
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = format_value
    return env


# the run files whose content the report depends on (their mtimes and sizes key the findings cache)
_INPUTS = ("config", "env", "metrics", "history", "predictions")
# optional files the report also reads (older runs, baselines and ensembles lack them)
_OPTIONAL = ("data_card", "test_images", "best")


@dataclass(frozen=True)
class BuiltReport:
    """A written report and what it found.

    Attributes:
        path: the report file.
        findings: the warnings and notes shown on the page, in page order.
        problems: files that were missing or unreadable (as listed on the page).
        seconds: time to read, analyse and render.
        size: bytes written.
    """

    path: Path
    findings: list[Finding]
    problems: list[str]
    seconds: float
    size: int

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]


# run directory -> (file signature, findings): the CLI prints a just-written report's warnings
# without analysing the run a second time
_FINDINGS: dict[Path, tuple[tuple, list[Finding]]] = {}


def _signature(run: Run) -> tuple:
    stamps = []
    for name in _INPUTS + _OPTIONAL:
        path = getattr(run.paths, name)
        try:
            st = path.stat()
            stamps.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            stamps.append((name, None, None))
    return tuple(stamps)


def _check_run_dir(run: Run) -> None:
    if not any(getattr(run.paths, name).exists() for name in _INPUTS):
        names = ", ".join(getattr(run.paths, n).name for n in _INPUTS)
        raise UserError(f"{run.dir} is not a run directory: it holds none of {names}")


def render_report(run_dir: str | Path) -> str:
    """The report of one run as an HTML string.

    Args:
        run_dir: a run directory; missing files are listed on the page, not raised.

    Raises:
        UserError: ``run_dir`` does not exist.
    """
    run = read_run(run_dir)
    return environment().get_template("run.html").render(**_context(run))


def build_report(run_dir: str | Path) -> BuiltReport:
    """Render the report of a run directory, write it to ``run_dir/report.html`` atomically.

    The page is written to a temporary file in the same directory and moved into place, so a
    reader never sees half a report. Missing, half-written or corrupt files are listed on the page.

    Raises:
        UserError: ``run_dir`` does not exist or holds none of a run's files.
    """
    start = time.perf_counter()
    run = read_run(run_dir)
    _check_run_dir(run)
    signature = _signature(run)
    context = _context(run)
    text = environment().get_template("run.html").render(**context)
    target = run.paths.report
    write_page(target, text)
    _FINDINGS[run.dir.resolve()] = (signature, context["findings"])
    size = len(text.encode("utf-8"))
    return BuiltReport(target, context["findings"], list(run.problems), time.perf_counter() - start, size)


def write_page(target: Path, text: str) -> None:
    """Write a page atomically: a reader never sees half of it (shared with the study and group pages)."""
    # a unique name beside the target (not mkstemp, which would make the report owner-only)
    tmp = target.with_name(f".report-{os.getpid()}-{secrets.token_hex(4)}.html.tmp")
    try:
        with tmp.open("x", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_report(run_dir: str | Path) -> Path:
    """:func:`build_report`, returning the path of the written report."""
    return build_report(run_dir).path


def report_findings(run_dir: str | Path) -> list[Finding]:
    """The findings of a run's report: those of the last report built in this process when the
    run's files have not changed since, else analysed afresh (no page written)."""
    run = read_run(run_dir)
    cached = _FINDINGS.get(run.dir.resolve())
    if cached is not None and cached[0] == _signature(run):
        return list(cached[1])
    # the same checks as the page, without drawing its pictures
    heads = [analyse_head(run, h, draw=False) for h in head_names(run)]
    card_findings = data_card.findings(run)
    _, eval_findings = eval_sets.section(run, [(h.name, h.kind) for h in heads])
    return _run_findings(run, heads) + [f for h in heads for f in h.findings] + card_findings + eval_findings


def _context(run: Run) -> dict[str, Any]:
    # an empty record when metrics.json is missing or unreadable: the page shows what else exists
    metrics = run.metrics or MetricsRecord("completed")
    cfg = run.config.report if run.config is not None else ReportConfig()
    heads = [analyse_head(run, h) for h in head_names(run)]
    kinds = [(h.name, h.kind) for h in heads]
    card, card_findings, card_note = data_card.section(run)
    evals, eval_findings = eval_sets.section(run, kinds)
    worst, worst_note = mistakes.section(run, kinds, cfg.top_losses)
    inner, inner_note = _inside(run, cfg.feature_stage)
    findings = _run_findings(run, heads) + [f for h in heads for f in h.findings]
    return {
        "title": run.name,
        "run_dir": str(run.dir),
        "status": run.status,
        "error": metrics.error,
        "findings": findings + card_findings + eval_findings,
        "summary": _summary(run),
        "test_table": _split_table(metrics, heads, "test"),
        "val_table": _split_table(metrics, heads, "val"),
        "cv_table": cv_table(metrics),
        "eval_block": evals,
        "curves": _curves(run),
        "card": card,
        "card_note": card_note,
        "heads": heads,
        "mistakes": worst,
        "mistakes_note": worst_note,
        "inside": inner,
        "inside_note": inner_note,
        "data_tables": _data_tables(metrics),
        "config_text": run.config_text,
        "env_tables": reproducibility.tables(run.env),
        "history_table": _history_table(run.history or {}, metrics.best_epoch),
        "problems": run.problems,
    }


def _inside(run: Run, stage: str | None) -> tuple[list, str | None]:
    """The looking-inside blocks; a note instead when the model cannot be run on its images."""
    try:
        return inside.section(run, stage)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:  # a model that fails here fails alone
        return (
            [],
            f"looking inside failed ({type(exc).__name__}: {exc}); the rest of the report is unaffected.",
        )


def _run_findings(run: Run, heads: list[HeadReport]) -> list[Finding]:
    """Findings about the run as a whole (per-head ones come from the heads)."""
    if run.status == "failed" or run.metrics is None:
        return []  # the failure box and the missing-files list already say it
    if run.predictions is None or not run.predictions.arrays:
        return [Finding("warning", "no predictions", "predictions.npz is missing: no figure can be checked.")]
    unchecked = [h.name for h in heads if not h.checks]
    if unchecked:
        return [Finding("warning", "heads without predictions", ", ".join(unchecked))]
    return []


def _summary(run: Run) -> Table:
    m = run.metrics or MetricsRecord("completed")
    items = {
        "status": run.status,
        "epochs run": m.epochs_run,
        "best epoch": m.best_epoch,
        "stopped early": m.stopped_early,
        "train time": _seconds(m.train_seconds),
        "evaluation time": _seconds(m.eval_seconds),
    }
    if "seed" in (run.env or {}):
        items["seed"] = run.env["seed"]
    items |= baseline_items(m)
    return kv_table({k: v for k, v in items.items() if v is not None or k == "status"})


def _seconds(value: Any) -> str | None:
    return f"{value:.1f} s" if isinstance(value, int | float) and not isinstance(value, bool) else None


def _split_table(metrics: MetricsRecord, heads: list[HeadReport], split: str) -> Table | None:
    reported = with_references(metrics, split)
    checks = {h.name: h.checks[split] for h in heads if split in h.checks}
    if not reported and not checks:
        return None
    caption = f"{split} metrics: metrics.json, with each value recomputed from predictions.npz below it"
    if metrics.reference.get(split):
        caption += (
            "; the · rows are trivial predictors (majority class and training mean of the training split)"
        )
    return metrics_table(reported, checks, caption=caption)


def _curves(run: Run) -> Image | None:
    if not run.history:
        return None
    best = run.metrics.best_epoch if run.metrics else None
    best = float(best) if isinstance(best, int | float) and not isinstance(best, bool) else None
    png = figures.training_curves(run.history, best)
    if png is None:
        return None
    return Image("training curves", png, "train solid, validation dashed; red line: best epoch", wide=True)


def _data_tables(metrics: MetricsRecord) -> list[Table]:
    tables = []
    if metrics.data is not None:
        tables.append(kv_table(_data_items(metrics.data), "data"))
    if metrics.params:
        tables.append(kv_table(metrics.params, "parameters"))
    if metrics.heads:
        rows = [
            [Cell(h), Cell(info.kind), Cell(format_value(len(info.classes or []) or None))]
            for h, info in metrics.heads.items()
        ]
        tables.append(Table(["head", "kind", "classes"], rows, "heads"))
    return tables


def _data_items(data: DataInfo) -> dict[str, Any]:
    items: dict[str, Any] = {"source": data.source, "input_shape": data.input_shape}
    items |= {f"n_{s}": n for s, n in data.sizes.items()}
    items |= {k: v for k, v in (("split", data.split), ("reader", data.reader)) if v}
    items |= {f"normalization {k}": v for k, v in data.normalization.items()}
    return {k: v for k, v in items.items() if v is not None}


def _history_table(history: dict[str, np.ndarray], best_epoch: Any) -> Table | None:
    if not history:
        return None
    columns = list(history)
    epochs = history.get("epoch")
    rows = []
    for i in range(len(next(iter(history.values())))):
        best = epochs is not None and best_epoch is not None and epochs[i] == best_epoch
        rows.append(
            [Cell(_history_value(name, history[name][i]), cls="best" if best else "") for name in columns]
        )
    return Table(columns, rows, "history.csv (best epoch highlighted)")


def _history_value(name: str, value: float) -> str:
    if name == "epoch" and not math.isnan(value):
        return str(int(value))
    if name == "lr":
        return f"{value:.3g}"
    return format_value(float(value))
