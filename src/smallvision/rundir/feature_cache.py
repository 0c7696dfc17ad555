"""A frozen encoder's features of one set of images, cached so that every run using them reads them.

A cache file is ``<dir>/<key>.npz`` with ``features`` (N, F) float32 and ``meta`` (what was hashed,
as JSON). The key is the SHA-256 of everything the features depend on: the encoder's weights file
(its SHA-256), its architecture, input shape and input preparation, and the images' fingerprint
(:meth:`smallvision.data.dataset.ImageSet.fingerprint`). A run that changes none of them (another
head, label fraction, seed or learning rate) reads the file instead of running the encoder again.

The directory is ``features/`` of the encoder's run directory (``model.init`` a run directory, or a
file in a run's ``checkpoints/``), else ``features/`` beside the weights file, unless
``features.cache`` names one. Files are written atomically (a temporary file per process, then a
rename), so workers of a study that miss the cache at once each write a whole, identical file.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from smallvision.rundir.layout import RunPaths

FORMAT = 1  # bump when what a cache file holds changes: old files are then simply not found


def cache_dir(init: str | Path, override: str | Path | None = None) -> Path:
    """Where the features of the encoder at ``init`` (``model.init``) are cached."""
    if override is not None:
        return Path(override)
    path = Path(init)
    if path.is_dir():
        return RunPaths(path).features
    if path.parent.name == "checkpoints":  # <run>/checkpoints/best.pt
        return RunPaths(path.parent.parent).features
    return path.parent / "features"


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(parts: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of what the features depend on (JSON with sorted keys, plus :data:`FORMAT`)."""
    text = json.dumps({"format": FORMAT, **parts}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_path(directory: Path, key: str) -> Path:
    return directory / f"{key}.npz"


def load_features(path: Path, rows: int) -> np.ndarray | None:
    """The cached (rows, F) features at ``path``; None when absent, unreadable or of another size
    (the caller then extracts them again and overwrites the file)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            features = npz["features"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return features if features.ndim == 2 and len(features) == rows else None


def save_features(path: Path, features: np.ndarray, meta: Mapping[str, Any]) -> None:
    """Write a cache file atomically (temporary file of this process, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(
        tmp, features=np.asarray(features, dtype=np.float32), meta=np.array(json.dumps(meta, default=str))
    )
    os.replace(tmp, path)
