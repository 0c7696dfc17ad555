"""Backbone weights from a file: a smallvision checkpoint, or a torchvision / timm state dict.

A file is read with ``torch.load(weights_only=True)`` (it cannot run code) and recognised by its
content, never by its name:

- a smallvision checkpoint (``{"model": {...}, "config": ...}``): its ``backbone.*`` tensors;
- a training checkpoint that wraps a state dict (``{"state_dict": ...}``, timm / Lightning; or
  ``{"model": ...}`` without ``backbone.*`` keys);
- a plain state dict of tensors (torchvision's ``resnet18-*.pth``, timm's ``pytorch_model.bin``),
  mapped onto the backbone by key name (a ``module.`` prefix from DataParallel is dropped).

Head weights (``fc.*``, ``head.*``, ``classifier.*``) are never loaded: the heads belong to the new
task. ``num_batches_tracked`` buffers, which torchvision's released weights lack, keep the model's
own values. A 1-channel model takes a 3-channel file's input conv summed over its input channels
(timm's ``adapt_input_conv``): on a grey image repeated to RGB it computes the same response.
Anything that does not fit is a one-line UserError naming the first few keys and shapes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from smallvision.errors import UserError
from smallvision.train.checkpoint import load_checkpoint

HEAD_PREFIXES = ("fc.", "head.", "classifier.")
SHOWN = 3  # keys named in an error before "... (N in all)"


def read_weights(path: Path, where: str) -> tuple[dict[str, torch.Tensor], str]:
    """(backbone-relative state dict, what the file is) from a checkpoint or state-dict file."""
    try:
        obj = load_checkpoint(path)
    except UserError:
        raise UserError(
            f"{where} {str(path)!r}: not a PyTorch weights file (torch.load(weights_only=True) cannot read "
            "it: corrupt, another format, or a pickled model object); expected a run directory, a "
            "smallvision checkpoint or a state dict saved with torch.save(model.state_dict(), path)"
        ) from None
    model = obj.get("model")
    if isinstance(model, dict) and any(str(k).startswith("backbone.") for k in model):
        inner = {k.removeprefix("backbone."): v for k, v in model.items() if k.startswith("backbone.")}
        return inner, "smallvision"
    for key in ("state_dict", "model"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    bad = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad or not obj:
        shown = ", ".join(sorted(str(k) for k in obj)[:5]) or "nothing"
        raise UserError(
            f"{where} {str(path)!r}: holds a dict of {shown}{'...' if len(obj) > 5 else ''}, not a state "
            "dict of tensors; expected a smallvision checkpoint or a torchvision/timm state dict"
        )
    return {str(k).removeprefix("module."): v for k, v in obj.items()}, "state dict"


def fit_weights(
    backbone: nn.Module, weights: dict[str, torch.Tensor], where: str
) -> tuple[dict[str, torch.Tensor], int]:
    """``weights`` matched to ``backbone``'s keys and shapes, ready for ``load_state_dict``.

    Returns:
        (the full state dict to load, how many of its tensors came from the file).

    Raises:
        UserError: keys the backbone needs are missing, the file has keys the backbone lacks
            (besides heads), or shapes differ; the first few of each, with counts.
    """
    own = backbone.state_dict()
    weights = {k: v for k, v in weights.items() if not k.startswith(HEAD_PREFIXES) or k in own}
    weights = _adapt_input_conv(own, weights)
    missing = [k for k in own if k not in weights and not k.endswith("num_batches_tracked")]
    extra = [k for k in weights if k not in own]
    wrong = [k for k in own if k in weights and weights[k].shape != own[k].shape]
    if missing or extra or wrong:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing ({_first(missing)})")
        if extra:
            problems.append(f"{len(extra)} unexpected ({_first(extra)})")
        if wrong:
            shapes = [f"{k}: {_shape(weights[k])} in the file vs {_shape(own[k])}" for k in wrong]
            problems.append(f"{len(wrong)} of another shape ({_first(shapes)})")
        raise UserError(
            f"{where}: does not fit model {type(backbone).__name__}: {'; '.join(problems)}{_hint(own, weights)}"
        )
    out = dict(own)  # keeps the model's own num_batches_tracked where the file has none
    out.update(weights)
    return out, len(weights)


def _adapt_input_conv(own: dict, weights: dict) -> dict:
    """A 3-channel file's input conv summed over RGB for a 1-channel model (timm's habit)."""
    first = next((k for k, v in own.items() if v.ndim == 4), None)
    w = weights.get(first) if first else None
    if w is not None and w.ndim == 4 and own[first].shape[1] == 1 and w.shape[1] == 3:
        if (w.shape[0], *w.shape[2:]) == (own[first].shape[0], *own[first].shape[2:]):
            weights = {**weights, first: w.sum(dim=1, keepdim=True)}
    return weights


def _first(items: list[str]) -> str:
    more = f", ... {len(items)} in all" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


def _hint(own: dict, weights: dict) -> str:
    """How to fix the usual mismatch: ImageNet's 7x7 stem against the small 3x3 stem."""
    w, mine = weights.get("conv1.weight"), own.get("conv1.weight")
    if w is not None and mine is not None and w.shape[2:] != mine.shape[2:] and w.shape[-1] == 7:
        return "; the file's conv1 is 7x7 (ImageNet stem): set model.params.stem: standard"
    return "; use weights of the same model, params and input channels"
