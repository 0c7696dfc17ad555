"""``smallvision compare DIR...``: saved runs grouped into variants, scored per image, compared.

A DIR is a run directory, a seed-group directory (its members form one variant) or a study
directory (every completed cell, grouped by step and by its label without the seed). Plain run
directories whose training configs differ only in the seed form one variant. Everything is read
through :mod:`smallvision.rundir`; the statistics are :func:`smallvision.evaluate.compare.compare`.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smallvision.config_training import training_view
from smallvision.errors import UserError
from smallvision.evaluate.compare import Comparison, VariantResult, compare
from smallvision.evaluate.metrics import higher_is_better, scalar_metrics
from smallvision.registry import HEAD_KINDS
from smallvision.rundir import Run, load_run

# per-image scores whose mean over the test images is the metric, by head kind and metric
PER_IMAGE = {("classification", "accuracy"), ("regression", "mae"), ("regression", "mse")}
PER_IMAGE |= {("reconstruction", "mse"), ("reconstruction", "mae")}


@dataclass
class Variant:
    """Runs that differ only in their seed: the variant's name and its run directories."""

    name: str
    runs: list[Run]


def is_study_dir(path: Path) -> bool:
    """A study directory: ``results.csv`` beside ``runs/``."""
    return (path / "results.csv").is_file() and (path / "runs").is_dir()


def study_variants(path: Path) -> list[Variant]:
    """Every completed cell of a study, one variant per step and group label (everything but the seed)."""
    with (path / "results.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("status") == "completed"]
    groups: dict[str, list[Run]] = {}
    for r in rows:
        group = r["label"].removesuffix(f" seed={r['seed']}")
        groups.setdefault(f"{r['step']}/{group}", []).append(load_run(path / "runs" / r["cell_id"]))
    if not groups:
        raise UserError(f"{path}: results.csv has no completed cell; expected at least one finished run")
    return [Variant(name, runs) for name, runs in groups.items()]


def collect_variants(dirs: list[Path]) -> list[Variant]:
    """The variants of ``dirs``, in the order given (see the module docstring)."""
    variants: list[Variant] = []
    plain: dict[str, Variant] = {}  # training config without the seed -> variant of plain run dirs
    for d in map(Path, dirs):
        if d.is_dir() and is_study_dir(d):
            variants += study_variants(d)
            continue
        run = load_run(d)
        if run.is_group:
            members = [m for m in run.members() if m.status == "completed"]
            if not members:
                raise UserError(f"{d}: seed group has no completed member; expected at least one")
            variants.append(Variant(run.name, members))
            continue
        if run.status != "completed":
            raise UserError(f"{d}: run status is {run.status!r}; expected a completed run")
        if run.config is None:
            raise UserError(f"{d}: no config.yaml; expected a run, seed-group or study directory")
        view = training_view(run.config.model_dump(mode="json"))
        view.pop("seed", None)
        key = json.dumps(view, sort_keys=True, default=str)
        if key not in plain:
            plain[key] = Variant(run.name, [])
            variants.append(plain[key])
        plain[key].runs.append(run)
    return _unique_names(variants)


def _unique_names(variants: list[Variant]) -> list[Variant]:
    """Names made unique by the first run's directory when two variants share one."""
    names = [v.name for v in variants]
    for v in variants:
        if names.count(v.name) > 1:
            v.name = f"{v.name} ({v.runs[0].dir.name})"
    return variants


def available_metrics(run: Run, split: str = "test") -> list[str]:
    """The run's scalar metrics of one split, ``test/<head>/<metric>`` (or ``test:B/...``, ``val/...``)."""
    return [f"{split}/{k}" for k in scalar_metrics(run.metrics.splits.get(split) or {})]


def default_metric(run: Run) -> str:
    """The first head's headline test metric (accuracy for classification, mae for regression...)."""
    head, info = next(iter(run.metrics.heads.items()))
    return f"test/{head}/{HEAD_KINDS.get(info.kind).headline[0]}"


def metric_parts(metric: str) -> tuple[str, str, str]:
    """``(split, head, name)`` of ``<split>/<head>/<metric>`` (a head name may hold ``/``); the split
    is ``test``, or ``val`` in a study without a test split."""
    split, _, rest = metric.partition("/")
    head, _, name = rest.rpartition("/")
    return split, head, name


def parse_metric(metric: str, run: Run) -> tuple[str, str, str]:
    """:func:`metric_parts` of ``metric``, a metric the run logs (else a UserError listing them)."""
    parts = metric_parts(metric)
    available = available_metrics(run, parts[0])
    if metric not in available:
        available = available or available_metrics(run)
        raise UserError(f"--metric {metric!r} is not logged by {run.dir}; available: {', '.join(available)}")
    return parts


def per_image(run: Run, head: str, name: str, split: str = "test") -> tuple[np.ndarray, np.ndarray | None]:
    """``(index, scores)`` on one split: 1/0 correct for accuracy, |err| for MAE, err² for MSE."""
    kind = run.metrics.heads[head].kind
    preds = run.predictions
    if preds is None or split not in preds.index:
        raise UserError(f"{run.dir}/predictions.npz: no {split} split; expected the run's saved predictions")
    index = preds.index[split]
    if (kind, name) not in PER_IMAGE:
        return index, None
    y_true = preds.head(split, head)["y_true"]
    out = preds.output(split, head, kind)
    if kind == "classification":
        return index, (out.argmax(axis=1) == y_true).astype(float)
    err = (out - y_true).reshape(len(index), -1)
    return index, (np.abs(err) if name == "mae" else err**2).mean(axis=1)


def variant_result(variant: Variant, metric: str, reference: tuple[Path, np.ndarray] | None):
    """The VariantResult of one variant, and the (dir, test index) every later variant must match."""
    seeds, values, scores = [], [], []
    for run in variant.runs:
        split, head, name = parse_metric(metric, run)
        index, score = per_image(run, head, name, split)
        if reference is None:
            reference = (run.dir, index)
        elif not np.array_equal(reference[1], index):
            raise UserError(
                f"{reference[0]} and {run.dir} were tested on different {split} images; "
                "expected the same data and split in every run"
            )
        seeds.append(run.config.seed if run.config is not None else len(seeds))
        values.append(run.metrics.splits[split][head][name])
        scores.append(score)
    image = None if any(s is None for s in scores) else np.stack(scores)
    correct = image.astype(bool) if image is not None and metric.endswith("/accuracy") else None
    per = None if correct is not None else image
    return VariantResult(variant.name, seeds, np.asarray(values), per, correct), reference


def compare_dirs(dirs: list[Path], metric: str | None = None) -> Comparison:
    """Group ``dirs`` into variants, score them on ``metric`` and compare them.

    Args:
        dirs: run, seed-group or study directories.
        metric: ``test/<head>/<metric>`` (or of another scored split: ``test:B/...``, ``val/...``);
            None: the first head's headline test metric.

    Returns:
        The comparison (its ``verdict`` says which differences are significant).

    Raises:
        UserError: a directory that cannot be read, an unknown metric, or variants tested on
            different test images.
    """
    variants = collect_variants(dirs)
    metric = metric or default_metric(variants[0].runs[0])
    return compare(variant_results(variants, metric), metric, higher_is_better(metric))


def variant_results(variants: list[Variant], metric: str) -> list[VariantResult]:
    """The VariantResult of each variant (values, per-image scores), all tested on the same images.

    The one way a study's summary, its report and ``compare`` turn runs into the inputs of
    :func:`smallvision.evaluate.compare.compare`.

    Raises:
        UserError: a run without the metric or its test predictions, or two runs tested on
            different test images.
    """
    results, reference = [], None
    for variant in variants:
        result, reference = variant_result(variant, metric, reference)
        results.append(result)
    return results


def comparison_table(c: Comparison):
    """The ranked variants as a rich Table, titled with the metric and its direction."""
    from rich.table import Table

    direction = "higher" if c.higher_is_better else "lower"
    table = Table(title=f"{c.metric} ({direction} is better)")
    for column in ("rank", "variant", "seeds", "mean ± std", "95% CI over images", "better than (*)"):
        table.add_column(column, justify="right" if column in ("rank", "seeds") else "left")
    for r in c.rows:
        ci = f"[{r.ci.low:.4g}, {r.ci.high:.4g}]" if r.ci is not None else "–"
        name = f"[bold]{r.name}[/bold]" if r.name == c.winner else r.name
        table.add_row(
            str(r.rank),
            name,
            str(r.n_seeds),
            f"{r.mean:.4g} ± {r.std:.2g}",
            ci,
            ", ".join(r.better_than) or "–",
        )
    return table


def print_comparison(c: Comparison, markdown: bool = False) -> None:
    """Print the comparison: Markdown text, or a rich table, the pairs and the verdict."""
    if markdown:
        print(c.to_markdown())
        return
    from rich.console import Console

    console = Console(highlight=False)
    console.print(comparison_table(c))
    for p in c.pairs:
        mark = "*" if p.significant else " "
        console.print(
            f"{mark} {p.a} vs {p.b}: diff {p.diff:+.4g}, {p.test} p = {p.p:.3g}, Holm p = {p.p_holm:.3g}",
            markup=False,
        )
    console.print(f"Verdict: {c.verdict}.", markup=False)
