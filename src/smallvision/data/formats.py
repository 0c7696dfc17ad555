"""File readers shared helpers, and the IDX reader (MNIST / Fashion-MNIST as they ship).

Every reader is ``@SOURCES.register(scheme)`` on a function ``read_x(location, *, options...)``
that returns an ImageSet. The rules they share live here:

- a bad sample (corrupt file, bad row, wrong shape, label outside the declared classes) is a
  UserError naming the file and the row / byte offset -- unless ``skip_bad=True``, which drops it
  and records how many were dropped in ``ImageSet.meta["skipped"]`` (the first 20 named in
  ``meta["skipped_files"]``): nothing is ever dropped silently.
- images become one (N, C, H, W) tensor: uint8 stays uint8, any float becomes float32.

The other readers live in formats_arrays.py (npz, npy, stl10), formats_images.py (folder,
npyfolder, images) and formats_tabular.py (csv, labeled).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.errors import UserError
from smallvision.registry import SOURCES

MAX_NAMED = 20  # how many skipped samples meta["skipped_files"] names


class BadItems:
    """Collects bad samples: the first is a UserError, or with ``skip_bad`` every one is counted.

    Args:
        skip_bad: drop bad samples (counting them) instead of stopping at the first.
    """

    def __init__(self, skip_bad: bool = False) -> None:
        if not isinstance(skip_bad, bool):
            raise UserError(f"option skip_bad: expected true or false, got {skip_bad!r}")
        self.skip_bad = skip_bad
        self.count = 0
        self.names: list[str] = []

    def add(self, where: str, problem: str, count: int = 1) -> None:
        """Record ``count`` bad samples at ``where`` (a file, "file line 7", "file byte offset 16")."""
        if not self.skip_bad:
            raise UserError(f"{where}: {problem} (set option skip_bad: true to skip such samples)")
        self.count += count
        if len(self.names) < MAX_NAMED:
            self.names.append(where)

    def meta(self) -> dict:
        """The record a reader puts in ``ImageSet.meta``."""
        return {"skipped": self.count, "skipped_files": list(self.names)}


def parse_size(size: object, option: str = "size") -> tuple[int, int] | None:
    """``28`` -> (28, 28); ``[32, 48]`` -> (32, 48) as (H, W); None stays None."""
    if size is None:
        return None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return (size, size)
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size):
        return (int(size[0]), int(size[1]))
    raise UserError(f"option {option}: expected a positive int or [height, width], got {size!r}")


def as_image_array(arr: np.ndarray, where: str) -> np.ndarray:
    """uint8 kept; bool and integers within 0..255 become uint8; any other number becomes float32."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size == 0 or (arr.min() >= 0 and arr.max() <= 255):
            return arr.astype(np.uint8)
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    raise UserError(f"{where}: image values of dtype {arr.dtype} are not numbers")


def to_nchw(arr: np.ndarray, where: str, layout: str = "auto") -> np.ndarray:
    """A stack of images (N, H, W), (N, H, W, C) or (N, C, H, W) as (N, C, H, W), C in {1, 3}.

    ``layout="auto"`` reads a 4-d stack as channels-last when its last axis is 1 or 3 and as
    channels-first otherwise; pass "NHWC" or "NCHW" when both axes could be channels.
    """
    if layout not in ("auto", "NHW", "NHWC", "NCHW"):
        raise UserError(f"option layout: expected auto, NHW, NHWC or NCHW, got {layout!r}")
    if arr.ndim == 3 and layout in ("auto", "NHW"):
        return arr[:, None]
    if arr.ndim == 4:
        last = layout == "NHWC" or (layout == "auto" and arr.shape[3] in (1, 3))
        out = arr.transpose(0, 3, 1, 2) if last else arr
        if out.shape[1] in (1, 3):
            return out
    raise UserError(
        f"{where}: images of shape {arr.shape} (layout {layout}): expected (N, H, W), (N, H, W, C) "
        "or (N, C, H, W) with 1 or 3 channels"
    )


def classification_target(
    labels: np.ndarray, classes: Sequence[str] | int | None, where: str, bad: BadItems, locate=None
) -> tuple[np.ndarray, TargetInfo, np.ndarray]:
    """Integer labels checked against the declared classes.

    Args:
        labels: (N,) integer labels.
        classes: declared class names, or their number, or None (0..max label).
        where: the file the labels come from.
        bad: where a label outside the classes goes.
        locate: index -> a place in the file ("line 7"); default "index i".

    Returns:
        (labels as int64, TargetInfo, mask of the labels kept).
    """
    labels = np.asarray(labels)
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise UserError(f"{where}: class labels must be whole numbers, got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    if isinstance(classes, int) and not isinstance(classes, bool):
        classes = [str(i) for i in range(classes)]
    if classes is None:
        top = int(labels.max()) + 1 if labels.size else 0
        classes = [str(i) for i in range(max(top, 1))]
    elif not isinstance(classes, (list, tuple)) or not classes:
        raise UserError(f"option classes: expected a list of class names or a number, got {classes!r}")
    k = len(classes)
    keep = (labels >= 0) & (labels < k)
    for i in np.flatnonzero(~keep):
        place = locate(int(i)) if locate else f"index {int(i)}"
        bad.add(f"{where} {place}", f"label {int(labels[i])} outside the {k} declared classes 0..{k - 1}")
    return labels, TargetInfo("classification", tuple(str(c) for c in classes)), keep


def image_set(
    images: np.ndarray,
    targets: dict[str, np.ndarray],
    info: dict[str, TargetInfo],
    name: str,
    bad: BadItems,
    groups: dict[str, np.ndarray] | None = None,
    keep: np.ndarray | None = None,
    meta: dict | None = None,
) -> ImageSet:
    """The ImageSet of (N, C, H, W) ``images`` with the rows in ``keep``; group indices remapped."""
    n = len(images)
    keep = np.ones(n, dtype=bool) if keep is None else keep
    if not keep.all():
        new_index = np.cumsum(keep) - 1  # old index -> index among the kept
        images = images[keep]
        targets = {k: v[keep] for k, v in targets.items()}
        groups = {g: new_index[idx[keep[idx]]] for g, idx in (groups or {}).items()}
    if len(images) == 0:
        raise UserError(f"{name}: no images left to read")
    x = torch.from_numpy(np.ascontiguousarray(images))
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in targets.items()}
    groups = {g: np.asarray(idx, dtype=np.int64) for g, idx in (groups or {}).items()}
    return ImageSet(x, t, info, groups=groups, name=name, meta={**(meta or {}), **bad.meta()})


# ---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)

# IDX type byte -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_PARTS = (("train", "train"), ("t10k", "test"))


def read_file_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise UserError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    return data


def parse_idx(data: bytes, path: Path, ndim: int) -> tuple[np.ndarray, int, str | None]:
    """The items of an IDX file: (complete items, declared count, truncation message or None)."""
    what = "images" if ndim == 3 else "labels"
    if len(data) < 4 + 4 * ndim:
        raise UserError(f"{path}: {len(data)} bytes is shorter than the {4 + 4 * ndim}-byte IDX header")
    if data[0:2] != b"\x00\x00":
        raise UserError(f"{path} byte offset 0: bytes {data[0:2].hex()} are not an IDX magic number (0000)")
    if data[2] not in _IDX_TYPES:
        raise UserError(f"{path} byte offset 2: unknown IDX data type 0x{data[2]:02x}")
    if data[3] != ndim:
        raise UserError(f"{path} byte offset 3: {data[3]} dimensions, expected {ndim} for an {what} file")
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    if (dims[1:] == 0).any():
        raise UserError(f"{path} byte offset 8: zero-sized item dimensions {tuple(dims[1:])}")
    dtype = np.dtype(_IDX_TYPES[data[2]])
    header = 4 + 4 * ndim
    item_bytes = int(np.prod(dims[1:])) * dtype.itemsize
    declared = int(dims[0])
    complete = min(declared, (len(data) - header) // item_bytes)
    end = header + declared * item_bytes
    problem = None
    if complete < declared:
        problem = (
            f"truncated: header declares {declared} {what} ({end} bytes) but the file ends at byte "
            f"offset {len(data)}, inside item {complete}"
        )
    elif len(data) > end:
        raise UserError(f"{path} byte offset {end}: {len(data) - end} unexpected bytes after the last item")
    arr = np.frombuffer(data, dtype=dtype, count=complete * item_bytes // dtype.itemsize, offset=header)
    return arr.reshape(complete, *dims[1:]), declared, problem


def _idx_file(prefix: str, part: str, kind: str, ndim: int) -> Path | None:
    # the official names, plus the "train-images.idx3-ubyte" spelling some mirrors use
    for name in (f"{part}-{kind}-idx{ndim}-ubyte", f"{part}-{kind}.idx{ndim}-ubyte"):
        for suffix in ("", ".gz"):
            path = Path(prefix + name + suffix)
            if path.is_file():
                return path
    return None


def _idx_pair(images_path: Path, labels_path: Path, bad: BadItems) -> tuple[np.ndarray, np.ndarray]:
    images, n_images, problem_i = parse_idx(read_file_bytes(images_path), images_path, 3)
    labels, n_labels, problem_l = parse_idx(read_file_bytes(labels_path), labels_path, 1)
    if n_images != n_labels:
        raise UserError(
            f"{images_path}: declares {n_images} images but {labels_path} declares {n_labels} labels"
        )
    n = min(len(images), len(labels))
    if n < n_images:
        where = images_path if problem_i else labels_path
        bad.add(str(where), problem_i or problem_l, count=n_images - n)
    return images[:n], labels[:n]


@SOURCES.register("idx")
def read_idx(location: str, *, classes: list[str] | int | None = None, skip_bad: bool = False) -> ImageSet:
    """MNIST-style IDX files: ``train-images-idx3-ubyte[.gz]`` + labels, and ``t10k-...``.

    Args:
        location: a directory holding the files, or a file prefix (``data/emnist-letters-``).
        classes: class names (or their number); default ``0..max label``. Labels outside
            are errors naming the labels file and byte offset.
        skip_bad: keep the complete images of a truncated file and drop out-of-range labels,
            counting them in ``meta["skipped"]``.

    Returns:
        One ``label`` target; groups ``train`` / ``test`` (the official split) for the files present.
    """
    bad = BadItems(skip_bad)
    prefix = location.rstrip("/\\") + os.sep if Path(location).is_dir() else location
    parts, groups, start = [], {}, 0
    for part, group in _IDX_PARTS:
        images_path, labels_path = _idx_file(prefix, part, "images", 3), _idx_file(prefix, part, "labels", 1)
        if images_path is None and labels_path is None:
            continue
        if images_path is None or labels_path is None:
            missing = f"{part}-images-idx3-ubyte" if images_path is None else f"{part}-labels-idx1-ubyte"
            raise UserError(
                f"idx:{location}: found {images_path or labels_path} but not {prefix}{missing}[.gz]"
            )
        images, labels = _idx_pair(images_path, labels_path, bad)
        parts.append((images, labels, labels_path))
        groups[group] = np.arange(start, start + len(images))
        start += len(images)
    if not parts:
        raise UserError(
            f"idx:{location}: no IDX files found; expected {prefix}train-images-idx3-ubyte[.gz] and "
            f"{prefix}train-labels-idx1-ubyte[.gz] (and t10k-... for the test split)"
        )
    if len({p[0].shape[1:] for p in parts}) > 1:
        raise UserError(f"idx:{location}: train and test images differ in size")
    all_labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    if classes is None:
        classes = int(all_labels.max()) + 1
    keeps, info = [], None
    for _, labels, labels_path in parts:  # per file, so an error names its file and byte offset
        _, info, keep = classification_target(
            labels, classes, str(labels_path), bad, lambda i: f"byte offset {8 + i}"
        )
        keeps.append(keep)
    images = as_image_array(np.concatenate([p[0] for p in parts]), location)[:, None]  # (N, 1, H, W)
    return image_set(
        images, {"label": all_labels}, {"label": info}, f"idx:{location}", bad, groups, np.concatenate(keeps)
    )
