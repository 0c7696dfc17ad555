"""Worst mistakes: the k test images with the highest loss, per head (fastai's ``plot_top_losses``).

Each head's kind says what a sample's loss is and what to print about it
(``HeadKind.sample_losses`` / ``sample_fields``: the negative log-probability of the true class
for classification, the squared error for regression ...). The images come from
``test_images.npz``, in the order of ``predictions.npz``'s ``test/index``; a reconstruction head
shows its worst originals above their reconstructions, which are in the predictions already.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from smallvision.registry import HEAD_KINDS
from smallvision.report import head_figures, image_figures
from smallvision.report.sections import unit_scale
from smallvision.report.tables import Block, Cell, Image, Table, format_value
from smallvision.rundir import Run

DEFAULT_K = 12
SPLIT = "test"


def top_losses(losses: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest losses, largest first; ties in position order (NaN last)."""
    order = np.argsort(-np.asarray(losses, dtype=np.float64), kind="stable")
    return order[:k]


def _fmt(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.3f}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def title(fields: dict[str, Any]) -> str:
    """One line per field; a ``p(X)`` field joins the line of field ``X``: ``true cat (0.031)``."""
    lines = {k: f"{k} {_fmt(v)}" for k, v in fields.items() if not (k.startswith("p(") and k[2:-1] in fields)}
    for k, v in fields.items():
        if k.startswith("p(") and k[2:-1] in fields:
            lines[k[2:-1]] += f" ({_fmt(v)})"
    return "\n".join(lines.values())


def _classes(run: Run, head: str) -> list[str] | None:
    info = run.metrics.heads.get(head) if run.metrics else None
    return info.classes if info else None


def section(run: Run, heads: Sequence[tuple[str, str]], k: int = DEFAULT_K) -> tuple[list[Block], str | None]:
    """(one block per head with test predictions, note): ``heads`` are (name, kind) pairs."""
    if run.predictions is None or SPLIT not in run.predictions.arrays:
        return [], "No test predictions: no worst mistakes to show."
    index = run.predictions.index.get(SPLIT)
    stored = run.test_images
    note = None
    if stored is None:
        note = "test_images.npz not found: the worst mistakes are listed without their images."
    elif index is None or not stored.aligned(index):
        stored, note = (
            None,
            "test_images.npz holds other samples than predictions.npz's test/index: images left out.",
        )
    blocks = []
    for name, kind_name in heads:
        arrays = run.predictions.head(SPLIT, name)
        if arrays:
            blocks.append(_head_block(run, name, kind_name, arrays, stored, k))
    return blocks, note


def _head_block(run: Run, head: str, kind_name: str, arrays: dict, stored: Any, k: int) -> Block:
    kind = HEAD_KINDS.get(kind_name)
    block = Block(f"Head {head}")
    try:
        losses = kind.sample_losses(arrays)
    except (KeyError, ValueError, IndexError) as exc:  # unusable arrays: the head's section says why
        block.notes.append(f"no per-sample loss ({type(exc).__name__}: {exc}).")
        return block
    worst = top_losses(losses, k)
    classes = _classes(run, head)
    fields = [kind.sample_fields(arrays, int(i), classes) for i in worst]
    index = run.predictions.index.get(SPLIT)
    block.details.append(_table(worst, losses, fields, index, len(losses)))
    titles = [
        f"#{r + 1} loss {losses[i]:.3f}\n" + title(f)
        for r, (i, f) in enumerate(zip(worst, fields, strict=True))
    ]
    caption = f"the {len(worst)} of {len(losses)} test images with the highest {kind.sample_loss}"
    if kind.target_is_input:
        normalization = run.metrics.data.normalization if run.metrics and run.metrics.data else {}
        rows = {
            "original": unit_scale(arrays["y_true"][worst], normalization),
            "reconstructed": unit_scale(arrays[kind.npz_field][worst], normalization),
        }
        png = head_figures.image_grid(rows, [f"#{r + 1}" for r in range(len(worst))], cols=len(worst))
    elif stored is not None:
        images = stored.images[worst]
        vrange = (0.0, 255.0) if images.dtype == np.uint8 else None
        png = image_figures.labelled_grid(images, titles, cols=6, vrange=vrange)
    else:
        png = None
    if png:
        block.images.append(Image(f"{head}: worst mistakes", png, caption, wide=True))
    return block


def _table(
    worst: np.ndarray, losses: np.ndarray, fields: list[dict], index: np.ndarray | None, n: int
) -> Table:
    keys = list(dict.fromkeys(key for f in fields for key in f))
    rows = []
    for rank, (i, f) in enumerate(zip(worst, fields, strict=True)):
        sample = int(index[i]) if index is not None and len(index) == n else None
        row = [Cell(str(rank + 1)), Cell(str(int(i)), cls="num"), Cell(format_value(sample), cls="num")]
        row.append(Cell(format_value(float(losses[i])), cls="num"))
        row += [
            Cell(format_value(f.get(key)), cls="num" if not isinstance(f.get(key), str) else "")
            for key in keys
        ]
        rows.append(row)
    caption = f"the {len(worst)} worst: position in the test split, sample index in the data, loss, values"
    return Table(["rank", "position", "index", "loss", *keys], rows, caption)
