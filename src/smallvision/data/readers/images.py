"""Readers of image files: ``folder:`` (a folder per class), ``npyfolder:`` (a folder per class of
``.npy`` arrays, optionally under named domain folders) and ``images:`` (an unlabeled folder).

Files are decoded by :mod:`smallvision.data.readers.decode` (a thread pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.prepare import resize_images
from smallvision.data.readers.common import BadItems, as_image_array, check_choice, image_set, parse_size
from smallvision.data.readers.decode import IMAGE_SUFFIXES, decode_all, decode_image, decode_npy, stack_images
from smallvision.errors import UserError
from smallvision.registry import SOURCES


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
