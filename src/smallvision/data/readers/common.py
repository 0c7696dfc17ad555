"""What every file reader shares: bad-sample accounting, option parsing, array layout, the ImageSet.

Every reader is ``@SOURCES.register(scheme)`` on a function ``read_x(location, *, options...)``
that returns an ImageSet. The rules they share live here:

- a bad sample (corrupt file, bad row, wrong shape, label outside the declared classes) is a
  UserError naming the file and the row / byte offset -- unless ``skip_bad=True``, which drops it
  and records how many were dropped in ``ImageSet.meta["skipped"]`` (the first 20 named in
  ``meta["skipped_files"]``): nothing is ever dropped silently.
- images become one (N, C, H, W) tensor: uint8 stays uint8, any float becomes float32.

One module per format family in this package: idx.py, arrays.py (npz, npy), stl10.py,
images.py (folder, npyfolder, images), tabular.py (csv), labeled.py; decode.py decodes single
image files for them (and for ``smallvision predict``). The registry imports every module here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.mapped import MappedImages
from smallvision.errors import UserError

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
    images: np.ndarray | MappedImages,
    targets: dict[str, np.ndarray],
    info: dict[str, TargetInfo],
    name: str,
    bad: BadItems,
    groups: dict[str, np.ndarray] | None = None,
    keep: np.ndarray | None = None,
    meta: dict | None = None,
) -> ImageSet:
    """The ImageSet of (N, C, H, W) ``images`` with the rows in ``keep``; group indices remapped.

    Memory-mapped images (:class:`MappedImages`) stay mapped: dropping rows only indexes them.
    """
    n = len(images)
    keep = np.ones(n, dtype=bool) if keep is None else keep
    if not keep.all():
        new_index = np.cumsum(keep) - 1  # old index -> index among the kept
        images = images.take(np.flatnonzero(keep)) if isinstance(images, MappedImages) else images[keep]
        targets = {k: v[keep] for k, v in targets.items()}
        groups = {g: new_index[idx[keep[idx]]] for g, idx in (groups or {}).items()}
    if len(images) == 0:
        raise UserError(f"{name}: no images left to read")
    x = images if isinstance(images, MappedImages) else torch.from_numpy(np.ascontiguousarray(images))
    t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in targets.items()}
    groups = {g: np.asarray(idx, dtype=np.int64) for g, idx in (groups or {}).items()}
    return ImageSet(x, t, info, groups=groups, name=name, meta={**(meta or {}), **bad.meta()})


def check_flag(value: object, option: str) -> bool:
    """``value`` when it is true or false, else a UserError naming the option."""
    if not isinstance(value, bool):
        raise UserError(f"option {option}: expected true or false, got {value!r}")
    return value


def check_choice(value: object, option: str, choices: Sequence[str]) -> str:
    """``value`` when it is one of ``choices``, else a UserError naming the option."""
    if value not in choices:
        raise UserError(f"option {option}: expected one of {', '.join(choices)}, got {value!r}")
    return value  # type: ignore[return-value]
