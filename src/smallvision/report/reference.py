"""The report's rows for reference scores and a baseline's cross-validation.

Reference rows (chance, the majority class, the training mean) sit under each head's metrics so
that every figure is read against what a trivial predictor scores on the same split.
"""

from __future__ import annotations

from typing import Any

from smallvision.report.tables import Cell, Table, format_value
from smallvision.rundir import MetricsRecord


def with_references(metrics: MetricsRecord, split: str) -> dict[str, dict[str, Any]]:
    """The split's head -> metrics, each head followed by its reference rows (``head · chance (1/K)``)."""
    reported = metrics.splits.get(split, {})
    refs = metrics.reference.get(split, {})
    from smallvision.evaluate.reference import reference_labels

    rows: dict[str, dict[str, Any]] = {}
    for head in list(reported) + [h for h in refs if h not in reported]:
        rows[head] = reported.get(head, {})
        for label, scores in reference_labels(refs.get(head, {})).items():
            rows[f"{head} · {label}"] = scores
    return rows


def baseline_items(metrics: MetricsRecord) -> dict[str, Any]:
    """Summary lines of a baseline run: which estimator, fit time, convergence (empty otherwise)."""
    b = metrics.baseline
    if not b:
        return {}
    items: dict[str, Any] = {"baseline": f"{b.get('name')} ({b.get('estimator')})"}
    for head, fit in (b.get("heads") or {}).items():
        if "converged" in fit:
            limit = fit.get("max_iter")
            n_iter = f", {fit['n_iter']} iterations" if "n_iter" in fit else ""
            if n_iter and isinstance(limit, int) and limit > 0:  # SVC's max_iter -1: no limit
                n_iter = f", {fit['n_iter']} of {limit} iterations"
            items[f"{head} converged"] = f"{'yes' if fit['converged'] else 'NO'}{n_iter}"
    return items


def cv_table(metrics: MetricsRecord) -> Table | None:
    """One row per head: each fold's score, mean ± std, and the test figure beside them."""
    if not metrics.cv:
        return None
    k = max(len(cv.get("folds", [])) for cv in metrics.cv.values())
    rows = []
    for head, cv in metrics.cv.items():
        folds = [Cell(format_value(f), cls="num") for f in cv.get("folds", [])]
        folds += [Cell("—")] * (k - len(folds))
        test = metrics.test.get(head, {}).get(cv.get("metric", ""))
        spread = f"{format_value(cv.get('mean'))} ± {format_value(cv.get('std'))}"
        rows.append([Cell(head), Cell(str(cv.get("metric"))), *folds, Cell(spread, cls="num")])
        rows[-1].append(Cell(format_value(test), cls="num"))
    columns = ["head", "metric", *[f"fold {i + 1}" for i in range(k)], "mean ± std", "test"]
    first = next(iter(metrics.cv.values()))
    caption = f"cross-validation: {first.get('method', 'k-fold')}, {first.get('k', k)} folds (std over folds)"
    return Table(columns, rows, caption)
