"""Exact duplicate images across and within splits (``data.split.duplicates``).

Images are grouped by two 64-bit hashes of their bytes (vectorised, a chunk of images at a time),
and only images whose hashes agree are compared byte for byte: a hash collision never counts, and
no all-pairs comparison is ever made.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from smallvision.data.dataset import ImageSet
from smallvision.errors import UserError


class DuplicateImagesWarning(UserWarning):
    """Identical images sit in two different splits (``data.split.duplicates: warn``)."""


def image_hashes(images: torch.Tensor, index: np.ndarray, chunk_bytes: int = 1 << 25) -> np.ndarray:
    """Two 64-bit hashes of the bytes of each image ``images[index]``, (len(index), 2) uint64.

    Each image's bytes are read as 64-bit words and combined with fixed random odd multipliers
    (wrapping arithmetic), a chunk of images at a time: two images differing in one word never
    collide, and the rare collision in general is caught by the exact comparison in
    :func:`duplicate_groups`.
    """
    n_bytes = images[0].numel() * images.element_size() if len(images) else 0
    width = -(-n_bytes // 8)
    mult = np.random.default_rng(20240601).integers(0, 2**63, size=(2, width), dtype=np.uint64) * 2 + 1
    out = np.empty((len(index), 2), dtype=np.uint64)
    rows = max(1, chunk_bytes // max(1, n_bytes))
    for start in range(0, len(index), rows):
        part = _bytes(images, index[start : start + rows])
        if n_bytes % 8:  # pad each row to whole words
            part = np.concatenate([part, np.zeros((len(part), 8 - n_bytes % 8), np.uint8)], axis=1)
        words = part.view(np.uint64)  # (rows, width)
        out[start : start + rows, 0] = (words * mult[0]).sum(axis=1, dtype=np.uint64)
        out[start : start + rows, 1] = (words * mult[1]).sum(axis=1, dtype=np.uint64)
    return out


def _bytes(images: torch.Tensor, index: np.ndarray) -> np.ndarray:
    """The raw bytes of ``images[index]``, one row per image (a fresh copy)."""
    part = images[torch.as_tensor(index, dtype=torch.long)]
    return part.reshape(len(part), -1).numpy().view(np.uint8)


def duplicate_groups(images: torch.Tensor, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group the samples ``index`` by identical image bytes.

    Returns:
        ``(order, group)``: ``index[order]`` lists the samples with identical images adjacent, and
        ``group[k]`` is the group id of ``index[order[k]]`` (ids ascend from 0 along ``order``).
    """
    h = image_hashes(images, index)
    order = np.lexsort((h[:, 1], h[:, 0]))
    same = np.all(h[order[1:]] == h[order[:-1]], axis=1)
    cand = np.flatnonzero(same)
    if len(cand):  # confirm candidate neighbours byte for byte, so a hash collision never counts
        a, b = index[order[cand]], index[order[cand + 1]]
        step = 4096
        same[cand] = np.concatenate(
            [
                np.all(_bytes(images, a[i : i + step]) == _bytes(images, b[i : i + step]), axis=1)
                for i in range(0, len(a), step)
            ]
        )
    group = np.concatenate([[0], np.cumsum(~same)])
    return order, group


def find_duplicates(images: torch.Tensor, splits: dict[str, np.ndarray]) -> dict:
    """Counts of exact duplicate images across and within the splits (train, val, test), and one example.

    Args:
        images: the whole set (N, C, H, W).
        splits: split name -> sample indices, compared in this order.

    Returns:
        ``{"train/test": n, ...}`` (n = samples of the second split with an identical image in the
        first), ``"within": n`` (samples repeating an earlier one of the same split) and
        ``"example": (i, split_i, j, split_j)`` for a cross-split pair, or None.
    """
    names = tuple(splits)
    index = np.concatenate([splits[s] for s in names]).astype(np.int64)
    which = np.concatenate([np.full(len(splits[s]), k) for k, s in enumerate(names)])
    counts: dict = {f"{a}/{b}": 0 for i, a in enumerate(names) for b in names[i + 1 :]}
    counts.update(within=0, example=None)
    if len(index) < 2:
        return counts
    order, group = duplicate_groups(images, index)
    split_sorted = which[order]
    present = np.zeros((group[-1] + 1, len(names)), dtype=bool)  # group x split membership
    present[group, split_sorted] = True
    for i, a in enumerate(names):
        for k in range(i + 1, len(names)):
            counts[f"{a}/{names[k]}"] = int((present[group, i] & (split_sorted == k)).sum())
    first = np.zeros(len(group), dtype=bool)  # first member of each (group, split)
    key = group * len(names) + split_sorted
    first[np.unique(key, return_index=True)[1]] = True
    counts["within"] = int((~first).sum())
    crossing = np.flatnonzero(present.sum(1) > 1)
    if len(crossing):
        members = np.flatnonzero(group == crossing[0])
        i, j = members[0], members[np.argmax(split_sorted[members] != split_sorted[members[0]])]
        counts["example"] = (
            int(index[order[i]]),
            names[split_sorted[i]],
            int(index[order[j]]),
            names[split_sorted[j]],
        )
    return counts


def report_duplicates(data: ImageSet, parts: dict[str, np.ndarray], mode: str) -> dict:
    """Find cross-split duplicates among ``parts``; raise or warn as ``data.split.duplicates`` (``mode``) says."""
    counts = find_duplicates(data.images, parts)
    across = sum(v for k, v in counts.items() if "/" in k)
    if across:
        detail = ", ".join(f"{k}: {v}" for k, v in counts.items() if "/" in k and v)
        i, si, j, sj = counts["example"]
        msg = (
            f"{data.name or 'source'}: {across} image(s) in one split are exact duplicates of images in "
            f"another ({detail}; e.g. sample {i} in {si} == sample {j} in {sj})"
        )
        if mode == "error":
            raise UserError(f"{msg}; remove them from the source or set data.split.duplicates=warn")
        warnings.warn(
            f"{msg}; set data.split.duplicates=error to stop on this", DuplicateImagesWarning, stacklevel=3
        )
    return counts
