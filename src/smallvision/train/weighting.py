"""How the heads' losses add up to the one loss that is minimised.

``static``: ``sum_h w_h * L_h`` with each head's ``weight`` (study 000: 1.0 / 2.5 / 10.0).

``uncertainty`` (Kendall, Gal & Cipolla 2018): one learnable log-variance ``s_h`` per head,

    classification:             exp(-s_h) * w_h * L_h + s_h / 2
    regression, reconstruction: exp(-s_h) * w_h * L_h / 2 + s_h / 2

so a noisy head's weight falls as its ``s_h`` grows, and the ``s_h / 2`` term stops every weight
from going to zero. The ``s_h`` are trained by the same optimiser as the model (no weight decay).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from smallvision.config import HeadConfig
from smallvision.registry import HEAD_KINDS


class LossWeighting(nn.Module):
    """Combines per-head losses into the training loss.

    Args:
        heads: head name -> config (its ``weight`` and ``kind``).
        scheme: "static" or "uncertainty".
    """

    def __init__(self, heads: Mapping[str, HeadConfig], scheme: str = "static") -> None:
        super().__init__()
        self.scheme = scheme
        self.weights = {h: float(c.weight) for h, c in heads.items()}
        # Kendall's 1/(2 sigma^2) for Gaussian likelihoods, 1/sigma^2 for softmax likelihoods
        self.scale = {h: HEAD_KINDS.get(c.kind).likelihood_scale for h, c in heads.items()}
        self.log_vars = nn.ParameterDict(
            {h: nn.Parameter(torch.zeros(())) for h in heads} if scheme == "uncertainty" else {}
        )

    def forward(self, losses: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total, {head: that head's weighted term}); the total is the sum of the terms."""
        terms = {}
        for h, loss in losses.items():
            term = self.weights[h] * loss
            if h in self.log_vars:
                s = self.log_vars[h]
                term = self.scale[h] * torch.exp(-s) * term + 0.5 * s
            terms[h] = term
        return sum(terms.values()), terms

    def log_variances(self) -> dict[str, float]:
        """The current ``s_h`` per head (empty for static weights)."""
        return {h: float(s.detach()) for h, s in self.log_vars.items()}
