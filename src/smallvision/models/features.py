"""Frozen-encoder mode (study 001): an encoder from ``model.init`` and the MLP trained on its features.

The encoder is the backbone of ``model.init``: for a smallvision run or checkpoint, the run's own
architecture, fed exactly as it was trained (its normaliser and fixed input ops, from the
checkpoint); for a torchvision / timm state dict, the config's ``model.name`` and ``model.params``
fed through the run's own normaliser. It runs once per image in eval mode (batch-norm statistics
fixed, no gradient); its (N, F) features are cached (:mod:`smallvision.rundir.feature_cache`).

:class:`FeatureMLP` is the backbone of the network trained on them: features arrive as
(B, F, 1, 1), so the run's normaliser standardises each feature with training-split statistics and
the trainer needs no special case. :class:`EncodedNetwork` chains the two for ``smallvision predict``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from smallvision.config import ModelConfig, build_config
from smallvision.data.augment.pipeline import build_augment
from smallvision.data.normalize import Normalizer
from smallvision.errors import UserError
from smallvision.models.base import Backbone, Network
from smallvision.models.build import build_model
from smallvision.models.mlp import MLP
from smallvision.models.transfer import checkpoint_path, load_backbone
from smallvision.train.checkpoint import load_checkpoint
from smallvision.train.inputs import InputPrep


class FeatureMLP(MLP):
    """:class:`~smallvision.models.mlp.MLP` on (B, F, 1, 1) feature vectors; no layers at all for
    ``hidden=[]`` (the heads then sit on the features themselves).

    Not registered among the models: it exists only on top of an encoder's features.

    Args:
        input_shape: (F, 1, 1).
        hidden: widths of the dense layers; the last is the feature size the heads see.
        dropout: after each layer's ReLU.
        batch_norm: between each linear layer and its ReLU.
    """

    image_input = False
    no_layers_allowed = True


@dataclass
class Encoder:
    """A frozen backbone, how images are prepared for it, and what it is (for the cache and the record).

    Attributes:
        backbone: in eval mode, every parameter fixed.
        prep: stored images -> the backbone's input.
        path: the weights file.
        spec: name, params, input shape, normaliser and kind (``smallvision`` / ``state dict``).
    """

    backbone: Backbone
    prep: InputPrep
    path: Path
    spec: dict[str, Any]

    @property
    def dim(self) -> int:
        return int(self.backbone.num_features)


def load_encoder(
    init: str, model: ModelConfig, shape: tuple[int, int, int], normalizer: Normalizer
) -> Encoder:
    """The encoder of ``model.init`` for images of ``shape`` (C, H, W), frozen, on the CPU.

    Args:
        init: ``model.init`` (a run directory, a checkpoint or a state-dict file).
        model: the config's model section: the architecture of a plain state dict.
        shape: the run's image shape, which a smallvision encoder must have been trained on.
        normalizer: the run's normaliser: a plain state dict's input preparation.

    Raises:
        UserError: no weights there, weights that do not fit, a features-mode run as the encoder,
            or an encoder trained on another image shape.
    """
    path = checkpoint_path(init)
    try:
        ckpt = load_checkpoint(path) if path.is_file() else {}
    except UserError:
        ckpt = {}  # not a checkpoint: load_backbone names the problem below
    if isinstance(ckpt.get("config"), dict) and "input_shape" in ckpt and "normalizer" in ckpt:
        src = build_config(ckpt["config"], origin=f"model.init {str(path)!r}")
        if src.features is not None:
            raise UserError(
                f"model.init {str(path)!r}: a features-mode run has no encoder of its own; "
                f"use its encoder, {src.model.init!r}"
            )
        trained = tuple(int(d) for d in ckpt["input_shape"])
        if trained != tuple(shape):
            raise UserError(
                f"model.init {str(path)!r}: the encoder was trained on {_shape(trained)} images but the "
                f"data are {_shape(shape)}; set data.size: [{trained[1]}, {trained[2]}] and data.channels: {trained[0]}"
            )
        name, params, kind = src.model.name, dict(src.model.params), "smallvision"
        prep = InputPrep(Normalizer.from_dict(ckpt["normalizer"]), build_augment(src.data.augment))
    else:
        name, params, kind = model.name, dict(model.params), "state dict"
        prep = InputPrep(normalizer)
    net = build_model(name, params, shape, {})
    load_backbone(net, init)
    backbone = net.backbone.eval()
    backbone.requires_grad_(False)
    spec = {
        "kind": kind,
        "name": name,
        "params": params,
        "input_shape": list(shape),
        "normalizer": prep.normalizer.to_dict(),
        "fixed_ops": repr(prep.fixed),
    }
    return Encoder(backbone, prep, path, spec)


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


@torch.no_grad()
def extract_features(
    encoder: Encoder, images: torch.Tensor, batch_size: int, device: torch.device
) -> np.ndarray:
    """(N, F) float32 features of stored images (N, C, H, W), ``batch_size`` images per pass."""
    backbone = encoder.backbone.to(device)
    chunks = [
        backbone(encoder.prep(images[start : start + batch_size].to(device))).float().cpu()
        for start in range(0, len(images), batch_size)
    ]
    backbone.cpu()
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, encoder.dim), dtype=np.float32)


class EncodedNetwork(nn.Module):
    """Images -> the frozen encoder -> features standardised as in training -> the trained network.

    What ``smallvision predict`` runs for a features-mode run: its input is ``encoder.prep(images)``.
    """

    def __init__(self, encoder: Encoder, normalizer: Normalizer, network: Network) -> None:
        super().__init__()
        self.encoder, self.network, self.normalizer = encoder.backbone, network, normalizer

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.encoder(x)[:, :, None, None]  # (B, F, 1, 1)
        return self.network(self.normalizer.standardize(f))
