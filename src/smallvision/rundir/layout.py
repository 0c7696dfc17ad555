"""Where each file of a run directory lives, how a fresh directory is claimed, and env.json.

A run directory is created once and never reused, so an earlier run is never overwritten::

    <output_dir>/<name>-<YYYYmmdd-HHMMSS>/      one run
        config.yaml  env.json  history.csv  metrics.json  predictions.npz  report.html
        data_card.npz  test_images.npz
        checkpoints/best.pt  checkpoints/last.pt
        features/<key>.npz                      a feature cache, when later runs use it as an encoder
        tensorboard/  tracking.json             with track.tensorboard / track.mlflow
    <output_dir>/<name>-<stamp>/                a seed group (``seeds: [...]``)
        config.yaml  metrics.json (kind "group")
        seed-<s>/    one run directory per seed
        ensemble/    metrics.json (kind "ensemble")  predictions.npz
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from smallvision.errors import UserError

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


@dataclass(frozen=True)
class RunPaths:
    """Every path of one run directory (or seed-group directory): the only place they are spelled."""

    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / "config.yaml"

    @property
    def env(self) -> Path:
        return self.dir / "env.json"

    @property
    def history(self) -> Path:
        return self.dir / "history.csv"

    @property
    def metrics(self) -> Path:
        return self.dir / "metrics.json"

    @property
    def predictions(self) -> Path:
        return self.dir / "predictions.npz"

    @property
    def data_card(self) -> Path:
        """What the report's data card shows (see :mod:`smallvision.rundir.arrays`)."""
        return self.dir / "data_card.npz"

    @property
    def test_images(self) -> Path:
        """The stored test images, in the order of ``predictions.npz``'s ``test/index``."""
        return self.dir / "test_images.npz"

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def report(self) -> Path:
        return self.dir / "report.html"

    @property
    def features(self) -> Path:
        """The feature cache of a run whose backbone other runs use as a frozen encoder (derived
        data: the one thing written into a finished run's directory, and safe to delete)."""
        return self.dir / "features"

    @property
    def tensorboard(self) -> Path:
        """TensorBoard event files (``track.tensorboard``)."""
        return self.dir / "tensorboard"

    @property
    def tracking(self) -> Path:
        """Where the run is tracked (``track.mlflow``: store URI and run id), so a resume logs on."""
        return self.dir / "tracking.json"

    @property
    def ensemble(self) -> Path:
        """The ensemble's directory inside a seed group."""
        return self.dir / "ensemble"

    def member(self, seed: int) -> Path:
        """The run directory of one seed inside a seed group."""
        return self.dir / f"seed-{seed}"


def check_output_dir(root: str | Path) -> Path:
    """``output_dir`` as a Path; a UserError when it exists and is not a directory."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UserError(f"output_dir {str(root)!r} is an existing file, expected a directory (or a new path)")
    return root


def new_run_dir(root: str | Path, name: str) -> Path:
    """``root/<name>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... when that exists already.

    Raises:
        UserError: ``root`` (the config's ``output_dir``) is an existing file.
    """
    root = check_output_dir(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # a parent of root is a file
        raise UserError(
            f"output_dir {str(root)!r}: a part of this path is a file, expected directories"
        ) from None
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
        "argv": list(sys.argv),  # exactly, for arguments with spaces (the report shell-quotes them)
        "cwd": os.getcwd(),  # a relative config path in the command is relative to this
    }


def write_json(path: Path, obj: Any) -> None:
    """Atomic JSON write (temporary file + rename)."""
    write_text(path, json.dumps(obj, indent=2, default=_plain))


def write_text(path: Path, text: str) -> None:
    """Atomic text write (temporary file + rename): a process killed while writing leaves the old
    file or none, never half of one."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
