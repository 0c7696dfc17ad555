"""The run directory: created once, never reused, so an earlier run is never overwritten."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

PACKAGES = (
    "smallvision",
    "torch",
    "numpy",
    "scipy",
    "scikit-learn",
    "scikit-image",
    "pydantic",
    "matplotlib",
)


def new_run_dir(root: str | Path, name: str) -> Path:
    """``root/<name>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... when that exists already."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1, 10_000):
        path = root / (f"{name}-{stamp}" if i == 1 else f"{name}-{stamp}-{i}")
        try:
            path.mkdir()  # fails when it exists: the atomic way to claim a fresh name
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run directory under {root}")


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment(seed: int, fingerprint: str, threads: int) -> dict[str, Any]:
    """What a reader needs to rerun this: versions, commit, seed, data fingerprint."""
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "git_commit": git_commit(),
        "seed": seed,
        "data_fingerprint": fingerprint,
        "threads": threads,
        "started": datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write (temporary file + rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_plain))
    os.replace(tmp, path)


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
