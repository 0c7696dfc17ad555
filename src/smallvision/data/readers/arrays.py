"""Readers of arrays already in memory order: ``.npz`` and ``.npy`` files."""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.mapped import MappedImages, map_file, npy_header
from smallvision.data.readers.common import (
    BadItems,
    as_image_array,
    check_flag,
    classification_target,
    image_set,
    to_nchw,
)
from smallvision.errors import UserError
from smallvision.registry import SOURCES

_LOAD_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
# the usual names of an (images, labels) pair: Keras' x/y, scikit-learn's X/y, and spelled out
PAIRS = (("x", "y"), ("X", "y"), ("images", "labels"), ("data", "targets"))


class _Arrays:
    """Named arrays behind one interface: the keys of an ``.npz``, or the ``KEY.npy`` files of a folder."""

    def __init__(self, keys: list[str], load: Callable[[str], np.ndarray], describe: Callable[[str], str]):
        self.keys, self._load, self.where = keys, load, describe

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return np.asarray(self._load(key))
        except _LOAD_ERRORS as exc:
            raise UserError(f"{self.where(key)}: corrupt or truncated array ({exc})") from None


def _npz_arrays(path: Path) -> _Arrays:
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"npz:{path}: no such file") from None
    except _LOAD_ERRORS as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise UserError(f"{path}: holds a single array, not named arrays; use npy:{path}")
    return _Arrays(list(npz.files), npz.__getitem__, lambda key: f"{path} key {key!r}")


def _npy_arrays(location: Path, images_key: str | None, mmap: bool = False) -> tuple[_Arrays, str | None]:
    """A folder of KEY.npy files, or one images .npy whose targets are .npy files beside it.

    With ``mmap`` every array is a read-only view of its memory-mapped file: nothing is read
    until used (the targets, small, are then copied; the images stay mapped).
    """
    folder, key = (location, images_key) if location.is_dir() else (location.parent, location.stem)
    if not folder.is_dir():
        raise UserError(f"npy:{location}: no such file or folder")
    keys = sorted(p.stem for p in folder.glob("*.npy"))

    def load(k: str) -> np.ndarray:
        path = folder / f"{k}.npy"
        if mmap:
            return map_file(path, *npy_header(path))
        return np.load(path, allow_pickle=False)

    return _Arrays(keys, load, lambda k: str(folder / f"{k}.npy")), key


def _split_keys(arrays: _Arrays, key: str) -> dict[str, str]:
    """``{"": key}`` when present, else the ``KEY_train`` / ``KEY_test`` ... splits (Keras' mnist.npz)."""
    if key in arrays.keys:
        return {"": key}
    found = {m.group(1): k for k in arrays.keys if (m := re.fullmatch(re.escape(key) + r"_(\w+)", k))}
    if not found:
        raise UserError(f"{arrays.where(key)}: no such array; found {', '.join(arrays.keys) or 'none'}")
    return found


def _has(arrays: _Arrays, key: str) -> bool:
    """Whether ``key`` is an array, or ``key_train`` / ``key_test`` ... are."""
    return key in arrays.keys or any(re.fullmatch(re.escape(key) + r"_\w+", k) for k in arrays.keys)


def _usual_pair(arrays: _Arrays, spec: str) -> tuple[str, str | None]:
    """(images key, labels key or None) of the one usual pair of names (PAIRS) the arrays use."""
    found = [(x, y) for x, y in PAIRS if _has(arrays, x)]
    if len(found) != 1:
        which = "no array has" if not found else f"arrays {', '.join(x for x, _ in found)} each have"
        expected = ", ".join(f"{x}/{y}" for x, y in PAIRS)
        raise UserError(
            f"{spec}: {which} a usual images name; found {', '.join(arrays.keys) or 'no arrays'}; "
            f"expected one of {expected} (or with _train, _test ... suffixes), or set option images_key"
        )
    x, y = found[0]
    return x, (y if _has(arrays, y) else None)


def _target(
    name: str, values: np.ndarray, kind: str | None, classes, where: str, bad: BadItems
) -> tuple[np.ndarray, TargetInfo, np.ndarray]:
    """One target array: integers (or declared classification) -> classes; other numbers -> regression."""
    if kind not in (None, "classification", "regression"):
        raise UserError(f"option kinds.{name}: expected classification or regression, got {kind!r}")
    if values.dtype.kind not in "biuf":
        raise UserError(f"{where}: target values of dtype {values.dtype} are not numbers")
    integral = values.dtype.kind in "biu" or bool(np.all(np.isfinite(values) & (values == np.round(values))))
    if kind == "classification" or (kind is None and integral and values.ndim == 1):
        if values.ndim != 1:
            raise UserError(f"{where}: class labels must be one value per image, got shape {values.shape}")
        return classification_target(values, classes, where, bad)
    values = values.astype(np.float32)
    keep = np.isfinite(values).reshape(len(values), -1).all(axis=1)
    for i in np.flatnonzero(~keep):
        bad.add(f"{where} index {int(i)}", "regression target is NaN or infinite")
    return values, TargetInfo("regression"), keep


def _images(
    arrays: _Arrays, key: str, layout: str, bad: BadItems, mmap: bool
) -> tuple[np.ndarray, np.ndarray]:
    raw = arrays[key]
    if mmap and raw.dtype not in (np.uint8, np.float32):
        raise UserError(
            f"{arrays.where(key)}: option mmap reads uint8 or float32 images as stored; this file holds "
            f"{raw.dtype} (converting would read it all into memory)"
        )
    images = to_nchw(as_image_array(raw, arrays.where(key)), arrays.where(key), layout)
    keep = np.ones(len(images), dtype=bool)
    if images.dtype == np.float32:
        # in chunks: a whole-set boolean copy would defeat a memory-mapped file
        keep = np.concatenate(
            [np.isfinite(images[i : i + 4096]).reshape(-1, int(np.prod(images.shape[1:]))).all(axis=1)
             for i in range(0, len(images), 4096)]
        )  # fmt: skip
        for i in np.flatnonzero(~keep):
            bad.add(f"{arrays.where(key)} index {int(i)}", "image has NaN or infinite values")
    return images, keep


def _array_set(
    arrays: _Arrays,
    spec: str,
    images_key: str | None,
    targets,
    kinds,
    classes,
    layout: str,
    skip_bad: bool,
    mmap: bool = False,
) -> ImageSet:
    bad = BadItems(skip_bad)
    if images_key is None:  # the usual pair of names; an images array alone is an unlabeled set
        images_key, labels_key = _usual_pair(arrays, spec)
        targets = ({"label": labels_key} if labels_key else {}) if targets is None else targets
    elif targets is None:  # the given images name's usual partner (images.npy -> labels.npy), else y
        partner = next((k for k in (dict(PAIRS).get(images_key), "y") if k and _has(arrays, k)), None)
        targets = {"label": partner} if partner else {}
    splits = _split_keys(arrays, images_key)
    if not isinstance(targets, dict):
        raise UserError(f"option targets: expected a mapping target name -> array key, got {targets!r}")
    kinds, classes = kinds or {}, classes or {}
    images, keeps, groups, values, start = [], [], {}, {t: [] for t in targets}, 0
    for split, key in splits.items():
        x, keep = _images(arrays, key, layout, bad, mmap)
        for name, target_key in targets.items():
            tkey = f"{target_key}_{split}" if split else target_key
            if tkey not in arrays.keys:
                raise UserError(f"{arrays.where(tkey)}: no such array; found {', '.join(arrays.keys)}")
            y = arrays[tkey]
            if len(y) != len(x):
                raise UserError(f"{arrays.where(tkey)}: {len(y)} values for {len(x)} images in {key!r}")
            values[name].append((y, arrays.where(tkey)))
        images.append(x)
        keeps.append(keep)
        if split:
            groups[split] = np.arange(start, start + len(x))
        start += len(x)
    if len({x.shape[1:] for x in images}) > 1:
        raise UserError(f"{spec}: the splits' images differ in shape: {[x.shape[1:] for x in images]}")
    out, info, keep = {}, {}, np.concatenate(keeps)
    for name, parts in values.items():
        y = np.concatenate([p[0] for p in parts])
        y, info[name], ok = _target(name, y, kinds.get(name), classes.get(name), parts[0][1], bad)
        out[name], keep = y, keep & ok
    if mmap:  # each split's file stays a mapped part: concatenating would read them all
        x = MappedImages(images)
    else:
        x = np.concatenate(images) if len(images) > 1 else images[0]
    return image_set(x, out, info, spec, bad, groups, keep)


@SOURCES.register("npz")
def read_npz(
    location: str,
    *,
    images_key: str | None = None,
    targets: dict[str, str] | None = None,
    kinds: dict[str, str] | None = None,
    classes: dict[str, list[str] | int] | None = None,
    layout: str = "auto",
    skip_bad: bool = False,
) -> ImageSet:
    """Named arrays in one ``.npz``: images under ``images_key``, each target under its own key.

    Args:
        location: the ``.npz`` file.
        images_key: key of the (N, H, W), (N, H, W, C) or (N, C, H, W) images; when absent,
            ``KEY_train`` / ``KEY_test`` / ... are read as official splits (Keras' ``mnist.npz``).
            Default: the one usual name the file uses, ``x``, ``X``, ``images`` or ``data``
            (several, or none, is an error listing the arrays found).
        targets: target name -> key, e.g. ``{"label": "y"}``; default ``label`` from the usual
            partner of the images name (``y``, ``labels``, ``targets``) when it exists.
        kinds: target name -> "classification" / "regression"; default: 1-d whole numbers are
            classes, anything else is regression.
        classes: target name -> class names (or their number); labels outside are errors.
        layout: "auto", "NHW", "NHWC" or "NCHW".
        skip_bad: drop images with NaN/inf and labels outside the classes, counting them.
    """
    arrays = _npz_arrays(Path(location))
    return _array_set(arrays, f"npz:{location}", images_key, targets, kinds, classes, layout, skip_bad)


@SOURCES.register("npy")
def read_npy(
    location: str,
    *,
    images_key: str | None = None,
    targets: dict[str, str] | None = None,
    kinds: dict[str, str] | None = None,
    classes: dict[str, list[str] | int] | None = None,
    layout: str = "auto",
    skip_bad: bool = False,
    mmap: bool = False,
) -> ImageSet:
    """``.npy`` arrays: a folder of ``KEY.npy`` files, or one images file with targets beside it.

    Args:
        location: a folder (images in ``{images_key}.npy``, or ``x_train.npy`` / ``x_test.npy``),
            or the images ``.npy`` itself (its target files sit in the same folder).
        images_key: stem of the images file inside a folder (default: as for ``npz:``).
        targets: target name -> file stem, e.g. ``{"label": "y"}`` (default: as for ``npz:``).
        kinds, classes, layout, skip_bad: as for ``npz:``.
        mmap: memory-map the files instead of reading them (uint8 or float32 images, C order):
            the images stay on disk and each batch reads its rows (:mod:`smallvision.data.mapped`).
    """
    mmap = check_flag(mmap, "mmap")
    arrays, key = _npy_arrays(Path(location), images_key, mmap)
    return _array_set(arrays, f"npy:{location}", key, targets, kinds, classes, layout, skip_bad, mmap)
