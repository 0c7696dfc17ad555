"""Checkpoints written atomically: a half-written file is never mistaken for a whole one.

Write to a temporary file in the same directory, fsync, then ``os.replace`` (atomic on POSIX);
loading uses ``weights_only=True`` so a checkpoint cannot run code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from smallvision.errors import UserError


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through a fsynced temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint saved by :func:`save_atomic`; a corrupt or truncated file is a UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated zip archives
        raise UserError(f"checkpoint {str(path)!r} is corrupt or truncated ({type(exc).__name__})") from None
