"""Per-head losses: ``fn(output, target, mask=None) -> scalar``.

Classification targets may be class indices (B,) or soft targets (B, K) (MixUp / CutMix); one
formula covers cross-entropy, label smoothing, class weights and focal loss:

    q = (1 - eps) * t + eps / K                      (t: one-hot or soft target)
    l_i = -sum_c w_c * q_ic * (1 - p_ic)^gamma * log p_ic
    loss = sum_i l_i / sum_i sum_c w_c * t_ic        (the weighted mean; plain mean when w = 1)

With hard labels and ``gamma = 0`` this is exactly ``F.cross_entropy(weight=w, label_smoothing=eps)``.
Regression uses MSE, MAE or Huber (delta 1); reconstruction MSE or L1, optionally only on the
pixels a masking augmentation hid (``HeadConfig.masked_only``). Which loss a head gets, and which
it may have, is its kind's (``HEAD_KINDS``, :mod:`smallvision.heads`); the formulas live here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

from smallvision.config import HeadConfig
from smallvision.errors import UserError
from smallvision.registry import HEAD_KINDS

LossFn = Callable[..., torch.Tensor]


def balanced_class_weights(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """``n / (K * n_c)`` per class (scikit-learn's "balanced"); a class absent from ``labels`` counts as 1.

    Args:
        labels: (N,) int class indices of the training split.
        classes: K.
    """
    counts = torch.bincount(labels.long(), minlength=classes).double().clamp_min(1)
    return (len(labels) / (classes * counts)).float()


def soft_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    smoothing: float = 0.0,
    weight: torch.Tensor | None = None,
    gamma: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy of ``logits`` (B, K) against class indices (B,) or soft targets (B, K).

    Args:
        logits: raw scores (B, K).
        target: (B,) int labels or (B, K) probabilities (each row sums to 1).
        smoothing: label smoothing eps (the target is mixed with the uniform distribution).
        weight: (K,) class weights, or None for 1.
        gamma: focal exponent; 0 is plain cross-entropy.
    """
    logits = logits.float()
    k = logits.shape[1]
    t = F.one_hot(target.long(), k).float() if target.ndim == 1 else target.float()  # (B, K)
    q = (1 - smoothing) * t + smoothing / k if smoothing else t
    logp = F.log_softmax(logits, dim=1)  # (B, K)
    per_class = -logp * q
    if gamma:
        per_class = per_class * (1 - logp.exp()).pow(gamma)
    w = torch.ones(k, dtype=logp.dtype, device=logp.device) if weight is None else weight.to(logp)
    # dividing by the targets' total weight makes hard labels match torch's weighted mean
    return (per_class * w).sum() / (t * w).sum().clamp_min(1e-12)


def pixel_loss(out: torch.Tensor, target: torch.Tensor, kind: str, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean squared (``mse``) or absolute (``l1``) error, over the masked pixels when a mask is given.

    Args:
        out: reconstruction (B, C, H, W).
        target: clean image (B, C, H, W).
        kind: "mse" or "l1".
        mask: (B, 1, H, W) bool, True where pixels were hidden; None (or all False) uses every pixel.
    """
    diff = out.float().reshape(target.shape) - target.float()
    err = diff * diff if kind == "mse" else diff.abs()
    if mask is None or not bool(mask.any()):
        return err.mean()
    m = mask.to(err.dtype).expand_as(err)
    return (err * m).sum() / m.sum()


def head_loss(name: str, cfg: HeadConfig, class_weights: torch.Tensor | None = None) -> LossFn:
    """The loss function of one head: ``fn(output, target, mask=None) -> scalar``.

    Args:
        name: the head's name (for error messages).
        cfg: the head's config (kind, loss, label smoothing, focal gamma, masked_only).
        class_weights: (K,) weights for a classification head, or None.
    """
    kind = HEAD_KINDS.get(cfg.kind)
    loss = cfg.loss or kind.default_loss
    if loss not in kind.losses:  # the schema refuses it at load time; a config built in code may not
        raise UserError(
            f"heads.{name}.loss: {loss!r} is not a {kind.name} loss; expected one of {kind.losses}"
        )
    return kind.loss_fn(cfg, class_weights)


def build_losses(
    heads: Mapping[str, HeadConfig], train_targets: Mapping[str, torch.Tensor]
) -> dict[str, LossFn]:
    """One loss per head; ``class_weights: balanced`` is computed from the training split's labels.

    Args:
        heads: head name -> config (classification heads have ``classes`` filled in).
        train_targets: head name -> the training split's targets.
    """
    fns = {}
    for h, cfg in heads.items():
        weights = None
        if cfg.class_weights == "balanced":  # the schema allows it on classification heads only
            if h not in train_targets:
                raise UserError(f"heads.{h}.class_weights: balanced needs the head's training labels")
            weights = balanced_class_weights(train_targets[h], cfg.classes or int(train_targets[h].max()) + 1)
        fns[h] = head_loss(h, cfg, weights)
    return fns
