"""Use a finished run: rebuild its model from the run directory and predict on new images.

What ``smallvision predict`` runs: :func:`load_model`, then :func:`predict_files` (which reads the
files with :func:`read_images`) and :func:`predictions_csv`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from smallvision.config import HeadConfig, build_config
from smallvision.data.augment.pipeline import build_augment
from smallvision.data.normalize import Normalizer
from smallvision.data.prepare import conform
from smallvision.data.readers.common import as_image_array, parse_size
from smallvision.data.readers.decode import (
    IMAGE_SUFFIXES,
    UnreadableImage,
    decode_all,
    decode_image,
    load_npy,
    npy_images,
)
from smallvision.errors import UserError
from smallvision.evaluate.predict import predict, to_outputs
from smallvision.models.base import Network
from smallvision.models.build import build_model
from smallvision.registry import HEAD_KINDS
from smallvision.rundir import Run, RunPaths
from smallvision.train.checkpoint import load_checkpoint
from smallvision.train.inputs import InputPrep


@dataclass
class LoadedModel:
    """A run's best model with everything needed to prepare new inputs the same way."""

    model: Network
    normalizer: Normalizer
    prep: InputPrep  # normalisation plus the run's fixed input ops (e.g. a pixel permutation)
    input_shape: tuple[int, int, int]
    heads: dict[str, HeadConfig]
    class_names: dict[str, list[str] | None]


def load_model(run_dir: str | Path) -> LoadedModel:
    """The best weights of the run in ``run_dir`` (``checkpoints/best.pt`` carries its config).

    The run directory itself is read with :func:`smallvision.rundir.load_run`; this adds the model.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {str(run_dir)!r} not found")
    run = Run(run_dir)
    best = RunPaths(run_dir).best
    if run.paths.config.is_file() and run.config.features is not None and not best.is_file():
        raise UserError(
            f"run {run_dir} is a logistic regression on frozen features (features.head "
            f"{run.config.features.head}): it has no network to load"
        )
    ckpt = load_checkpoint(best)
    cfg = build_config(ckpt["config"], origin=str(best))
    shape = tuple(ckpt["input_shape"])
    norm = Normalizer.from_dict(ckpt["normalizer"])
    if cfg.features is not None:  # the encoder's input, then its features through the trained MLP
        model, norm, prep, shape = _encoded_model(cfg, ckpt, norm)
    else:
        model = build_model(cfg.model.name, cfg.model.params, shape, cfg.heads or {})
        model.load_state_dict(ckpt["model"])
        prep = InputPrep(norm, build_augment(cfg.data.augment))
    model.eval()
    names = {h: None for h in cfg.heads or {}}
    if run.paths.metrics.is_file():  # class names as the run recorded them
        recorded = run.metrics.heads
        names.update({h: recorded[h].classes for h in names if h in recorded})
    return LoadedModel(model, norm, prep, shape, dict(cfg.heads or {}), names)


def _encoded_model(cfg, ckpt: dict, features_norm: Normalizer) -> tuple:
    """(model, normaliser, prep, image shape) of a features-mode run: its encoder (``model.init``,
    loaded again) chained with the trained MLP (:class:`smallvision.models.features.EncodedNetwork`)."""
    from smallvision.models.features import EncodedNetwork, FeatureMLP, load_encoder

    info = ckpt["features"]
    shape = tuple(info["encoder"]["input_shape"])
    image_norm = Normalizer.from_dict(info["encoder"]["normalizer"])
    encoder = load_encoder(cfg.model.init, cfg.model, shape, image_norm)
    f = cfg.features
    network = Network(
        FeatureMLP((info["dim"], 1, 1), tuple(f.hidden), f.dropout, f.batch_norm), cfg.heads or {}
    )
    network.load_state_dict(ckpt["model"])
    return EncodedNetwork(encoder, features_norm, network), encoder.prep.normalizer, encoder.prep, shape


def predict_images(run: LoadedModel, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Outputs per head for images of any size/channels: resized and converted like the run's data."""
    c, h, w = run.input_shape
    images = conform(images, (h, w), c)
    if images.dtype != torch.uint8 and run.normalizer.scale != 1.0:
        raise UserError("the run was trained on 8-bit images; got float arrays (save them as uint8 0..255)")
    kinds = {name: head.kind for name, head in run.heads.items()}
    raw = predict(run.model, images, run.prep, list(kinds))
    return to_outputs(raw, kinds)


def predictions_csv(run: LoadedModel, names: list[str], outputs: dict[str, np.ndarray]) -> str:
    """One row per image: per classification head the predicted class name and every class's
    probability; per regression head its value(s). Reconstruction heads are left out."""
    header = ["file"]
    columns: list[list[str]] = []
    for head, out in outputs.items():  # each kind says its columns (``HeadKind.csv_columns``)
        more, cols = HEAD_KINDS.get(run.heads[head].kind).csv_columns(head, out, run.class_names.get(head))
        header += more
        columns += cols
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(zip(names, *columns, strict=True))
    return buf.getvalue()


def predict_files(run: LoadedModel, paths: Sequence[str]) -> tuple[list[str], dict[str, np.ndarray]]:
    """(one name per image, outputs per head) for image files, folders and ``.npy`` files.

    The files are read for the run's input channels, so that a (3, H, W) ``.npy`` is the one RGB
    image ``npyfolder:`` trained on, and a (N, H, W) stack is N grey images for a grey model.
    """
    images, names = read_images(paths, channels=run.input_shape[0])
    return names, predict_images(run, images)


def _expand(paths: Sequence[str]) -> list[Path]:
    """Files as given; folders replaced by their image and ``.npy`` files, sorted."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in (*IMAGE_SUFFIXES, ".npy")
            )
            if not found:
                raise UserError(f"{p}: folder has no image or .npy files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise UserError(f"{p}: no such file or folder")
    return out


def read_images(
    paths: Sequence[str], size: int | Sequence[int] | None = None, channels: int | None = None
) -> tuple[torch.Tensor, list[str]]:
    """Images to predict on, from image files, folders of them and ``.npy`` files.

    Args:
        paths: files (PNG, JPEG, BMP, GIF, TIFF, WebP, ``.npy``) and folders of them.
        size: (H, W) or an int; every image is resized to it (bilinear). None: as read, and
            then all must share one size.
        channels: 1 or 3; gray images are repeated to RGB, RGB ones converted by luma.

    Returns:
        (N, C, H, W) images -- uint8, or float32 when a ``.npy`` holds non-8-bit values -- and
        one name per image ("file.png", or "stack.npy[3]" for the 4th image of a stack).

    Raises:
        UserError: naming a file that cannot be read, or images of different sizes.
    """
    size = parse_size(list(size) if isinstance(size, tuple) else size)
    if channels not in (None, 1, 3):
        raise UserError(f"channels: expected 1 or 3, got {channels!r}")
    files = _expand(paths)
    pictures = [f for f in files if f.suffix.lower() != ".npy"]
    mode = {1: "L", 3: "RGB"}.get(channels, "auto")
    decoded = dict(zip(pictures, decode_all(pictures, lambda p: decode_image(p, mode=mode)), strict=True))
    arrays, names = [], []
    for path in files:
        if path.suffix.lower() == ".npy":
            found = _npy_file(path, channels)
            names += [path.name] if len(found) == 1 else [f"{path.name}[{i}]" for i in range(len(found))]
            arrays += list(found)
        elif isinstance(decoded[path], str):
            raise UserError(f"{path}: {decoded[path]}")
        else:
            arrays.append(decoded[path] if decoded[path].ndim == 3 else decoded[path][:, :, None])
            names.append(path.name)
    return _prepare(arrays, names, size, channels), names


def _npy_file(path: Path, channels: int | None) -> np.ndarray:
    """(N, H, W, C) images of one ``.npy``, decoded as the readers decode them (one decoder)."""
    try:
        found = npy_images(load_npy(path), channels, stack=True)
    except UnreadableImage as exc:
        raise UserError(f"{path}: {exc}") from None
    return as_image_array(found, str(path))  # whole numbers in 0..255 become uint8, as in training


def _prepare(
    arrays: list[np.ndarray], names: list[str], size: tuple[int, int] | None, channels: int | None
) -> torch.Tensor:
    """(N, C, H, W) from (H, W, C) arrays: images of one shape are converted and resized as one batch."""
    by_shape: dict[tuple, list[int]] = {}
    for i, arr in enumerate(arrays):
        by_shape.setdefault((arr.shape, arr.dtype.str), []).append(i)
    floats = any(a.dtype != np.uint8 for a in arrays)
    out: list[torch.Tensor | None] = [None] * len(arrays)
    for idx in by_shape.values():
        x = torch.from_numpy(np.stack([arrays[i] for i in idx])).permute(0, 3, 1, 2)  # (B, C, H, W)
        x = x.float() if floats else x
        x = conform(x, size, channels)
        for j, i in enumerate(idx):
            out[i] = x[j]
    shapes = [tuple(t.shape) for t in out]
    if len(set(shapes)) > 1:
        odd = next(i for i, s in enumerate(shapes) if s != shapes[0])
        raise UserError(
            f"{names[odd]}: shape {shapes[odd]} differs from {shapes[0]} of {names[0]}; give a size to resize"
        )
    return torch.stack(out)
