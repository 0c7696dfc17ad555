"""Looking at data: ``describe`` (``smallvision data show``) and ``read_images`` (``smallvision predict``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from smallvision.data.dataset import ImageSet
from smallvision.data.formats import parse_size
from smallvision.data.formats_images import IMAGE_SUFFIXES, decode_all, decode_image
from smallvision.data.prepare import resize_images, set_channels
from smallvision.errors import UserError

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


# ---------------------------------------------------------------- reading files to predict on


def _npy_images(path: Path, channels: int | None) -> list[np.ndarray]:
    """The images of one ``.npy``: a single image (H, W), (H, W, C), (C, H, W) or a stack of them."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy array ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise UserError(f"{path}: array of dtype {arr.dtype} is not images")
    if arr.ndim == 2:
        return [arr[:, :, None]]
    if arr.ndim == 3 and arr.shape[2] in (1, 3):
        return [arr]
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[0] == (channels or 1):
        return [arr.transpose(1, 2, 0)]
    if arr.ndim == 3:  # (N, H, W): a stack of gray images
        return list(arr[:, :, :, None])
    if arr.ndim == 4:
        nhwc = arr if arr.shape[3] in (1, 3) else arr.transpose(0, 2, 3, 1)
        if nhwc.shape[3] in (1, 3):
            return list(nhwc)
    raise UserError(f"{path}: array of shape {arr.shape} is not an image or a stack of images")


def _expand(paths: Sequence[str]) -> list[Path]:
    """Files as given; folders replaced by their image and ``.npy`` files, sorted."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in (*IMAGE_SUFFIXES, ".npy")
            )
            if not found:
                raise UserError(f"{p}: folder has no image or .npy files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"{p}: no such file or folder")
    return out


def read_images(
    paths: Sequence[str], size: int | Sequence[int] | None = None, channels: int | None = None
) -> tuple[torch.Tensor, list[str]]:
    """Images to predict on, from image files, folders of them and ``.npy`` files.

    Args:
        paths: files (PNG, JPEG, BMP, GIF, TIFF, WebP, ``.npy``) and folders of them.
        size: (H, W) or an int; every image is resized to it (bilinear). None: as read, and
            then all must share one size.
        channels: 1 or 3; gray images are repeated to RGB, RGB ones converted by luma.

    Returns:
        (N, C, H, W) images -- uint8, or float32 when a ``.npy`` holds non-8-bit values -- and
        one name per image ("file.png", or "stack.npy[3]" for the 4th image of a stack).

    Raises:
        UserError: naming a file that cannot be read, or images of different sizes.
    """
    size = parse_size(list(size) if isinstance(size, tuple) else size)
    if channels not in (None, 1, 3):
        raise UserError(f"channels: expected 1 or 3, got {channels!r}")
    files = _expand(paths)
    pictures = [f for f in files if f.suffix.lower() != ".npy"]
    mode = {1: "L", 3: "RGB"}.get(channels, "auto")
    decoded = dict(zip(pictures, decode_all(pictures, lambda p: decode_image(p, mode=mode)), strict=True))
    arrays, names = [], []
    for path in files:
        if path.suffix.lower() == ".npy":
            found = _npy_images(path, channels)
            names += [path.name] if len(found) == 1 else [f"{path.name}[{i}]" for i in range(len(found))]
            arrays += found
        elif isinstance(decoded[path], str):
            raise UserError(f"{path}: {decoded[path]}")
        else:
            arrays.append(decoded[path] if decoded[path].ndim == 3 else decoded[path][:, :, None])
            names.append(path.name)
    return _prepare(arrays, names, size, channels), names


def _prepare(
    arrays: list[np.ndarray], names: list[str], size: tuple[int, int] | None, channels: int | None
) -> torch.Tensor:
    """(N, C, H, W) from (H, W, C) arrays: images of one shape are converted and resized as one batch."""
    by_shape: dict[tuple, list[int]] = {}
    for i, arr in enumerate(arrays):
        by_shape.setdefault((arr.shape, arr.dtype.str), []).append(i)
    floats = any(a.dtype != np.uint8 for a in arrays)
    out: list[torch.Tensor | None] = [None] * len(arrays)
    for idx in by_shape.values():
        x = torch.from_numpy(np.stack([arrays[i] for i in idx])).permute(0, 3, 1, 2)  # (B, C, H, W)
        x = x.float() if floats else x
        x = set_channels(x, channels) if channels else x
        x = resize_images(x, size) if size else x
        for j, i in enumerate(idx):
            out[i] = x[j]
    shapes = [tuple(t.shape) for t in out]
    if len(set(shapes)) > 1:
        odd = next(i for i, s in enumerate(shapes) if s != shapes[0])
        raise UserError(
            f"{names[odd]}: shape {shapes[odd]} differs from {shapes[0]} of {names[0]}; give a size to resize"
        )
    return torch.stack(out)
