"""The data card of a run: what the report shows about the data, as a few small arrays.

The report only reads the run directory, so the run saves these at start
(``data_card.npz``, see :mod:`smallvision.rundir.arrays`). Keys:

==========================  ==========================================================================
``source``                  0-d str: the config's ``data.source``
``splits``, ``sizes``       (S,) split names and their sample counts (train, val, test, domain parts,
                            evaluation sets)
``samples``                 (n, C, H, W) training images as stored (uint8 for 8-bit sources), drawn
                            with the run's seed, balanced over the first classification head's classes
``sample_index``            (n,) their indices in the data
``sample_label/<head>``     (n,) their labels, per classification head
``augmented``               (R, m, C, H, W) float16, [0, 1] scale: R draws of the run's augmentation
                            pipeline on the first m samples, generator seeded with the run's seed
                            (absent without augmentation)
``classes/<head>``          (K,) class names, per classification head
``counts/<head>``           (S, K) int64: images per class (columns) in each split (rows)
``class_mean/<head>``,      (K', C, H, W) float16: mean and std image of each class's training images
``class_std/<head>``        on the [0, 1] scale; K' = min(K, MAX_CLASSES), the first classes
``pixel_mean``,             (C, H, W) float32: mean and variance of every pixel over the training
``pixel_var``               images on the [0, 1] scale
``norm_scale``,             the normaliser: scale to [0, 1], per-channel mean and std (training split)
``norm_mean``, ``norm_std``
``duplicate_pairs``,        (D,) "train/test" ... "within" and the exact duplicates counted for each
``duplicate_counts``        (``data.split.duplicates``; absent when not checked)
==========================  ==========================================================================

Everything is computed in float64 a chunk of images at a time, so it costs one pass over the
training images and never a float copy of the whole set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from smallvision.data.augment.pipeline import Pipeline
from smallvision.data.mapped import MappedImages, chunk_rows, take_rows
from smallvision.data.normalize import Normalizer

SAMPLES = 32  # images in the sample grid
AUGMENT_SOURCES = 8  # samples shown augmented
AUGMENT_DRAWS = 3  # augmented versions of each
MAX_CLASSES = 40  # classes whose mean and std images are kept (a 100-class set keeps the first 40)

# head -> (class names, split -> (N,) labels of that split's samples)
Labels = Mapping[str, tuple[Sequence[str], Mapping[str, np.ndarray]]]


def sample_rows(train_labels: np.ndarray | None, n: int, seed: int, count: int = SAMPLES) -> np.ndarray:
    """Positions of ``count`` training samples: a seeded permutation, balanced over classes.

    With labels, the first sample of every class in the permutation comes first (in class order),
    then every class's second, and so on, so a 10-class grid of 32 shows each class three or four
    times.
    """
    order = np.random.default_rng(seed).permutation(n)
    if train_labels is None or not len(order):
        return order[:count]
    labels = np.asarray(train_labels)[order]
    rank = np.empty(n, dtype=np.int64)  # how many earlier samples of the permutation share the label
    by_label = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[by_label], labels[by_label])
    rank[by_label] = np.arange(n) - starts
    return order[np.lexsort((labels, rank))[:count]]


def class_moments(
    images: torch.Tensor | MappedImages, labels: np.ndarray, k: int, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counts (K,), mean (K, C, H, W), std (K, C, H, W)) of the images of each class, on ``x * scale``.

    A class without images gets a zero mean and std.
    """
    shape = tuple(images.shape[1:])
    total = torch.zeros((k, int(np.prod(shape))), dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    labels = np.asarray(labels, dtype=np.int64)
    step = chunk_rows(images, bytes_per_value=8)
    for start in range(0, len(images), step):
        x = images[start : start + step].to(torch.float64).reshape(-1, total.shape[1]) * scale
        y = torch.from_numpy(labels[start : start + step])
        total.index_add_(0, y, x)
        total_sq.index_add_(0, y, x * x)
    counts = np.bincount(labels, minlength=k)[:k]
    n = np.maximum(counts, 1)[:, None]
    mean = total.numpy() / n
    std = np.sqrt(np.clip(total_sq.numpy() / n - mean * mean, 0, None))
    return counts, mean.reshape(k, *shape), std.reshape(k, *shape)


def augmented_samples(
    samples: torch.Tensor, normalizer: Normalizer, augment: Pipeline, seed: int
) -> np.ndarray | None:
    """(AUGMENT_DRAWS, m, C, H, W) float16: the pipeline's output for the first m samples, on [0, 1].

    The generator is seeded with ``seed`` and used only here: the training stream is untouched.
    """
    if not len(augment) or not len(samples):
        return None
    x = normalizer.to_unit(samples[:AUGMENT_SOURCES])  # (m, C, H, W) in [0, 1]
    gen = torch.Generator().manual_seed(seed)
    draws = [augment(x, gen) for _ in range(AUGMENT_DRAWS)]
    return torch.stack(draws).to(torch.float16).numpy()


def data_card(
    source: str,
    train_images: torch.Tensor | MappedImages,
    labels: Labels,
    sizes: Mapping[str, int],
    normalizer: Normalizer,
    augment: Pipeline,
    duplicates: Mapping[str, Any] | None,
    seed: int,
    train_index: np.ndarray,
) -> dict[str, np.ndarray]:
    """The arrays of ``data_card.npz`` (keys in the module docstring).

    Args:
        source: the config's ``data.source``.
        train_images: the training split's stored images.
        labels: classification head -> (class names, split -> labels of that split).
        sizes: split -> number of samples.
        normalizer: the run's normaliser (training statistics).
        augment: the run's augmentation pipeline.
        duplicates: the split's duplicate counts (``Splits.info["duplicates"]``), or None.
        seed: the run's seed (sample choice and augmentation generator).
        train_index: the training samples' indices in the data.
    """
    first = next(iter(labels.values()), None)
    train_labels = np.asarray(first[1]["train"]) if first is not None else None
    rows = sample_rows(train_labels, len(train_images), seed)
    samples = take_rows(train_images, rows)
    samples = samples.load() if isinstance(samples, MappedImages) else samples
    out: dict[str, np.ndarray] = {
        "source": np.array(str(source)),
        "splits": np.array(list(sizes), dtype=str),
        "sizes": np.array(list(sizes.values()), dtype=np.int64),
        "samples": samples.numpy(),
        "sample_index": np.asarray(train_index)[rows],
        "norm_scale": np.array(normalizer.scale, dtype=np.float64),
        "norm_mean": np.array(normalizer.mean, dtype=np.float64),
        "norm_std": np.array(normalizer.std, dtype=np.float64),
    }
    augmented = augmented_samples(samples, normalizer, augment, seed)
    if augmented is not None:
        out["augmented"] = augmented
    for head, (classes, per_split) in labels.items():
        out |= _class_arrays(head, classes, per_split, train_images, normalizer.scale, rows, list(sizes))
    zeros = np.zeros(len(train_images), dtype=np.int64)
    _, mean, std = class_moments(train_images, zeros, 1, normalizer.scale)
    out["pixel_mean"], out["pixel_var"] = mean[0].astype(np.float32), (std[0] ** 2).astype(np.float32)
    counted = {k: v for k, v in (duplicates or {}).items() if isinstance(v, int)}
    if counted:
        out["duplicate_pairs"] = np.array(list(counted), dtype=str)
        out["duplicate_counts"] = np.array(list(counted.values()), dtype=np.int64)
    return out


def _class_arrays(
    head: str,
    classes: Sequence[str],
    per_split: Mapping[str, np.ndarray],
    train_images: torch.Tensor | MappedImages,
    scale: float,
    rows: np.ndarray,
    splits: list[str],
) -> dict[str, np.ndarray]:
    k = len(classes)
    counts = [np.bincount(np.asarray(per_split.get(s, []), dtype=np.int64), minlength=k)[:k] for s in splits]
    train = np.asarray(per_split["train"], dtype=np.int64)
    kept = min(k, MAX_CLASSES)
    inside = train < kept  # only the kept classes' sums are accumulated
    _, mean, std = class_moments(
        take_rows(train_images, np.flatnonzero(inside)) if not inside.all() else train_images,
        train[inside],
        kept,
        scale,
    )
    return {
        f"classes/{head}": np.array([str(c) for c in classes], dtype=str),
        f"counts/{head}": np.stack(counts).astype(np.int64),
        f"sample_label/{head}": train[rows],
        f"class_mean/{head}": mean.astype(np.float16),
        f"class_std/{head}": std.astype(np.float16),
    }
