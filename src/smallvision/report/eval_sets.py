"""Every evaluation set of a run side by side: test, its domain parts (``test:B``) and the config's
``eval`` sets (``eval:NAME``), one column each, one row per head and metric.

Every value is recomputed from ``predictions.npz`` with the head kind's own ``rescore`` (the metric
table of evaluation) and shown beside metrics.json's figure, as in the test table: a set whose
figures disagree gets the same warning.
"""

from __future__ import annotations

from collections.abc import Sequence

from smallvision.registry import HEAD_KINDS
from smallvision.report import checks as ck
from smallvision.report.tables import Block, Cell, Table, _check_cell, format_value
from smallvision.rundir import Run

TEST = "test"


def eval_splits(run: Run) -> list[str]:
    """``test``, then its domain parts, then the evaluation sets, each once, in file order."""
    names = list(run.metrics.splits) if run.metrics else []
    names += run.predictions.splits if run.predictions else []
    unique = list(dict.fromkeys(n for n in names if n == TEST or n.startswith((f"{TEST}:", "eval:"))))
    return sorted(unique, key=lambda n: (n != TEST, n.startswith("eval:")))


def section(run: Run, heads: Sequence[tuple[str, str]]) -> tuple[Block | None, list[ck.Finding]]:
    """(the side-by-side block, findings) when the run has a set besides test; (None, []) otherwise.

    Args:
        run: the run directory.
        heads: (name, kind) of each head.
    """
    splits = eval_splits(run)
    if len(splits) < 2:
        return None, []
    data = run.metrics.data if run.metrics else None
    normalization = data.normalization if data else None
    sizes = dict(data.sizes) if data else {}
    rows, findings = [], []
    for head, kind_name in heads:
        checks = {s: _checks(run, s, head, kind_name, normalization) for s in splits}
        for split in splits[1:]:  # test is checked by the head's own section
            findings += ck.mismatches(head, split, checks[split])
        metrics = list(dict.fromkeys(m for c in checks.values() for m in c))
        for m in metrics:
            cells = [Cell(head), Cell(m)]
            for s in splits:
                c = checks[s].get(m)
                cells.append(_check_cell(c.reported, c) if c else Cell("—", cls="num"))
            rows.append(cells)
    columns = ["head", "metric"] + [f"{s} (n={format_value(sizes[s])})" if s in sizes else s for s in splits]
    caption = (
        "every evaluation set: metrics.json's value, and below it the value recomputed from "
        "predictions.npz; test:X are domain parts of the test split, eval:X the config's eval sets"
    )
    block = Block("Evaluation sets side by side", tables=[Table(columns, rows, caption)])
    return block, findings


def _checks(run: Run, split: str, head: str, kind_name: str, normalization: object) -> dict[str, ck.Check]:
    reported = run.metrics.splits.get(split, {}).get(head) if run.metrics else None
    arrays = run.predictions.head(split, head) if run.predictions else {}
    if not arrays:
        return ck.compare(reported, {})
    try:
        scored = HEAD_KINDS.get(kind_name).rescore(arrays, normalization)
    except (ck.PredictionError, KeyError):  # unusable arrays: shown as reported only
        return ck.compare(reported, {})
    return ck.compare(reported, scored.metrics, scored.bounds)
