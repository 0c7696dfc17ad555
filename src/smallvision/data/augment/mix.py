"""MixUp and CutMix through every head: images and targets of a batch mixed with a permutation of it.

One ``lambda ~ Beta(alpha, alpha)`` per batch. MixUp blends whole images, ``lam * x + (1 - lam) *
x[perm]``; CutMix pastes a box of ``x[perm]`` whose area is ``1 - lam`` of the image, then sets
``lam`` to the share of pixels really kept (the box is clipped at the borders). Targets follow
the same ``lam``: classification labels become soft targets (mixed one-hot rows summing to 1),
regression values are mixed, reconstruction targets (images) get the same blend or box.

Every random draw comes from the ``torch.Generator`` passed in, so a batch is reproducible for a
seed: the Beta draw uses a NumPy generator seeded from it (torch's Beta sampler takes no
generator).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from smallvision.errors import UserError

MIXES = ("mixup", "cutmix")


def sample_lambda(alpha: float, gen: torch.Generator) -> float:
    """One draw of Beta(alpha, alpha), reproducible from ``gen``."""
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def cutmix_box(height: int, width: int, lam: float, gen: torch.Generator) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of a box of area ``(1 - lam) * H * W`` centred uniformly, clipped to the image."""
    ratio = float(np.sqrt(1.0 - lam))
    cut_h, cut_w = int(round(height * ratio)), int(round(width * ratio))
    cy = int(torch.randint(0, height, (1,), generator=gen))
    cx = int(torch.randint(0, width, (1,), generator=gen))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, width)
    return y0, y1, x0, x1


def _paste(images: torch.Tensor, perm: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    y0, y1, x0, x1 = box
    out = images.clone()
    out[..., y0:y1, x0:x1] = images[perm][..., y0:y1, x0:x1]
    return out


def mix_batch(
    x: torch.Tensor,
    targets: Mapping[str, torch.Tensor],
    kinds_and_classes: Mapping[str, tuple[str, int | None]],
    name: str,
    alpha: float,
    prob: float,
    gen: torch.Generator,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mix a batch with a permutation of itself.

    Args:
        x: images (B, C, H, W), float.
        targets: head -> target: (B,) int labels or (B, K) soft targets for classification,
            (B,) / (B, k) values for regression, (B, C, H, W) images for reconstruction.
        kinds_and_classes: head -> (kind, number of classes or None).
        name: "mixup", "cutmix" or "none".
        alpha: Beta(alpha, alpha) parameter.
        prob: probability of mixing this batch at all.
        gen: the generator every draw comes from.

    Returns:
        (mixed images, mixed targets). Classification targets are (B, K) float rows summing to 1
        when the batch was mixed; an unmixed batch (``name`` none, or not drawn under ``prob``)
        comes back unchanged.
    """
    if name not in (*MIXES, "none"):
        raise UserError(f"train.mix.name: {name!r}, expected one of none, {', '.join(MIXES)}")
    if name == "none" or len(x) < 2 or float(torch.rand(1, generator=gen)) >= prob:
        return x, dict(targets)
    lam = sample_lambda(alpha, gen)
    perm = torch.randperm(len(x), generator=gen)
    if name == "mixup":
        mixed = lam * x + (1 - lam) * x[perm]
    else:
        box = cutmix_box(x.shape[-2], x.shape[-1], lam, gen)
        mixed = _paste(x, perm, box)
        lam = 1.0 - (box[1] - box[0]) * (box[3] - box[2]) / (x.shape[-2] * x.shape[-1])
    out = {}
    for head, t in targets.items():
        kind, classes = kinds_and_classes[head]
        if kind == "classification":
            soft = t.float() if t.ndim == 2 else F.one_hot(t.long(), int(classes or t.max() + 1)).float()
            out[head] = lam * soft + (1 - lam) * soft[perm]  # (B, K)
        elif kind == "reconstruction" and name == "cutmix":
            out[head] = _paste(t, perm, box)
        else:
            out[head] = lam * t.float() + (1 - lam) * t.float()[perm]
    return mixed, out
