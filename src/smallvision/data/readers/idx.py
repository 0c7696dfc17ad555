"""The IDX reader: MNIST / Fashion-MNIST / EMNIST files as they ship (optionally gzipped)."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from smallvision.data.dataset import ImageSet
from smallvision.data.mapped import MappedImages, map_file
from smallvision.data.readers.common import (
    BadItems,
    as_image_array,
    check_flag,
    classification_target,
    image_set,
)
from smallvision.errors import UserError
from smallvision.registry import SOURCES

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


def idx_layout(
    head: bytes, size: int, path: Path, ndim: int
) -> tuple[np.dtype, tuple[int, ...], int, int, str | None]:
    """What an IDX header says, checked against the file's ``size`` in bytes.

    Returns:
        (dtype, item shape, header bytes, complete items, truncation message or None).
    """
    what = "images" if ndim == 3 else "labels"
    if size < 4 + 4 * ndim or len(head) < 4 + 4 * ndim:
        raise UserError(f"{path}: {size} bytes is shorter than the {4 + 4 * ndim}-byte IDX header")
    if head[0:2] != b"\x00\x00":
        raise UserError(f"{path} byte offset 0: bytes {head[0:2].hex()} are not an IDX magic number (0000)")
    if head[2] not in _IDX_TYPES:
        raise UserError(f"{path} byte offset 2: unknown IDX data type 0x{head[2]:02x}")
    if head[3] != ndim:
        raise UserError(f"{path} byte offset 3: {head[3]} dimensions, expected {ndim} for an {what} file")
    dims = np.frombuffer(head, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    if (dims[1:] == 0).any():
        raise UserError(f"{path} byte offset 8: zero-sized item dimensions {tuple(dims[1:])}")
    dtype = np.dtype(_IDX_TYPES[head[2]])
    header = 4 + 4 * ndim
    item_bytes = int(np.prod(dims[1:])) * dtype.itemsize
    declared = int(dims[0])
    complete = min(declared, (size - header) // item_bytes)
    end = header + declared * item_bytes
    problem = None
    if complete < declared:
        problem = (
            f"truncated: header declares {declared} {what} ({end} bytes) but the file ends at byte "
            f"offset {size}, inside item {complete}"
        )
    elif size > end:
        raise UserError(f"{path} byte offset {end}: {size - end} unexpected bytes after the last item")
    return dtype, tuple(int(d) for d in dims[1:]), header, complete, problem


def parse_idx(data: bytes, path: Path, ndim: int) -> tuple[np.ndarray, int, str | None]:
    """The items of an IDX file: (complete items, declared count, truncation message or None)."""
    dtype, item, header, complete, problem = idx_layout(data[: 4 + 4 * ndim], len(data), path, ndim)
    declared = int(np.frombuffer(data, dtype=">u4", count=1, offset=4)[0])
    arr = np.frombuffer(data, dtype=dtype, count=complete * int(np.prod(item)), offset=header)
    return arr.reshape(complete, *item), declared, problem


def map_idx(path: Path, ndim: int) -> tuple[np.ndarray, int, str | None]:
    """:func:`parse_idx` for an uncompressed file, its items memory-mapped instead of read."""
    try:
        with open(path, "rb") as f:
            head = f.read(4 + 4 * ndim)
        size = path.stat().st_size
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head[:2] == b"\x1f\x8b":
        raise UserError(f"{path}: gzipped files cannot be memory-mapped (option mmap); gunzip it first")
    dtype, item, header, complete, problem = idx_layout(head, size, path, ndim)
    if dtype != np.uint8:
        raise UserError(f"{path}: option mmap reads uint8 IDX images (type 0x08), this file holds {dtype}")
    declared = int(np.frombuffer(head, dtype=">u4", count=1, offset=4)[0])
    return map_file(path, dtype, (complete, *item), header), declared, problem


def _idx_file(prefix: str, part: str, kind: str, ndim: int) -> Path | None:
    # the official names, plus the "train-images.idx3-ubyte" spelling some mirrors use
    for name in (f"{part}-{kind}-idx{ndim}-ubyte", f"{part}-{kind}.idx{ndim}-ubyte"):
        for suffix in ("", ".gz"):
            path = Path(prefix + name + suffix)
            if path.is_file():
                return path
    return None


def _idx_pair(
    images_path: Path, labels_path: Path, bad: BadItems, mmap: bool
) -> tuple[np.ndarray, np.ndarray]:
    if mmap:
        images, n_images, problem_i = map_idx(images_path, 3)
    else:
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
def read_idx(
    location: str, *, classes: list[str] | int | None = None, skip_bad: bool = False, mmap: bool = False
) -> ImageSet:
    """MNIST-style IDX files: ``train-images-idx3-ubyte[.gz]`` + labels, and ``t10k-...``.

    Args:
        location: a directory holding the files, or a file prefix (``data/emnist-letters-``).
        classes: class names (or their number); default ``0..max label``. Labels outside
            are errors naming the labels file and byte offset.
        skip_bad: keep the complete images of a truncated file and drop out-of-range labels,
            counting them in ``meta["skipped"]``.
        mmap: memory-map the (uncompressed, uint8) image files instead of reading them: the
            images stay on disk and each batch reads its rows (:mod:`smallvision.data.mapped`).

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
        images, labels = _idx_pair(images_path, labels_path, bad, check_flag(mmap, "mmap"))
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
    if mmap:  # the files stay separate parts: concatenating would read them all into memory
        images = MappedImages([p[0][:, None] for p in parts])  # (N, 1, H, W)
    else:
        images = as_image_array(np.concatenate([p[0] for p in parts]), location)[:, None]  # (N, 1, H, W)
    return image_set(
        images, {"label": all_labels}, {"label": info}, f"idx:{location}", bad, groups, np.concatenate(keeps)
    )
