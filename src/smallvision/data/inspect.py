"""Looking at data: ``describe``, the text summary ``smallvision data show`` prints."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from smallvision.data.dataset import ImageSet

MAX_CLASS_ROWS = 40  # a 32-class head still prints in full; longer lists are cut


def _stats(images: torch.Tensor) -> str:
    """Value range, mean and std (per channel when there are several), in chunks to bound memory."""
    c = images.shape[1]
    lo, hi = images.min().item(), images.max().item()
    total, total_sq, count = torch.zeros(c, dtype=torch.float64), torch.zeros(c, dtype=torch.float64), 0
    for part in torch.split(images, 4096):
        x = part.to(torch.float64).transpose(0, 1).reshape(c, -1)
        total, total_sq, count = total + x.sum(1), total_sq + (x * x).sum(1), count + x.shape[1]
    mean = total / max(count, 1)
    std = (total_sq / max(count, 1) - mean * mean).clamp_min(0).sqrt()
    fmt = lambda t: ", ".join(f"{v:.4g}" for v in t.tolist())  # noqa: E731
    return f"range [{lo:.4g}, {hi:.4g}], mean {fmt(mean)}, std {fmt(std)}"


def _class_table(labels: torch.Tensor, classes: Sequence[str], groups: dict[str, np.ndarray]) -> list[str]:
    """Counts per class: one column for all samples and one per group."""
    labels = labels.numpy()
    columns = {"all": np.bincount(labels, minlength=len(classes))}
    for name, idx in groups.items():
        columns[name] = np.bincount(labels[idx], minlength=len(classes))
    shown = [name if name == str(k) else f"{k} {name}" for k, name in enumerate(classes[:MAX_CLASS_ROWS])]
    width = max(8, *(len(s) + 2 for s in shown))
    lines = ["    " + "class".ljust(width) + "".join(f"{name:>10}" for name in columns)]
    for k, label in enumerate(shown):
        lines.append(f"    {label:<{width}}" + "".join(f"{col[k]:>10}" for col in columns.values()))
    if len(classes) > MAX_CLASS_ROWS:
        lines.append(f"    ... {len(classes) - MAX_CLASS_ROWS} more classes")
    return lines


def _regression_lines(values: torch.Tensor, groups: dict[str, np.ndarray]) -> list[str]:
    lines = []
    for name, idx in {"all": np.arange(len(values)), **groups}.items():
        v = values[torch.as_tensor(idx, dtype=torch.long)].double()
        lines.append(
            f"    {name:<8} n={len(v)} min {v.min().item():.4g} max {v.max().item():.4g} "
            f"mean {v.mean().item():.4g} std {v.std().item() if len(v) > 1 else 0.0:.4g}"
        )
    return lines


def describe(data: ImageSet) -> str:
    """A plain-text summary: size, shape, dtype, value range, mean/std, groups, and per target the
    counts per class (per group when the source has groups) or the value statistics.
    """
    c, h, w = data.shape
    lines = [
        f"{data.name or 'data'}: {len(data)} images, {c}x{h}x{w} (C x H x W), {str(data.images.dtype).split('.')[-1]}",
        f"  pixels: {_stats(data.images)}",
    ]
    if data.groups:
        lines.append("  groups: " + ", ".join(f"{g} {len(idx)}" for g, idx in data.groups.items()))
    if not data.targets:
        lines.append("  targets: none (unlabeled)")
    for name, values in data.targets.items():
        info = data.info[name]
        if info.kind == "classification":
            lines.append(f"  target {name!r}: classification, {info.num_classes} classes")
            lines += _class_table(values, info.classes or (), data.groups)
        else:
            lines.append(f"  target {name!r}: regression, shape {tuple(values.shape[1:]) or 'scalar'}")
            lines += _regression_lines(values, data.groups)
    skipped = data.meta.get("skipped")
    if skipped:
        lines.append(
            f"  skipped: {skipped} bad samples, e.g. {', '.join(data.meta.get('skipped_files', [])[:3])}"
        )
    return "\n".join(lines)
