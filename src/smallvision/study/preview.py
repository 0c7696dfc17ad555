"""A PNG grid of raw training samples and the same samples after the configured augmentation.

What ``smallvision data preview CONFIG`` writes: it goes through the run's own data path (source,
preparation, split, training statistics, augmentation), so what it shows is what the trainer sees.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from smallvision.config import RunConfig, load_config
from smallvision.data.augment.pipeline import build_augment
from smallvision.data.dataset import ImageSet
from smallvision.data.load import load_data
from smallvision.data.mapped import take_rows
from smallvision.data.normalize import fit_normalizer
from smallvision.data.splits import make_splits
from smallvision.errors import UserError
from smallvision.registry import HEAD_KINDS

COLUMNS = 8  # images per row of the grid; more samples wrap into further blocks of rows
DRAWS = 2  # augmented versions shown per sample: two draws show that the augmentation is random


def preview(config: RunConfig | str | Path, out: str | Path | None = None, n: int = 16) -> Path:
    """Write a grid of ``n`` raw training samples, each above ``DRAWS`` augmented versions of it.

    Args:
        config: a RunConfig, or the path of a YAML config.
        out: the PNG to write; default ``<output_dir>/<name>_preview.png``.
        n: how many training samples to show (drawn with the run's seed).

    Returns:
        The path of the PNG written.
    """
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    if n < 1:
        raise UserError(f"--n {n}: expected at least 1 sample")
    data = load_data(cfg.data)  # the run's own data path: data.split.seed, skip_bad, size, channels
    train = make_splits(data, cfg.data.split)["train"]
    if len(train) == 0:
        raise UserError(f"data.split: the training split of {data.name} is empty, nothing to preview")
    normalizer = fit_normalizer(take_rows(data.images, train), cfg.data.normalize)
    augment = build_augment(cfg.data.augment)

    rng = np.random.default_rng(cfg.seed)
    picked = np.sort(rng.choice(train, size=min(n, len(train)), replace=False))
    raw = normalizer.to_unit(data.images[torch.as_tensor(picked)])  # (n, C, H, W) in [0, 1]
    gen = torch.Generator().manual_seed(cfg.seed)
    rows = [raw] + [augment(raw, gen) for _ in range(DRAWS)]  # an empty pipeline returns raw
    titles = _titles(data, picked)

    path = Path(out) if out is not None else Path(cfg.output_dir) / f"{cfg.name}_preview.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = ", ".join(
        f"{k}({', '.join(f'{a}={b}' for a, b in (v or {}).items())})" for k, v in cfg.data.augment.items()
    )
    _draw_grid(
        rows,
        titles,
        f"{data.name}: raw, then {DRAWS} augmented draws: {spec or 'no augmentation configured'}",
        path,
    )
    return path


def _titles(data: ImageSet, picked: np.ndarray) -> list[str]:
    """``index: class`` above each raw sample (the first classification target), else the index."""
    name = next(
        (k for k, v in data.info.items() if v.kind in HEAD_KINDS and HEAD_KINDS.get(v.kind).needs_classes),
        None,
    )
    if name is None:
        return [str(i) for i in picked]
    labels = data.targets[name][torch.as_tensor(picked)].tolist()
    classes = data.info[name].classes or ()
    return [f"{i}: {classes[y] if y < len(classes) else y}" for i, y in zip(picked, labels, strict=True)]


def _mosaic(rows: list[torch.Tensor], gap: int) -> np.ndarray:
    """One RGB canvas: blocks of ``COLUMNS`` samples, each block one row per entry of ``rows``."""
    stack = torch.stack(rows).clamp(0, 1)  # (R, N, C, H, W)
    r, n, c, h, w = stack.shape
    stack = stack.expand(-1, -1, 3, -1, -1) if c == 1 else stack[:, :, :3]
    blocks = math.ceil(n / COLUMNS)
    cols = min(n, COLUMNS)
    stack = F.pad(stack, (0, 0, 0, 0, 0, 0, 0, blocks * cols - n), value=1.0)  # white empty cells
    stack = F.pad(stack, (gap, 0, gap, 0), value=1.0)  # white gutters left of and above each image
    stack = stack.view(r, blocks, cols, 3, h + gap, w + gap).permute(1, 0, 4, 2, 5, 3)
    return stack.reshape(blocks * r * (h + gap), cols * (w + gap), 3).numpy()


def _draw_grid(rows: list[torch.Tensor], titles: list[str], title: str, path: Path) -> None:
    """Draw the mosaic on one axes (one image, not one axes per sample: seconds faster)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here, and no GUI backend to import
    import matplotlib.pyplot as plt

    n, h, w = len(rows[0]), rows[0].shape[2], rows[0].shape[3]
    gap = max(2, round(0.4 * h))  # room for a title above each raw image
    canvas = _mosaic(rows, gap)
    cols, blocks = min(n, COLUMNS), math.ceil(n / COLUMNS)
    fig, ax = plt.subplots(figsize=(1.1 * cols + 0.8, 1.2 * blocks * len(rows) + 0.5))
    ax.imshow(canvas, interpolation="nearest")
    for k, text in enumerate(titles):
        block, col = divmod(k, COLUMNS)
        ax.text(
            col * (w + gap) + gap + w / 2,
            block * len(rows) * (h + gap) + gap - 0.5,
            text,
            fontsize=7,
            ha="center",
            va="bottom",
        )
    names = ["raw"] + [f"draw {d + 1}" for d in range(len(rows) - 1)]
    centres = [(b * len(rows) + r) * (h + gap) + gap + h / 2 for b in range(blocks) for r in range(len(rows))]
    ax.set_yticks(centres, names * blocks, fontsize=7)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
