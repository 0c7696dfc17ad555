"""The STL-10 reader: the ``stl10_binary/`` files (96x96 RGB, labels 1..10, a large unlabeled file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.readers.common import BadItems, image_set
from smallvision.errors import UserError
from smallvision.registry import SOURCES

STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
_STL_BYTES = 3 * 96 * 96


def _stl_images(path: Path, limit: int | None, bad: BadItems) -> np.ndarray:
    """(N, 3, 96, 96) uint8 from a ``*_X.bin`` (each image stored channel by channel, column-major)."""
    size = path.stat().st_size
    complete = size // _STL_BYTES
    if size % _STL_BYTES:
        bad.add(
            f"{path} byte offset {complete * _STL_BYTES}",
            f"truncated: {size} bytes is not a whole number of {_STL_BYTES}-byte images (image {complete} is cut)",
        )
    count = complete if limit is None else min(limit, complete)
    raw = np.fromfile(path, dtype=np.uint8, count=count * _STL_BYTES)
    # column-major 96x96 per channel: the file's fastest axis is the image's row index
    return raw.reshape(count, 3, 96, 96).transpose(0, 1, 3, 2)


def _stl_labels(path: Path, n: int) -> np.ndarray:
    labels = np.fromfile(path, dtype=np.uint8)
    if len(labels) < n:
        raise UserError(f"{path} byte offset {len(labels)}: truncated, {len(labels)} labels for {n} images")
    return labels[:n].astype(np.int64) - 1  # the files count classes 1..10


def _stl_class_names(folder: Path) -> tuple[str, ...]:
    names_file = folder / "class_names.txt"
    if not names_file.is_file():
        return STL10_CLASSES
    names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()]
    if len(names) != 10:
        raise UserError(f"{names_file}: {len(names)} class names, expected 10")
    return tuple(names)


@SOURCES.register("stl10")
def read_stl10(
    location: str,
    *,
    splits: list[str] | tuple[str, ...] = ("train", "test"),
    max_per_split: int | None = None,
    skip_bad: bool = False,
) -> ImageSet:
    """STL-10 binaries (``stl10_binary/``): 96x96x3, labels 1..10 -> 0..9.

    Args:
        location: the folder with ``train_X.bin``, ``train_y.bin``, ``test_X.bin``, ``test_y.bin``,
            ``unlabeled_X.bin`` and optionally ``class_names.txt``.
        splits: which files to read, each becoming a group. With ``unlabeled`` among them the
            set has no targets (for autoencoders).
        max_per_split: read at most this many images per file (the unlabeled file is 2.7 GB).
        skip_bad: keep the complete images of a truncated file and drop labels outside 1..10.
    """
    folder, bad = Path(location), BadItems(skip_bad)
    if isinstance(splits, str) or not splits or not set(splits) <= {"train", "test", "unlabeled"}:
        raise UserError(f"option splits: expected a list from train, test, unlabeled; got {splits!r}")
    labeled = "unlabeled" not in splits
    images, labels, keeps, groups, start = [], [], [], {}, 0
    for split in splits:
        x_path, y_path = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
        if not x_path.is_file():
            raise UserError(f"stl10:{location}: missing {x_path}")
        x = _stl_images(x_path, max_per_split, bad)
        if labeled:
            if not y_path.is_file():
                raise UserError(f"stl10:{location}: missing {y_path}")
            y = _stl_labels(y_path, len(x))
            keep = (y >= 0) & (y < 10)
            for i in np.flatnonzero(~keep):
                bad.add(f"{y_path} byte offset {int(i)}", f"label {int(y[i]) + 1} outside 1..10")
            labels.append(y)
            keeps.append(keep)
        images.append(x)
        groups[split] = np.arange(start, start + len(x))
        start += len(x)
    x = np.concatenate(images)
    if not labeled:
        return image_set(x, {}, {}, f"stl10:{location}", bad, groups)
    info = {"label": TargetInfo("classification", _stl_class_names(folder))}
    y = np.concatenate(labels)
    return image_set(x, {"label": y}, info, f"stl10:{location}", bad, groups, np.concatenate(keeps))
