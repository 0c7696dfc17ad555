"""What the command line prints of a finished run: its headline metrics and its report's warnings.

``smallvision run``, ``smallvision report`` and every cell of ``smallvision study`` print the same
lines, so that a user who never opens the report still sees what it flags (a head that predicts
one class for every image, metrics that disagree with the saved predictions, a score no better
than chance or the majority class).
"""

from __future__ import annotations

from pathlib import Path

from smallvision.rundir import MetricsRecord


def headline(metrics: MetricsRecord, split: str = "test") -> str:
    """``<head>/<metric> <value>`` for each head's headline metrics (``HEAD_KINDS``) on ``split``."""
    from smallvision.registry import HEAD_KINDS

    parts = []
    for head, m in metrics.splits.get(split, {}).items():
        info = metrics.heads.get(head)
        if info is None:  # a record without its heads section: nothing says which figures lead
            continue
        names = HEAD_KINDS.get(info.kind).headline
        parts += [f"{head}/{n} {m[n]:.4f}" for n in names if n in m]
    return "  ".join(parts)


def warnings(run_dir: str | Path) -> list[str]:
    """The warnings of the run's report as ``title: text`` lines (the report's own findings)."""
    from smallvision.report.html import report_findings

    return [f"{f.title}: {f.text}" for f in report_findings(run_dir) if f.level == "warning"]
