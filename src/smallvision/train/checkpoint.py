"""Checkpoints written atomically and checked when read: a damaged file is never mistaken for a whole one.

Writing: serialise to memory (:func:`serialize`), append a trailer (``SVCKPT01`` + the SHA-256 of the payload), write
to a temporary file in the same directory, fsync, ``os.replace`` (atomic on POSIX), fsync the
directory. Reading: verify the trailer's digest (``torch.load`` itself does not check the zip's
CRCs, so a flipped byte would load silently), then ``torch.load(weights_only=True)`` so a
checkpoint cannot run code. A file without a trailer (written before checksums) still loads.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from smallvision.config_training import training_difference
from smallvision.errors import UserError

MAGIC = b"SVCKPT01"
TRAILER = len(MAGIC) + 32  # magic + sha256 digest


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` with a checksum trailer, through a fsynced temporary file and a rename."""
    write_atomic(serialize(obj), path)


def serialize(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` into memory: a copy of its tensors as they are now."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def write_atomic(payload: bytes, path: str | Path) -> None:
    """``payload`` (from :func:`serialize`) and its checksum trailer to ``path``, through a fsynced
    temporary file and a rename, then the directory fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.write(MAGIC + hashlib.sha256(payload).digest())
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
    data = path.read_bytes()
    if len(data) > TRAILER and data[-TRAILER:-32] == MAGIC:
        payload = memoryview(data)[:-TRAILER]
        if hashlib.sha256(payload).digest() != data[-32:]:
            raise UserError(f"checkpoint {str(path)!r} is corrupt (checksum mismatch); it cannot be used")
    elif MAGIC in data[-TRAILER - len(MAGIC) :]:  # the trailer is there but cut short
        raise UserError(f"checkpoint {str(path)!r} is corrupt or truncated (incomplete checksum trailer)")
    else:
        payload = memoryview(data)
    try:
        obj = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated zip archives
        raise UserError(f"checkpoint {str(path)!r} is corrupt or truncated ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise UserError(
            f"checkpoint {str(path)!r} holds a {type(obj).__name__}, expected a smallvision checkpoint"
        )
    return obj


def load_model_state(model: torch.nn.Module, weights: dict, where: str) -> None:
    """``model.load_state_dict`` with a one-line UserError when the checkpoint is another model's."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).split("\n")[1].strip() if "\n" in str(exc) else str(exc)
        raise UserError(
            f"checkpoint {where} does not fit this model ({type(model).__name__}): {first}"
        ) from None


def check_config(ckpt: dict, current: dict, where: str) -> None:
    """Refuse a checkpoint written for another model or config, naming the first difference.

    Only settings that change training count (``smallvision.config_training.training_difference``): a run
    renamed, moved or resumed with other threads is still the same run.

    Args:
        ckpt: a loaded checkpoint (it carries its run's resolved config under ``config``).
        current: the config to continue with, as ``RunConfig.model_dump(mode="json")``.
        where: the checkpoint's path, for the message.
    """
    if "config" not in ckpt:
        raise UserError(f"checkpoint {where} carries no config; it was not written by a smallvision run")
    diff = training_difference(ckpt["config"], current)
    if diff is not None:
        key, a, b = diff
        raise UserError(
            f"checkpoint {where} was written for another config: {key} is {a!r} there but {b!r} here; "
            "continue a run only with its own config.yaml"
        )
