"""The run directory's array files besides ``predictions.npz``: ``data_card.npz`` and ``test_images.npz``.

``data_card.npz`` (written when the run directory is created, so a run that fails later still has
it) holds what the report's data card shows and a reader could not recompute without the data: a
sample grid, augmented samples, per-class mean and std images, the pixel-variance map, counts per
class and split, the normaliser and the duplicates found. The arrays are made by
:func:`smallvision.data.card.data_card`; the keys are documented there and in docs/rundir.md.

``test_images.npz`` (written beside ``predictions.npz``) holds the stored test images, in the order
of ``predictions.npz``'s ``test/index``: what the worst-mistakes pictures, the looking-inside
figures and a study's disagreement pictures show.

Both are written atomically (temporary file + rename) and read without pickle.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smallvision.errors import UserError


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez_compressed`` to a temporary file beside ``path``, then an atomic rename."""
    tmp = path.with_name(path.stem + ".tmp.npz")
    try:
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an npz file (no pickle: a run directory may come from elsewhere).

    Raises:
        UserError: the file is missing or not a readable npz archive.
    """
    if not path.is_file():
        raise UserError(f"{path} not found")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path} could not be read ({exc})") from None


@dataclass(frozen=True)
class StoredTestImages:
    """``test_images.npz``: the stored test images and their indices in the data.

    Attributes:
        index: (N,) sample indices, equal to ``predictions.npz``'s ``test/index``.
        images: (N, C, H, W) as stored (uint8 for 8-bit sources).
    """

    index: np.ndarray
    images: np.ndarray

    def aligned(self, index: np.ndarray) -> bool:
        """Whether these images are the samples ``index`` (predictions' ``test/index``), in order."""
        return self.index.shape == np.shape(index) and bool(np.array_equal(self.index, index))


def save_test_images(path: Path, index: np.ndarray, images: np.ndarray) -> None:
    """Write ``test_images.npz`` (``index``, ``images``) atomically."""
    index, images = np.asarray(index), np.asarray(images)
    if len(index) != len(images):
        raise ValueError(f"{len(index)} indices for {len(images)} test images")
    write_npz(path, {"index": index, "images": images})


def load_test_images(path: Path) -> StoredTestImages:
    """Read ``test_images.npz``.

    Raises:
        UserError: missing, unreadable, or without ``index`` / ``images`` of the same length.
    """
    arrays = read_npz(path)
    if "index" not in arrays or "images" not in arrays:
        raise UserError(f"{path} has keys {sorted(arrays)}, expected index and images")
    if len(arrays["index"]) != len(arrays["images"]) or arrays["images"].ndim != 4:
        raise UserError(
            f"{path}: {len(arrays['index'])} indices for images of shape {arrays['images'].shape}, "
            "expected (N, C, H, W) with one index per image"
        )
    return StoredTestImages(arrays["index"], arrays["images"])
