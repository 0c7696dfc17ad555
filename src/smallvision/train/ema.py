"""An exponential moving average of the model's weights (``train.ema: 0.999``).

After each optimiser step ``shadow = d * shadow + (1 - d) * weights`` for every floating-point
tensor of the state dict (batch-norm running statistics included); integer buffers are copied.
The decay warms up as ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates (TensorFlow's
``num_updates`` rule), so that short runs are not dominated by the random initial weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    """Shadow weights of ``model``.

    Args:
        model: the trained model; its current state is the starting shadow.
        decay: the long-run decay, in (0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the shadow towards the model's current weights (one fused op for all floats)."""
        self.updates += 1
        d = self.current_decay()
        state = model.state_dict()
        floats = [k for k, v in self.shadow.items() if v.is_floating_point()]
        if floats:
            torch._foreach_lerp_([self.shadow[k] for k in floats], [state[k].detach() for k in floats], 1 - d)
        for k, v in self.shadow.items():
            if not v.is_floating_point():
                v.copy_(state[k])

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Within the block ``model`` holds the shadow weights; its own are put back afterwards."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield
        finally:
            model.load_state_dict(backup)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}
