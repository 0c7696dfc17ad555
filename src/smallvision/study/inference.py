"""Use a finished run: rebuild its model from the run directory and predict on new images."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from smallvision.config import HeadConfig, build_config
from smallvision.data.augment import build_augment
from smallvision.data.prepare import resize_images, set_channels
from smallvision.data.splits import Normalizer
from smallvision.errors import UserError
from smallvision.evaluate.predict import predict, to_outputs
from smallvision.models.base import Network
from smallvision.models.build import build_model
from smallvision.train.checkpoint import load_checkpoint
from smallvision.train.inputs import InputPrep


@dataclass
class LoadedRun:
    """A run's best model with everything needed to prepare new inputs the same way."""

    model: Network
    normalizer: Normalizer
    prep: InputPrep  # normalisation plus the run's fixed input ops (e.g. a pixel permutation)
    input_shape: tuple[int, int, int]
    heads: dict[str, HeadConfig]
    class_names: dict[str, list[str] | None]


def load_run(run_dir: str | Path) -> LoadedRun:
    """The best weights of the run in ``run_dir`` (``checkpoints/best.pt`` carries its config)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {str(run_dir)!r} not found")
    ckpt = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    cfg = build_config(ckpt["config"], origin=str(run_dir / "checkpoints" / "best.pt"))
    shape = tuple(ckpt["input_shape"])
    model = build_model(cfg.model.name, cfg.model.params, shape, cfg.heads or {})
    model.load_state_dict(ckpt["model"])
    model.eval()
    norm = Normalizer.from_dict(ckpt["normalizer"])
    names = {h: None for h in cfg.heads or {}}
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():  # class names as the run recorded them
        recorded = json.loads(metrics_file.read_text()).get("heads", {})
        names.update({h: recorded[h].get("classes") for h in names if h in recorded})
    prep = InputPrep(norm, build_augment(cfg.data.augment))
    return LoadedRun(model, norm, prep, shape, dict(cfg.heads or {}), names)


def predict_images(run: LoadedRun, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Outputs per head for images of any size/channels: resized and converted like the run's data."""
    c, h, w = run.input_shape
    images = resize_images(set_channels(images, c), (h, w))
    if images.dtype != torch.uint8 and run.normalizer.scale != 1.0:
        raise UserError("the run was trained on 8-bit images; got float arrays (save them as uint8 0..255)")
    kinds = {name: head.kind for name, head in run.heads.items()}
    raw = predict(run.model, images, run.prep, list(kinds))
    return to_outputs(raw, kinds)


def predictions_csv(run: LoadedRun, names: list[str], outputs: dict[str, np.ndarray]) -> str:
    """One row per image: per classification head the predicted class name and every class's
    probability; per regression head its value(s). Reconstruction heads are left out."""
    header = ["file"]
    columns: list[list[str]] = []
    for head, out in outputs.items():
        kind = run.heads[head].kind
        if kind == "classification":
            classes = run.class_names.get(head) or [str(i) for i in range(out.shape[1])]
            header += [head] + [f"{head}:p({c})" for c in classes]
            columns.append([classes[k] for k in out.argmax(axis=1)])
            columns += [[f"{p:.6f}" for p in out[:, j]] for j in range(out.shape[1])]
        elif kind == "regression":
            values = out.reshape(len(out), -1)
            header += [head] if values.shape[1] == 1 else [f"{head}[{j}]" for j in range(values.shape[1])]
            columns += [[f"{v:.6f}" for v in values[:, j]] for j in range(values.shape[1])]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(zip(names, *columns, strict=True))
    return buf.getvalue()
