"""Readers of image files: ``folder:`` (a folder per class), ``npyfolder:`` (a folder per class of
``.npy`` arrays, optionally under named domain folders) and ``images:`` (an unlabeled folder).

Files are decoded by a thread pool: Pillow and NumPy release the GIL while they decode, and
opening thousands of small files is I/O-bound, so threads beat a per-file Python loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.formats import BadItems, as_image_array, image_set, parse_size
from smallvision.data.prepare import resize_images
from smallvision.errors import UserError
from smallvision.registry import SOURCES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class UnreadableImage(Exception):
    """A file that is not a decodable image of the expected shape (message says why)."""


def check_choice(value: object, option: str, choices: Sequence[str]) -> str:
    """``value`` when it is one of ``choices``, else a UserError naming the option."""
    if value not in choices:
        raise UserError(f"option {option}: expected one of {', '.join(choices)}, got {value!r}")
    return value  # type: ignore[return-value]


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


def decode_npy(path: Path) -> np.ndarray:
    """One ``.npy`` image as (H, W) or (H, W, C): (C, H, W) arrays are moved channels-last."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UnreadableImage(f"not a readable .npy array ({exc})") from None
    if arr.ndim == 3 and arr.shape[2] not in (1, 3) and arr.shape[0] in (1, 3):
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise UnreadableImage(f"array of shape {arr.shape} is not one image (H, W), (H, W, C) or (C, H, W)")
    if arr.dtype.kind not in "biuf":
        raise UnreadableImage(f"array of dtype {arr.dtype} is not numbers")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise UnreadableImage("array has NaN or infinite values")
    return arr


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


def _files(folder: Path, suffixes: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """(files with one of ``suffixes``, other non-hidden files) directly inside ``folder``, sorted."""
    entries = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    wanted = [p for p in entries if p.suffix.lower() in suffixes]
    return wanted, [p for p in entries if p.suffix.lower() not in suffixes]


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def class_tree(
    location: str, suffixes: Sequence[str], domains: bool | None
) -> tuple[dict[str, list[tuple[str, Path]]], list[Path]]:
    """domain ("" when none) -> [(class name, file)], and the files ignored (wrong suffix).

    With ``domains=None`` the root holds domains when every subfolder of it holds only folders.
    """
    root = Path(location)
    if not root.is_dir():
        raise UserError(f"{location}: no such folder")
    subs = _subdirs(root)
    if not subs:
        raise UserError(f"{location}: expected a folder per class (or per domain), found no subfolders")
    if domains is None:
        domains = all(not _files(s, ())[1] and _subdirs(s) for s in subs)
    tree, ignored = {}, []
    for domain in subs if domains else [root]:
        entries, stray = [], _files(domain, ())[1]
        for class_dir in _subdirs(domain):
            files, others = _files(class_dir, suffixes)
            if not files and not domains:
                raise UserError(f"{class_dir}: class folder has no {'/'.join(suffixes)} files")
            entries += [(class_dir.name, f) for f in files]
            ignored += others
        tree[domain.name if domains else ""] = entries
        ignored += stray
    return tree, ignored


def labeled_tree(
    location: str,
    suffixes: Sequence[str],
    domains: bool | None,
    classes: list[str] | None,
    bad: BadItems,
) -> tuple[list[Path], np.ndarray, TargetInfo, dict[str, np.ndarray], dict]:
    """The files of a class tree with their labels, the groups (domains) and the meta record."""
    tree, ignored = class_tree(location, suffixes, domains)
    found = sorted({c for entries in tree.values() for c, _ in entries})
    if classes is not None and (not isinstance(classes, (list, tuple)) or not classes):
        raise UserError(f"option classes: expected a list of class names, got {classes!r}")
    names = [str(c) for c in classes] if classes is not None else found
    index = {c: i for i, c in enumerate(names)}
    paths, labels, groups = [], [], {}
    for domain, entries in tree.items():
        start = len(paths)
        for c in sorted({c for c, _ in entries} - set(index)):
            files = [f for cls, f in entries if cls == c]
            bad.add(str(files[0].parent), f"class folder {c!r} is not among the declared classes", len(files))
        kept = [(c, f) for c, f in entries if c in index]
        paths += [f for _, f in kept]
        labels += [index[c] for c, _ in kept]
        if domain:
            groups[domain] = np.arange(start, len(paths))
    meta = {"ignored": len(ignored), "ignored_files": [str(p) for p in ignored[:20]]}
    if groups:
        meta["domains"] = list(groups)
    info = TargetInfo("classification", tuple(names))
    return paths, np.asarray(labels, dtype=np.int64), info, groups, meta


@SOURCES.register("folder")
def read_folder(
    location: str,
    *,
    size: int | list[int] | None = None,
    mode: str = "auto",
    fit: str = "stretch",
    classes: list[str] | None = None,
    domains: bool | None = None,
    skip_bad: bool = False,
    workers: int | None = None,
) -> ImageSet:
    """A folder per class of PNG / JPEG / BMP / GIF / TIFF / WebP files.

    Args:
        location: the root; ``root/CLASS/*.png``, or ``root/DOMAIN/CLASS/*.png`` for domains.
        size: resize every image to this (int or [H, W]); when None all must share one size.
        mode: "L" (gray), "RGB", or "auto" (gray unless some image is in colour).
        fit: "stretch" to ``size``, or "crop" the central region of ``size``'s aspect first.
        classes: class names in label order; default the sorted subfolder names. A folder not
            among them is an error.
        domains: read ``root/DOMAIN/CLASS/`` with one group per domain; None detects it (every
            subfolder of the root holds only folders).
        skip_bad: skip unreadable or odd-sized files, counting them in ``meta["skipped"]``.
        workers: decoding threads (default 2 x CPU cores, at most 8).

    Files with other suffixes are not read; they are counted in ``meta["ignored"]``.
    """
    size, bad = parse_size(size), BadItems(skip_bad)
    check_choice(mode, "mode", ("auto", "L", "RGB"))
    check_choice(fit, "fit", ("stretch", "crop"))
    paths, labels, info, groups, meta = labeled_tree(location, IMAGE_SUFFIXES, domains, classes, bad)
    decoded = decode_all(paths, lambda p: decode_image(p, size, mode, fit), workers)
    images, keep = stack_images(decoded, paths, bad, {"L": 1, "RGB": 3}.get(mode))
    full = np.zeros((len(paths), *images.shape[1:]), dtype=images.dtype)  # kept rows back in place
    full[keep] = images
    return image_set(full, {"label": labels}, {"label": info}, f"folder:{location}", bad, groups, keep, meta)


@SOURCES.register("npyfolder")
def read_npyfolder(
    location: str,
    *,
    size: int | list[int] | None = None,
    classes: list[str] | None = None,
    domains: bool | None = None,
    skip_bad: bool = False,
    workers: int | None = None,
) -> ImageSet:
    """A folder per class of ``.npy`` images (study 003), optionally under named domain folders.

    Args:
        location: ``root/CLASS/*.npy``, or ``root/DOMAIN/CLASS/*.npy`` (e.g. TRAIN, TEST, TEST2),
            each domain becoming a group; class names are the sorted union over domains.
        size: resize to this (int or [H, W]); when None every array must share one shape.
        classes, domains, skip_bad, workers: as for ``folder:``.

    Each file holds one image (H, W), (H, W, C) or (C, H, W); uint8 stays uint8, whole numbers
    in 0..255 become uint8, other numbers float32 (as stored, not rescaled).
    """
    size, bad = parse_size(size), BadItems(skip_bad)
    paths, labels, info, groups, meta = labeled_tree(location, (".npy",), domains, classes, bad)
    decoded = decode_all(paths, decode_npy, workers)
    if size is not None:  # resize each group of equal shapes as one batch
        decoded = _resize_arrays(decoded, size)
    images, keep = stack_images(decoded, paths, bad)
    images = as_image_array(images, location)
    full = np.zeros((len(paths), *images.shape[1:]), dtype=images.dtype)
    full[keep] = images
    name = f"npyfolder:{location}"
    return image_set(full, {"label": labels}, {"label": info}, name, bad, groups, keep, meta)


def _resize_arrays(decoded: list[np.ndarray | str], size: tuple[int, int]) -> list[np.ndarray | str]:
    """Each decoded array resized to ``size``; arrays of one shape and dtype as one batch."""
    out = list(decoded)
    by_shape: dict[tuple, list[int]] = {}
    for i, arr in enumerate(decoded):
        if not isinstance(arr, str):
            by_shape.setdefault((arr.shape, arr.dtype.str), []).append(i)
    for idx in by_shape.values():
        batch = np.stack([decoded[i] for i in idx])
        batch = batch[..., None] if batch.ndim == 3 else batch  # (B, H, W, C)
        x = torch.from_numpy(as_image_array(batch, "")).permute(0, 3, 1, 2)
        resized = resize_images(x, size).permute(0, 2, 3, 1).numpy()
        for j, i in enumerate(idx):
            out[i] = resized[j] if resized.shape[3] == 3 else resized[j, :, :, 0]
    return out


@SOURCES.register("images")
def read_images_folder(
    location: str,
    *,
    size: int | list[int] | None = None,
    mode: str = "auto",
    fit: str = "stretch",
    recursive: bool = False,
    limit: int | None = None,
    skip_bad: bool = False,
    workers: int | None = None,
) -> ImageSet:
    """An unlabeled folder of images (PASCAL VOC ``JPEGImages``) for autoencoders: no targets.

    Args:
        location: the folder.
        size, mode, fit, skip_bad, workers: as for ``folder:``.
        recursive: also read the images in subfolders.
        limit: read only the first ``limit`` files (sorted by path).
    """
    size, bad = parse_size(size), BadItems(skip_bad)
    check_choice(mode, "mode", ("auto", "L", "RGB"))
    check_choice(fit, "fit", ("stretch", "crop"))
    root = Path(location)
    if not root.is_dir():
        raise UserError(f"images:{location}: no such folder")
    found = root.rglob("*") if recursive else root.iterdir()
    paths = sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    paths = paths[:limit] if limit is not None else paths
    if not paths:
        raise UserError(f"images:{location}: no {'/'.join(IMAGE_SUFFIXES)} files")
    decoded = decode_all(paths, lambda p: decode_image(p, size, mode, fit), workers)
    images, keep = stack_images(decoded, paths, bad, {"L": 1, "RGB": 3}.get(mode))
    meta = {"files": len(paths)}
    return image_set(images, {}, {}, f"images:{location}", bad, meta=meta)
