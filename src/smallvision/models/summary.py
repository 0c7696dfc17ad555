"""Tables for ``smallvision models list`` and ``smallvision models show``: what every model is and holds."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from smallvision.config import HeadConfig
from smallvision.errors import UserError
from smallvision.models.build import build_model
from smallvision.registry import MODELS

LIST_SHAPE = (1, 28, 28)  # the size `models list` counts parameters at (MNIST)
LIST_HEADS = {"label": HeadConfig(kind="classification", classes=10)}


def parse_input_shape(text: str, where: str = "--input") -> tuple[int, int, int]:
    """``"32x32x1"`` (H x W x C) or ``"32x32"`` (one channel) -> (C, H, W)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not m:
        raise UserError(f"{where} {text!r}: expected HxWxC such as 32x32x1 or 96x96x3")
    h, w, c = int(m[1]), int(m[2]), int(m[3] or 1)
    return c, h, w


def models_table(pattern: str = "*") -> list[dict[str, Any]]:
    """One row per registered model matching ``pattern``, built at 28x28x1 with a 10-class head.

    Returns:
        Rows with ``name``, ``params`` (total, head included), ``features`` (the backbone's
        feature size), ``stages`` (names, input side first) and ``description`` (first docstring line).
    """
    rows = []
    for name in MODELS.list(pattern):
        net = build_model(name, {}, LIST_SHAPE, LIST_HEADS)
        doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
        rows.append(
            {
                "name": name,
                "params": net.param_counts()["total"],
                "features": net.backbone.num_features,
                "stages": [s for s, _ in net.stages()],
                "description": doc[0] if doc else "",
            }
        )
    if not rows:
        raise UserError(f"no model matches {pattern!r} (models: {', '.join(MODELS.list())})")
    return rows


def layer_table(
    name: str,
    input_shape: tuple[int, int, int],
    heads: Mapping[str, HeadConfig],
    params: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Every leaf layer that runs in a forward pass, in call order, with its output shape.

    Args:
        name: registered model name.
        input_shape: (C, H, W).
        heads: head name -> config (each head's layers are listed under ``heads.<name>``).
        params: the model's keyword parameters (``model.params`` of a config).

    Returns:
        Rows with ``layer`` (dotted module path), ``stage`` (the stage or ``head:<name>`` it
        belongs to: what ``freeze`` would fix), ``type``, ``output`` (shape without the batch
        dimension) and ``params`` (counted at a layer's first call), then a ``total`` row.
    """
    net = build_model(name, params or {}, input_shape, heads).eval()
    owner = {id(m): stage for stage, module in net.stages() for m in module.modules()}
    owner.update({id(m): f"head:{h}" for h, module in net.heads.items() for m in module.modules()})
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()

    def record(path: str):
        def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
            first = path not in seen
            seen.add(path)
            shape = list(output.shape[1:]) if isinstance(output, torch.Tensor) else []
            own = sum(p.numel() for p in module.parameters(recurse=False)) if first else 0
            stage = owner.get(id(module), "")
            rows.append(
                {"layer": path, "stage": stage, "type": type(module).__name__, "output": shape, "params": own}
            )

        return hook

    handles = [
        m.register_forward_hook(record(path))
        for path, m in net.named_modules()
        if path and not any(True for _ in m.children())
    ]
    try:
        with torch.no_grad():
            net(torch.zeros(2, *input_shape))  # batch 2: BatchNorm1d refuses a batch of one
    finally:
        for h in handles:
            h.remove()
    rows.append(
        {"layer": "total", "stage": "", "type": "", "output": [], "params": net.param_counts()["total"]}
    )
    return rows


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        if all(isinstance(v, int) for v in value):
            return "x".join(str(v) for v in value)  # a shape
        return ", ".join(str(v) for v in value)
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts as an aligned plain-text table; numbers are right-aligned with thousands separators."""
    if not rows:
        return ""
    columns = list(rows[0])
    cells = [[_cell(r.get(c, "")) for c in columns] for r in rows]
    numeric = [
        all(isinstance(r.get(c), int | float) and not isinstance(r.get(c), bool) for r in rows)
        for c in columns
    ]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])
