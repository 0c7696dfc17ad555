"""Decoding single image files: pictures by Pillow, ``.npy`` arrays by NumPy, many files by threads.

The readers of this package and ``smallvision predict`` share these decoders, so that a file
becomes the same (H, W, C) array whether a run trains on it or a finished run predicts on it.

Files are decoded by a thread pool: Pillow and NumPy release the GIL while they decode, and
opening thousands of small files is I/O-bound, so threads beat a per-file Python loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from smallvision.data.readers.common import BadItems

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class UnreadableImage(Exception):
    """A file that is not a decodable image of the expected shape (message says why)."""


def _to_mode(im: Image.Image, mode: str) -> Image.Image:
    """``im`` as 8-bit "L" or "RGB"; ``mode="auto"`` keeps gray images gray."""
    if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit gray: scale to 8 bits
        arr = np.asarray(im, dtype=np.float64)
        scale = 255.0 / 65535.0 if arr.size and arr.max() > 255 else 1.0
        im = Image.fromarray(np.clip(np.round(arr * scale), 0, 255).astype(np.uint8), "L")
    if mode == "auto":
        mode = "L" if im.mode in _GRAY_MODES else "RGB"
    return im if im.mode == mode else im.convert(mode)


def _center_crop(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The largest centred region of ``im`` with the aspect ratio of ``size`` (H, W)."""
    w, h = im.size
    target = size[1] / size[0]
    cw, ch = (round(h * target), h) if w / h > target else (w, round(w / target))
    left, top = (w - cw) // 2, (h - ch) // 2
    return im.crop((left, top, left + cw, top + ch))


def decode_image(
    path: Path, size: tuple[int, int] | None = None, mode: str = "auto", fit: str = "stretch"
) -> np.ndarray:
    """One image file as uint8 (H, W) or (H, W, 3), resized to ``size`` (H, W) when given.

    Raises:
        UnreadableImage: the file is missing, corrupt or truncated.
    """
    try:
        with Image.open(path) as im:
            if size is not None and im.format == "JPEG":
                # let the JPEG decoder downscale by 1/2..1/8 (never below size): big photos decode ~4x faster
                im.draft(im.mode if mode == "auto" else mode, (size[1], size[0]))
            im.load()
            im = _to_mode(im, mode)
            if size is not None and fit == "crop":
                im = _center_crop(im, size)
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            return np.asarray(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"not a readable image ({exc})") from None


def load_npy(path: Path) -> np.ndarray:
    """The array in one ``.npy`` file (no pickles).

    Raises:
        UnreadableImage: the file is missing, corrupt or truncated.
    """
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UnreadableImage(f"not a readable .npy array ({exc})") from None


def npy_images(arr: np.ndarray, channels: int | None = None, stack: bool = False) -> np.ndarray:
    """The images of one ``.npy`` array as (N, H, W, C), C in {1, 3}, values as stored.

    One image is (H, W), (H, W, C) or (C, H, W) with C 1 or 3 (channels-last wins when both
    axes could be channels). With ``stack`` the array may also hold several images: (N, H, W)
    grey, or (N, H, W, C) / (N, C, H, W). A 3-d array whose first axis is 1 or 3 is ambiguous
    then; it is one (C, H, W) image unless ``channels`` (the channels the images are for) says
    otherwise, so a (3, H, W) file is one RGB image, as ``npyfolder:`` reads it.

    Raises:
        UnreadableImage: not numbers, NaN or infinite values, or a shape that is not images.
    """
    if arr.dtype.kind not in "biuf":
        raise UnreadableImage(f"array of dtype {arr.dtype} is not numbers")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise UnreadableImage("array has NaN or infinite values")
    one_chw = arr.ndim == 3 and arr.shape[0] in (1, 3) and (not stack or channels in (None, arr.shape[0]))
    if arr.ndim == 2:
        return arr[None, :, :, None]
    if arr.ndim == 3 and arr.shape[2] in (1, 3):
        return arr[None]
    if one_chw:
        return arr.transpose(1, 2, 0)[None]
    if stack and arr.ndim == 3:  # (N, H, W): a stack of grey images
        return arr[:, :, :, None]
    if stack and arr.ndim == 4:
        nhwc = arr if arr.shape[3] in (1, 3) else arr.transpose(0, 2, 3, 1)
        if nhwc.shape[3] in (1, 3):
            return nhwc
    what = "an image or a stack of images" if stack else "one image (H, W), (H, W, C) or (C, H, W)"
    raise UnreadableImage(f"array of shape {arr.shape} is not {what}")


def decode_npy(path: Path) -> np.ndarray:
    """One ``.npy`` image as (H, W) grey or (H, W, 3) colour (:func:`npy_images` reads it)."""
    image = npy_images(load_npy(path))[0]
    return image[:, :, 0] if image.shape[2] == 1 else image


def decode_all(
    paths: Sequence[Path], decode: Callable[[Path], np.ndarray], workers: int | None = None
) -> list[np.ndarray | str]:
    """``decode`` of every path in order, by a thread pool; an unreadable file gives its message."""

    def safe(path: Path) -> np.ndarray | str:
        try:
            return decode(path)
        except UnreadableImage as exc:
            return str(exc)

    workers = workers or min(8, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(safe, paths))


def stack_images(
    decoded: Sequence[np.ndarray | str], paths: Sequence[Path], bad: BadItems, channels: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(N_kept, C, H, W) from decoded (H, W[, 3]) arrays, and the mask of the paths kept.

    Every image must have the first good image's size; gray ones become RGB when any is RGB
    (or ``channels`` is 3).
    """
    keep = np.zeros(len(decoded), dtype=bool)
    ref = ref_path = None
    for i, (arr, path) in enumerate(zip(decoded, paths, strict=True)):
        if isinstance(arr, str):
            bad.add(str(path), arr)
        elif ref is None:
            ref, ref_path, keep[i] = arr.shape[:2], path, True
        elif arr.shape[:2] == ref:
            keep[i] = True
        else:
            bad.add(str(path), f"size {arr.shape[:2]} differs from {ref} of {ref_path}; set option size")
    good = [decoded[i] for i in np.flatnonzero(keep)]
    if not good:
        return np.zeros((0, channels or 1, 1, 1), dtype=np.uint8), keep
    c = channels or (3 if any(a.ndim == 3 for a in good) else 1)
    out = np.empty((len(good), *ref, c), dtype=np.result_type(*{a.dtype for a in good}))
    for i, arr in enumerate(good):  # assignment broadcasts gray (H, W, 1) over 3 channels
        out[i] = arr if arr.ndim == 3 else arr[:, :, None]
    return out.transpose(0, 3, 1, 2), keep
