"""Tables as plain data (header + rows of cells) that the ``table`` template macro renders.

Kept apart from the HTML so that the run report and the study report (runs x metrics comparison
tables) build their tables with the same helpers and the same number formatting.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smallvision.report.checks import Check


@dataclass(frozen=True)
class Cell:
    """One table cell: ``text`` shown, an optional smaller ``note`` below, a CSS class."""

    text: str
    note: str = ""
    cls: str = ""


@dataclass(frozen=True)
class Table:
    """A header and rows of cells; ``caption`` is shown above the table."""

    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    """A PNG figure for the page, embedded as a data URI so the file opens offline."""

    title: str
    png: bytes
    caption: str = ""
    wide: bool = field(default=False)

    @property
    def src(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Block:
    """One titled part of a report section: notes, figures, tables, and folded tables.

    The ``block`` template macro renders it; the data card, worst mistakes, looking inside and
    evaluation sets sections are lists of blocks.
    """

    title: str
    notes: list[str] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    details: list[Table] = field(default_factory=list)


def format_value(value: Any, digits: int = 4) -> str:
    """Numbers for reading: floats to ``digits`` decimals, ints with thousands separators."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** (-digits)):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v, digits) for v in value)
    return str(value)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_cell(reported: Any, check: Check | None) -> Cell:
    text = format_value(reported) if _is_scalar(reported) else "—"
    if check is None or check.recomputed is None:
        return Cell(text, cls="num")
    if check.ok is None:
        return Cell(text, note=f"recomputed {format_value(check.recomputed)}", cls="num")
    mark = "✓" if check.ok else "✗ disagrees"
    return Cell(
        text,
        note=f"recomputed {format_value(check.recomputed)} {mark}",
        cls="num " + ("ok" if check.ok else "bad"),
    )


def metrics_table(
    metrics: Mapping[str, Mapping[str, Any]],
    checks: Mapping[str, Mapping[str, Check]] | None = None,
    row_label: str = "head",
    columns: Sequence[str] | None = None,
    caption: str = "",
) -> Table:
    """A wide table: one row per key of ``metrics`` (heads of a run, or runs of a study), one
    column per scalar metric; non-scalar entries (per-class lists, confusion) are left out.

    Args:
        metrics: row name -> {metric: value}.
        checks: row name -> {metric: Check}; each checked cell also shows the recomputed value
            and whether it agrees.
        row_label: header of the first column.
        columns: metric columns in this order; default: every scalar metric, in order of first
            appearance.
        caption: shown above the table.
    """
    checks = checks or {}
    names = list(metrics) + [n for n in checks if n not in metrics]
    if columns is None:
        seen: dict[str, None] = {}
        for name in names:
            seen.update((m, None) for m, v in metrics.get(name, {}).items() if _is_scalar(v))
            seen.update((m, None) for m in checks.get(name, {}))
        columns = list(seen)
    rows = []
    for name in names:
        values, row_checks = metrics.get(name, {}), checks.get(name, {})
        rows.append([Cell(name)] + [_check_cell(values.get(m), row_checks.get(m)) for m in columns])
    return Table([row_label, *columns], rows, caption)


def kv_table(items: Mapping[str, Any], caption: str = "") -> Table:
    """A two-column table of names and formatted values."""
    return Table(["", ""], [[Cell(str(k)), Cell(format_value(v))] for k, v in items.items()], caption)
