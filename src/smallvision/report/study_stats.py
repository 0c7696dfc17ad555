"""The statistics a study page shows, computed once per step and metric by the study's own code.

Each step's cells are grouped by everything but the seed; each group is a variant, turned into
:func:`smallvision.evaluate.compare.compare`'s inputs by
:func:`smallvision.study.compare_runs.variant_results` exactly as ``summary.md`` and
``smallvision compare`` do, so the page, the summary and the command never disagree. Nothing is
recomputed here: the page shows the Comparison's numbers, and the disagreement pictures select
images by the same per-image correctness McNemar counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from smallvision.errors import UserError
from smallvision.evaluate.compare import Comparison, VariantResult, compare
from smallvision.evaluate.metrics import higher_is_better
from smallvision.registry import HEAD_KINDS
from smallvision.report.study_data import StudyCell, StudyStep
from smallvision.rundir import StoredTestImages
from smallvision.study.compare_runs import Variant, metric_parts, variant_results


@dataclass
class MetricResult:
    """One headline metric of one step: its comparison, or why there is none.

    Attributes:
        metric: ``test/<head>/<metric>`` (``val/...`` in a study without a test split).
        comparison: the comparison of the step's groups (None when it could not be made).
        error: why there is no comparison ("" otherwise).
        excluded: completed cells left out, each with the reason (an unreadable file).
        results: the variants' inputs, by group name (for the disagreement pictures).
    """

    metric: str
    comparison: Comparison | None
    error: str = ""
    excluded: list[str] = field(default_factory=list)
    results: dict[str, VariantResult] = field(default_factory=dict)


@dataclass
class Disagreement:
    """The test images two variants disagree on, for one classification head.

    Attributes:
        a, b: the variants (``a`` ranked first).
        a_only, b_only: McNemar's discordant pairs pooled over seeds (``a`` right and ``b`` wrong,
            and the reverse), as the comparison counted them.
        seeds: the seeds both were trained with.
        right_a, right_b: (n_images,) the share of seeds each gets right, per test image.
        a_images, b_images: positions (into the test split) of the images ``a`` gets right more
            often than ``b``, and the reverse, the largest difference first.
        images: the runs' stored test images (None when the runs saved none).
        labels, pred_a, pred_b: true class and each variant's seed-averaged predicted class of the
            stored images; classes: the class names.
        note: why no pictures can be shown ("" otherwise).
        split: the images compared: ``test``, or ``val`` in a study without a test split.
    """

    a: str
    b: str
    a_only: int
    b_only: int
    seeds: list[int]
    right_a: np.ndarray
    right_b: np.ndarray
    a_images: np.ndarray
    b_images: np.ndarray
    images: StoredTestImages | None
    labels: np.ndarray | None = None
    pred_a: np.ndarray | None = None
    pred_b: np.ndarray | None = None
    classes: list[str] | None = None
    note: str = ""
    split: str = "test"


def groups(step: StudyStep) -> dict[str, list[StudyCell]]:
    """The step's cells by group (label without the seed), in study order."""
    out: dict[str, list[StudyCell]] = {}
    for cell in step.cells:
        out.setdefault(cell.group, []).append(cell)
    return out


def usable(cell: StudyCell, split: str = "test") -> bool:
    """A completed cell whose run files can be compared (metrics, config, predictions of ``split``)."""
    run = cell.run
    return (
        cell.status == "completed"
        and run is not None
        and run.metrics is not None
        and run.config is not None
        and run.predictions is not None
        and split in run.predictions.index
    )


def _logged(cell: StudyCell, split: str, head: str) -> dict:
    return cell.run.metrics.splits.get(split, {}).get(head, {})


def headline_metrics(step: StudyStep) -> list[str]:
    """Each head's main figure (its kind's ``headline[0]``) logged by the step's completed cells, on
    test; on val when no cell has a test split (an 80/20 train/val study, as ``summary.md`` does)."""
    for split in ("test", "val"):
        found: dict[str, None] = {}
        for cell in step.cells:
            if not usable(cell, split):
                continue
            for head, info in cell.run.metrics.heads.items():
                if info.kind in HEAD_KINDS.list():
                    name = HEAD_KINDS.get(info.kind).headline[0]
                    if name in _logged(cell, split, head):
                        found[f"{split}/{head}/{name}"] = None
        if found:
            return sorted(found)
    return []


def metric_result(step: StudyStep, metric: str) -> MetricResult:
    """The comparison of the step's groups on ``metric`` (a single group is compared alone)."""
    split, head, name = metric_parts(metric)
    variants, excluded = [], []
    for group, cells in groups(step).items():
        runs = []
        for cell in cells:
            if cell.status != "completed":
                continue
            if not usable(cell, split):
                excluded.append(f"{cell.label} (runs/{cell.id}: files missing or unreadable, listed above)")
            elif name not in _logged(cell, split, head):
                excluded.append(f"{cell.label} (its metrics.json has no {metric})")
            else:
                runs.append(cell.run)
        if runs:
            variants.append(Variant(group, runs))
    if not variants:
        return MetricResult(metric, None, "no completed cell with readable results", excluded)
    try:
        results = variant_results(variants, metric)
        comparison = compare(results, metric, higher_is_better(metric))
    except UserError as exc:  # e.g. no seed shared by all groups: say so instead of a verdict
        return MetricResult(metric, None, str(exc), excluded)
    return MetricResult(metric, comparison, "", excluded, {r.name: r for r in results})


def disagreement(result: MetricResult, step: StudyStep) -> Disagreement | None:
    """The disagreement of the two best-ranked variants on an accuracy metric (None otherwise)."""
    c = result.comparison
    if c is None or len(c.rows) < 2 or not result.metric.endswith("/accuracy"):
        return None
    a, b = c.rows[0].name, c.rows[1].name
    ra, rb = result.results[a], result.results[b]
    pair = next(p for p in c.pairs if {p.a, p.b} == {a, b})
    if ra.correct is None or rb.correct is None or "mcnemar_pooled" not in pair.tests:
        return None
    pooled = pair.tests["mcnemar_pooled"]
    a_only, b_only = (
        (pooled["a_only"], pooled["b_only"]) if pair.a == a else (pooled["b_only"], pooled["a_only"])
    )
    right_a = _aligned(ra, c.seeds).mean(axis=0)
    right_b = _aligned(rb, c.seeds).mean(axis=0)
    split, head, _ = metric_parts(result.metric)
    if split == "test":
        images, note = _saved_images(step, a)
    else:  # the stored images are test images; a study without a test split compares val
        images, note = None, f"the runs store test images only; these counts are on {split}"
    n = len(images.index) if images is not None else 0
    gap = right_a[:n] - right_b[:n]
    d = Disagreement(
        a, b, int(a_only), int(b_only), list(c.seeds), right_a, right_b,
        _strongest(gap), _strongest(-gap), images, note=note, split=split,
    )  # fmt: skip
    if images is not None:
        _labels(d, step, head, n)
    return d


def _aligned(result: VariantResult, seeds: list[int]) -> np.ndarray:
    """(n_seeds, n_images) correctness of the seeds the comparison used, in its order."""
    return np.asarray(result.correct)[[result.seeds.index(s) for s in seeds]].astype(float)


def _strongest(gap: np.ndarray) -> np.ndarray:
    """Positions where ``gap`` > 0, the largest first (ties in image order)."""
    where = np.flatnonzero(gap > 0)
    return where[np.argsort(-gap[where], kind="stable")]


def _cells(step: StudyStep, group: str) -> list[StudyCell]:
    return [c for c in groups(step).get(group, []) if usable(c)]


def _saved_images(step: StudyStep, group: str) -> tuple[StoredTestImages | None, str]:
    """The stored test images of the group's first run that has them, checked against its predictions."""
    for cell in _cells(step, group):
        saved = cell.run.test_images
        if saved is None:
            continue
        if not saved.aligned(cell.run.predictions.index["test"]):
            return (
                None,
                f"runs/{cell.id}/test_images.npz: its index differs from predictions.npz's test/index",
            )
        return saved, ""
    return None, (
        "the runs saved no test images (test_images.npz, written by runs of this smallvision version); "
        "the counts above come from the predictions"
    )


def _labels(d: Disagreement, step: StudyStep, head: str, n: int) -> None:
    """True classes and each variant's seed-averaged prediction of the first ``n`` test images."""
    preds = {}
    for name in (d.a, d.b):
        runs = [c.run for c in _cells(step, name) if c.run.config.seed in d.seeds]
        probs = [r.predictions.output("test", head, "classification")[:n] for r in runs]
        preds[name] = np.mean(probs, axis=0).argmax(axis=1)
        if d.labels is None:
            d.labels = np.asarray(runs[0].predictions.head("test", head)["y_true"])[:n]
            d.classes = runs[0].metrics.heads[head].classes
    d.pred_a, d.pred_b = preds[d.a], preds[d.b]
